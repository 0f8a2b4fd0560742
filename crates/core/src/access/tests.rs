//! The evaluator against AWS's documented key policy for another account's use of a key
//! (the console's default statements "Enable IAM User Permissions", "Allow use of the key" and
//! "Allow attachment of persistent resources": https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-modifying-external-accounts.html).

use super::*;

const OWNER: &str = "111122223333";
const EXTERNAL: &str = "444455556666";
const KEY: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

fn external_use_policy() -> Vec<Statement> {
    parse(&format!(
        r#"{{
  "Version": "2012-10-17",
  "Statement": [
    {{"Sid": "Enable IAM User Permissions", "Effect": "Allow",
      "Principal": {{"AWS": "arn:aws:iam::{OWNER}:root"}}, "Action": "kms:*", "Resource": "*"}},
    {{"Sid": "Allow use of the key", "Effect": "Allow",
      "Principal": {{"AWS": "arn:aws:iam::{EXTERNAL}:root"}},
      "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
      "Resource": "*"}},
    {{"Sid": "Allow attachment of persistent resources", "Effect": "Allow",
      "Principal": {{"AWS": "arn:aws:iam::{EXTERNAL}:root"}},
      "Action": ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"], "Resource": "*",
      "Condition": {{"Bool": {{"kms:GrantIsForAWSResource": "true"}}}}}}
  ]
}}"#
    ))
    .expect("the documented policy parses")
}

fn role(account: &str) -> Caller {
    Caller {
        account: account.into(),
        arn: Some(format!("arn:aws:iam::{account}:role/snaprelay-target")),
    }
}

fn ask(
    statements: &[Statement],
    caller: &Caller,
    action: &str,
    context: &[(&str, &str)],
) -> Verdict {
    let context: BTreeMap<String, Vec<String>> = context
        .iter()
        .map(|(k, v)| ((*k).to_owned(), vec![(*v).to_owned()]))
        .collect();
    evaluate(
        statements,
        &Request {
            caller,
            action,
            resource: KEY,
            context: &context,
        },
    )
}

fn allowed_by(v: &Verdict) -> Vec<&str> {
    match v {
        Verdict::Allowed(sids) => sids.iter().map(String::as_str).collect(),
        _ => vec![],
    }
}

#[test]
fn an_account_named_as_root_admits_every_role_of_that_account() {
    let policy = external_use_policy();
    for action in [
        "kms:Decrypt",
        "kms:DescribeKey",
        "kms:ReEncryptFrom",
        "kms:GenerateDataKeyWithoutPlaintext",
    ] {
        assert_eq!(
            allowed_by(&ask(&policy, &role(EXTERNAL), action, &[])),
            vec!["Allow use of the key"],
            "{action}"
        );
    }
}

#[test]
fn action_names_match_without_regard_to_case_and_wildcards_stay_within_their_prefix() {
    let policy = external_use_policy();
    assert!(matches!(
        ask(&policy, &role(EXTERNAL), "KMS:decrypt", &[]),
        Verdict::Allowed(_)
    ));
    assert_eq!(
        ask(&policy, &role(EXTERNAL), "kms:ScheduleKeyDeletion", &[]),
        Verdict::NotAllowed
    );
    assert_eq!(
        ask(&policy, &role(EXTERNAL), "kms:ReEncrypt", &[]),
        Verdict::Allowed(vec!["Allow use of the key".into()])
    );
}

#[test]
fn create_grant_needs_grant_is_for_aws_resource() {
    let policy = external_use_policy();
    assert_eq!(
        ask(&policy, &role(EXTERNAL), "kms:CreateGrant", &[]),
        Verdict::NotAllowed
    );
    assert_eq!(
        ask(
            &policy,
            &role(EXTERNAL),
            "kms:CreateGrant",
            &[("kms:GrantIsForAWSResource", "false")]
        ),
        Verdict::NotAllowed
    );
    assert_eq!(
        allowed_by(&ask(
            &policy,
            &role(EXTERNAL),
            "kms:CreateGrant",
            &[("kms:GrantIsForAWSResource", "true")]
        )),
        vec!["Allow attachment of persistent resources"]
    );
}

