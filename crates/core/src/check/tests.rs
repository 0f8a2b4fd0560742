//! The pure parts of `check`: what each workflow needs of each role, how a key policy and its
//! grants are read, the request context KMS sees, how a target key is judged, and the fixes
//! (JSON documents that, once applied, allow what was missing). The AWS side is tested on the
//! simulator (crates/sim/tests/check.rs) and on moto (tests/e2e/test_check.py).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::fixes::{
    create_key_fix, enable_key_fix, iam_policy_fix, key_policy_fix, trust_policy_fix,
};
use super::keys::judge;
use super::kms::{KeySide, KeyUser, granted, kms_context};
use super::needs::{KMS_ACTIONS, Needs, Purpose, cross_account_source_keys};
use super::principals::{Principal, assumed_role, principal_entry};
use super::*;
use crate::access::{self, Caller, Request, Statement, Verdict};
use crate::ids::{AccountId, RoleArn};
use crate::model::{DbCluster, DbInstance, Instance, KeyInfo, KeyManager, Resource, Volume};
use crate::plan::keys::KeyProblem;
use crate::plan::{Estate, ResolvedTarget, Workflow, plan};
use crate::ports::{Access, KeyGrant};

const SOURCE: &str = "111111111111";
const TARGET: &str = "222222222222";
const THIRD: &str = "333333333333";
const SOURCE_KEY: &str =
    "arn:aws:kms:us-east-1:111111111111:key/11111111-1111-1111-1111-111111111111";
const WEST_KEY: &str =
    "arn:aws:kms:us-west-2:111111111111:key/22222222-2222-2222-2222-222222222222";
const TARGET_KEY: &str =
    "arn:aws:kms:eu-west-1:222222222222:key/33333333-3333-3333-3333-333333333333";
const STAGING_KEY: &str =
    "arn:aws:kms:us-east-1:222222222222:key/44444444-4444-4444-4444-444444444444";
/// The source account's `aws/ebs` key: its snapshots cannot be shared.
const AWS_EBS: &str = "arn:aws:kms:us-east-1:111111111111:key/55555555-5555-5555-5555-555555555555";
const TARGET_ROLE: &str = "arn:aws:iam::222222222222:role/snaprelay-target";

fn account(s: &str) -> AccountId {
    AccountId::parse(s).unwrap()
}

fn role(arn: &str) -> Access {
    Access::role(RoleArn::parse(arn))
}

fn all_kms_actions() -> Vec<String> {
    KMS_ACTIONS.map(str::to_owned).to_vec()
}

/// The JSON document a fix ends with, after its `prefix`.
fn document(fix: &str, prefix: &str) -> Value {
    let (_, json) = fix
        .split_once(prefix)
        .unwrap_or_else(|| panic!("{prefix:?} in {fix}"));
    serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}"))
}

/// The statements of a key-policy fix, as JSON.
fn key_policy_statements(fix: &str) -> Vec<Value> {
    match document(fix, "Statement list: ") {
        Value::Array(statements) => statements,
        other => panic!("not a list of statements: {other}"),
    }
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect()
}

fn key(arn: &str, manager: KeyManager) -> KeyInfo {
    let (region, acc) = crate::ids::key_arn_parts(arn).unwrap();
    KeyInfo {
        arn: arn.to_owned(),
        account: acc,
        region,
        manager,
        state: "Enabled".into(),
        usage: "ENCRYPT_DECRYPT".into(),
        spec: "SYMMETRIC_DEFAULT".into(),
    }
}

/// Whether `statements` allow `action` on `key` to `caller`, through `service`.
fn verdict(
    statements: &[Statement],
    caller: &Caller,
    action: &str,
    key: &str,
    service: &str,
) -> Verdict {
    let region = crate::ids::key_arn_parts(key).unwrap().0;
    let context = kms_context(&caller.account, service, &region, action);
    access::evaluate(
        statements,
        &Request {
            caller,
            action,
            resource: key,
            context: &context,
        },
    )
}

fn target_role_caller() -> Caller {
    Caller {
        account: TARGET.into(),
        arn: Some(TARGET_ROLE.into()),
    }
}

// ------------------------------------------------------------------------------ the fixes

#[test]
fn a_key_policy_fix_is_the_documented_pair_of_statements_for_the_account() {
    let principal = format!("arn:aws:iam::{TARGET}:root");
    let statements = key_policy_statements(&key_policy_fix(&all_kms_actions(), &principal));
    assert_eq!(statements.len(), 2, "{statements:?}");
    let (usage, attachment) = (&statements[0], &statements[1]);
    assert_eq!(
        usage["Sid"],
        format!("Allow use of the key for snaprelay in {TARGET}")
    );
    assert_eq!(usage["Effect"], "Allow");
    assert_eq!(usage["Principal"]["AWS"], principal);
    assert_eq!(
        strings(&usage["Action"]),
        [
            "kms:Decrypt",
            "kms:DescribeKey",
            "kms:GenerateDataKey*",
            "kms:ReEncrypt*"
        ]
    );
    assert_eq!(usage["Resource"], "*");
    assert!(usage.get("Condition").is_none());
    assert_eq!(
        attachment["Sid"],
        format!("Allow attachment of persistent resources for snaprelay in {TARGET}")
    );
    assert_eq!(attachment["Principal"]["AWS"], principal);
    assert_eq!(strings(&attachment["Action"]), ["kms:CreateGrant"]);
    assert_eq!(attachment["Resource"], "*");
    assert_eq!(
        attachment["Condition"]["Bool"]["kms:GrantIsForAWSResource"],
        "true"
    );
}

