//! The policy file (SPEC section 5): what to protect, where its replicas go, how long they are
//! kept. Parsing is strict: an unknown key, a malformed id or an impossible combination is an
//! error that names the field and the value, found before anything touches AWS.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Deserialize;

use crate::ids::{AccountId, KeyRef, RoleArn, is_region};

/// A validated policy.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    pub name: String,
    pub source: Source,
    pub targets: Vec<Target>,
    pub retention: Retention,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Source {
    /// The role assumed in the source account; `None` means the ambient credentials.
    pub role_arn: Option<RoleArn>,
    pub regions: Vec<String>,
    pub resources: Vec<Selection>,
}

pub use crate::model::ResourceType;

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

/// One thing wrong with a policy: the field (a path such as `targets[1].kms_key`), the value
/// found there, and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub value: String,
    pub problem: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.value.is_empty() {
            write!(f, "{}: {}", self.field, self.problem)
        } else {
            write!(f, "{} = {}: {}", self.field, self.value, self.problem)
        }
    }
}

/// Why a policy was rejected.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("policy file is not valid TOML for a snaprelay policy:\n{0}")]
    Syntax(String),
    #[error("policy is invalid:\n{}", list(.0))]
    Invalid(Vec<FieldError>),
}

fn list(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(|e| format!("  - {e}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    name: String,
    source: RawSource,
    #[serde(default)]
    targets: Vec<RawTarget>,
    #[serde(default)]
    retention: RawRetention,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    role_arn: Option<String>,
    regions: Vec<String>,
    #[serde(default)]
    resources: Vec<RawSelection>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSelection {
    #[serde(rename = "type")]
    resource_type: String,
    ids: Option<Vec<String>>,
    tags: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    account: Option<String>,
    region: String,
    role_arn: Option<String>,
    kms_key: Option<String>,
    staging_kms_key: Option<String>,
    #[serde(default)]
    rds_single_step: bool,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRetention {
    replicas: Option<RawKeep>,
    source: Option<RawKeep>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKeep {
    count: Option<i64>,
    days: Option<i64>,
}

/// Collects every problem, so one run of `plan` shows them all.
#[derive(Default)]
struct Problems(Vec<FieldError>);

impl Problems {
    fn add(
        &mut self,
        field: impl Into<String>,
        value: impl fmt::Display,
        problem: impl Into<String>,
    ) {
        self.0.push(FieldError {
            field: field.into(),
            value: format!("{value}"),
            problem: problem.into(),
        });
    }

    fn quoted(s: &str) -> String {
        format!("{s:?}")
    }
}

impl Policy {
    /// Parses and validates a policy file's text.
    pub fn from_toml(text: &str) -> Result<Policy, PolicyError> {
        let raw: RawPolicy = toml::from_str(text)
            .map_err(|e| PolicyError::Syntax(e.to_string().trim_end().to_owned()))?;
        let mut p = Problems::default();
        let q = Problems::quoted;

        // Tag values are limited to 256 characters and the name ends up in snapshot ids and
        // identifiers, so keep it to a safe alphabet.
        let name_ok = !raw.name.is_empty()
            && raw.name.len() <= 64
            && raw
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !name_ok {
            p.add(
                "name",
                q(&raw.name),
                "must be 1-64 letters, digits, '-' or '_'",
            );
        }

        let source_role = parse_role(&mut p, "source.role_arn", raw.source.role_arn.as_deref());
        if raw.source.regions.is_empty() {
            p.add("source.regions", "[]", "name at least one Region");
        }
        let mut seen = BTreeSet::new();
        for (i, r) in raw.source.regions.iter().enumerate() {
            if !is_region(r) {
                p.add(
                    format!("source.regions[{i}]"),
                    q(r),
                    "is not an AWS Region name",
                );
            } else if !seen.insert(r.as_str()) {
                p.add(format!("source.regions[{i}]"), q(r), "is listed twice");
            }
        }

        if raw.source.resources.is_empty() {
            p.add(
                "source.resources",
                "[]",
                "select at least one resource (ids or tags)",
            );
        }
        let mut resources = Vec::new();
        for (i, sel) in raw.source.resources.iter().enumerate() {
            let field = format!("source.resources[{i}]");
            let resource_type = match sel.resource_type.as_str() {
                "ec2" => ResourceType::Ec2,
                "rds" => ResourceType::Rds,
                other => {
                    p.add(
                        format!("{field}.type"),
                        q(other),
                        "must be \"ec2\" or \"rds\"",
                    );
                    continue;
                }
            };
            let selector = match (&sel.ids, &sel.tags) {
                (Some(_), Some(_)) => {
                    p.add(&field, "", "give either ids or tags, not both");
                    continue;
                }
                (None, None) => {
                    p.add(&field, "", "give ids or tags to select resources");
                    continue;
                }
                (Some(ids), None) => {
                    if ids.is_empty() {
                        p.add(format!("{field}.ids"), "[]", "select at least one id");
                    }
                    let mut seen = BTreeSet::new();
                    for (j, id) in ids.iter().enumerate() {
                        let problem = match resource_type {
                            ResourceType::Ec2 if !is_instance_id(id) => {
                                Some("is not an EC2 instance id (i-0123456789abcdef0)")
                            }
                            ResourceType::Rds if !is_db_identifier(id, 63) => Some(
                                "is not a DB instance identifier (1-63 letters, digits or \
                                 hyphens, starting with a letter, no double or trailing hyphen)",
                            ),
                            _ => None,
                        };
                        if let Some(problem) = problem {
                            p.add(format!("{field}.ids[{j}]"), q(id), problem);
                        } else if !seen.insert(id) {
                            p.add(format!("{field}.ids[{j}]"), q(id), "is listed twice");
                        }
                    }
                    Selector::Ids(ids.clone())
                }
                (None, Some(tags)) => {
                    if tags.is_empty() {
                        p.add(format!("{field}.tags"), "{}", "give at least one tag");
                    }
                    for k in tags.keys() {
                        if k.is_empty() || k.len() > 128 {
                            p.add(
                                format!("{field}.tags"),
                                q(k),
                                "tag keys are 1-128 characters",
                            );
                        }
                    }
                    Selector::Tags(tags.clone())
                }
            };
            resources.push(Selection {
                resource_type,
                selector,
            });
        }

        let source_account = source_role.as_ref().map(RoleArn::account);
        let mut targets = Vec::new();
        let mut seen_targets: BTreeMap<(Option<AccountId>, String), usize> = BTreeMap::new();
        for (i, t) in raw.targets.iter().enumerate() {
            let field = format!("targets[{i}]");
            let account = t.account.as_deref().and_then(|a| {
                let parsed = AccountId::parse(a);
                if parsed.is_none() {
                    p.add(
                        format!("{field}.account"),
                        q(a),
                        "is not a 12-digit AWS account id",
                    );
                }
                parsed
            });
            if !is_region(&t.region) {
                p.add(
                    format!("{field}.region"),
                    q(&t.region),
                    "is not an AWS Region name",
                );
            }
            let role_arn = parse_role(&mut p, &format!("{field}.role_arn"), t.role_arn.as_deref());
            if let (Some(acc), Some(role)) = (&account, &role_arn)
                && role.account() != acc
            {
                p.add(
                    format!("{field}.role_arn"),
                    q(role.as_str()),
                    format!(
                        "is a role of account {}, but the target account is {acc}",
                        role.account()
                    ),
                );
            }
            let kms_key = t.kms_key.as_deref().and_then(|k| {
                let parsed = KeyRef::parse(k);
                match &parsed {
                    None => p.add(
                        format!("{field}.kms_key"),
                        q(k),
                        "is not a KMS key ARN, alias ARN, key id or alias/NAME",
                    ),
                    Some(r) => {
                        // KMS keys are regional: a copy's KmsKeyId must be a key in the
                        // destination Region.
                        if let Some(region) = r.region()
                            && region != t.region
                        {
                            p.add(
                                format!("{field}.kms_key"),
                                q(k),
                                format!(
                                    "is a key in {region}, but replicas of this target are made in {}; \
                                     KMS keys are regional (use the key's replica in {}, or a key of that Region)",
                                    t.region, t.region
                                ),
                            );
                        }
                        if let KeyRef::AliasName(a) = r
                            && a.starts_with("alias/aws/")
                        {
                            p.add(
                                format!("{field}.kms_key"),
                                q(k),
                                "is an AWS managed key; replicas must be encrypted with a customer managed key",
                            );
                        }
                    }
                }
                parsed
            });
            let declared = declared_account(account.as_ref(), role_arn.as_ref()).cloned();
            let key = (declared.clone(), t.region.clone());
            if let Some(first) = seen_targets.insert(key, i) {
                p.add(
                    &field,
                    format!(
                        "{} {}",
                        declared.as_ref().map_or("(source account)", |a| a.as_str()),
                        t.region
                    ),
                    format!("duplicates targets[{first}]"),
                );
            }
            // A target in the source account and one of the source Regions would copy snapshots
            // onto themselves: that is no replica.
            let in_source_account = match (&declared, source_account) {
                (None, _) => true,
                (Some(a), Some(s)) => a == s,
                (Some(_), None) => false,
            };
            if in_source_account && raw.source.regions.contains(&t.region) {
                p.add(
                    &field,
                    format!("{} {}", declared.as_ref().map_or("(source account)", |a| a.as_str()), t.region),
                    "is the source itself (same account and Region); a replica must be in another Region or account",
                );
            }
            let staging_kms_key = t.staging_kms_key.as_deref().and_then(|k| {
                let parsed = KeyRef::parse(k);
                if parsed.is_none() {
                    p.add(
                        format!("{field}.staging_kms_key"),
                        q(k),
                        "is not a KMS key ARN, alias ARN, key id or alias/NAME",
                    );
                }
                parsed
            });
            targets.push(Target {
                account,
                region: t.region.clone(),
                role_arn,
                kms_key,
                staging_kms_key,
                rds_single_step: t.rds_single_step,
            });
        }
        if raw.targets.is_empty() {
            p.add("targets", "[]", "name at least one target");
        }

        let retention = Retention {
            replicas: parse_keep(
                &mut p,
                "retention.replicas",
                raw.retention.replicas.as_ref(),
            ),
            source: parse_keep(&mut p, "retention.source", raw.retention.source.as_ref()),
        };

        if !p.0.is_empty() {
            return Err(PolicyError::Invalid(p.0));
        }
        Ok(Policy {
            name: raw.name,
            source: Source {
                role_arn: source_role,
                regions: raw.source.regions,
                resources,
            },
            targets,
            retention,
        })
    }
}

fn parse_role(p: &mut Problems, field: &str, value: Option<&str>) -> Option<RoleArn> {
    let v = value?;
    let parsed = RoleArn::parse(v);
    if parsed.is_none() {
        p.add(
            field,
            Problems::quoted(v),
            "is not an IAM role ARN (arn:aws:iam::123456789012:role/NAME)",
        );
    }
    parsed
}

fn parse_keep(p: &mut Problems, field: &str, keep: Option<&RawKeep>) -> Option<Keep> {
    let k = keep?;
    let check = |p: &mut Problems, name: &str, n: i64| -> Option<u32> {
        match u32::try_from(n) {
            Ok(v) if v >= 1 => Some(v),
            _ => {
                p.add(
                    format!("{field}.{name}"),
                    n,
                    "must be a whole number from 1 to 4294967295",
                );
                None
            }
        }
    };
    match (k.count, k.days) {
        (Some(n), None) => check(p, "count", n).map(Keep::Count),
        (None, Some(n)) => check(p, "days", n).map(Keep::Days),
        _ => {
            p.add(field, "", "give exactly one of count or days");
            None
        }
    }
}

/// RDS identifier rules (DB instances: 63 characters, DB snapshots: 255): letters, digits and
/// hyphens, starting with a letter, with no two hyphens in a row and no hyphen at the end.
/// https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/CHAP_Limits.html#RDS_Limits.Constraints
pub fn is_db_identifier(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.starts_with(|c: char| c.is_ascii_alphabetic())
        && !s.ends_with('-')
        && !s.contains("--")
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// `i-` followed by 8 or 17 hex digits.
pub fn is_instance_id(s: &str) -> bool {
    s.strip_prefix("i-").is_some_and(|h| {
        (h.len() == 8 || h.len() == 17)
            && h.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    })
}

#[cfg(test)]
mod tests;