#[test]
fn an_account_the_policy_does_not_name_is_not_allowed() {
    assert_eq!(
        ask(
            &external_use_policy(),
            &role("999988887777"),
            "kms:Decrypt",
            &[]
        ),
        Verdict::NotAllowed
    );
}

#[test]
fn the_owner_account_may_do_everything_through_its_iam_policies() {
    assert_eq!(
        allowed_by(&ask(
            &external_use_policy(),
            &role(OWNER),
            "kms:ScheduleKeyDeletion",
            &[]
        )),
        vec!["Enable IAM User Permissions"]
    );
}

#[test]
fn an_explicit_deny_wins_over_any_allow() {
    let mut policy = external_use_policy();
    policy.extend(
        parse(&format!(
            r#"{{"Statement": {{"Sid": "No decrypt for the vault", "Effect": "Deny", "Principal": "*",
                 "Action": "kms:Decrypt", "Resource": "*",
                 "Condition": {{"StringEquals": {{"aws:PrincipalAccount": "{EXTERNAL}"}}}}}}}}"#
        ))
        .unwrap(),
    );
    let context = [("aws:PrincipalAccount", EXTERNAL)];
    assert_eq!(
        ask(&policy, &role(EXTERNAL), "kms:Decrypt", &context),
        Verdict::Denied("No decrypt for the vault".into())
    );
    assert!(matches!(
        ask(&policy, &role(EXTERNAL), "kms:Encrypt", &context),
        Verdict::Allowed(_)
    ));
}

#[test]
fn a_role_principal_admits_that_role_only() {
    let policy = parse(&format!(
        r#"{{"Statement": [{{"Effect": "Allow", "Principal": {{"AWS": ["arn:aws:iam::{EXTERNAL}:role/snaprelay-target"]}},
             "Action": "kms:Decrypt", "Resource": "*"}}]}}"#
    ))
    .unwrap();
    assert!(matches!(
        ask(&policy, &role(EXTERNAL), "kms:Decrypt", &[]),
        Verdict::Allowed(_)
    ));
    let other = Caller {
        account: EXTERNAL.into(),
        arn: Some(format!("arn:aws:iam::{EXTERNAL}:role/someone-else")),
    };
    assert_eq!(
        ask(&policy, &other, "kms:Decrypt", &[]),
        Verdict::NotAllowed
    );
}

#[test]
fn via_service_and_caller_account_conditions_narrow_a_star_principal() {
    // The shape of AWS managed key policies: any principal, through EBS, of the owner account.
    let policy = parse(&format!(
        r#"{{"Statement": [{{"Sid": "Via EBS", "Effect": "Allow", "Principal": {{"AWS": "*"}},
             "Action": ["kms:Decrypt", "kms:CreateGrant"], "Resource": "*",
             "Condition": {{"StringEquals": {{"kms:CallerAccount": "{OWNER}",
                                              "kms:ViaService": "ec2.us-east-1.amazonaws.com"}}}}}}]}}"#
    ))
    .unwrap();
    let via = [
        ("kms:CallerAccount", OWNER),
        ("kms:ViaService", "ec2.us-east-1.amazonaws.com"),
    ];
    assert!(matches!(
        ask(&policy, &role(OWNER), "kms:Decrypt", &via),
        Verdict::Allowed(_)
    ));
    assert_eq!(
        ask(&policy, &role(OWNER), "kms:Decrypt", &via[..1]),
        Verdict::NotAllowed
    );
    let from_vault = [
        ("kms:CallerAccount", EXTERNAL),
        ("kms:ViaService", "ec2.us-east-1.amazonaws.com"),
    ];
    assert_eq!(
        ask(&policy, &role(EXTERNAL), "kms:Decrypt", &from_vault),
        Verdict::NotAllowed
    );
}