#[test]
fn a_key_policy_fix_once_added_allows_every_kms_action_through_ec2_and_rds() {
    let owner = serde_json::json!({
        "Sid": "Owner", "Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{SOURCE}:root")},
        "Action": "kms:*", "Resource": "*"
    });
    let policy = |statements: Vec<Value>| {
        access::parse(&serde_json::json!({ "Statement": statements }).to_string()).unwrap()
    };
    let fix = key_policy_fix(&all_kms_actions(), &format!("arn:aws:iam::{TARGET}:root"));
    let before = policy(vec![owner.clone()]);
    let after = policy([vec![owner], key_policy_statements(&fix)].concat());
    for action in KMS_ACTIONS {
        for service in ["ec2", "rds"] {
            let caller = target_role_caller();
            assert_eq!(
                verdict(&before, &caller, action, SOURCE_KEY, service),
                Verdict::NotAllowed,
                "{action} via {service}"
            );
            assert!(
                matches!(
                    verdict(&after, &caller, action, SOURCE_KEY, service),
                    Verdict::Allowed(_)
                ),
                "{action} via {service}"
            );
        }
    }
}

#[test]
fn fixes_for_two_accounts_on_one_key_have_distinct_sids() {
    let sids: Vec<String> = [TARGET, THIRD]
        .iter()
        .flat_map(|a| {
            key_policy_statements(&key_policy_fix(
                &all_kms_actions(),
                &format!("arn:aws:iam::{a}:root"),
            ))
        })
        .map(|st| st["Sid"].as_str().unwrap().to_owned())
        .collect();
    let distinct: BTreeSet<&String> = sids.iter().collect();
    assert_eq!((sids.len(), distinct.len()), (4, 4), "{sids:?}");
}

#[test]
fn a_key_policy_fix_has_only_the_statements_of_the_missing_actions() {
    let principal = format!("arn:aws:iam::{TARGET}:root");
    let grant_only =
        key_policy_statements(&key_policy_fix(&["kms:CreateGrant".to_owned()], &principal));
    assert_eq!(grant_only.len(), 1);
    assert_eq!(strings(&grant_only[0]["Action"]), ["kms:CreateGrant"]);
    assert!(grant_only[0]["Condition"].is_object());
    let describe_only =
        key_policy_statements(&key_policy_fix(&["kms:DescribeKey".to_owned()], &principal));
    assert_eq!(describe_only.len(), 1);
    assert_eq!(strings(&describe_only[0]["Action"]), ["kms:DescribeKey"]);
    assert!(describe_only[0].get("Condition").is_none());
}

#[test]
fn a_key_policy_fix_for_a_role_of_the_keys_own_account_names_the_role() {
    let statements = key_policy_statements(&key_policy_fix(&all_kms_actions(), TARGET_ROLE));
    assert!(
        statements
            .iter()
            .all(|st| st["Principal"]["AWS"] == TARGET_ROLE
                && st["Sid"].as_str().unwrap().ends_with(TARGET_ROLE))
    );
}

#[test]
fn an_iam_policy_fix_is_a_policy_document_on_the_keys_and_on_any_snapshot() {
    let missing = vec![
        ("kms:CreateGrant".to_owned(), TARGET_KEY.to_owned()),
        ("kms:ReEncryptFrom".to_owned(), TARGET_KEY.to_owned()),
        ("kms:ReEncryptTo".to_owned(), TARGET_KEY.to_owned()),
        (
            "ec2:CopySnapshot".to_owned(),
            "arn:aws:ec2:eu-west-1::snapshot/*".to_owned(),
        ),
    ];
    let fix = iam_policy_fix(TARGET_ROLE, &missing);
    assert!(fix.starts_with(&format!("attach to {TARGET_ROLE} the IAM policy ")));
    let doc = document(&fix, "the IAM policy ");
    assert_eq!(doc["Version"], "2012-10-17");
    let statements = doc["Statement"].as_array().unwrap();
    assert_eq!(statements.len(), 1);
    let st = &statements[0];
    assert_eq!(st["Sid"], "SnaprelayReplication");
    assert_eq!(st["Effect"], "Allow");
    assert!(st.get("Principal").is_none());
    assert_eq!(
        strings(&st["Action"]),
        ["ec2:CopySnapshot", "kms:CreateGrant", "kms:ReEncrypt*"]
    );
    assert_eq!(strings(&st["Resource"]), ["*", TARGET_KEY]);
}

#[test]
fn an_iam_policy_fix_once_attached_allows_what_was_missing() {
    let missing: Vec<(String, String)> = KMS_ACTIONS
        .iter()
        .map(|a| ((*a).to_owned(), TARGET_KEY.to_owned()))
        .collect();
    let fix = iam_policy_fix(TARGET_ROLE, &missing);
    let statements = access::parse(&document(&fix, "the IAM policy ").to_string()).unwrap();
    for action in KMS_ACTIONS {
        assert!(
            matches!(
                verdict(
                    &statements,
                    &target_role_caller(),
                    action,
                    TARGET_KEY,
                    "ec2"
                ),
                Verdict::Allowed(_)
            ),
            "{action}"
        );
    }
}

