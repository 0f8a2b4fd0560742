//! Property tests of the policy parser (issue "Every surface an operator touches", items 4, 10
//! and 11). Whatever the text, `Policy::from_toml` answers and never panics; every error names a
//! field path, or says the file is not TOML, at a line and column that exist in the file; and no
//! echoed input reaches the terminal raw or whole.
//!
//! The texts are random strings, TOML-like token soup, and edits of a valid policy: lines
//! deleted, duplicated, replaced or inserted, values changed to other types, datetimes, huge
//! strings, control characters and deep nesting. Nothing is written to disk (no regression
//! files), and the cases are capped to keep the run to a few seconds.

use proptest::prelude::*;
use proptest::sample::Index;
use snaprelay_core::policy::{Policy, PolicyError};

const VALID: &str = r#"name = "nightly-dr"
[source]
role_arn = "arn:aws:iam::111111111111:role/snaprelay-source"
regions = ["us-east-1"]
[[source.resources]]
type = "ec2"
ids = ["i-0123456789abcdef0"]
[[source.resources]]
type = "rds"
tags = { backup = "gold" }
[[targets]]
account = "222222222222"
region = "eu-west-1"
role_arn = "arn:aws:iam::222222222222:role/snaprelay-target"
kms_key = "arn:aws:kms:eu-west-1:222222222222:key/1234abcd-12ab-34cd-56ef-1234567890ab"
staging_kms_key = "alias/staging"
rds_single_step = false
[retention]
replicas = { count = 7 }
source = { days = 2 }
"#;

/// The longest line an error message may have: a path with one key from the file and a value,
/// each cut to 128 characters that escaping may make up to 10 times longer, and the problem.
const LONGEST_LINE: usize = 3000;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 2000,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// The contract every answer of the parser keeps.
fn check(text: &str) -> Result<(), TestCaseError> {
    let Err(error) = Policy::from_toml(text) else {
        return Ok(());
    };
    let is_toml = toml::de::DeTable::parse(text).is_ok();
    let file_lines: Vec<&str> = text.split('\n').collect();
    let exists = |line: usize, column: usize| {
        line >= 1
            && column >= 1
            && file_lines
                .get(line - 1)
                .is_some_and(|l| column <= l.chars().count() + 1)
    };

    let message = error.to_string();
    prop_assert!(
        !message.chars().any(|c| c.is_control() && c != '\n'),
        "raw control character in {message:?}"
    );
    prop_assert!(!message.contains("$__toml"), "{message}");
    for line in message.lines() {
        prop_assert!(line.chars().count() <= LONGEST_LINE, "{line}");
    }

    match &error {
        PolicyError::Invalid(errors) => {
            prop_assert!(is_toml);
            prop_assert!(!errors.is_empty());
            for e in errors {
                prop_assert!(!e.field.is_empty(), "{e:?}");
                prop_assert!(
                    exists(e.position.line, e.position.column),
                    "{e} is not in the file"
                );
            }
        }
        PolicyError::Syntax(list) => {
            let entries: Vec<&str> = list
                .lines()
                .filter_map(|l| l.strip_prefix("  - "))
                .collect();
            prop_assert!(!entries.is_empty(), "{list}");
            for entry in &entries {
                let (line, column, rest) = position(entry)
                    .ok_or_else(|| TestCaseError::fail(format!("no position: {entry}")))?;
                prop_assert!(exists(line, column), "{entry} is not in the file");
                if let Some(problem) = rest.strip_prefix("not TOML: ") {
                    prop_assert!(!is_toml, "{entry}");
                    prop_assert!(!problem.is_empty());
                } else {
                    prop_assert!(is_toml, "{entry}");
                    let field = rest.split([':', '=']).next().unwrap_or_default().trim();
                    prop_assert!(!field.is_empty(), "no field in {entry}");
                }
            }
            if !is_toml {
                prop_assert_eq!(entries.len(), 1);
            }
        }
    }
    Ok(())
}

/// `line L, column C: REST` split up.
fn position(entry: &str) -> Option<(usize, usize, &str)> {
    let rest = entry.strip_prefix("line ")?;
    let (line, rest) = rest.split_once(", column ")?;
    let (column, rest) = rest.split_once(": ")?;
    Some((line.parse().ok()?, column.parse().ok()?, rest))
}

