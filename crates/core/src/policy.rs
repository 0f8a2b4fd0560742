//! The policy file (SPEC section 5): what to protect, where its replicas go, how long they are
//! kept. Parsing is strict: an unknown key, a value of the wrong type, a malformed id, a value
//! over an AWS limit or an impossible combination is an error that names the field, the value
//! and its line and column in the file, found before anything touches AWS. Input echoed in a
//! message is cut short and escaped: a broken or hostile file can neither flood the terminal
//! nor drive it with control characters.
//!
//! The file is read from the TOML parser's tree (`DeTable`), not through serde's derive: the
//! tree keeps the span of every key and value, however deeply nested, and lets each field be
//! type-checked on its own (a derive takes a TOML datetime for a map and stops at the first
//! error).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::ids::{
    self, AccountId, DB_INSTANCE_ID_MAX, KeyRef, RoleArn, TAG_KEY_MAX, TAG_VALUE_MAX, is_region,
    is_tag_key, is_tag_value,
};
pub use crate::ids::{is_db_identifier, is_instance_id};

/// A validated policy.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    pub name: String,
    pub source: Source,
    pub targets: Vec<Target>,
    pub retention: Retention,
    /// When `serve` runs the policy's sessions (`schedule`, in `timezone`); `None`: only
    /// when triggered.
    pub schedule: Option<Schedule>,
    /// When `serve` runs its drills (`[drill] schedule`, in `timezone`).
    pub drill_schedule: Option<Schedule>,
    /// `timezone`, an IANA zone name (`UTC` when the file does not give one).
    pub timezone: String,
    /// What `plan` prices its estimates with (`[prices]`, SPEC 6.5).
    pub prices: Prices,
}

/// `[prices]`: USD per GiB, for `plan` and `run` estimates (SPEC 6.5). The defaults are AWS's
/// list prices in us-east-1 when this was written: EBS snapshot storage (standard tier) per
/// GB-month, and data transfer between Regions per GB.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Prices {
    pub snapshot_gb_month: f64,
    pub transfer_gb: f64,
}

impl Prices {
    pub const DEFAULT_SNAPSHOT_GB_MONTH: f64 = 0.05;
    pub const DEFAULT_TRANSFER_GB: f64 = 0.02;
}

impl Default for Prices {
    fn default() -> Self {
        Self {
            snapshot_gb_month: Self::DEFAULT_SNAPSHOT_GB_MONTH,
            transfer_gb: Self::DEFAULT_TRANSFER_GB,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Source {
    /// The role assumed in the source account; `None` means the ambient credentials.
    pub role_arn: Option<RoleArn>,
    pub regions: Vec<String>,
    pub resources: Vec<Selection>,
    /// The default-key workaround (SPEC 6.4): per source Region, a customer managed key of
    /// the source account that re-encrypts a snapshot under `aws/ebs` or `aws/rds` before it
    /// is shared with another account.
    pub reencrypt_keys: BTreeMap<String, KeyRef>,
}

pub use crate::model::ResourceType;
use crate::schedule::Schedule;

/// Which resources of one type a policy protects.
#[derive(Clone, Debug, PartialEq)]
pub struct Selection {
    pub resource_type: ResourceType,
    pub selector: Selector,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selector {
    Ids(Vec<String>),
    /// Every tag must match (AWS's tag filters are ANDed).
    Tags(BTreeMap<String, String>),
}

/// Where replicas go.
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    /// The account as the policy names it; `None` means "the account of the target role", or the
    /// source account when there is no target role.
    pub account: Option<AccountId>,
    pub region: String,
    pub role_arn: Option<RoleArn>,
    pub kms_key: Option<KeyRef>,
    /// RDS workflow C: the key of the target account, in the source Region, that encrypts the
    /// intermediate copy. `None`: the target account's AWS managed `aws/rds` key there.
    pub staging_kms_key: Option<KeyRef>,
    /// RDS workflow C: copy the shared snapshot straight to the target Region in one
    /// `CopyDBSnapshot` instead of the two-step flow.
    pub rds_single_step: bool,
    /// Where `restore` and `drill` put what they make in this target when the recorded
    /// subnet, security groups or DB subnet group do not exist there (SPEC 6.4).
    pub restore: RestoreDefaults,
}

/// A target's `restore = { subnet, security_groups, db_subnet_group }`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RestoreDefaults {
    pub subnet: Option<String>,
    pub security_groups: Vec<String>,
    pub db_subnet_group: Option<String>,
}

impl RestoreDefaults {
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }
}

impl Target {
    /// The account this target is pinned to by the policy text alone, if any.
    pub fn declared_account(&self) -> Option<&AccountId> {
        declared_account(self.account.as_ref(), self.role_arn.as_ref())
    }
}

/// The target's account as the policy text pins it: `account`, else the target role's.
fn declared_account<'a>(
    account: Option<&'a AccountId>,
    role_arn: Option<&'a RoleArn>,
) -> Option<&'a AccountId> {
    account.or_else(|| role_arn.map(RoleArn::account))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Retention {
    pub replicas: Option<Keep>,
    pub source: Option<Keep>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keep {
    Count(u32),
    Days(u32),
}

/// Where something is in the policy file: line and column, both counted from 1, the column in
/// characters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

/// One thing wrong with a policy: the field (a path such as `targets[1].kms_key`), the value
/// found there as a message shows it (cut short and escaped), what is wrong with it, and where
/// it is in the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub value: String,
    pub problem: String,
    pub position: Position,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.value.is_empty() {
            write!(f, "{}: {}: {}", self.position, self.field, self.problem)
        } else {
            write!(
                f,
                "{}: {} = {}: {}",
                self.position, self.field, self.value, self.problem
            )
        }
    }
}