#[test]
fn a_role_that_cannot_be_assumed_gets_a_trust_policy_statement() {
    let fix = trust_policy_fix(TARGET_ROLE);
    assert!(fix.starts_with(&format!("let the ambient principal assume {TARGET_ROLE}: ")));
    let st = document(&fix, "trust policy, ");
    assert_eq!(st["Sid"], "AllowSnaprelay");
    assert_eq!(st["Effect"], "Allow");
    assert_eq!(st["Principal"]["AWS"], "AMBIENT-PRINCIPAL-ARN");
    assert_eq!(strings(&st["Action"]), ["sts:AssumeRole"]);
    assert!(
        st.get("Resource").is_none(),
        "AWS refuses a Resource in a trust policy"
    );
}

// ---------------------------------------------------------- what each workflow needs of whom

fn instance(volumes: &[&str]) -> Resource {
    Resource::Ec2(Instance {
        setup: Default::default(),
        id: "i-0123456789abcdef0".into(),
        region: "us-east-1".into(),
        name: None,
        volumes: volumes
            .iter()
            .enumerate()
            .map(|(n, k)| Volume {
                setup: Default::default(),
                id: format!("vol-{n}"),
                device: None,
                size_gib: 8,
                encrypted: true,
                kms_key_id: Some((*k).to_owned()),
            })
            .collect(),
    })
}

fn db_instance(key: &str) -> Resource {
    Resource::Rds(DbInstance {
        setup: Default::default(),
        id: "orders".into(),
        arn: format!("arn:aws:rds:us-east-1:{SOURCE}:db:orders"),
        region: "us-east-1".into(),
        engine: "postgres".into(),
        encrypted: true,
        kms_key_id: Some(key.to_owned()),
        cluster: None,
        size_gib: Some(20),
    })
}

fn target(acc: &str, region: &str, access: Access, key_arn: &str) -> ResolvedTarget {
    ResolvedTarget {
        index: 0,
        account: account(acc),
        region: region.into(),
        access,
        key: Some(key(key_arn, KeyManager::Customer)),
        staging_keys: BTreeMap::new(),
        rds_single_step: false,
        staging_declared: false,
    }
}

fn same_account_target() -> ResolvedTarget {
    target(SOURCE, "us-west-2", source_access(), WEST_KEY)
}

fn cross_account_target() -> ResolvedTarget {
    let mut t = target(TARGET, "eu-west-1", role(TARGET_ROLE), TARGET_KEY);
    t.staging_keys
        .insert("us-east-1".into(), key(STAGING_KEY, KeyManager::Customer));
    t
}

fn source_access() -> Access {
    role(&format!("arn:aws:iam::{SOURCE}:role/snaprelay-source"))
}

/// The plan of `resource` to `targets`, numbered as the policy lists them.
fn prepared(resource: Resource, targets: &[ResolvedTarget]) -> Prepared {
    let targets: Vec<ResolvedTarget> = targets
        .iter()
        .enumerate()
        .map(|(index, t)| ResolvedTarget { index, ..t.clone() })
        .collect();
    let mut estate = Estate {
        resources: vec![resource],
        ..Estate::default()
    };
    estate
        .keys
        .insert(SOURCE_KEY.into(), key(SOURCE_KEY, KeyManager::Customer));
    estate
        .keys
        .insert(AWS_EBS.into(), key(AWS_EBS, KeyManager::Aws));
    Prepared {
        plan: plan("dr", &account(SOURCE), &targets, &estate, vec![]),
        source_access: source_access(),
    }
}

fn actions_of<'a>(needs: &'a Needs, who: &Access) -> BTreeSet<(&'a str, &'a str)> {
    needs.service[who]
        .iter()
        .map(|(a, r)| (a.as_str(), r.as_str()))
        .collect()
}

fn kms_of(needs: &Needs) -> BTreeMap<(Access, &str), (&Access, Vec<&str>)> {
    needs
        .kms
        .iter()
        .map(|((who, key), p)| {
            (
                (who.clone(), key.as_str()),
                (&p.owner, p.services.iter().copied().collect()),
            )
        })
        .collect()
}

#[test]
fn a_same_account_replica_needs_the_source_credentials_to_snapshot_and_copy_without_sharing() {
    let p = prepared(instance(&[SOURCE_KEY]), &[same_account_target()]);
    let needs = Needs::of(&p);
    let src = source_access();
    assert_eq!(
        kms_of(&needs),
        BTreeMap::from([
            ((src.clone(), SOURCE_KEY), (&src, vec!["ec2"])),
            ((src.clone(), WEST_KEY), (&src, vec!["ec2"])),
        ])
    );
    let east = "arn:aws:ec2:us-east-1::snapshot/*";
    let west = "arn:aws:ec2:us-west-2::snapshot/*";
    assert_eq!(needs.service.len(), 1);
    assert_eq!(
        actions_of(&needs, &src),
        BTreeSet::from([
            ("ec2:CreateSnapshots", east),
            ("ec2:CreateTags", east),
            ("ec2:DescribeInstances", "*"),
            ("ec2:DescribeSnapshots", "*"),
            ("ec2:DeleteSnapshot", east),
            ("ec2:CopySnapshot", west),
            ("ec2:CreateTags", west),
            ("ec2:DeleteSnapshot", west),
        ])
    );
}

