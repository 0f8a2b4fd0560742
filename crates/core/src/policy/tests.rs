//! One test per policy rule of SPEC section 5 and issue #2.

use super::*;

const KEY_EU: &str = "arn:aws:kms:eu-west-1:222222222222:key/1234abcd-12ab-34cd-56ef-1234567890ab";

fn policy(targets: &str) -> String {
    format!(
        r#"
name = "nightly-dr"
[source]
regions = ["us-east-1"]
[[source.resources]]
type = "ec2"
ids = ["i-0123456789abcdef0"]
{targets}
"#
    )
}

fn errors(text: &str) -> Vec<FieldError> {
    match Policy::from_toml(text) {
        Err(PolicyError::Invalid(e)) => e,
        other => panic!("expected field errors, got {other:?}"),
    }
}

fn fields(text: &str) -> Vec<String> {
    errors(text).into_iter().map(|e| e.field).collect()
}

#[test]
fn the_spec_example_policy_is_accepted() {
    let text = r#"
name = "nightly-dr"
[source]
role_arn = "arn:aws:iam::111111111111:role/snaprelay-source"
regions = ["us-east-1"]
[[source.resources]]
type = "ec2"
ids = ["i-0123456789abcdef0"]
[[source.resources]]
type = "ec2"
tags = { backup = "gold" }
[[targets]]
account = "222222222222"
region = "eu-west-1"
role_arn = "arn:aws:iam::222222222222:role/snaprelay-target"
kms_key = "arn:aws:kms:eu-west-1:222222222222:key/1234abcd-12ab-34cd-56ef-1234567890ab"
[retention]
replicas = { count = 7 }
source = { days = 2 }
"#;
    let p = Policy::from_toml(text).unwrap();
    assert_eq!(p.name, "nightly-dr");
    assert_eq!(p.source.resources.len(), 2);
    assert_eq!(
        p.targets[0].declared_account().unwrap().as_str(),
        "222222222222"
    );
    assert_eq!(p.retention.replicas, Some(Keep::Count(7)));
    assert_eq!(p.retention.source, Some(Keep::Days(2)));
}