/// Why a policy was rejected.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The file is not TOML, or its TOML does not have a policy's shape: a key it does not
    /// know, a key missing, a value of the wrong type. One problem a line, each with its
    /// position and, for the shape, its field.
    #[error("policy file is not valid TOML for a snaprelay policy:\n{0}")]
    Syntax(String),
    /// The shape is right but values are not.
    #[error("policy is invalid:\n{}", list(.0))]
    Invalid(Vec<FieldError>),
}

/// The most problems a message lists: past that, a file broken everywhere would bury the
/// first ones.
const LISTED: usize = 20;

fn list(errors: &[FieldError]) -> String {
    let mut lines: Vec<String> = errors
        .iter()
        .take(LISTED)
        .map(|e| format!("  - {e}"))
        .collect();
    if errors.len() > LISTED {
        lines.push(format!(
            "  ({} more problems not shown)",
            errors.len() - LISTED
        ));
    }
    lines.join("\n")
}

/// How many characters of a value from the file a message shows: every well-formed id, key
/// ARN (75-90 characters) and tag key whole, and still one problem to a line.
const SHOWN: usize = 128;

/// A string from the file as a message shows it: quoted, escaped as Rust's `{:?}` does (so ESC,
/// a newline or a bidi override shows as `\u{1b}`, `\n`, `\u{202e}` and never reaches a
/// terminal raw), and cut after [`SHOWN`] characters, saying how long it is.
fn shown(s: &str) -> String {
    match s.char_indices().nth(SHOWN) {
        None => format!("{s:?}"),
        Some((cut, _)) => format!("{:?}… ({} characters)", &s[..cut], s.chars().count()),
    }
}

/// Unquoted text from the file (a number's digits), cut and escaped like [`shown`].
fn clipped(s: &str) -> String {
    let head: String = s.chars().take(SHOWN).flat_map(char::escape_debug).collect();
    let n = s.chars().count();
    if n > SHOWN {
        format!("{head}… ({n} characters)")
    } else {
        head
    }
}

/// A key as a field path shows it: bare when it is a plain word, else quoted like a value.
fn key_in_path(key: &str) -> String {
    let bare = !key.is_empty()
        && key.len() <= SHOWN
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if bare { key.to_owned() } else { shown(key) }
}

fn join(path: &str, key: &str) -> String {
    let key = key_in_path(key);
    if path.is_empty() {
        key
    } else {
        format!("{path}.{key}")
    }
}

/// A byte range of the policy text, as the TOML parser gives them.
type Span = Range<usize>;

/// Turns byte offsets of the policy text into positions.
struct Lines<'a> {
    text: &'a str,
    /// Where each line starts.
    starts: Vec<usize>,
}

impl<'a> Lines<'a> {
    fn new(text: &'a str) -> Self {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Self { text, starts }
    }

    fn position(&self, offset: usize) -> Position {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        // `starts[0]` is 0, so `line` is at least 1.
        let line = self.starts.partition_point(|&start| start <= offset);
        let start = self.starts[line - 1];
        Position {
            line,
            column: self.text[start..offset].chars().count() + 1,
        }
    }
}

/// Collects every problem, so one run of `plan` shows them all.
struct Problems<'a> {
    lines: Lines<'a>,
    found: Vec<FieldError>,
}

impl Problems<'_> {
    /// A problem with the field at `at`; `value` as a message shows it, or empty.
    fn add(
        &mut self,
        at: &Span,
        field: impl Into<String>,
        value: impl Into<String>,
        problem: impl Into<String>,
    ) {
        let position = self.lines.position(at.start);
        self.found.push(FieldError {
            field: field.into(),
            value: value.into(),
            problem: problem.into(),
            position,
        });
    }
}

/// The TOML parser's complaint. Its own rendering quotes the offending line raw, so only its
/// message is kept, with the position and the offending text, escaped.
fn not_toml(lines: &Lines<'_>, e: &toml::de::Error) -> PolicyError {
    let span = e.span().unwrap_or(0..0);
    let message: String = e
        .message()
        .trim_end()
        .chars()
        .take(200)
        .map(|c| {
            if c.is_control() {
                c.escape_debug().to_string()
            } else {
                c.to_string()
            }
        })
        .collect();
    let found = match lines.text.get(span.clone()) {
        Some(found) if !found.is_empty() => format!(" (at {})", shown(found)),
        _ => String::new(),
    };
    PolicyError::Syntax(format!(
        "  - {}: not TOML: {message}{found}",
        lines.position(span.start)
    ))
}

/// A value of the file and where it is.
#[derive(Default)]
struct At<T> {
    value: T,
    span: Span,
}

/// A number of the file and its text for messages.
struct Number {
    value: f64,
    text: String,
}

/// A whole number of the file: its value if it fits a `u32`, and its text for messages.
struct Count {
    value: Option<u32>,
    text: String,
}