#[test]
fn a_cross_account_ec2_replica_needs_the_source_to_share_and_the_target_role_to_use_both_keys() {
    let p = prepared(instance(&[SOURCE_KEY]), &[cross_account_target()]);
    let needs = Needs::of(&p);
    let (src, tgt) = (source_access(), role(TARGET_ROLE));
    // The source key's policy is read with the source credentials, the target key's with the
    // target's; the staging key is RDS's only.
    assert_eq!(
        kms_of(&needs),
        BTreeMap::from([
            ((tgt.clone(), SOURCE_KEY), (&src, vec!["ec2"])),
            ((tgt.clone(), TARGET_KEY), (&tgt, vec!["ec2"])),
        ])
    );
    let east = "arn:aws:ec2:us-east-1::snapshot/*";
    let target_region = "arn:aws:ec2:eu-west-1::snapshot/*";
    assert!(actions_of(&needs, &src).contains(&("ec2:ModifySnapshotAttribute", east)));
    assert_eq!(
        actions_of(&needs, &tgt),
        BTreeSet::from([
            ("ec2:CopySnapshot", target_region),
            ("ec2:CreateTags", target_region),
            ("ec2:DescribeSnapshots", "*"),
            ("ec2:DeleteSnapshot", target_region),
        ])
    );
}

#[test]
fn a_cross_account_rds_replica_in_two_steps_needs_the_staging_key_and_copies_in_both_regions() {
    let p = prepared(db_instance(SOURCE_KEY), &[cross_account_target()]);
    assert!(matches!(
        &p.plan.tasks[0].targets[0].decision,
        Decision::Replicate {
            workflow: Workflow::CrossAccountRds,
            two_step: true,
            ..
        }
    ));
    let needs = Needs::of(&p);
    let (src, tgt) = (source_access(), role(TARGET_ROLE));
    assert_eq!(
        kms_of(&needs),
        BTreeMap::from([
            ((tgt.clone(), SOURCE_KEY), (&src, vec!["rds"])),
            ((tgt.clone(), TARGET_KEY), (&tgt, vec!["rds"])),
            ((tgt.clone(), STAGING_KEY), (&tgt, vec!["rds"])),
        ])
    );
    let source_snapshots = format!("arn:aws:rds:us-east-1:{SOURCE}:snapshot:*");
    let staging = format!("arn:aws:rds:us-east-1:{TARGET}:snapshot:*");
    let replicas = format!("arn:aws:rds:eu-west-1:{TARGET}:snapshot:*");
    assert_eq!(
        actions_of(&needs, &src),
        BTreeSet::from([
            ("rds:CreateDBSnapshot", source_snapshots.as_str()),
            ("rds:AddTagsToResource", source_snapshots.as_str()),
            ("rds:DescribeDBInstances", "*"),
            ("rds:DescribeDBSnapshots", "*"),
            ("rds:DeleteDBSnapshot", source_snapshots.as_str()),
            ("rds:ModifyDBSnapshotAttribute", source_snapshots.as_str()),
        ])
    );
    let target_side = actions_of(&needs, &tgt);
    for snapshots in [&staging, &replicas] {
        for action in [
            "rds:CopyDBSnapshot",
            "rds:AddTagsToResource",
            "rds:DeleteDBSnapshot",
        ] {
            assert!(
                target_side.contains(&(action, snapshots.as_str())),
                "{action} on {snapshots}"
            );
        }
    }
}

#[test]
fn a_cross_account_aurora_replica_needs_the_cluster_snapshot_actions_on_cluster_snapshots() {
    let Resource::Rds(db) = db_instance(SOURCE_KEY) else {
        unreachable!()
    };
    let cluster = Resource::Aurora(DbCluster {
        db,
        members: vec![],
        engine_mode: None,
        serverless_v2_scaling: None,
    });
    let p = prepared(cluster, &[cross_account_target()]);
    let needs = Needs::of(&p);
    let (src, tgt) = (source_access(), role(TARGET_ROLE));
    // The keys are used through RDS, as for a DB instance.
    assert_eq!(
        kms_of(&needs),
        BTreeMap::from([
            ((tgt.clone(), SOURCE_KEY), (&src, vec!["rds"])),
            ((tgt.clone(), TARGET_KEY), (&tgt, vec!["rds"])),
            ((tgt.clone(), STAGING_KEY), (&tgt, vec!["rds"])),
        ])
    );
    let source_snapshots = format!("arn:aws:rds:us-east-1:{SOURCE}:cluster-snapshot:*");
    assert_eq!(
        actions_of(&needs, &src),
        BTreeSet::from([
            ("rds:CreateDBClusterSnapshot", source_snapshots.as_str()),
            ("rds:AddTagsToResource", source_snapshots.as_str()),
            ("rds:DescribeDBClusters", "*"),
            ("rds:DescribeDBInstances", "*"),
            ("rds:DescribeDBClusterSnapshots", "*"),
            ("rds:DeleteDBClusterSnapshot", source_snapshots.as_str()),
            (
                "rds:ModifyDBClusterSnapshotAttribute",
                source_snapshots.as_str()
            ),
        ])
    );
    let target_side = actions_of(&needs, &tgt);
    for region in ["us-east-1", "eu-west-1"] {
        let snapshots = format!("arn:aws:rds:{region}:{TARGET}:cluster-snapshot:*");
        for action in [
            "rds:CopyDBClusterSnapshot",
            "rds:AddTagsToResource",
            "rds:DeleteDBClusterSnapshot",
        ] {
            assert!(
                target_side.contains(&(action, snapshots.as_str())),
                "{action} on {snapshots}"
            );
        }
    }
}