#[test]
fn negated_and_if_exists_operators_follow_the_iam_rules_for_missing_keys() {
    let policy = parse(
        r#"{"Statement": [
             {"Sid": "not-ebs", "Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*",
              "Condition": {"StringNotEquals": {"kms:ViaService": "ec2.us-east-1.amazonaws.com"}}},
             {"Sid": "maybe", "Effect": "Allow", "Principal": "*", "Action": "kms:Encrypt", "Resource": "*",
              "Condition": {"StringEqualsIfExists": {"kms:ViaService": "rds.us-east-1.amazonaws.com"}}}]}"#,
    )
    .unwrap();
    assert!(matches!(
        ask(&policy, &role(OWNER), "kms:Decrypt", &[]),
        Verdict::Allowed(_)
    ));
    assert!(matches!(
        ask(&policy, &role(OWNER), "kms:Encrypt", &[]),
        Verdict::Allowed(_)
    ));
    let via_ec2 = [("kms:ViaService", "ec2.us-east-1.amazonaws.com")];
    assert_eq!(
        ask(&policy, &role(OWNER), "kms:Decrypt", &via_ec2),
        Verdict::NotAllowed
    );
    assert_eq!(
        ask(&policy, &role(OWNER), "kms:Encrypt", &via_ec2),
        Verdict::NotAllowed
    );
}

#[test]
fn what_the_evaluator_does_not_understand_never_allows_and_may_deny() {
    let policy = parse(
        r#"{"Statement": [
             {"Sid": "odd-allow", "Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*",
              "Condition": {"DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}}},
             {"Sid": "odd-deny", "Effect": "Deny", "NotPrincipal": {"AWS": "arn:aws:iam::111122223333:root"},
              "Action": "kms:Encrypt", "Resource": "*"}]}"#,
    )
    .unwrap();
    let now = [("aws:CurrentTime", "2026-11-26T00:00:00Z")];
    // Not an Allow, and not a "missing" either: the statement might allow.
    assert_eq!(
        ask(&policy, &role(OWNER), "kms:Decrypt", &now),
        Verdict::Unsure("odd-allow".into())
    );
    assert_eq!(
        ask(&policy, &role(OWNER), "kms:Encrypt", &now),
        Verdict::Unsure("odd-deny".into())
    );
}

#[test]
fn malformed_policies_are_refused_naming_the_statement_and_field() {
    for (doc, needle) in [
        ("not json", "not a JSON policy document"),
        (r#"{"Version": "2012-10-17"}"#, "no Statement"),
        (
            r#"{"Statement": [{"Effect": "Maybe", "Action": "kms:*"}]}"#,
            "Statement[0]: Effect",
        ),
        (
            r#"{"Statement": [{"Effect": "Allow"}]}"#,
            "Statement[0]: give exactly one of Action and NotAction",
        ),
        (
            r#"{"Statement": [{"Effect": "Allow", "Action": 3}]}"#,
            "Statement[0]: Action",
        ),
    ] {
        let e = parse(doc).unwrap_err();
        assert!(e.0.contains(needle), "{doc}: {e}");
    }
}

#[test]
fn wildcards_match_runs_and_single_characters() {
    assert!(wildcard("kms:ReEncrypt*", "kms:ReEncryptTo", false));
    assert!(wildcard("arn:aws:kms:*:111122223333:key/*", KEY, false));
    assert!(wildcard("kms:?ecrypt", "kms:Decrypt", false));
    assert!(!wildcard("kms:Re*To", "kms:ReEncryptFrom", false));
    assert!(wildcard("*", "", false));
}

#[test]
fn a_condition_on_a_key_the_request_is_not_modelled_with_is_unsure_not_false() {
    // Admitting accounts of an organization is common; the organization is not known here.
    let policy = parse(
        r#"{"Statement": [{"Sid": "Org", "Effect": "Allow", "Principal": {"AWS": "*"},
            "Action": "kms:Decrypt", "Resource": "*",
            "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-abc123"}}}]}"#,
    )
    .unwrap();
    let caller = Caller {
        account: "222222222222".into(),
        arn: None,
    };
    let context = BTreeMap::new();
    let request = Request {
        caller: &caller,
        action: "kms:Decrypt",
        resource: "*",
        context: &context,
    };
    assert_eq!(evaluate(&policy, &request), Verdict::Unsure("Org".into()));
}