#[derive(Default)]
struct RawPolicy {
    name: At<String>,
    schedule: Option<At<String>>,
    timezone: Option<At<String>>,
    drill_schedule: Option<At<String>>,
    source: RawSource,
    targets: At<Vec<RawTarget>>,
    retention: RawRetention,
    prices: RawPrices,
}

#[derive(Default)]
struct RawPrices {
    snapshot_gb_month: Option<At<Number>>,
    transfer_gb: Option<At<Number>>,
}

#[derive(Default)]
struct RawSource {
    role_arn: Option<At<String>>,
    regions: At<Vec<At<String>>>,
    resources: At<Vec<RawSelection>>,
    reencrypt_keys: Option<At<RawTags>>,
}

struct RawSelection {
    span: Span,
    resource_type: At<String>,
    ids: Option<At<Vec<At<String>>>>,
    tags: Option<At<RawTags>>,
}

/// A tag selector's keys and values, in the order of the keys.
type RawTags = Vec<(At<String>, At<String>)>;

struct RawTarget {
    span: Span,
    account: Option<At<String>>,
    region: At<String>,
    role_arn: Option<At<String>>,
    kms_key: Option<At<String>>,
    staging_kms_key: Option<At<String>>,
    rds_single_step: bool,
    restore: Option<RawRestore>,
}

struct RawRestore {
    subnet: Option<At<String>>,
    security_groups: Option<At<Vec<At<String>>>>,
    db_subnet_group: Option<At<String>>,
}

#[derive(Default)]
struct RawRetention {
    replicas: Option<RawKeep>,
    source: Option<RawKeep>,
}

struct RawKeep {
    span: Span,
    count: Option<At<Count>>,
    days: Option<At<Count>>,
}

const POLICY_KEYS: &[&str] = &[
    "name",
    "schedule",
    "timezone",
    "drill",
    "source",
    "targets",
    "retention",
    "prices",
];
const PRICES_KEYS: &[&str] = &["snapshot_gb_month", "transfer_gb"];
const DRILL_KEYS: &[&str] = &["schedule"];
const SOURCE_KEYS: &[&str] = &["role_arn", "regions", "resources", "reencrypt_keys"];
const SELECTION_KEYS: &[&str] = &["type", "ids", "tags"];
const TARGET_KEYS: &[&str] = &[
    "account",
    "region",
    "role_arn",
    "kms_key",
    "staging_kms_key",
    "rds_single_step",
    "restore",
];
const RESTORE_KEYS: &[&str] = &["subnet", "security_groups", "db_subnet_group"];
const RETENTION_KEYS: &[&str] = &["replicas", "source"];
const KEEP_KEYS: &[&str] = &["count", "days"];

type Value<'i> = Spanned<DeValue<'i>>;

/// A table of the file being read: its path in the policy, where it is, and its entries.
struct Table<'t, 'i> {
    path: String,
    span: Span,
    entries: &'t DeTable<'i>,
}

impl<'t, 'i> Table<'t, 'i> {
    /// `value` as a table that holds only `known` keys: any other key is a problem.
    fn open(
        p: &mut Problems<'_>,
        path: String,
        value: &'t Value<'i>,
        known: &[&str],
    ) -> Option<Self> {
        let DeValue::Table(entries) = value.get_ref() else {
            wrong_type(p, &path, value, "a table");
            return None;
        };
        let table = Table {
            path,
            span: value.span(),
            entries,
        };
        table.deny_unknown(p, known);
        Some(table)
    }

    fn deny_unknown(&self, p: &mut Problems<'_>, known: &[&str]) {
        for key in self.entries.keys() {
            if !known.contains(&key.get_ref().as_ref()) {
                p.add(
                    &key.span(),
                    join(&self.path, key.get_ref()),
                    "",
                    format!("unknown key; this table takes {}", known.join(", ")),
                );
            }
        }
    }

    fn field(&self, key: &str) -> String {
        join(&self.path, key)
    }

    fn get(&self, key: &str) -> Option<&'t Value<'i>> {
        self.entries.get(key)
    }

    fn missing(&self, p: &mut Problems<'_>, key: &str, what: &str) {
        p.add(
            &self.span,
            self.field(key),
            "",
            format!("is required ({what})"),
        );
    }

    fn string(&self, p: &mut Problems<'_>, key: &str) -> Option<At<String>> {
        string(p, &self.field(key), self.get(key)?)
    }

    fn required_string(&self, p: &mut Problems<'_>, key: &str) -> At<String> {
        if self.get(key).is_none() {
            self.missing(p, key, "a string");
        }
        self.string(p, key).unwrap_or_default()
    }