#[test]
fn the_default_key_workaround_needs_the_reencrypt_key_and_a_copy_in_the_source() {
    const AWS_RDS: &str =
        "arn:aws:kms:us-east-1:111111111111:key/66666666-6666-6666-6666-666666666666";
    const SHARE_KEY: &str =
        "arn:aws:kms:us-east-1:111111111111:key/88888888-8888-8888-8888-888888888888";
    let Resource::Rds(db) = db_instance(AWS_RDS) else {
        unreachable!()
    };
    let cluster = Resource::Aurora(DbCluster {
        db,
        members: vec![],
        engine_mode: None,
        serverless_v2_scaling: None,
    });
    let mut p = prepared(cluster.clone(), &[cross_account_target()]);
    let mut estate = Estate {
        resources: vec![cluster],
        ..Estate::default()
    };
    estate
        .keys
        .insert(AWS_RDS.into(), key(AWS_RDS, KeyManager::Aws));
    estate
        .reencrypt_keys
        .insert("us-east-1".into(), key(SHARE_KEY, KeyManager::Customer));
    p.plan = plan("dr", &account(SOURCE), &p.plan.targets, &estate, vec![]);
    assert!(matches!(
        &p.plan.tasks[0].targets[0].decision,
        Decision::Replicate {
            reencrypt: Some(_),
            ..
        }
    ));
    let needs = Needs::of(&p);
    let (src, tgt) = (source_access(), role(TARGET_ROLE));
    let kms = kms_of(&needs);
    // The target uses the re-encrypt key, never aws/rds; the source copies under it.
    assert!(
        kms.contains_key(&(tgt.clone(), SHARE_KEY)),
        "{:?}",
        kms.keys()
    );
    assert!(
        !kms.contains_key(&(tgt.clone(), AWS_RDS)),
        "{:?}",
        kms.keys()
    );
    assert!(
        kms.contains_key(&(src.clone(), SHARE_KEY)),
        "{:?}",
        kms.keys()
    );
    let source_snapshots = format!("arn:aws:rds:us-east-1:{SOURCE}:cluster-snapshot:*");
    assert!(
        actions_of(&needs, &src)
            .contains(&("rds:CopyDBClusterSnapshot", source_snapshots.as_str()))
    );
    // The preflight of run looks at the same key.
    let uses = cross_account_source_keys(&p);
    assert!(
        uses.keys().all(|(_, k, _)| k == SHARE_KEY),
        "{:?}",
        uses.keys()
    );
}

#[test]
fn a_cross_account_rds_replica_in_one_step_needs_no_staging_key() {
    let mut t = cross_account_target();
    t.rds_single_step = true;
    let needs = Needs::of(&prepared(db_instance(SOURCE_KEY), &[t]));
    assert!(!needs.kms.keys().any(|(_, k)| k == STAGING_KEY));
    let staging = format!("arn:aws:rds:us-east-1:{TARGET}:snapshot:*");
    assert!(
        !actions_of(&needs, &role(TARGET_ROLE))
            .iter()
            .any(|(_, r)| *r == staging)
    );
}

#[test]
fn a_replica_the_plan_refuses_needs_nothing() {
    let p = prepared(instance(&[AWS_EBS]), &[cross_account_target()]);
    assert!(matches!(
        p.plan.tasks[0].targets[0].decision,
        Decision::Refuse { .. }
    ));
    let needs = Needs::of(&p);
    assert!(needs.kms.is_empty() && needs.service.is_empty());
    assert_eq!(plan_refusals(&p).len(), 1);
}

#[test]
fn the_preflight_looks_at_the_source_keys_of_replicas_in_another_account_only() {
    let p = prepared(
        instance(&[SOURCE_KEY]),
        &[same_account_target(), cross_account_target()],
    );
    let uses = cross_account_source_keys(&p);
    let keys: Vec<(&Access, &str, &str)> = uses
        .keys()
        .map(|(who, key, service)| (who, key.as_str(), *service))
        .collect();
    assert_eq!(keys, [(&role(TARGET_ROLE), SOURCE_KEY, "ec2")]);
    assert_eq!(uses.values().next().unwrap().owner, source_access());
}

// ------------------------------------------------------------------- the key side of KMS

#[test]
fn kms_sees_the_callers_account_and_the_service_in_the_keys_region() {
    let context = kms_context(TARGET, "rds", "us-east-1", "kms:Decrypt");
    assert_eq!(
        context,
        BTreeMap::from([
            ("kms:CallerAccount".to_owned(), vec![TARGET.to_owned()]),
            ("aws:PrincipalAccount".to_owned(), vec![TARGET.to_owned()]),
            (
                "kms:ViaService".to_owned(),
                vec!["rds.us-east-1.amazonaws.com".to_owned()]
            ),
        ])
    );
}

#[test]
fn the_grants_ebs_and_rds_create_are_for_an_aws_resource() {
    let context = kms_context(TARGET, "ec2", "eu-west-1", "kms:CreateGrant");
    assert_eq!(
        context["kms:GrantIsForAWSResource"],
        vec!["true".to_owned()]
    );
    assert_eq!(
        context["kms:ViaService"],
        vec!["ec2.eu-west-1.amazonaws.com".to_owned()]
    );
}

