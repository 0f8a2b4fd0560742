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