    fn strings(&self, p: &mut Problems<'_>, key: &str) -> Option<At<Vec<At<String>>>> {
        let value = self.get(key)?;
        let field = self.field(key);
        let DeValue::Array(items) = value.get_ref() else {
            wrong_type(p, &field, value, "an array of strings");
            return None;
        };
        let strings = items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| string(p, &format!("{field}[{i}]"), item))
            .collect();
        Some(At {
            value: strings,
            span: value.span(),
        })
    }

    /// A table of strings, in the order of its keys.
    fn string_table(&self, p: &mut Problems<'_>, key: &str) -> Option<At<RawTags>> {
        let value = self.get(key)?;
        let field = self.field(key);
        let DeValue::Table(entries) = value.get_ref() else {
            wrong_type(p, &field, value, "a table of strings (key = \"value\")");
            return None;
        };
        let pairs = entries
            .iter()
            .filter_map(|(k, v)| {
                let v = string(p, &join(&field, k.get_ref()), v)?;
                let k = At {
                    value: k.get_ref().to_string(),
                    span: k.span(),
                };
                Some((k, v))
            })
            .collect();
        Some(At {
            value: pairs,
            span: value.span(),
        })
    }

    fn boolean(&self, p: &mut Problems<'_>, key: &str) -> Option<bool> {
        let value = self.get(key)?;
        match value.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            _ => {
                wrong_type(p, &self.field(key), value, "true or false");
                None
            }
        }
    }

    /// A number (whole or not), with its text for messages; `value` is NaN for a number
    /// that is no `f64`.
    fn number(&self, p: &mut Problems<'_>, key: &str) -> Option<At<Number>> {
        let value = self.get(key)?;
        let n = match value.get_ref() {
            DeValue::Float(f) => f.as_str().replace('_', "").parse::<f64>().ok(),
            DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix())
                .ok()
                .map(|n| n as f64),
            _ => {
                wrong_type(p, &self.field(key), value, "a number");
                return None;
            }
        };
        Some(At {
            value: Number {
                value: n.unwrap_or(f64::NAN),
                text: described(value.get_ref()),
            },
            span: value.span(),
        })
    }

    fn count(&self, p: &mut Problems<'_>, key: &str) -> Option<At<Count>> {
        let value = self.get(key)?;
        match value.get_ref() {
            DeValue::Integer(i) => Some(At {
                value: Count {
                    value: u32::from_str_radix(i.as_str(), i.radix()).ok(),
                    text: clipped(&i.to_string()),
                },
                span: value.span(),
            }),
            _ => {
                wrong_type(p, &self.field(key), value, "a whole number");
                None
            }
        }
    }

    fn table(&self, p: &mut Problems<'_>, key: &str, known: &[&str]) -> Option<Table<'t, 'i>> {
        Table::open(p, self.field(key), self.get(key)?, known)
    }

    /// An array of tables (`[[key]]`); none when the key is absent.
    fn tables(&self, p: &mut Problems<'_>, key: &str, known: &[&str]) -> At<Vec<Table<'t, 'i>>> {
        let Some(value) = self.get(key) else {
            return At {
                value: Vec::new(),
                span: self.span.clone(),
            };
        };
        let field = self.field(key);
        let DeValue::Array(items) = value.get_ref() else {
            wrong_type(
                p,
                &field,
                value,
                &format!("an array of tables ([[{field}]])"),
            );
            return At::default();
        };
        let tables = items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| Table::open(p, format!("{field}[{i}]"), item, known))
            .collect();
        At {
            value: tables,
            span: value.span(),
        }
    }
}

fn string(p: &mut Problems<'_>, field: &str, value: &Value<'_>) -> Option<At<String>> {
    match value.get_ref() {
        DeValue::String(s) => Some(At {
            value: s.to_string(),
            span: value.span(),
        }),
        _ => {
            wrong_type(p, field, value, "a string");
            None
        }
    }
}

fn wrong_type(p: &mut Problems<'_>, field: &str, value: &Value<'_>, expected: &str) {
    let found = value.get_ref();
    let kind = found.type_str();
    let article = if kind.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    p.add(
        &value.span(),
        field,
        described(found),
        format!("must be {expected}, not {article} {kind}"),
    );
}

/// A value of any type as a message shows it.
fn described(value: &DeValue<'_>) -> String {
    match value {
        DeValue::String(s) => shown(s),
        DeValue::Integer(i) => clipped(&i.to_string()),
        DeValue::Float(f) => clipped(f.as_str()),
        DeValue::Boolean(b) => b.to_string(),
        DeValue::Datetime(d) => clipped(&d.to_string()),
        DeValue::Array(_) => "[…]".to_owned(),
        DeValue::Table(_) => "{…}".to_owned(),
    }
}

/// Reads the parsed file into the policy's shape. Every unknown key, missing key and value of
/// the wrong type is a problem; what could not be read is left empty, for the caller stops at
/// those problems.
fn read(p: &mut Problems<'_>, doc: &Spanned<DeTable<'_>>) -> RawPolicy {
    let top = Table {
        path: String::new(),
        span: doc.span(),
        entries: doc.get_ref(),
    };
    top.deny_unknown(p, POLICY_KEYS);
    let name = top.required_string(p, "name");
    if top.get("source").is_none() {
        top.missing(p, "source", "a [source] table");
    }
    let source = top
        .table(p, "source", SOURCE_KEYS)
        .map(|t| read_source(p, &t))
        .unwrap_or_default();
    let targets = top.tables(p, "targets", TARGET_KEYS);
    let targets = At {
        value: targets.value.iter().map(|t| read_target(p, t)).collect(),
        span: targets.span,
    };
    let retention = top
        .table(p, "retention", RETENTION_KEYS)
        .map(|t| RawRetention {
            replicas: read_keep(p, &t, "replicas"),
            source: read_keep(p, &t, "source"),
        })
        .unwrap_or_default();
    let prices = top
        .table(p, "prices", PRICES_KEYS)
        .map(|t| RawPrices {
            snapshot_gb_month: t.number(p, "snapshot_gb_month"),
            transfer_gb: t.number(p, "transfer_gb"),
        })
        .unwrap_or_default();
    RawPolicy {
        name,
        schedule: top.string(p, "schedule"),
        timezone: top.string(p, "timezone"),
        drill_schedule: top
            .table(p, "drill", DRILL_KEYS)
            .and_then(|t| t.string(p, "schedule")),
        source,
        targets,
        retention,
        prices,
    }
}