#[test]
fn a_grant_counts_for_its_grantee_role_or_account_and_only_for_its_operations() {
    let grant = |grantee: &str| KeyGrant {
        grantee: grantee.to_owned(),
        operations: vec!["Decrypt".into(), "DescribeKey".into()],
    };
    let role = Some(TARGET_ROLE);
    for grantee in [TARGET_ROLE, "arn:aws:iam::222222222222:root", TARGET] {
        let grants = [grant(grantee)];
        assert!(granted(&grants, "kms:Decrypt", TARGET, role), "{grantee}");
        assert!(
            granted(&grants, "kms:DescribeKey", TARGET, role),
            "{grantee}"
        );
        assert!(
            !granted(&grants, "kms:CreateGrant", TARGET, role),
            "{grantee}"
        );
    }
    let others = [
        grant("arn:aws:iam::222222222222:role/someone-else"),
        grant(THIRD),
    ];
    assert!(!granted(&others, "kms:Decrypt", TARGET, role));
    assert!(!granted(&[], "kms:Decrypt", TARGET, role));
}

fn key_policy(statements: &str) -> Vec<Statement> {
    access::parse(&format!(r#"{{"Statement": [{statements}]}}"#)).unwrap()
}

fn allow(principal: &str, condition: &str) -> String {
    format!(
        r#"{{"Sid": "Use", "Effect": "Allow", "Principal": {{"AWS": "{principal}"}},
            "Action": "kms:*", "Resource": "*"{condition}}}"#
    )
}

fn target_role_principal() -> Principal {
    Principal {
        access: role(TARGET_ROLE),
        account: Some(account(TARGET)),
        role: RoleArn::parse(TARGET_ROLE),
        other: None,
        error: None,
    }
}

fn key_side(
    statements: &[Statement],
    grants: &[KeyGrant],
    key: &str,
    services: &[&'static str],
) -> KeySide {
    let user = KeyUser::of(&target_role_principal(), key).unwrap();
    let mut purpose = Purpose::new(key, &role(TARGET_ROLE));
    for s in services {
        purpose.add(s, "ec2 i-0123456789abcdef0 to targets[0]");
    }
    KeySide::evaluate(statements, grants, &user, key, &purpose)
}

fn every_kms_action() -> BTreeSet<&'static str> {
    KMS_ACTIONS.into_iter().collect()
}

#[test]
fn a_key_policy_naming_the_role_in_its_own_account_needs_no_iam_permission() {
    let side = key_side(
        &key_policy(&allow(TARGET_ROLE, "")),
        &[],
        TARGET_KEY,
        &["ec2"],
    );
    assert!(side.missing.is_empty() && side.denied.is_empty() && side.unsure.is_empty());
    assert_eq!(side.direct, every_kms_action());
}

#[test]
fn a_key_policy_naming_the_account_leaves_the_role_to_its_iam_policies() {
    let statements = key_policy(&allow("arn:aws:iam::222222222222:root", ""));
    let side = key_side(&statements, &[], TARGET_KEY, &["ec2"]);
    assert!(side.missing.is_empty());
    assert!(side.direct.is_empty(), "{:?}", side.direct);
    let finding = side.finding(TARGET_ROLE, TARGET_KEY, "ec2 i-1 to targets[0]");
    assert_eq!(finding.status, Holds::Ok);
    assert_eq!(finding.detail, "allowed (for ec2 i-1 to targets[0])");
}

#[test]
fn a_key_of_another_account_is_never_used_directly_even_if_its_policy_names_the_role() {
    let side = key_side(
        &key_policy(&allow(TARGET_ROLE, "")),
        &[],
        SOURCE_KEY,
        &["ec2"],
    );
    assert!(side.missing.is_empty());
    assert!(side.direct.is_empty());
}

#[test]
fn a_key_policy_without_the_target_account_misses_every_action_and_says_how_to_add_them() {
    let statements = key_policy(&allow("arn:aws:iam::111111111111:root", ""));
    let side = key_side(&statements, &[], SOURCE_KEY, &["ec2", "rds"]);
    assert_eq!(side.missing, all_kms_actions());
    let entry = format!("arn:aws:iam::{TARGET}:root");
    let finding = side.finding(&entry, SOURCE_KEY, "ec2 i-1 to targets[0]");
    assert_eq!(finding.status, Holds::Missing);
    assert_eq!(finding.check, "key policy");
    assert_eq!(finding.principal, entry);
    assert_eq!(
        finding.actions,
        [
            "kms:CreateGrant",
            "kms:Decrypt",
            "kms:DescribeKey",
            "kms:GenerateDataKey*",
            "kms:ReEncrypt*"
        ]
    );
    assert_eq!(
        key_policy_statements(finding.fix.as_deref().unwrap()).len(),
        2
    );
}

#[test]
fn a_grant_stands_in_for_the_key_policy() {
    let statements = key_policy(&allow("arn:aws:iam::111111111111:root", ""));
    let grants = [KeyGrant {
        grantee: TARGET.into(),
        operations: KMS_ACTIONS
            .iter()
            .map(|a| a.trim_start_matches("kms:").to_owned())
            .collect(),
    }];
    let side = key_side(&statements, &grants, SOURCE_KEY, &["ec2"]);
    assert!(side.missing.is_empty(), "{:?}", side.missing);
    assert!(side.direct.is_empty(), "another account's key");
}

