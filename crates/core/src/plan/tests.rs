//! One test per planner rule (see the module documentation of `plan`).

use super::*;
use crate::model::{DbCluster, DbInstance, Volume};

const SOURCE: &str = "111111111111";
const OTHER: &str = "222222222222";
const CMK: &str = "arn:aws:kms:us-east-1:111111111111:key/11111111-1111-1111-1111-111111111111";
const AWS_EBS: &str = "arn:aws:kms:us-east-1:111111111111:key/22222222-2222-2222-2222-222222222222";
const SAME_ACCOUNT_KEY: &str =
    "arn:aws:kms:eu-west-1:111111111111:key/44444444-4444-4444-4444-444444444444";
const TARGET_KEY: &str =
    "arn:aws:kms:eu-west-1:222222222222:key/33333333-3333-3333-3333-333333333333";

fn account(s: &str) -> AccountId {
    AccountId::parse(s).unwrap()
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

fn volume(id: &str, key: Option<&str>) -> Volume {
    Volume {
        setup: Default::default(),
        id: id.into(),
        device: None,
        size_gib: 8,
        encrypted: key.is_some(),
        kms_key_id: key.map(str::to_owned),
    }
}

fn instance(volumes: Vec<Volume>) -> Instance {
    Instance {
        setup: Default::default(),
        id: "i-0123456789abcdef0".into(),
        region: "us-east-1".into(),
        name: None,
        volumes,
    }
}

fn target(acc: &str, key_arn: Option<&str>) -> ResolvedTarget {
    ResolvedTarget {
        index: 0,
        account: account(acc),
        region: "eu-west-1".into(),
        access: Access::ambient(),
        key: key_arn.map(|k| key(k, KeyManager::Customer)),
        staging_keys: BTreeMap::new(),
        rds_single_step: false,
        staging_declared: false,
    }
}

fn estate(instance: Instance) -> Estate {
    let mut e = Estate {
        resources: vec![Resource::Ec2(instance)],
        ..Estate::default()
    };
    e.keys.insert(CMK.into(), key(CMK, KeyManager::Customer));
    e.keys.insert(AWS_EBS.into(), key(AWS_EBS, KeyManager::Aws));
    e
}

fn replicated(workflow: Workflow, kms_key_id: Option<String>) -> Decision {
    Decision::Replicate {
        workflow,
        kms_key_id,
        staging_kms_key_id: None,
        two_step: false,
        single_step: false,
        warnings: vec![],
        notes: vec![],
        reencrypt: None,
    }
}

fn decision(t: ResolvedTarget, e: &Estate) -> Decision {
    let p = plan("p", &account(SOURCE), &[t], e, vec![]);
    p.tasks[0].targets[0].decision.clone()
}

#[test]
fn same_account_with_a_target_key_uses_workflow_a() {
    let d = decision(
        target(SOURCE, Some(SAME_ACCOUNT_KEY)),
        &estate(instance(vec![volume("vol-1", Some(CMK))])),
    );
    assert_eq!(
        d,
        replicated(Workflow::SameAccount, Some(SAME_ACCOUNT_KEY.into()))
    );
}

#[test]
fn another_account_with_customer_keys_uses_workflow_b() {
    let d = decision(
        target(OTHER, Some(TARGET_KEY)),
        &estate(instance(vec![volume("vol-1", Some(CMK))])),
    );
    assert_eq!(
        d,
        replicated(Workflow::CrossAccountEc2, Some(TARGET_KEY.into()))
    );
}

#[test]
fn encrypted_without_target_key_is_a_warning_and_no_replica() {
    for acc in [SOURCE, OTHER] {
        let d = decision(
            target(acc, None),
            &estate(instance(vec![
                volume("vol-1", Some(CMK)),
                volume("vol-2", None),
            ])),
        );
        let Decision::Skip { reason } = &d else {
            panic!("{d:?}")
        };
        assert!(
            reason.contains("vol-1") && !reason.contains("vol-2"),
            "{reason}"
        );
        assert_eq!(d.status(), Status::Warning);
    }
}

#[test]
fn cross_account_with_an_aws_managed_key_fails_naming_volume_key_and_remedy() {
    let e = estate(instance(vec![
        volume("vol-1", Some(CMK)),
        volume("vol-2", Some(AWS_EBS)),
    ]));
    let d = decision(target(OTHER, Some(TARGET_KEY)), &e);
    let Decision::Refuse { reason } = &d else {
        panic!("{d:?}")
    };
    assert!(reason.contains("vol-2"), "{reason}");
    assert!(reason.contains(AWS_EBS), "{reason}");
    assert!(reason.contains("aws/ebs"), "{reason}");
    assert!(reason.contains("customer managed key"), "{reason}");
    assert_eq!(d.status(), Status::Failed);
}

#[test]
fn without_a_reencrypt_key_the_refusal_names_the_setting() {
    let e = estate(instance(vec![volume("vol-2", Some(AWS_EBS))]));
    let Decision::Refuse { reason } = decision(target(OTHER, Some(TARGET_KEY)), &e) else {
        panic!("refused")
    };
    assert!(reason.contains("reencrypt_keys"), "{reason}");
}

#[test]
fn a_reencrypt_key_replicates_the_aws_managed_volumes_through_a_copy_under_it() {
    let mut e = estate(instance(vec![
        volume("vol-1", Some(CMK)),
        volume("vol-2", Some(AWS_EBS)),
    ]));
    e.reencrypt_keys
        .insert("us-east-1".into(), key(CMK, KeyManager::Customer));
    let d = decision(target(OTHER, Some(TARGET_KEY)), &e);
    let Decision::Replicate {
        reencrypt: Some(r),
        notes,
        ..
    } = &d
    else {
        panic!("{d:?}")
    };
    assert_eq!(r.kms_key_id, CMK);
    assert_eq!(r.volumes, ["vol-2"], "only the volume under aws/ebs");
    assert!(
        notes.iter().any(|n| n.contains("never shared")),
        "{notes:?}"
    );
    assert_eq!(d.status(), Status::Success);
    // The same account needs no share, so no extra copy.
    let same = decision(target(SOURCE, Some(SAME_ACCOUNT_KEY)), &e);
    assert!(
        matches!(
            same,
            Decision::Replicate {
                reencrypt: None,
                ..
            }
        ),
        "{same:?}"
    );
}

#[test]
fn the_aws_managed_key_is_detected_from_key_metadata_not_the_name() {
    // A customer managed key whose ARN happens to look like anything: only KeyManager counts.
    let mut e = estate(instance(vec![volume("vol-1", Some(CMK))]));
    e.keys.get_mut(CMK).unwrap().manager = KeyManager::Aws;
    assert!(matches!(
        decision(target(OTHER, Some(TARGET_KEY)), &e),
        Decision::Refuse { .. }
    ));
}

#[test]
fn same_account_with_an_aws_managed_key_is_replicated() {
    let d = decision(
        target(SOURCE, Some(SAME_ACCOUNT_KEY)),
        &estate(instance(vec![volume("vol-1", Some(AWS_EBS))])),
    );
    assert!(
        matches!(
            d,
            Decision::Replicate {
                workflow: Workflow::SameAccount,
                ..
            }
        ),
        "{d:?}"
    );
}

#[test]
fn cross_account_aws_managed_key_fails_even_without_a_target_key() {
    let d = decision(
        target(OTHER, None),
        &estate(instance(vec![volume("vol-1", Some(AWS_EBS))])),
    );
    assert!(matches!(d, Decision::Refuse { .. }), "{d:?}");
}

#[test]
fn unencrypted_volumes_are_copied_encrypted_when_a_target_key_is_given() {
    let d = decision(
        target(OTHER, Some(TARGET_KEY)),
        &estate(instance(vec![volume("vol-1", None)])),
    );
    assert_eq!(
        d,
        replicated(Workflow::CrossAccountEc2, Some(TARGET_KEY.into()))
    );
}

#[test]
fn unencrypted_volumes_without_a_target_key_are_copied_as_they_are_with_a_warning() {
    let d = decision(
        target(SOURCE, None),
        &estate(instance(vec![volume("vol-1", None)])),
    );
    let Decision::Replicate {
        workflow,
        kms_key_id,
        warnings,
        ..
    } = &d
    else {
        panic!("{d:?}")
    };
    assert_eq!((*workflow, kms_key_id), (Workflow::SameAccount, &None));
    assert!(warnings[0].contains("unencrypted"), "{warnings:?}");
    assert_eq!(d.status(), Status::Warning);
}

#[test]
fn a_target_key_of_another_account_than_the_target_is_a_warning() {
    let d = decision(
        target(OTHER, Some(SAME_ACCOUNT_KEY)),
        &estate(instance(vec![volume("vol-1", Some(CMK))])),
    );
    let Decision::Replicate { warnings, .. } = &d else {
        panic!("{d:?}")
    };
    assert!(
        warnings[0].contains("belongs to account 111111111111"),
        "{warnings:?}"
    );
    assert_eq!(d.status(), Status::Warning);
}

#[test]
fn an_instance_without_volumes_is_a_warning_and_takes_no_snapshot() {
    let p = plan(
        "p",
        &account(SOURCE),
        &[target(SOURCE, Some(SAME_ACCOUNT_KEY))],
        &estate(instance(vec![])),
        vec![],
    );
    assert!(!p.tasks[0].take_snapshot);
    assert_eq!(p.tasks[0].targets[0].decision.status(), Status::Warning);
}

#[test]
fn an_unreadable_source_key_fails_the_target() {
    let mut e = estate(instance(vec![volume("vol-1", Some(CMK))]));
    e.keys.clear();
    e.key_errors
        .insert(CMK.into(), "AccessDeniedException".into());
    let d = decision(target(SOURCE, Some(SAME_ACCOUNT_KEY)), &e);
    let Decision::Refuse { reason } = d else {
        panic!()
    };
    assert!(reason.contains("AccessDeniedException"), "{reason}");
}

#[test]
fn a_disabled_source_key_fails_the_target() {
    let mut e = estate(instance(vec![volume("vol-1", Some(CMK))]));
    e.keys.get_mut(CMK).unwrap().state = "Disabled".into();
    assert!(matches!(
        decision(target(SOURCE, Some(SAME_ACCOUNT_KEY)), &e),
        Decision::Refuse { .. }
    ));
}

#[test]
fn each_target_is_decided_on_its_own() {
    let e = estate(instance(vec![volume("vol-1", Some(AWS_EBS))]));
    let mut other = target(OTHER, Some(TARGET_KEY));
    other.index = 1;
    let p = plan(
        "p",
        &account(SOURCE),
        &[target(SOURCE, Some(SAME_ACCOUNT_KEY)), other],
        &e,
        vec![],
    );
    let statuses: Vec<Status> = p.tasks[0]
        .targets
        .iter()
        .map(|t| t.decision.status())
        .collect();
    assert_eq!(statuses, [Status::Success, Status::Failed]);
    assert_eq!(p.expected_status(), Status::Failed);
}

// ---------------------------------------------------------------- RDS

const RDS_CMK: &str = "arn:aws:kms:us-east-1:111111111111:key/55555555-5555-5555-5555-555555555555";
const AWS_RDS: &str = "arn:aws:kms:us-east-1:111111111111:key/66666666-6666-6666-6666-666666666666";
const STAGING: &str = "arn:aws:kms:us-east-1:222222222222:key/77777777-7777-7777-7777-777777777777";

fn db(key_arn: Option<&str>) -> DbInstance {
    DbInstance {
        setup: Default::default(),
        id: "orders-db".into(),
        arn: "arn:aws:rds:us-east-1:111111111111:db:orders-db".into(),
        region: "us-east-1".into(),
        engine: "postgres".into(),
        encrypted: key_arn.is_some(),
        kms_key_id: key_arn.map(str::to_owned),
        cluster: None,
        size_gib: Some(20),
    }
}

fn rds_estate(db: DbInstance) -> Estate {
    let mut e = Estate {
        resources: vec![Resource::Rds(db)],
        ..Estate::default()
    };
    e.keys
        .insert(RDS_CMK.into(), key(RDS_CMK, KeyManager::Customer));
    e.keys.insert(AWS_RDS.into(), key(AWS_RDS, KeyManager::Aws));
    e
}

fn cross_account_target(staging: bool) -> ResolvedTarget {
    let mut t = target(OTHER, Some(TARGET_KEY));
    if staging {
        t.staging_keys
            .insert("us-east-1".into(), key(STAGING, KeyManager::Customer));
    }
    t
}

#[test]
fn rds_in_the_same_account_uses_workflow_a() {
    let d = decision(
        target(SOURCE, Some(SAME_ACCOUNT_KEY)),
        &rds_estate(db(Some(RDS_CMK))),
    );
    assert_eq!(
        d,
        replicated(Workflow::SameAccount, Some(SAME_ACCOUNT_KEY.into()))
    );
}

#[test]
fn rds_across_accounts_and_regions_copies_twice_through_the_staging_key() {
    let d = decision(cross_account_target(true), &rds_estate(db(Some(RDS_CMK))));
    let Decision::Replicate {
        workflow,
        kms_key_id,
        staging_kms_key_id,
        single_step,
        notes,
        ..
    } = &d
    else {
        panic!("{d:?}")
    };
    assert_eq!(*workflow, Workflow::CrossAccountRds);
    assert_eq!(kms_key_id.as_deref(), Some(TARGET_KEY));
    assert_eq!(staging_kms_key_id.as_deref(), Some(STAGING));
    assert!(!single_step);
    assert!(notes[0].contains("non-incremental"), "{notes:?}");
    assert_eq!(d.status(), Status::Success);
}

#[test]
fn rds_across_accounts_in_the_source_region_copies_once() {
    let mut t = cross_account_target(false);
    t.region = "us-east-1".into();
    let d = decision(t, &rds_estate(db(Some(RDS_CMK))));
    let Decision::Replicate {
        staging_kms_key_id,
        two_step,
        single_step,
        ..
    } = &d
    else {
        panic!("{d:?}")
    };
    assert_eq!(
        (staging_kms_key_id, two_step, single_step),
        (&None, &false, &false)
    );
}

/// The estate of one Aurora cluster, otherwise the DB `db`.
fn aurora_estate(db: DbInstance) -> Estate {
    let mut e = rds_estate(db.clone());
    e.resources = vec![Resource::Aurora(DbCluster {
        db,
        members: vec![],
        engine_mode: None,
        serverless_v2_scaling: None,
    })];
    e
}

#[test]
fn an_aurora_cluster_ignores_rds_single_step_and_copies_in_two_steps_saying_why() {
    let mut t = cross_account_target(true);
    t.rds_single_step = true;
    let d = decision(t, &aurora_estate(db(Some(RDS_CMK))));
    let Decision::Replicate {
        workflow,
        staging_kms_key_id,
        two_step,
        single_step,
        notes,
        ..
    } = &d
    else {
        panic!("{d:?}")
    };
    assert_eq!(*workflow, Workflow::CrossAccountRds);
    assert_eq!(
        (staging_kms_key_id.as_deref(), two_step, single_step),
        (Some(STAGING), &true, &false)
    );
    let notes = notes.join("\n");
    assert!(notes.contains("rds_single_step"), "{notes}");
    assert!(notes.contains("USER_CopySnapshot.html"), "{notes}");
    assert!(notes.contains("DB cluster"), "{notes}");
}

#[test]
fn an_aurora_cluster_under_aws_rds_across_accounts_fails_naming_the_cluster_and_the_setting() {
    let d = decision(
        cross_account_target(true),
        &aurora_estate(db(Some(AWS_RDS))),
    );
    let Decision::Refuse { reason } = &d else {
        panic!("{d:?}")
    };
    assert!(reason.contains("DB cluster orders-db"), "{reason}");
    assert!(reason.contains("reencrypt_keys"), "{reason}");
}

#[test]
fn an_unencrypted_cluster_is_copied_without_a_key_with_a_warning() {
    let d = decision(
        target(SOURCE, Some(SAME_ACCOUNT_KEY)),
        &aurora_estate(db(None)),
    );
    let Decision::Replicate {
        kms_key_id,
        warnings,
        ..
    } = &d
    else {
        panic!("{d:?}")
    };
    assert_eq!(kms_key_id, &None);
    assert!(
        warnings.join("\n").contains("stays unencrypted"),
        "{warnings:?}"
    );
    assert_eq!(d.status(), Status::Warning);
}

#[test]
fn rds_single_step_copies_once_across_accounts_and_regions() {
    let mut t = cross_account_target(false);
    t.rds_single_step = true;
    let d = decision(t, &rds_estate(db(Some(RDS_CMK))));
    let Decision::Replicate {
        staging_kms_key_id,
        two_step,
        single_step,
        ..
    } = &d
    else {
        panic!("{d:?}")
    };
    assert_eq!(
        (staging_kms_key_id, two_step, single_step),
        (&None, &false, &true)
    );
}

#[test]
fn rds_under_the_aws_managed_key_across_accounts_fails_naming_db_key_and_remedy() {
    let d = decision(cross_account_target(true), &rds_estate(db(Some(AWS_RDS))));
    let Decision::Refuse { reason } = &d else {
        panic!("{d:?}")
    };
    for needle in ["orders-db", AWS_RDS, "aws/rds", "customer managed key"] {
        assert!(reason.contains(needle), "{needle}: {reason}");
    }
}

#[test]
fn encrypted_rds_without_target_key_is_a_warning_and_no_replica() {
    let d = decision(target(SOURCE, None), &rds_estate(db(Some(RDS_CMK))));
    assert!(matches!(d, Decision::Skip { .. }), "{d:?}");
}

#[test]
fn an_aurora_member_is_skipped_naming_its_cluster_and_type_aurora() {
    let mut member = db(Some(RDS_CMK));
    member.cluster = Some("orders-cluster".into());
    let p = plan(
        "p",
        &account(SOURCE),
        &[target(SOURCE, Some(SAME_ACCOUNT_KEY))],
        &rds_estate(member),
        vec![],
    );
    assert!(!p.tasks[0].take_snapshot);
    let Decision::Skip { reason } = &p.tasks[0].targets[0].decision else {
        panic!()
    };
    assert!(reason.contains("Aurora cluster orders-cluster"), "{reason}");
    assert!(
        reason.contains("type = \"aurora\" (ids = [\"orders-cluster\"])"),
        "{reason}"
    );
}

#[test]
fn govcloud_cross_region_rds_copies_are_refused_before_any_change() {
    let mut govdb = db(Some(RDS_CMK));
    govdb.region = "us-gov-west-1".into();
    let mut t = target(SOURCE, Some(SAME_ACCOUNT_KEY));
    t.region = "us-gov-east-1".into();
    let d = decision(t, &rds_estate(govdb));
    let Decision::Refuse { reason } = &d else {
        panic!("{d:?}")
    };
    assert!(reason.contains("presigned URL"), "{reason}");
}

#[test]
fn an_unencrypted_db_across_accounts_and_regions_takes_an_unencrypted_intermediate_copy() {
    let d = decision(cross_account_target(true), &rds_estate(db(None)));
    let Decision::Replicate {
        staging_kms_key_id,
        two_step,
        kms_key_id,
        ..
    } = &d
    else {
        panic!("{d:?}")
    };
    assert_eq!((staging_kms_key_id, two_step), (&None, &true));
    assert_eq!(kms_key_id.as_deref(), Some(TARGET_KEY));
}

#[test]
fn a_staging_key_that_is_not_used_is_noted() {
    let mut t = cross_account_target(true);
    t.region = "us-east-1".into();
    t.staging_declared = true;
    let d = decision(t, &rds_estate(db(Some(RDS_CMK))));
    let Decision::Replicate { notes, .. } = &d else {
        panic!("{d:?}")
    };
    assert!(notes[0].contains("staging_kms_key"), "{notes:?}");
}