fn read_source(p: &mut Problems<'_>, t: &Table<'_, '_>) -> RawSource {
    if t.get("regions").is_none() {
        t.missing(p, "regions", "an array of Regions");
    }
    let resources = t.tables(p, "resources", SELECTION_KEYS);
    RawSource {
        role_arn: t.string(p, "role_arn"),
        regions: t.strings(p, "regions").unwrap_or_default(),
        reencrypt_keys: t.string_table(p, "reencrypt_keys"),
        resources: At {
            value: resources
                .value
                .iter()
                .map(|s| RawSelection {
                    span: s.span.clone(),
                    resource_type: s.required_string(p, "type"),
                    ids: s.strings(p, "ids"),
                    tags: s.string_table(p, "tags"),
                })
                .collect(),
            span: resources.span,
        },
    }
}

fn read_target(p: &mut Problems<'_>, t: &Table<'_, '_>) -> RawTarget {
    RawTarget {
        span: t.span.clone(),
        account: t.string(p, "account"),
        region: t.required_string(p, "region"),
        role_arn: t.string(p, "role_arn"),
        kms_key: t.string(p, "kms_key"),
        staging_kms_key: t.string(p, "staging_kms_key"),
        rds_single_step: t.boolean(p, "rds_single_step").unwrap_or(false),
        restore: t.table(p, "restore", RESTORE_KEYS).map(|r| RawRestore {
            subnet: r.string(p, "subnet"),
            security_groups: r.strings(p, "security_groups"),
            db_subnet_group: r.string(p, "db_subnet_group"),
        }),
    }
}

fn read_keep(p: &mut Problems<'_>, t: &Table<'_, '_>, key: &str) -> Option<RawKeep> {
    let keep = t.table(p, key, KEEP_KEYS)?;
    Some(RawKeep {
        span: keep.span.clone(),
        count: keep.count(p, "count"),
        days: keep.count(p, "days"),
    })
}

/// The longest policy name: it goes into tags, snapshot descriptions and (cleaned) RDS snapshot
/// identifiers, which are at most 255 characters with the DB identifier and session id.
const NAME_MAX: usize = 64;

const KEY_FORMS: &str =
    "is not a KMS key ARN, alias ARN, key id or alias/NAME (an alias at most 256 characters)";

impl Policy {
    /// Parses and validates a policy file's text.
    pub fn from_toml(text: &str) -> Result<Policy, PolicyError> {
        let lines = Lines::new(text);
        let doc = DeTable::parse(text).map_err(|e| not_toml(&lines, &e))?;
        let mut p = Problems {
            lines,
            found: Vec::new(),
        };
        let raw = read(&mut p, &doc);
        if !p.found.is_empty() {
            return Err(PolicyError::Syntax(list(&p.found)));
        }
        validate(p, raw)
    }
}

fn validate(mut p: Problems<'_>, raw: RawPolicy) -> Result<Policy, PolicyError> {
    check_name(&mut p, &raw.name);
    let source_role = parse_role(&mut p, "source.role_arn", raw.source.role_arn.as_ref());
    check_source_regions(&mut p, &raw.source.regions);
    let selections = selections(&mut p, &raw.source.resources);
    let source_account = source_role.as_ref().map(RoleArn::account);
    let mut seen_targets: BTreeMap<(Option<AccountId>, String), usize> = BTreeMap::new();
    let targets: Vec<Target> = raw
        .targets
        .value
        .iter()
        .enumerate()
        .map(|(i, t)| {
            target(
                &mut p,
                i,
                t,
                source_account,
                &raw.source.regions,
                &mut seen_targets,
            )
        })
        .collect();
    if raw.targets.value.is_empty() {
        p.add(
            &raw.targets.span,
            "targets",
            "[]",
            "name at least one target",
        );
    }
    let retention = Retention {
        replicas: parse_keep(
            &mut p,
            "retention.replicas",
            raw.retention.replicas.as_ref(),
        ),
        source: parse_keep(&mut p, "retention.source", raw.retention.source.as_ref()),
    };
    let (schedule, drill_schedule) = schedules(&mut p, &raw);
    let prices = prices(&mut p, &raw.prices);
    let reencrypt_keys = reencrypt_keys(&mut p, &raw.source);
    if !p.found.is_empty() {
        return Err(PolicyError::Invalid(p.found));
    }
    Ok(Policy {
        name: raw.name.value,
        schedule,
        drill_schedule,
        timezone: raw.timezone.map_or_else(|| "UTC".to_owned(), |tz| tz.value),
        source: Source {
            role_arn: source_role,
            regions: raw
                .source
                .regions
                .value
                .into_iter()
                .map(|r| r.value)
                .collect(),
            resources: selections,
            reencrypt_keys,
        },
        targets,
        retention,
        prices,
    })
}