#[test]
fn a_deny_in_the_key_policy_wins_and_is_named() {
    let statements = key_policy(&format!(
        r#"{}, {{"Sid": "NoDecrypt", "Effect": "Deny", "Principal": "*", "Action": "kms:Decrypt",
             "Resource": "*"}}"#,
        allow("arn:aws:iam::222222222222:root", "")
    ));
    let side = key_side(&statements, &[], SOURCE_KEY, &["ec2"]);
    assert_eq!(side.denied, [r#"kms:Decrypt (Sid "NoDecrypt")"#]);
    let finding = side.finding("arn:aws:iam::222222222222:root", SOURCE_KEY, "x");
    assert_eq!(finding.status, Holds::Missing);
    assert_eq!(
        finding.fix.as_deref(),
        Some("remove or narrow the Deny statement named above")
    );
}

#[test]
fn a_key_policy_that_admits_the_account_through_ec2_only_misses_what_rds_needs() {
    let through_ec2 =
        r#", "Condition": {"StringEquals": {"kms:ViaService": "ec2.us-east-1.amazonaws.com"}}"#;
    let statements = key_policy(&allow("arn:aws:iam::222222222222:root", through_ec2));
    assert!(
        key_side(&statements, &[], SOURCE_KEY, &["ec2"])
            .missing
            .is_empty()
    );
    assert_eq!(
        key_side(&statements, &[], SOURCE_KEY, &["rds"]).missing,
        all_kms_actions()
    );
}

#[test]
fn a_key_policy_snaprelay_cannot_evaluate_is_unknown_not_ok() {
    let unknown_condition =
        r#", "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-abc123"}}"#;
    let statements = key_policy(&allow("arn:aws:iam::222222222222:root", unknown_condition));
    let side = key_side(&statements, &[], SOURCE_KEY, &["ec2"]);
    assert!(!side.unsure.is_empty());
    let finding = side.finding("arn:aws:iam::222222222222:root", SOURCE_KEY, "x");
    assert_eq!(finding.status, Holds::Unknown);
    assert!(finding.fix.is_none());
}

// ------------------------------------------------------------------------------ principals

#[test]
fn an_assumed_role_session_is_its_role() {
    assert_eq!(
        assumed_role("arn:aws:sts::222222222222:assumed-role/snaprelay-target/session-1"),
        RoleArn::parse(TARGET_ROLE)
    );
    assert_eq!(assumed_role(TARGET_ROLE), RoleArn::parse(TARGET_ROLE));
    assert_eq!(assumed_role("arn:aws:iam::222222222222:user/alice"), None);
    assert_eq!(
        assumed_role("arn:aws:sts::222222222222:federated-user/bob"),
        None
    );
}

#[test]
fn a_key_policy_names_the_role_in_its_own_account_and_the_account_across_accounts() {
    let access = role(TARGET_ROLE);
    assert_eq!(
        principal_entry(&access, Some((TARGET, TARGET, Some(TARGET_ROLE)))),
        TARGET_ROLE
    );
    assert_eq!(
        principal_entry(&access, Some((TARGET, SOURCE, Some(TARGET_ROLE)))),
        "arn:aws:iam::222222222222:root"
    );
    assert_eq!(
        principal_entry(&access, Some((TARGET, TARGET, None))),
        "arn:aws:iam::222222222222:root"
    );
    assert_eq!(principal_entry(&access, None), TARGET_ROLE);
    assert_eq!(
        principal_entry(&Access::ambient(), None),
        "the ambient credentials"
    );
}

// ----------------------------------------------------------------------------- target keys

fn problem_key(state: &str, usage: &str, manager: KeyManager) -> KeyInfo {
    KeyInfo {
        state: state.into(),
        usage: usage.into(),
        ..key(TARGET_KEY, manager)
    }
}

/// The problem `resolve_key` finds with a customer managed key that exists but cannot
/// encrypt snapshots.
fn unusable(state: &str, usage: &str) -> KeyProblem {
    let info = problem_key(state, usage, KeyManager::Customer);
    let why = info.unusable_for_snapshots().unwrap();
    KeyProblem::Unusable { info, why }
}

#[test]
fn key_problems_say_what_prepare_says_of_them() {
    let cases = [
        (
            KeyProblem::OtherRegion {
                key: TARGET_KEY.into(),
                key_region: "eu-west-1".into(),
                region: "us-east-1".into(),
            },
            "the key is in eu-west-1, but it is used in us-east-1; KMS keys are regional (use \
             the key's replica in us-east-1, or alias/NAME for a key of that Region)",
        ),
        (
            KeyProblem::Unusable {
                info: problem_key("Disabled", "ENCRYPT_DECRYPT", KeyManager::Customer),
                why: "key K is Disabled, not Enabled".into(),
            },
            "key K is Disabled, not Enabled",
        ),
        (
            KeyProblem::Denied {
                access: role(TARGET_ROLE),
                account: account(TARGET),
                message: "not authorized".into(),
            },
            "the credentials used there (role arn:aws:iam::222222222222:role/snaprelay-target) \
             may not use this key (not authorized); a key of another account needs a key policy \
             that admits account 222222222222",
        ),
        (
            KeyProblem::NotFound {
                account: account(TARGET),
                region: "eu-west-1".into(),
                message: "Alias alias/vault is not found".into(),
            },
            "no such key in account 222222222222 Region eu-west-1 (Alias alias/vault is not \
             found)",
        ),
    ];
    for (problem, message) in cases {
        assert_eq!(problem.to_string(), message);
    }
}

#[test]
fn a_usable_customer_managed_target_key_holds() {
    let (status, detail, fix) = judge(
        &Ok(key(TARGET_KEY, KeyManager::Customer)),
        "eu-west-1",
        TARGET_ROLE,
    );
    assert_eq!(status, Holds::Ok);
    assert_eq!(
        detail,
        format!("{TARGET_KEY}: enabled, symmetric, customer managed")
    );
    assert!(fix.is_none());
}

#[test]
fn a_disabled_target_key_is_missing_and_enabling_it_is_the_fix() {
    let (status, detail, fix) = judge(
        &Err(unusable("Disabled", "ENCRYPT_DECRYPT")),
        "eu-west-1",
        TARGET_ROLE,
    );
    assert_eq!(status, Holds::Missing);
    assert_eq!(detail, format!("{TARGET_KEY} is Disabled, not Enabled"));
    assert_eq!(fix, Some(enable_key_fix("eu-west-1", TARGET_KEY)));
    assert_eq!(
        enable_key_fix("eu-west-1", TARGET_KEY),
        format!("aws kms enable-key --region eu-west-1 --key-id {TARGET_KEY}")
    );
}

#[test]
fn a_target_key_pending_deletion_is_missing_and_its_deletion_is_cancelled() {
    let (status, detail, fix) = judge(
        &Err(unusable("PendingDeletion", "ENCRYPT_DECRYPT")),
        "eu-west-1",
        TARGET_ROLE,
    );
    assert_eq!(status, Holds::Missing);
    assert_eq!(detail, format!("{TARGET_KEY} is scheduled for deletion"));
    let fix = fix.unwrap();
    assert!(
        fix.starts_with("aws kms cancel-key-deletion --region eu-west-1")
            && fix.ends_with(&format!(
                "aws kms enable-key --region eu-west-1 --key-id {TARGET_KEY}"
            )),
        "{fix}"
    );
}

#[test]
fn an_aws_managed_or_asymmetric_target_key_is_missing_and_a_customer_key_is_the_fix() {
    let aws_managed = judge(
        &Ok(key(TARGET_KEY, KeyManager::Aws)),
        "eu-west-1",
        TARGET_ROLE,
    );
    assert_eq!(aws_managed.0, Holds::Missing);
    assert!(
        aws_managed.1.contains("is an AWS managed key"),
        "{}",
        aws_managed.1
    );
    let asymmetric = judge(
        &Err(unusable("Enabled", "SIGN_VERIFY")),
        "eu-west-1",
        TARGET_ROLE,
    );
    assert_eq!(asymmetric.0, Holds::Missing);
    assert!(
        asymmetric.1.contains("symmetric ENCRYPT_DECRYPT"),
        "{}",
        asymmetric.1
    );
    for (_, _, fix) in [aws_managed, asymmetric] {
        assert_eq!(fix, Some(create_key_fix("eu-west-1")));
    }
    let fix = create_key_fix("eu-west-1");
    assert!(fix.contains("aws kms create-key --region eu-west-1") && fix.contains("replicate-key"));
}

#[test]
fn a_target_key_of_another_region_or_none_is_missing_and_a_key_of_the_region_is_the_fix() {
    let other_region = Err(KeyProblem::OtherRegion {
        key: STAGING_KEY.into(),
        key_region: "us-east-1".into(),
        region: "eu-west-1".into(),
    });
    let (status, detail, fix) = judge(&other_region, "eu-west-1", TARGET_ROLE);
    assert_eq!(status, Holds::Missing);
    assert_eq!(
        detail,
        format!("{STAGING_KEY} is in us-east-1; a replica in eu-west-1 needs a key of eu-west-1")
    );
    assert_eq!(fix, Some(create_key_fix("eu-west-1")));
    let not_found = Err(KeyProblem::NotFound {
        account: account(TARGET),
        region: "eu-west-1".into(),
        message: "no alias".into(),
    });
    let (status, detail, fix) = judge(&not_found, "eu-west-1", TARGET_ROLE);
    assert_eq!(status, Holds::Missing);
    assert_eq!(detail, "no such key in eu-west-1 (no alias)");
    assert_eq!(fix, Some(create_key_fix("eu-west-1")));
}

#[test]
fn a_target_key_its_credentials_may_not_describe_gets_a_key_policy_statement() {
    let denied = Err(KeyProblem::Denied {
        access: role(TARGET_ROLE),
        account: account(TARGET),
        message: "not authorized".into(),
    });
    let (status, detail, fix) = judge(&denied, "eu-west-1", TARGET_ROLE);
    assert_eq!(status, Holds::Missing);
    assert_eq!(
        detail,
        "the target's credentials may not describe it (not authorized)"
    );
    let statements = key_policy_statements(&fix.unwrap());
    assert_eq!(statements.len(), 1);
    assert_eq!(statements[0]["Principal"]["AWS"], TARGET_ROLE);
    assert_eq!(strings(&statements[0]["Action"]), ["kms:DescribeKey"]);
}

#[test]
fn a_status_is_named_as_the_json_names_it() {
    for h in [Holds::Ok, Holds::Missing, Holds::Unknown] {
        assert_eq!(serde_json::to_value(h).unwrap(), h.as_str());
    }
}