#[test]
fn unknown_keys_are_errors_that_name_them() {
    let text = policy("[[targets]]\nregion = \"eu-west-1\"\nkms_kye = \"alias/x\"\n");
    match Policy::from_toml(&text) {
        Err(PolicyError::Syntax(msg)) => assert!(msg.contains("kms_kye"), "{msg}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn account_ids_must_have_twelve_digits() {
    let e = errors(&policy(
        "[[targets]]\naccount = \"12345\"\nregion = \"eu-west-1\"\n",
    ));
    assert_eq!(e[0].field, "targets[0].account");
    assert_eq!(e[0].value, "\"12345\"");
}

#[test]
fn malformed_role_arns_are_rejected() {
    let f = fields(&policy(
        "[[targets]]\nregion = \"eu-west-1\"\nrole_arn = \"arn:aws:iam::222222222222:user/bob\"\n",
    ));
    assert_eq!(f, ["targets[0].role_arn"]);
}

#[test]
fn malformed_key_references_are_rejected() {
    let f = fields(&policy(
        "[[targets]]\nregion = \"eu-west-1\"\nkms_key = \"arn:aws:kms:eu-west-1:222222222222:key/nope\"\n",
    ));
    assert_eq!(f, ["targets[0].kms_key"]);
}

#[test]
fn a_target_key_in_another_region_than_the_target_is_rejected() {
    let e = errors(&policy(&format!(
        "[[targets]]\naccount = \"222222222222\"\nregion = \"eu-central-1\"\nkms_key = \"{KEY_EU}\"\n"
    )));
    assert_eq!(e[0].field, "targets[0].kms_key");
    assert!(e[0].problem.contains("regional"), "{}", e[0].problem);
}

#[test]
fn an_aws_managed_alias_is_no_target_key() {
    let f = fields(&policy(
        "[[targets]]\nregion = \"eu-west-1\"\nkms_key = \"alias/aws/ebs\"\n",
    ));
    assert_eq!(f, ["targets[0].kms_key"]);
}

#[test]
fn duplicate_targets_are_rejected() {
    let t = "[[targets]]\naccount = \"222222222222\"\nregion = \"eu-west-1\"\n";
    let f = fields(&policy(&format!("{t}{t}")));
    assert_eq!(f, ["targets[1]"]);
}

#[test]
fn a_target_equal_to_the_source_is_rejected() {
    let f = fields(&policy("[[targets]]\nregion = \"us-east-1\"\n"));
    assert_eq!(f, ["targets[0]"]);
    // The same Region in another account is a real replica.
    assert!(
        Policy::from_toml(&policy(
            "[[targets]]\naccount = \"222222222222\"\nregion = \"us-east-1\"\n"
        ))
        .is_ok()
    );
}

#[test]
fn a_target_role_of_another_account_than_the_target_is_rejected() {
    let f = fields(&policy(
        "[[targets]]\naccount = \"222222222222\"\nregion = \"eu-west-1\"\nrole_arn = \"arn:aws:iam::333333333333:role/t\"\n",
    ));
    assert_eq!(f, ["targets[0].role_arn"]);
}

#[test]
fn empty_selections_are_rejected() {
    let text = r#"
name = "p"
[source]
regions = []
[[source.resources]]
type = "ec2"
ids = []
[[source.resources]]
type = "ec2"
tags = {}
[[targets]]
region = "eu-west-1"
"#;
    assert_eq!(
        fields(text),
        [
            "source.regions",
            "source.resources[0].ids",
            "source.resources[1].tags"
        ]
    );
}

#[test]
fn a_selection_needs_exactly_one_of_ids_and_tags() {
    let text = r#"
name = "p"
[source]
regions = ["us-east-1"]
[[source.resources]]
type = "ec2"
[[targets]]
region = "eu-west-1"
"#;
    assert_eq!(fields(text), ["source.resources[0]"]);
}

#[test]
fn malformed_instance_ids_and_regions_are_rejected() {
    let text = r#"
name = "p"
[source]
regions = ["us-east-1", "moon-1"]
[[source.resources]]
type = "ec2"
ids = ["i-0123456789abcdef0", "vol-1"]
[[targets]]
region = "eu-west-1"
"#;
    assert_eq!(
        fields(text),
        ["source.regions[1]", "source.resources[0].ids[1]"]
    );
}

#[test]
fn a_policy_needs_targets() {
    assert_eq!(fields(&policy("")), ["targets"]);
}

#[test]
fn retention_takes_exactly_one_of_count_and_days() {
    let f = fields(&policy(
        "[[targets]]\nregion = \"eu-west-1\"\n[retention]\nreplicas = { count = 0 }\nsource = { count = 1, days = 2 }\n",
    ));
    assert_eq!(f, ["retention.replicas.count", "retention.source"]);
}

#[test]
fn every_problem_is_reported_at_once() {
    let f = fields(&policy(
        "[[targets]]\naccount = \"1\"\nregion = \"nowhere\"\nkms_key = \"k\"\n",
    ));
    assert_eq!(
        f,
        [
            "targets[0].account",
            "targets[0].region",
            "targets[0].kms_key"
        ]
    );
}

#[test]
fn rds_selections_take_db_instance_identifiers() {
    let text = r#"
name = "p"
[source]
regions = ["us-east-1"]
[[source.resources]]
type = "rds"
ids = ["orders-db", "1db", "bad--name", "trailing-"]
[[targets]]
region = "eu-west-1"
"#;
    assert_eq!(
        fields(text),
        [
            "source.resources[0].ids[1]",
            "source.resources[0].ids[2]",
            "source.resources[0].ids[3]"
        ]
    );
}

#[test]
fn rds_target_options_are_parsed_and_checked() {
    let ok = policy(
        "[[targets]]\naccount = \"222222222222\"\nregion = \"eu-west-1\"\nstaging_kms_key = \"alias/staging\"\nrds_single_step = true\n",
    );
    let p = Policy::from_toml(&ok).unwrap();
    assert!(p.targets[0].rds_single_step);
    assert_eq!(
        p.targets[0].staging_kms_key,
        Some(KeyRef::AliasName("alias/staging".into()))
    );
    let bad = policy("[[targets]]\nregion = \"eu-west-1\"\nstaging_kms_key = \"nope\"\n");
    assert_eq!(fields(&bad), ["targets[0].staging_kms_key"]);
    match Policy::from_toml(&policy(
        "[[targets]]\nregion = \"eu-west-1\"\nrds_single_step = \"yes\"\n",
    )) {
        Err(PolicyError::Syntax(msg)) => assert!(msg.contains("rds_single_step"), "{msg}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn wrong_value_types_are_syntax_errors_naming_the_key() {
    match Policy::from_toml("name = 3\n[source]\nregions=[\"us-east-1\"]\n") {
        Err(PolicyError::Syntax(msg)) => assert!(msg.contains("name"), "{msg}"),
        other => panic!("{other:?}"),
    }
}

// Issue "Every surface an operator touches", items 4, 10 and 11: every error names its field
// and its place in the file, echoes no input whole or raw, and AWS's limits are checked up front.

const SOURCE: &str = r#"name = "nightly-dr"
[source]
regions = ["us-east-1"]
"#;
const TARGET: &str = "[[targets]]\nregion = \"eu-west-1\"\n";

/// A policy whose single resource is selected by `selection` (the lines after `type = "ec2"`),
/// which starts on line 6.
fn selecting(selection: &str) -> String {
    format!("{SOURCE}[[source.resources]]\ntype = \"ec2\"\n{selection}\n{TARGET}")
}

fn syntax(text: &str) -> String {
    match Policy::from_toml(text) {
        Err(PolicyError::Syntax(msg)) => msg,
        other => panic!("expected a syntax error, got {other:?}"),
    }
}

fn at(line: usize, column: usize) -> Position {
    Position { line, column }
}

/// The whole message, as the CLI prints it.
fn message(text: &str) -> String {
    Policy::from_toml(text).unwrap_err().to_string()
}

/// No control character other than the newlines between problems reaches the terminal, and no
/// line of the message is long.
fn assert_safe(msg: &str) {
    assert!(
        !msg.chars().any(|c| c.is_control() && c != '\n'),
        "raw control character in {msg:?}"
    );
    for line in msg.lines() {
        assert!(line.chars().count() < 800, "line too long: {line}");
    }
    assert!(!msg.contains("$__toml"), "{msg}");
}

#[test]
fn a_datetime_is_no_tag_value_and_the_error_says_where() {
    let msg = syntax(&selecting("tags = { backup = 2024-01-01T00:00:00Z }"));
    assert_eq!(
        msg,
        "  - line 6, column 19: source.resources[0].tags.backup = 2024-01-01T00:00:00Z: \
         must be a string, not a datetime"
    );
    assert_safe(&message(&selecting("tags = { backup = 1979-05-27 }")));
}

#[test]
fn a_value_of_the_wrong_type_deep_inside_names_its_path_and_position() {
    let msg = syntax(&selecting("ids = [\"i-0123456789abcdef0\", [1, [2]]]"));
    assert!(
        msg.contains(
            "line 6, column 31: source.resources[0].ids[1] = […]: must be a string, not an array"
        ),
        "{msg}"
    );
    let msg = syntax(&format!(
        "{SOURCE}[[source.resources]]\ntype = \"ec2\"\nids = [\"i-0123456789abcdef0\"]\n{TARGET}\
         [retention]\nreplicas = {{ count = \"7\" }}\nsource.days = 1.5\n"
    ));
    assert!(
        msg.contains(
            "line 10, column 22: retention.replicas.count = \"7\": must be a whole number, not a string"
        ),
        "{msg}"
    );
    assert!(
        msg.contains(
            "line 11, column 15: retention.source.days = 1.5: must be a whole number, not a float"
        ),
        "{msg}"
    );
    let msg = syntax(&format!(
        "targets = \"eu-west-1\"\n{SOURCE}[[source.resources]]\ntype = \"ec2\"\nids = []\n"
    ));
    assert!(
        msg.contains(
            "targets = \"eu-west-1\": must be an array of tables ([[targets]]), not a string"
        ),
        "{msg}"
    );
}

#[test]
fn every_shape_problem_is_reported_at_once_where_it_is() {
    let text = format!(
        "colour = \"blue\"\n{SOURCE}[[source.resources]]\ntype = \"ec2\"\nids = [\"i-0123456789abcdef0\"]\n\
         {TARGET}[[targets]]\nregion = \"eu-central-1\"\n  kms_kye = \"alias/x\"\nrds_single_step = \"yes\"\n"
    );
    let msg = syntax(&text);
    let lines: Vec<&str> = msg.lines().collect();
    assert_eq!(
        lines,
        [
            "  - line 1, column 1: colour: unknown key; this table takes name, schedule, timezone, drill, source, targets, retention, prices",
            "  - line 12, column 3: targets[1].kms_kye: unknown key; this table takes account, region, \
             role_arn, kms_key, staging_kms_key, rds_single_step, restore",
            "  - line 13, column 19: targets[1].rds_single_step = \"yes\": must be true or false, not a string",
        ]
    );
}

#[test]
fn prices_default_to_the_spec_values_and_take_numbers() {
    let target = format!("[[targets]]\nregion = \"eu-west-1\"\nkms_key = \"{KEY_EU}\"\n");
    let p = Policy::from_toml(&policy(&target)).unwrap();
    assert_eq!(p.prices.snapshot_gb_month, 0.05);
    assert_eq!(p.prices.transfer_gb, 0.02);
    let p = Policy::from_toml(&policy(&format!(
        "{target}[prices]\nsnapshot_gb_month = 0.0125\ntransfer_gb = 0\n"
    )))
    .unwrap();
    assert_eq!(p.prices.snapshot_gb_month, 0.0125);
    assert_eq!(p.prices.transfer_gb, 0.0);
    // Only one given: the other keeps its default.
    let p = Policy::from_toml(&policy(&format!("{target}[prices]\ntransfer_gb = 0.09\n"))).unwrap();
    assert_eq!(p.prices.snapshot_gb_month, 0.05);
    assert_eq!(p.prices.transfer_gb, 0.09);
}

#[test]
fn a_bad_price_is_an_error_naming_the_field_and_value() {
    let target = format!("[[targets]]\nregion = \"eu-west-1\"\nkms_key = \"{KEY_EU}\"\n");
    let e = errors(&policy(&format!(
        "{target}[prices]\nsnapshot_gb_month = -0.05\ntransfer_gb = nan\n"
    )));
    let shown: Vec<String> = e
        .iter()
        .map(|e| format!("{} = {}", e.field, e.value))
        .collect();
    assert_eq!(
        shown,
        [
            "prices.snapshot_gb_month = -0.05",
            "prices.transfer_gb = nan"
        ]
    );
    assert!(
        e.iter().all(|e| e.problem.contains("price in USD")),
        "{e:?}"
    );
    let msg = syntax(&policy(&format!(
        "{target}[prices]\nsnapshot_gb_month = \"cheap\"\ntransfer = 1\n"
    )));
    assert!(
        msg.contains("prices.snapshot_gb_month = \"cheap\": must be a number, not a string"),
        "{msg}"
    );
    assert!(
        msg.contains(
            "prices.transfer: unknown key; this table takes snapshot_gb_month, transfer_gb"
        ),
        "{msg}"
    );
    let msg = syntax(&format!("prices = 3\n{}", policy(&target)));
    assert!(msg.contains("prices = 3: must be a table"), "{msg}");
}

#[test]
fn a_missing_key_is_reported_at_its_table() {
    let msg =
        syntax("[source]\nregions = [\"us-east-1\"]\n[[targets]]\naccount = \"222222222222\"\n");
    assert_eq!(
        msg.lines().collect::<Vec<_>>(),
        [
            "  - line 1, column 1: name: is required (a string)",
            "  - line 3, column 1: targets[0].region: is required (a string)",
        ]
    );
    assert!(
        syntax("name = \"p\"\n")
            .contains("line 1, column 1: source: is required (a [source] table)")
    );
}

#[test]
fn value_errors_carry_the_position_of_the_value() {
    let text = policy(
        "[[targets]]\naccount = \"12345\"\nregion = \"eu-west-1\"\n\n[[targets]]\n  region = \"eu-west-1\"\n",
    );
    let e = errors(&text);
    assert_eq!(e[0].field, "targets[0].account");
    assert_eq!(e[0].position, at(9, 11));
    // A whole target is placed at its [[targets]] header.
    assert_eq!(e[1].field, "targets[1]");
    assert_eq!(e[1].position, at(12, 1));
    assert_eq!(
        e[0].to_string(),
        "line 9, column 11: targets[0].account = \"12345\": is not a 12-digit AWS account id"
    );
}

#[test]
fn a_huge_value_is_cut_short_in_the_message() {
    let huge = "n".repeat(70_000);
    let e = errors(&format!(
        "name = \"{huge}\"\n[source]\nregions = [\"{huge}\"]\n[[source.resources]]\ntype = \"rds\"\n\
         ids = [\"{huge}\"]\n[[targets]]\nregion = \"eu-west-1\"\nrole_arn = \"arn:aws:iam::222222222222:role/{huge}\"\n"
    ));
    let short = format!("\"{}\"… (70000 characters)", "n".repeat(128));
    assert_eq!(e[0].field, "name");
    assert_eq!(e[0].value, short);
    assert_eq!(
        e[0].to_string(),
        format!("line 1, column 8: name = {short}: must be 1-64 letters, digits, '-' or '_'")
    );
    assert_eq!(e[1].value, short);
    assert_eq!(e[2].value, short);
    assert!(
        e[3].value.ends_with("… (70031 characters)"),
        "{}",
        e[3].value
    );
    let msg = message(&selecting(&format!("tags = {{ \"{huge}\" = \"{huge}\" }}")));
    assert_safe(&msg);
    assert!(msg.len() < 2000, "{msg}");
}

#[test]
fn control_characters_are_escaped_wherever_input_is_echoed() {
    // In a value, in a tag key (a path), in an unknown key, and raw in the file.
    let e = errors(&format!(
        "name = \"\\u001b[31mred\\nline\"\n{}",
        &policy("[[targets]]\nregion = \"eu-west-1\"\n")["\nname = \"nightly-dr\"\n".len()..]
    ));
    assert_eq!(e[0].value, r#""\u{1b}[31mred\nline""#);
    let e = errors(&selecting(&format!(
        "tags = {{ \"\\u001b]0;owned\\u0007\" = \"\\u202e{}\" }}",
        "v".repeat(300)
    )));
    assert_eq!(
        e[0].field,
        r#"source.resources[0].tags."\u{1b}]0;owned\u{7}""#
    );
    assert!(e[0].value.starts_with(r#""\u{202e}vvv"#), "{}", e[0].value);
    let msg = syntax(&format!("{SOURCE}\"\\u001b[2J\" = 1\n"));
    assert!(msg.contains(r#""\u{1b}[2J": unknown key"#), "{msg}");
    for raw in [
        "name = \"\u{1b}[31m\"\n",
        "name = \u{1b}\n",
        "# \u{9b}31m\nname = 1\n",
    ] {
        assert_safe(&message(raw));
    }
    // A bidi override would reorder the terminal's line.
    let e = errors(&selecting("ids = [\"i-\\u202e0123\"]"));
    assert_eq!(e[0].value, r#""i-\u{202e}0123""#);
}

#[test]
fn text_that_is_not_toml_is_reported_with_its_position_not_the_line() {
    let msg = syntax("name = \"x\n");
    assert_eq!(
        msg,
        "  - line 1, column 10: not TOML: invalid basic string, expected `\"`"
    );
    let msg = syntax("name = \"a\"\n\"\\u001b\" = 1\n\"\\u001b\" = 2\n");
    assert_eq!(
        msg,
        r#"  - line 3, column 1: not TOML: duplicate key (at "\"\\u001b\"")"#
    );
    assert_safe(&msg);
    // Nesting deeper than the parser's limit is refused, not a stack overflow.
    let deep = format!("name = {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
    let msg = syntax(&deep);
    assert!(
        msg.contains("line 1, column") && msg.contains("not TOML"),
        "{msg}"
    );
    let deep = format!("name = {}1{}\n", "{a=".repeat(10_000), "}".repeat(10_000));
    assert!(syntax(&deep).contains("not TOML"));
}

#[test]
fn tag_keys_are_1_to_128_characters_and_aws_ones_may_be_selected_by() {
    let ok = format!(
        "tags = {{ \"{}\" = \"x\", \"aws:cloudformation:stack-name\" = \"y\" }}",
        "k".repeat(128)
    );
    assert!(Policy::from_toml(&selecting(&ok)).is_ok());
    let e = errors(&selecting(&format!(
        "tags = {{ \"\" = \"x\", \"{}\" = \"y\" }}",
        "k".repeat(129)
    )));
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(e.iter().all(|e| e.field == "source.resources[0].tags"));
    assert_eq!(
        e[0].to_string(),
        "line 6, column 10: source.resources[0].tags = \"\": is a tag key of 0 characters; \
         AWS tag keys are 1-128 characters"
    );
    assert!(e[1].problem.contains("129 characters"), "{}", e[1].problem);
}

#[test]
fn tag_values_are_at_most_256_characters() {
    let ok = format!(
        "tags = {{ backup = \"{}\", empty = \"\" }}",
        "v".repeat(256)
    );
    assert!(Policy::from_toml(&selecting(&ok)).is_ok());
    let e = errors(&selecting(&format!(
        "tags = {{ backup = \"{}\" }}",
        "v".repeat(300)
    )));
    assert_eq!(
        e[0].to_string(),
        format!(
            "line 6, column 19: source.resources[0].tags.backup = \"{}\"… (300 characters): \
             is a tag value of 300 characters; AWS tag values are at most 256 characters",
            "v".repeat(128)
        )
    );
}

#[test]
fn ec2_instance_ids_are_i_and_8_or_17_hex_digits() {
    assert!(
        Policy::from_toml(&selecting(
            "ids = [\"i-1234abcd\", \"i-0123456789abcdef0\"]"
        ))
        .is_ok()
    );
    let e = errors(&selecting(
        "ids = [\"i-123\", \"i-0123456789abcdef01\", \"i-0123456789ABCDEF0\"]",
    ));
    assert_eq!(e.len(), 3);
    assert!(e[0].problem.contains("8 or 17"), "{}", e[0].problem);
}

#[test]
fn db_instance_identifiers_are_at_most_63_characters() {
    let rds = |id: &str| {
        format!("{SOURCE}[[source.resources]]\ntype = \"rds\"\nids = [\"{id}\"]\n{TARGET}")
    };
    assert!(Policy::from_toml(&rds(&format!("d{}", "b".repeat(62)))).is_ok());
    let e = errors(&rds(&format!("d{}", "b".repeat(63))));
    assert_eq!(e[0].field, "source.resources[0].ids[0]");
    assert!(e[0].problem.contains("1-63"), "{}", e[0].problem);
}

#[test]
fn aurora_clusters_are_selected_by_cluster_identifier_or_tags() {
    let aurora = |selection: &str| {
        format!("{SOURCE}[[source.resources]]\ntype = \"aurora\"\n{selection}\n{TARGET}")
    };
    let p = Policy::from_toml(&aurora("ids = [\"orders-cluster\"]")).unwrap();
    assert_eq!(p.source.resources[0].resource_type, ResourceType::Aurora);
    assert!(Policy::from_toml(&aurora("tags = { tier = \"gold\" }")).is_ok());
    for bad in [
        "orders--cluster".to_owned(),
        "1orders".into(),
        format!("c{}", "x".repeat(63)),
    ] {
        let e = errors(&aurora(&format!("ids = [\"{bad}\"]")));
        assert_eq!(e[0].field, "source.resources[0].ids[0]", "{bad}");
        assert!(
            e[0].problem.contains("DB cluster identifier"),
            "{}",
            e[0].problem
        );
    }
    let e = errors(&aurora("ids = [\"x\"]").replace("\"aurora\"", "\"docdb\""));
    assert_eq!(e[0].field, "source.resources[0].type");
    assert!(e[0].problem.contains("\"aurora\""), "{}", e[0].problem);
}

#[test]
fn the_policy_name_is_1_to_64_letters_digits_hyphens_or_underscores() {
    let named = |name: &str| policy(TARGET).replace("\"nightly-dr\"", &format!("\"{name}\""));
    assert!(Policy::from_toml(&named(&"n".repeat(64))).is_ok());
    assert!(Policy::from_toml(&named("a_b-C9")).is_ok());
    for bad in ["n".repeat(65), String::new(), "a b".into(), "é".into()] {
        assert_eq!(fields(&named(&bad)), ["name"], "{bad}");
    }
}

#[test]
fn role_names_over_64_characters_are_rejected() {
    let role = |name: &str| {
        policy(&format!(
            "[[targets]]\nregion = \"eu-west-1\"\nrole_arn = \"arn:aws:iam::222222222222:role/{name}\"\n"
        ))
    };
    assert!(Policy::from_toml(&role(&"r".repeat(64))).is_ok());
    let e = errors(&role(&"r".repeat(65)));
    assert_eq!(e[0].field, "targets[0].role_arn");
    assert!(e[0].problem.contains("64"), "{}", e[0].problem);
}

#[test]
fn key_aliases_over_256_characters_are_rejected() {
    let key = |alias: &str| policy(&format!("{TARGET}kms_key = \"alias/{alias}\"\n"));
    assert!(Policy::from_toml(&key(&"a".repeat(250))).is_ok());
    assert_eq!(fields(&key(&"a".repeat(251))), ["targets[0].kms_key"]);
}

#[test]
fn a_file_broken_everywhere_lists_the_first_twenty_problems() {
    let ids: Vec<String> = (0..30).map(|i| format!("\"bad-{i}\"")).collect();
    let msg = message(&selecting(&format!("ids = [{}]", ids.join(", "))));
    assert_eq!(msg.lines().filter(|l| l.starts_with("  - ")).count(), 20);
    assert!(msg.ends_with("  (10 more problems not shown)"), "{msg}");
}

#[test]
fn retention_numbers_take_every_toml_integer_form() {
    let p = Policy::from_toml(&policy(&format!(
        "{TARGET}[retention]\nreplicas = {{ count = 1_000 }}\nsource = {{ days = 0x1e }}\n"
    )))
    .unwrap();
    assert_eq!(p.retention.replicas, Some(Keep::Count(1000)));
    assert_eq!(p.retention.source, Some(Keep::Days(30)));
    let e = errors(&policy(&format!(
        "{TARGET}[retention]\nreplicas = {{ count = 99999999999999999999999 }}\n"
    )));
    assert_eq!(e[0].field, "retention.replicas.count");
    assert_eq!(e[0].value, "99999999999999999999999");
}

#[test]
fn a_target_takes_restore_defaults() {
    let text = policy(
        r#"
[[targets]]
account = "222222222222"
region = "eu-west-1"
restore = { subnet = "subnet-0123456789abcdef0", security_groups = ["sg-0123456789abcdef0"], db_subnet_group = "dr-subnets" }
"#,
    );
    let p = Policy::from_toml(&text).unwrap();
    assert_eq!(
        p.targets[0].restore,
        RestoreDefaults {
            subnet: Some("subnet-0123456789abcdef0".into()),
            security_groups: vec!["sg-0123456789abcdef0".into()],
            db_subnet_group: Some("dr-subnets".into()),
        }
    );
    let none = Policy::from_toml(&policy(
        "[[targets]]\naccount = \"222222222222\"\nregion = \"eu-west-1\"\n",
    ))
    .unwrap();
    assert!(none.targets[0].restore.is_empty());
}

#[test]
fn malformed_restore_defaults_are_rejected_by_field() {
    let text = policy(
        r#"
[[targets]]
account = "222222222222"
region = "eu-west-1"
restore = { subnet = "sub-1", security_groups = ["sg-0123456789abcdef0", "default"], db_subnet_group = "bad/group" }
"#,
    );
    assert_eq!(
        fields(&text),
        [
            "targets[0].restore.subnet",
            "targets[0].restore.security_groups[1]",
            "targets[0].restore.db_subnet_group",
        ]
    );
}

#[test]
fn schedules_are_parsed_in_their_time_zone() {
    let text = format!(
        "schedule = \"0 3 * * *\"\ntimezone = \"Europe/Berlin\"\n[drill]\nschedule = \"*/30 * * * * *\"\n{}",
        policy("[[targets]]\naccount = \"222222222222\"\nregion = \"eu-west-1\"\n")
            .replace("name = \"nightly-dr\"", "")
    );
    let text = format!("name = \"nightly-dr\"\n{text}");
    let p = Policy::from_toml(&text).unwrap();
    let s = p.schedule.as_ref().unwrap();
    assert_eq!(
        (s.expression.as_str(), s.timezone.as_str()),
        ("0 3 * * *", "Europe/Berlin")
    );
    assert_eq!(p.drill_schedule.as_ref().unwrap().timezone, "Europe/Berlin");
    let plain = Policy::from_toml(&policy(
        "[[targets]]\naccount = \"222222222222\"\nregion = \"eu-west-1\"\n",
    ))
    .unwrap();
    assert_eq!((plain.schedule, plain.drill_schedule), (None, None));
    assert_eq!(plain.timezone, "UTC");
    // A zone without a schedule is kept, for whoever reads the policy (`GET /policies`).
    let zoned = Policy::from_toml(&format!(
        "timezone = \"Europe/Berlin\"\n{}",
        policy("[[targets]]\naccount = \"222222222222\"\nregion = \"eu-west-1\"\n")
    ))
    .unwrap();
    assert_eq!(
        (zoned.schedule, zoned.timezone.as_str()),
        (None, "Europe/Berlin")
    );
}

#[test]
fn a_bad_schedule_or_time_zone_is_named() {
    let text = format!(
        "name = \"p\"\nschedule = \"0 25 * * *\"\ntimezone = \"Mars/Olympus\"\n{}",
        policy("[[targets]]\naccount = \"222222222222\"\nregion = \"eu-west-1\"\n")
            .replace("name = \"nightly-dr\"", "")
    );
    assert_eq!(
        fields(&text),
        ["timezone"],
        "a schedule is checked once its zone is known"
    );
    let text = text.replace("Mars/Olympus", "UTC");
    let errors = errors(&text);
    assert_eq!(errors[0].field, "schedule");
    assert!(
        errors[0].to_string().contains("0 25 * * *"),
        "{}",
        errors[0]
    );
    let text = format!(
        "name = \"p\"\n[drill]\nschedule = \"every day\"\n{}",
        policy("[[targets]]\naccount = \"222222222222\"\nregion = \"eu-west-1\"\n")
            .replace("name = \"nightly-dr\"", "")
    );
    assert_eq!(fields(&text), ["drill.schedule"]);
}

#[test]
fn reencrypt_keys_name_a_customer_managed_key_of_each_source_region() {
    let target = format!("[[targets]]\nregion = \"eu-west-1\"\nkms_key = \"{KEY_EU}\"\n");
    let with = |keys: &str| {
        policy(&target).replace(
            "regions = [\"us-east-1\"]",
            &format!("regions = [\"us-east-1\"]\nreencrypt_keys = {{ {keys} }}"),
        )
    };
    let key = "arn:aws:kms:us-east-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    let p = Policy::from_toml(&with(&format!("\"us-east-1\" = \"{key}\""))).unwrap();
    assert_eq!(p.source.reencrypt_keys["us-east-1"].as_str(), key);
    assert!(
        Policy::from_toml(&policy(&target))
            .unwrap()
            .source
            .reencrypt_keys
            .is_empty()
    );
    let e = errors(&with(
        "\"us-west-2\" = \"alias/share\", \"us-east-1\" = \"alias/aws/ebs\"",
    ));
    let shown: Vec<String> = e
        .iter()
        .map(|e| format!("{} = {}: {}", e.field, e.value, e.problem))
        .collect();
    assert!(
        shown
            .iter()
            .any(|s| s.starts_with("source.reencrypt_keys.us-west-2")
                && s.contains("not one of source.regions")),
        "{shown:?}"
    );
    assert!(
        shown
            .iter()
            .any(|s| s.starts_with("source.reencrypt_keys.us-east-1")
                && s.contains("AWS managed key")),
        "{shown:?}"
    );
    let e = errors(&with(&format!(
        "\"us-east-1\" = \"{}\"",
        key.replace("us-east-1", "us-west-2")
    )));
    assert!(e[0].problem.contains("KMS keys are regional"), "{e:?}");
    let e = errors(&with("\"us-east-1\" = \"not a key\""));
    assert_eq!(e[0].field, "source.reencrypt_keys.us-east-1", "{e:?}");
}