/// `[source] reencrypt_keys`: each Region one of `source.regions`, each key a customer
/// managed key of that Region (an ARN names its Region; an AWS managed alias is refused: the
/// point is to leave `aws/ebs` and `aws/rds` behind).
fn reencrypt_keys(p: &mut Problems<'_>, source: &RawSource) -> BTreeMap<String, KeyRef> {
    let mut keys = BTreeMap::new();
    let Some(table) = &source.reencrypt_keys else {
        return keys;
    };
    for (region, key) in &table.value {
        let field = format!("source.reencrypt_keys.{}", region.value);
        if !source.regions.value.iter().any(|r| r.value == region.value) {
            p.add(
                &region.span,
                &field,
                shown(&key.value),
                format!(
                    "names Region {:?}, which is not one of source.regions: a re-encrypt key \
                     is a key of a source Region",
                    region.value
                ),
            );
            continue;
        }
        let Some(parsed) = KeyRef::parse(&key.value) else {
            p.add(&key.span, &field, shown(&key.value), KEY_FORMS);
            continue;
        };
        if let Some(key_region) = parsed.region()
            && key_region != region.value
        {
            p.add(
                &key.span,
                &field,
                shown(&key.value),
                format!(
                    "is a key in {key_region}, but it re-encrypts snapshots in {}; KMS keys are \
                     regional",
                    region.value
                ),
            );
            continue;
        }
        if let KeyRef::AliasName(a) = &parsed
            && a.starts_with("alias/aws/")
        {
            p.add(
                &key.span,
                &field,
                shown(&key.value),
                "is an AWS managed key; a re-encrypt key must be a customer managed key of the \
                 source account whose key policy admits the target accounts",
            );
            continue;
        }
        keys.insert(region.value.clone(), parsed);
    }
    keys
}

/// `[prices]`, each missing price at its default; a price must be a finite number, 0 or more.
fn prices(p: &mut Problems<'_>, raw: &RawPrices) -> Prices {
    let defaults = Prices::default();
    let mut one = |field: &str, at: Option<&At<Number>>, default: f64| match at {
        None => default,
        Some(at) if at.value.value.is_finite() && at.value.value >= 0.0 => at.value.value,
        Some(at) => {
            p.add(
                &at.span,
                field,
                at.value.text.clone(),
                "must be a price in USD: a finite number, 0 or more",
            );
            default
        }
    };
    Prices {
        snapshot_gb_month: one(
            "prices.snapshot_gb_month",
            raw.snapshot_gb_month.as_ref(),
            defaults.snapshot_gb_month,
        ),
        transfer_gb: one(
            "prices.transfer_gb",
            raw.transfer_gb.as_ref(),
            defaults.transfer_gb,
        ),
    }
}

/// `schedule` and `[drill] schedule`, each in `timezone` (UTC when it is not given).
fn schedules(p: &mut Problems<'_>, raw: &RawPolicy) -> (Option<Schedule>, Option<Schedule>) {
    let zone = match &raw.timezone {
        None => Some("UTC".to_owned()),
        Some(tz) => match crate::schedule::time_zone(&tz.value) {
            Ok(_) => Some(tz.value.clone()),
            Err(e) => {
                p.add(&tz.span, "timezone", shown(&tz.value), e.to_string());
                None
            }
        },
    };
    let mut one = |field: &str, at: Option<&At<String>>| {
        let at = at?;
        let zone = zone.as_deref()?;
        match Schedule::parse(&at.value, zone) {
            Ok(s) => Some(s),
            Err(e) => {
                p.add(&at.span, field, shown(&at.value), e.to_string());
                None
            }
        }
    };
    (
        one("schedule", raw.schedule.as_ref()),
        one("drill.schedule", raw.drill_schedule.as_ref()),
    )
}

/// The policy's name names its lock, its tags and its snapshots: a plain word.
fn check_name(p: &mut Problems<'_>, name: &At<String>) {
    let name_ok = (1..=NAME_MAX).contains(&name.value.len())
        && name
            .value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !name_ok {
        p.add(
            &name.span,
            "name",
            shown(&name.value),
            format!("must be 1-{NAME_MAX} letters, digits, '-' or '_'"),
        );
    }
}

fn check_source_regions(p: &mut Problems<'_>, regions: &At<Vec<At<String>>>) {
    if regions.value.is_empty() {
        p.add(
            &regions.span,
            "source.regions",
            "[]",
            "name at least one Region",
        );
    }
    let mut seen = BTreeSet::new();
    for (i, r) in regions.value.iter().enumerate() {
        let field = format!("source.regions[{i}]");
        if !is_region(&r.value) {
            p.add(&r.span, field, shown(&r.value), "is not an AWS Region name");
        } else if !seen.insert(r.value.as_str()) {
            p.add(&r.span, field, shown(&r.value), "is listed twice");
        }
    }
}

/// What each `[[source.resources]]` selects.
fn selections(p: &mut Problems<'_>, resources: &At<Vec<RawSelection>>) -> Vec<Selection> {
    if resources.value.is_empty() {
        p.add(
            &resources.span,
            "source.resources",
            "[]",
            "select at least one resource (ids or tags)",
        );
    }
    let mut selections = Vec::new();
    for (i, sel) in resources.value.iter().enumerate() {
        let field = format!("source.resources[{i}]");
        let resource_type = match sel.resource_type.value.as_str() {
            "ec2" => ResourceType::Ec2,
            "rds" => ResourceType::Rds,
            "aurora" => ResourceType::Aurora,
            other => {
                p.add(
                    &sel.resource_type.span,
                    format!("{field}.type"),
                    shown(other),
                    "must be \"ec2\", \"rds\" or \"aurora\"",
                );
                continue;
            }
        };
        let selector = match (&sel.ids, &sel.tags) {
            (Some(_), Some(_)) => {
                p.add(&sel.span, &field, "", "give either ids or tags, not both");
                continue;
            }
            (None, None) => {
                p.add(
                    &sel.span,
                    &field,
                    "",
                    "give ids or tags to select resources",
                );
                continue;
            }
            (Some(ids), None) => select_ids(p, &field, resource_type, ids),
            (None, Some(tags)) => select_tags(p, &field, tags),
        };
        selections.push(Selection {
            resource_type,
            selector,
        });
    }
    selections
}