/// A TOML value of any type, or a string no policy field should take.
fn nasty_value() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "1979-05-27T07:32:00Z",
            "1979-05-27T07:32:00",
            "1979-05-27",
            "07:32:00",
            "42",
            "-1",
            "0",
            "0x7fffffff",
            "99999999999999999999999999",
            "1.5",
            "nan",
            "-inf",
            "true",
            "[]",
            "{}",
            "[1, \"a\", 1979-05-27]",
            "{ backup = 2024-01-01T00:00:00Z }",
            "{ count = 1, days = 1 }",
            "\"\"",
            "\"\\u001b[31mred\\nnext\"",
            "\"\\u202e\\u0000\\u009b\"",
            "'\u{1b}[2J'",
            "\"\u{7f}\"",
            "\"aws:cloudformation:stack-name\"",
            "\"arn:aws:iam::222222222222:role/x\"",
            "\"alias/aws/ebs\"",
            "[\"i-0123456789abcdef0\", \"i-0123456789abcdef0\"]",
        ])
        .prop_map(str::to_owned),
        (0usize..80_000).prop_map(|n| format!("\"{}\"", "x".repeat(n))),
        (0usize..300).prop_map(|n| format!("{{ \"{}\" = \"v\" }}", "k".repeat(n))),
        (1usize..120).prop_map(|d| format!("{}1{}", "[".repeat(d), "]".repeat(d))),
        (1usize..120).prop_map(|d| format!("{}1{}", "{ a = ".repeat(d), " }".repeat(d))),
        "[a-z0-9:/._-]{0,80}".prop_map(|s| format!("\"{s}\"")),
        any::<String>().prop_map(|s| format!("\"{}\"", s.replace(['"', '\\'], ""))),
    ]
}

/// A key a policy knows, in some table or other, or one it does not.
fn some_key() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "name",
        "source",
        "role_arn",
        "regions",
        "resources",
        "type",
        "ids",
        "tags",
        "tags.backup",
        "targets",
        "account",
        "region",
        "kms_key",
        "staging_kms_key",
        "rds_single_step",
        "retention",
        "replicas",
        "replicas.count",
        "count",
        "days",
        "colour",
        "\"\\u001b[31m\"",
        "a.b.c.d.e.f.g",
    ])
    .prop_map(str::to_owned)
}

fn nasty_line() -> impl Strategy<Value = String> {
    prop_oneof![
        (some_key(), nasty_value()).prop_map(|(k, v)| format!("{k} = {v}")),
        prop::sample::select(vec![
            "[source]",
            "[[source.resources]]",
            "[[targets]]",
            "[retention]",
            "[retention.replicas]",
            "[source.resources.tags]",
            "[[source]]",
            "[targets]",
            "",
            "# a comment",
            "=",
            "[",
        ])
        .prop_map(str::to_owned),
        any::<String>(),
    ]
}

#[derive(Clone, Debug)]
enum Edit {
    Delete(Index),
    Duplicate(Index),
    Replace(Index, String),
    Insert(Index, String),
    /// Keep the key of a line, give it another value.
    Revalue(Index, String),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        any::<Index>().prop_map(Edit::Delete),
        any::<Index>().prop_map(Edit::Duplicate),
        (any::<Index>(), nasty_line()).prop_map(|(i, l)| Edit::Replace(i, l)),
        (any::<Index>(), nasty_line()).prop_map(|(i, l)| Edit::Insert(i, l)),
        (any::<Index>(), nasty_value()).prop_map(|(i, v)| Edit::Revalue(i, v)),
    ]
}

fn edited(edits: &[Edit]) -> String {
    let mut lines: Vec<String> = VALID.lines().map(str::to_owned).collect();
    for edit in edits {
        let n = lines.len();
        match edit {
            Edit::Insert(i, line) => lines.insert(i.index(n + 1), line.clone()),
            _ if n == 0 => {}
            Edit::Delete(i) => {
                lines.remove(i.index(n));
            }
            Edit::Duplicate(i) => {
                let line = lines[i.index(n)].clone();
                lines.insert(i.index(n), line);
            }
            Edit::Replace(i, line) => lines[i.index(n)] = line.clone(),
            Edit::Revalue(i, value) => {
                let line = &mut lines[i.index(n)];
                if let Some((key, _)) = line.split_once('=') {
                    *line = format!("{key}= {value}");
                }
            }
        }
    }
    lines.join("\n")
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn random_text_never_panics_and_every_error_is_placed(text in any::<String>()) {
        check(&text)?;
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        check(&String::from_utf8_lossy(&bytes))?;
    }

    #[test]
    fn toml_like_token_soup_never_panics(tokens in prop::collection::vec(prop::sample::select(vec![
        "[", "]", "[[", "]]", "{", "}", "=", ",", ".", "\"", "'", "\"\"\"", "\n", " ", "#",
        "name", "source", "targets", "resources", "tags", "type", "ids", "\"ec2\"",
        "1", "1979-05-27", "T07:32:00Z", "true", "\\u001b", "\u{1b}", "\u{202e}", "x",
    ]), 0..64)) {
        check(&tokens.concat())?;
    }

    #[test]
    fn edits_of_a_valid_policy_never_panic_and_every_error_is_placed(
        edits in prop::collection::vec(edit(), 1..6)
    ) {
        check(&edited(&edits))?;
    }
}

#[test]
fn the_policy_the_edits_start_from_is_valid() {
    Policy::from_toml(VALID).unwrap();
}