/// One `[[targets]]` entry: each field checked, and the target against the others and the
/// source.
fn target(
    p: &mut Problems<'_>,
    i: usize,
    t: &RawTarget,
    source_account: Option<&AccountId>,
    source_regions: &At<Vec<At<String>>>,
    seen_targets: &mut BTreeMap<(Option<AccountId>, String), usize>,
) -> Target {
    let field = format!("targets[{i}]");
    let account = t.account.as_ref().and_then(|a| {
        let parsed = AccountId::parse(&a.value);
        if parsed.is_none() {
            p.add(
                &a.span,
                format!("{field}.account"),
                shown(&a.value),
                "is not a 12-digit AWS account id",
            );
        }
        parsed
    });
    let region = &t.region.value;
    let region_ok = is_region(region);
    if !region_ok {
        p.add(
            &t.region.span,
            format!("{field}.region"),
            shown(region),
            "is not an AWS Region name",
        );
    }
    let role_arn = parse_role(p, &format!("{field}.role_arn"), t.role_arn.as_ref());
    if let (Some(acc), Some(role), Some(at)) = (&account, &role_arn, &t.role_arn)
        && role.account() != acc
    {
        p.add(
            &at.span,
            format!("{field}.role_arn"),
            shown(role.as_str()),
            format!(
                "is a role of account {}, but the target account is {acc}",
                role.account()
            ),
        );
    }
    let kms_key = t.kms_key.as_ref().and_then(|k| {
        let field = format!("{field}.kms_key");
        let parsed = KeyRef::parse(&k.value);
        match &parsed {
            None => p.add(&k.span, field, shown(&k.value), KEY_FORMS),
            Some(r) => {
                // KMS keys are regional: a copy's KmsKeyId must be a key in the
                // destination Region.
                if let Some(key_region) = r.region()
                    && region_ok
                    && key_region != region
                {
                    p.add(
                        &k.span,
                        &field,
                        shown(&k.value),
                        format!(
                            "is a key in {key_region}, but replicas of this target are made in {region}; \
                             KMS keys are regional (use the key's replica in {region}, or a key of that Region)"
                        ),
                    );
                }
                if let KeyRef::AliasName(a) = r
                    && a.starts_with("alias/aws/")
                {
                    p.add(
                        &k.span,
                        &field,
                        shown(&k.value),
                        "is an AWS managed key; replicas must be encrypted with a customer managed key",
                    );
                }
            }
        }
        parsed
    });
    let declared = declared_account(account.as_ref(), role_arn.as_ref()).cloned();
    // Only a valid Region is echoed bare; an invalid one was reported above.
    if region_ok {
        let place = format!(
            "{} {region}",
            declared.as_ref().map_or("(source account)", |a| a.as_str())
        );
        if let Some(first) = seen_targets.insert((declared.clone(), region.clone()), i) {
            p.add(
                &t.span,
                &field,
                &place,
                format!("duplicates targets[{first}]"),
            );
        }
        // A target in the source account and one of the source Regions would copy
        // snapshots onto themselves: that is no replica.
        let in_source_account = match (&declared, source_account) {
            (None, _) => true,
            (Some(a), Some(s)) => a == s,
            (Some(_), None) => false,
        };
        if in_source_account && source_regions.value.iter().any(|r| &r.value == region) {
            p.add(
                &t.span,
                &field,
                &place,
                "is the source itself (same account and Region); a replica must be in another Region or account",
            );
        }
    }
    let staging_kms_key = t.staging_kms_key.as_ref().and_then(|k| {
        let parsed = KeyRef::parse(&k.value);
        if parsed.is_none() {
            p.add(
                &k.span,
                format!("{field}.staging_kms_key"),
                shown(&k.value),
                KEY_FORMS,
            );
        }
        parsed
    });
    Target {
        account,
        region: region.clone(),
        role_arn,
        kms_key,
        staging_kms_key,
        rds_single_step: t.rds_single_step,
        restore: t
            .restore
            .as_ref()
            .map(|r| restore_defaults(p, &format!("{field}.restore"), r))
            .unwrap_or_default(),
    }
}

/// A target's `restore` table, each id checked for its form (whether it exists in the target
/// is for `restore` to find out: it is looked up there, with the target's role).
fn restore_defaults(p: &mut Problems<'_>, field: &str, r: &RawRestore) -> RestoreDefaults {
    let ec2_id = |p: &mut Problems<'_>, path: String, at: &At<String>, prefix: &str| {
        if ids::is_ec2_id(&at.value, prefix) {
            Some(at.value.clone())
        } else {
            p.add(
                &at.span,
                path,
                shown(&at.value),
                format!("is not {prefix}- followed by 8 or 17 lowercase hex digits"),
            );
            None
        }
    };
    let subnet = r
        .subnet
        .as_ref()
        .and_then(|s| ec2_id(p, format!("{field}.subnet"), s, "subnet"));
    let security_groups = r
        .security_groups
        .iter()
        .flat_map(|groups| groups.value.iter().enumerate())
        .filter_map(|(i, g)| ec2_id(p, format!("{field}.security_groups[{i}]"), g, "sg"))
        .collect();
    let db_subnet_group = r.db_subnet_group.as_ref().and_then(|g| {
        if ids::is_db_subnet_group(&g.value) && g.value != "default" {
            Some(g.value.clone())
        } else {
            p.add(
                &g.span,
                format!("{field}.db_subnet_group"),
                shown(&g.value),
                "is not a DB subnet group name (letters, digits, periods, underscores, spaces \
                 or hyphens, at most 255)",
            );
            None
        }
    });
    RestoreDefaults {
        subnet,
        security_groups,
        db_subnet_group,
    }
}

fn select_ids(
    p: &mut Problems<'_>,
    field: &str,
    resource_type: ResourceType,
    ids: &At<Vec<At<String>>>,
) -> Selector {
    if ids.value.is_empty() {
        p.add(
            &ids.span,
            format!("{field}.ids"),
            "[]",
            "select at least one id",
        );
    }
    let mut seen = BTreeSet::new();
    for (j, id) in ids.value.iter().enumerate() {
        let problem = match resource_type {
            ResourceType::Ec2 if !is_instance_id(&id.value) => Some(
                "is not an EC2 instance id (\"i-\" and 8 or 17 lowercase hex digits, as \
                 i-0123456789abcdef0)",
            ),
            ResourceType::Rds if !is_db_identifier(&id.value, DB_INSTANCE_ID_MAX) => Some(
                "is not a DB instance identifier (1-63 letters, digits or hyphens, starting \
                 with a letter, no double or trailing hyphen)",
            ),
            // DB cluster identifiers follow the DB instance rules (1-63 characters:
            // API_CreateDBCluster.html).
            ResourceType::Aurora if !is_db_identifier(&id.value, DB_INSTANCE_ID_MAX) => Some(
                "is not a DB cluster identifier (1-63 letters, digits or hyphens, starting \
                 with a letter, no double or trailing hyphen)",
            ),
            _ => None,
        };
        let id_field = format!("{field}.ids[{j}]");
        if let Some(problem) = problem {
            p.add(&id.span, id_field, shown(&id.value), problem);
        } else if !seen.insert(id.value.as_str()) {
            p.add(&id.span, id_field, shown(&id.value), "is listed twice");
        }
    }
    Selector::Ids(ids.value.iter().map(|id| id.value.clone()).collect())
}

fn select_tags(p: &mut Problems<'_>, field: &str, tags: &At<RawTags>) -> Selector {
    let tags_field = format!("{field}.tags");
    if tags.value.is_empty() {
        p.add(&tags.span, &tags_field, "{}", "give at least one tag");
    }
    for (key, value) in &tags.value {
        // A selector only reads tags: the `aws:` ones AWS writes (aws:cloudformation:stack-name)
        // may be selected by, though nobody may write them.
        if !is_tag_key(&key.value) {
            let problem = format!(
                "is a tag key of {} characters; AWS tag keys are 1-{TAG_KEY_MAX} characters",
                key.value.chars().count()
            );
            p.add(&key.span, &tags_field, shown(&key.value), problem);
        }
        if !is_tag_value(&value.value) {
            p.add(
                &value.span,
                join(&tags_field, &key.value),
                shown(&value.value),
                format!(
                    "is a tag value of {} characters; AWS tag values are at most {TAG_VALUE_MAX} characters",
                    value.value.chars().count()
                ),
            );
        }
    }
    Selector::Tags(
        tags.value
            .iter()
            .map(|(k, v)| (k.value.clone(), v.value.clone()))
            .collect(),
    )
}

fn parse_role(p: &mut Problems<'_>, field: &str, value: Option<&At<String>>) -> Option<RoleArn> {
    let v = value?;
    let parsed = RoleArn::parse(&v.value);
    if parsed.is_none() {
        p.add(
            &v.span,
            field,
            shown(&v.value),
            "is not an IAM role ARN (arn:aws:iam::123456789012:role/NAME; NAME at most 64 \
             characters, a path before it at most 512)",
        );
    }
    parsed
}

fn parse_keep(p: &mut Problems<'_>, field: &str, keep: Option<&RawKeep>) -> Option<Keep> {
    let k = keep?;
    let check = |p: &mut Problems<'_>, name: &str, n: &At<Count>| -> Option<u32> {
        match n.value.value {
            Some(v) if v >= 1 => Some(v),
            _ => {
                p.add(
                    &n.span,
                    format!("{field}.{name}"),
                    &n.value.text,
                    "must be a whole number from 1 to 4294967295",
                );
                None
            }
        }
    };
    match (&k.count, &k.days) {
        (Some(n), None) => check(p, "count", n).map(Keep::Count),
        (None, Some(n)) => check(p, "days", n).map(Keep::Days),
        _ => {
            p.add(&k.span, field, "", "give exactly one of count or days");
            None
        }
    }
}

#[cfg(test)]
mod tests;
