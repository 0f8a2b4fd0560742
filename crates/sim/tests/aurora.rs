//! Aurora DB clusters on the simulator (SPEC 2 "Beyond the seed", 6.4): the three workflows
//! with DB cluster snapshots, the same Warning/Failed rules as RDS DB instances, and AWS's 5
//! cluster snapshot copies in flight per destination. The simulator refuses what AWS refuses
//! (a share under `aws/rds`, a shared cluster snapshot copied out of its Region, a sixth copy
//! in flight), so a `Success` proves the workflow kept to those rules.

use std::collections::BTreeSet;
use std::time::Duration;

use snaprelay_core::engine::{
    EngineConfig, Interrupt, Progress, Service, Throttled, prepare, run_session,
};
use snaprelay_core::gc::{Options, collect};
use snaprelay_core::ids::AccountId;
use snaprelay_core::model::{SnapshotState, Tag, tag_value, tags};
use snaprelay_core::policy::Policy;
use snaprelay_core::ports::prelude::*;
use snaprelay_core::ports::{Access, StateStore};
use snaprelay_core::report::SessionReport;
use snaprelay_core::status::Status;
use snaprelay_sim::{DbSpec, Encryption, SimCloud, Timing};
use snaprelay_state::SqliteStore;

struct Quiet;
impl Progress for Quiet {
    fn update(&self, _: &str, _: &str) {}
}

const SOURCE: &str = "111111111111";
const TARGET: &str = "222222222222";

fn account(s: &str) -> AccountId {
    AccountId::parse(s).unwrap()
}

struct Estate {
    cloud: SimCloud,
    /// Source account, us-east-1, admitting the target account.
    app_key: String,
    /// Source account, us-west-2.
    west_key: String,
    /// Target account, eu-west-1.
    vault_key: String,
    /// Target account, us-east-1: the intermediate copy's key.
    staging_key: String,
    /// Source account, us-east-1, admitting the target account: the re-encrypt key.
    share_key: String,
}

fn estate() -> Estate {
    let (src, tgt) = (account(SOURCE), account(TARGET));
    let cloud = SimCloud::new(&src);
    cloud.add_account(&tgt);
    let app_key = cloud.create_key(&src, "us-east-1", Some("app"), std::slice::from_ref(&tgt));
    let share_key = cloud.create_key(&src, "us-east-1", Some("share"), std::slice::from_ref(&tgt));
    let west_key = cloud.create_key(&src, "us-west-2", Some("dr-west"), &[]);
    let vault_key = cloud.create_key(&tgt, "eu-west-1", Some("vault"), &[]);
    let staging_key = cloud.create_key(&tgt, "us-east-1", Some("staging"), &[]);
    Estate {
        cloud,
        app_key,
        west_key,
        vault_key,
        staging_key,
        share_key,
    }
}

fn cluster(e: &Estate, id: &str, encryption: Encryption) {
    let src = account(SOURCE);
    e.cloud.add_db_cluster(
        &src,
        "us-east-1",
        DbSpec {
            id: id.into(),
            engine: "aurora-postgresql".into(),
            size_gib: 100,
            encryption,
            tags: vec![("tier".into(), "gold".into())],
            cluster: None,
        },
    );
    // Its writer: selected with type = "rds" it would be skipped, naming the cluster.
    e.cloud.add_db_instance(
        &src,
        "us-east-1",
        DbSpec {
            id: format!("{id}-writer"),
            engine: "aurora-postgresql".into(),
            size_gib: 100,
            encryption: Encryption::None,
            tags: vec![],
            cluster: Some(id.into()),
        },
    );
}

fn same_account_policy(e: &Estate) -> String {
    format!(
        r#"
name = "aurora"
[source]
regions = ["us-east-1"]
[[source.resources]]
type = "aurora"
ids = ["orders"]
[[targets]]
region = "us-west-2"
kms_key = "{}"
"#,
        e.west_key
    )
}

fn cross_account_policy(e: &Estate, reencrypt: bool, single_step: bool) -> String {
    let reencrypt_keys = match reencrypt {
        true => format!("reencrypt_keys = {{ \"us-east-1\" = \"{}\" }}", e.share_key),
        false => String::new(),
    };
    format!(
        r#"
name = "aurora"
[source]
regions = ["us-east-1"]
{reencrypt_keys}
[[source.resources]]
type = "aurora"
tags = {{ tier = "gold" }}
[[targets]]
account = "{TARGET}"
region = "eu-west-1"
role_arn = "arn:aws:iam::{TARGET}:role/snaprelay-target"
kms_key = "{vault}"
staging_kms_key = "{staging}"
rds_single_step = {single_step}
"#,
        vault = e.vault_key,
        staging = e.staging_key
    )
}

async fn run(cloud: &SimCloud, policy: &str, config: &EngineConfig) -> SessionReport {
    let store = SqliteStore::in_memory().unwrap();
    run_in(cloud, &store, policy, config).await
}

async fn run_in(
    cloud: &SimCloud,
    store: &SqliteStore,
    policy: &str,
    config: &EngineConfig,
) -> SessionReport {
    let policy = Policy::from_toml(policy).expect("policy");
    let cloud = Throttled::new(cloud);
    let prepared = prepare(&cloud, &policy).await.expect("prepare");
    run_session(
        &cloud,
        store,
        &Quiet,
        config,
        &Interrupt::never(),
        &prepared,
        None,
    )
    .await
    .expect("session")
}

#[tokio::test(start_paused = true)]
async fn a_cluster_is_replicated_to_another_region_of_its_account() {
    let e = estate();
    cluster(&e, "orders", Encryption::Key(e.app_key.clone()));
    let report = run(&e.cloud, &same_account_policy(&e), &EngineConfig::default()).await;
    assert_eq!(report.status, Status::Success, "{report:#?}");
    let r = &report.resources[0];
    assert_eq!(r.resource_type.as_str(), "aurora");
    assert_eq!(r.id, "orders");

    let src = account(SOURCE);
    let sources = e.cloud.db_cluster_snapshots(&src, "us-east-1");
    assert_eq!(sources.len(), 1, "{sources:#?}");
    assert!(sources[0].arn.contains(":cluster-snapshot:"));
    let replicas = e.cloud.db_cluster_snapshots(&src, "us-west-2");
    assert_eq!(replicas.len(), 1, "{replicas:#?}");
    assert_eq!(replicas[0].state, SnapshotState::Completed);
    assert_eq!(replicas[0].kms_key.as_deref(), Some(e.west_key.as_str()));
    assert_eq!(r.replicas[0].snapshots[0].id, replicas[0].arn);
    // Cluster snapshots, not DB snapshots.
    assert!(e.cloud.db_snapshots(&src, "us-west-2").is_empty());
    let calls = e.cloud.calls();
    assert_eq!(calls.get("rds:CreateDBClusterSnapshot"), Some(&1));
    assert_eq!(calls.get("rds:CopyDBClusterSnapshot"), Some(&1));
    assert_eq!(calls.get("rds:CreateDBSnapshot"), None);
}

#[tokio::test(start_paused = true)]
async fn a_cluster_reaches_another_account_and_region_in_two_steps_leaving_no_intermediate_or_share()
 {
    let e = estate();
    cluster(&e, "orders", Encryption::Key(e.app_key.clone()));
    // rds_single_step is asked for, and not used: AWS copies a shared cluster snapshot only
    // within its Region (the simulator refuses a one-step copy, as AWS does).
    let report = run(
        &e.cloud,
        &cross_account_policy(&e, false, true),
        &EngineConfig::default(),
    )
    .await;
    assert_eq!(report.status, Status::Success, "{report:#?}");

    let (src, tgt) = (account(SOURCE), account(TARGET));
    let replicas = e.cloud.db_cluster_snapshots(&tgt, "eu-west-1");
    assert_eq!(replicas.len(), 1, "{replicas:#?}");
    assert_eq!(replicas[0].kms_key.as_deref(), Some(e.vault_key.as_str()));
    assert_eq!(tag_value(&replicas[0].tags, tags::KIND), Some("replica"));
    // The intermediate copy in the source Region is deleted; the source is unshared.
    assert!(e.cloud.db_cluster_snapshots(&tgt, "us-east-1").is_empty());
    let sources = e.cloud.db_cluster_snapshots(&src, "us-east-1");
    assert_eq!(sources.len(), 1);
    assert!(sources[0].shared_with.is_empty(), "{sources:#?}");
    let calls = e.cloud.calls();
    assert_eq!(
        calls.get("rds:CopyDBClusterSnapshot"),
        Some(&2),
        "two steps"
    );
    assert_eq!(calls.get("rds:ModifyDBClusterSnapshotAttribute"), Some(&2));
}

#[tokio::test(start_paused = true)]
async fn a_cluster_under_aws_rds_fails_across_accounts_and_is_never_shared() {
    let e = estate();
    cluster(&e, "orders", Encryption::DefaultKey);
    let report = run(
        &e.cloud,
        &cross_account_policy(&e, false, false),
        &EngineConfig::default(),
    )
    .await;
    assert_eq!(report.status, Status::Failed, "{report:#?}");
    let messages = report.resources[0].messages.join("\n");
    assert!(messages.contains("aws/rds"), "{messages}");
    assert!(messages.contains("reencrypt_keys"), "{messages}");
    assert_eq!(
        e.cloud.calls().get("rds:ModifyDBClusterSnapshotAttribute"),
        None,
        "no share was ever asked for"
    );
    assert!(
        e.cloud
            .db_cluster_snapshots(&account(TARGET), "eu-west-1")
            .is_empty()
    );
}

#[tokio::test(start_paused = true)]
async fn a_cluster_under_aws_rds_reaches_another_account_through_a_copy_under_the_reencrypt_key() {
    let e = estate();
    cluster(&e, "orders", Encryption::DefaultKey);
    let report = run(
        &e.cloud,
        &cross_account_policy(&e, true, false),
        &EngineConfig::default(),
    )
    .await;
    assert_eq!(report.status, Status::Success, "{report:#?}");
    let (src, tgt) = (account(SOURCE), account(TARGET));
    let replicas = e.cloud.db_cluster_snapshots(&tgt, "eu-west-1");
    assert_eq!(replicas.len(), 1, "{replicas:#?}");
    assert_eq!(replicas[0].kms_key.as_deref(), Some(e.vault_key.as_str()));
    assert!(e.cloud.db_cluster_snapshots(&tgt, "us-east-1").is_empty());
    // Only the original is left in the source place (the extra copy is deleted), unshared.
    let sources = e.cloud.db_cluster_snapshots(&src, "us-east-1");
    assert_eq!(sources.len(), 1, "{sources:#?}");
    assert_eq!(tag_value(&sources[0].tags, tags::KIND), Some("source"));
    assert!(sources[0].shared_with.is_empty());
}

#[tokio::test(start_paused = true)]
async fn an_aurora_member_selected_as_rds_is_skipped_naming_type_aurora() {
    let e = estate();
    cluster(&e, "orders", Encryption::Key(e.app_key.clone()));
    let policy = same_account_policy(&e)
        .replace("type = \"aurora\"", "type = \"rds\"")
        .replace("ids = [\"orders\"]", "ids = [\"orders-writer\"]");
    let report = run(&e.cloud, &policy, &EngineConfig::default()).await;
    let messages = report.resources[0].messages.join("\n");
    assert!(messages.contains("type = \"aurora\""), "{messages}");
    assert!(
        e.cloud
            .db_snapshots(&account(SOURCE), "us-east-1")
            .is_empty()
    );
}

#[tokio::test(start_paused = true)]
async fn thirty_clusters_to_one_region_never_have_more_than_five_copies_in_flight() {
    let e = estate();
    for n in 0..30 {
        cluster(&e, &format!("c{n:02}"), Encryption::Key(e.app_key.clone()));
    }
    // Copies that take a while, so that they overlap.
    e.cloud.set_timing(Timing::default());
    let policy =
        same_account_policy(&e).replace("ids = [\"orders\"]", "tags = { tier = \"gold\" }");
    let report = run(&e.cloud, &policy, &EngineConfig::default()).await;
    assert_eq!(report.status, Status::Success, "{report:#?}");
    assert_eq!(report.resources.len(), 30);
    let stats = e.cloud.place_stats();
    let aurora: Vec<_> = stats
        .iter()
        .filter(|s| s.service == Service::Aurora)
        .collect();
    assert_eq!(aurora.len(), 1, "{stats:?}");
    assert_eq!(aurora[0].quota, 5);
    assert_eq!(
        aurora[0].peak_in_flight, 5,
        "the quota is used, never exceeded"
    );
    assert_eq!(
        e.cloud.calls().get("rds:CopyDBClusterSnapshot"),
        Some(&30),
        "no copy was refused: the scheduler kept within the quota"
    );
}

#[tokio::test(start_paused = true)]
async fn gc_lists_and_deletes_a_cluster_snapshot_a_session_left_unrecorded() {
    let e = estate();
    cluster(&e, "orders", Encryption::Key(e.app_key.clone()));
    let text = cross_account_policy(&e, false, false);
    let store = SqliteStore::in_memory().unwrap();
    let report = run_in(&e.cloud, &store, &text, &EngineConfig::default()).await;
    assert_eq!(report.status, Status::Success, "{report:#?}");
    let session = report.session_id.to_string();

    // A cluster snapshot a killed session took and never recorded.
    let src = account(SOURCE);
    let source = Access::ambient();
    let left = vec![
        Tag::new(tags::POLICY, "aurora"),
        Tag::new(tags::SESSION, &session),
        Tag::new(tags::KIND, "source"),
    ];
    e.cloud
        .create_db_cluster_snapshot(&source, "us-east-1", "orders", "aurora-left-behind", &left)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(6 * 3600)).await;

    let policy = Policy::from_toml(&text).unwrap();
    let prepared = prepare(&e.cloud, &policy).await.unwrap();
    let recorded = store.policy_restore_points("aurora").await.unwrap();
    let known = BTreeSet::from([session.clone()]);
    let gc = |act: bool| {
        collect(
            &e.cloud,
            &prepared,
            &policy.source.regions,
            &recorded,
            &known,
            &[],
            Options {
                act,
                unknown_sessions: false,
            },
        )
    };
    let listing = gc(false).await.unwrap();
    let found: Vec<(&str, &str)> = listing
        .found
        .iter()
        .map(|l| (l.action, l.id.as_str()))
        .collect();
    assert_eq!(
        found,
        vec![("delete", "aurora-left-behind")],
        "{listing:#?}"
    );
    let ids = || -> Vec<String> {
        e.cloud
            .db_cluster_snapshots(&src, "us-east-1")
            .into_iter()
            .map(|s| s.id)
            .collect()
    };
    assert_eq!(ids().len(), 2, "a listing changes nothing");

    let acted = gc(true).await.unwrap();
    assert!(acted.acted && acted.problems.is_empty(), "{acted:#?}");
    assert_eq!(ids().len(), 1, "the recorded source snapshot stays");
    assert!(!ids().contains(&"aurora-left-behind".to_owned()));
}

#[tokio::test(start_paused = true)]
async fn retention_deletes_older_cluster_snapshots_in_the_source_and_the_target() {
    use snaprelay_core::retention::{Accesses, apply};
    let e = estate();
    cluster(&e, "orders", Encryption::Key(e.app_key.clone()));
    let text = format!(
        "{}\n[retention]\nreplicas = {{ count = 1 }}\nsource = {{ count = 1 }}\n",
        cross_account_policy(&e, false, false)
    );
    let store = SqliteStore::in_memory().unwrap();
    let config = EngineConfig::default();
    let first = run_in(&e.cloud, &store, &text, &config).await;
    tokio::time::sleep(Duration::from_secs(3600)).await;
    let second = run_in(&e.cloud, &store, &text, &config).await;
    assert_eq!(
        (first.status, second.status),
        (Status::Success, Status::Success)
    );

    let policy = Policy::from_toml(&text).unwrap();
    let prepared = prepare(&e.cloud, &policy).await.unwrap();
    let accesses = Accesses::of_plan(&prepared, &policy.source.regions);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 7200;
    let report = apply(
        &e.cloud,
        &store,
        "aurora",
        &policy.retention,
        &accesses,
        now,
        false,
    )
    .await
    .unwrap();
    assert_eq!(report.deleted.len(), 2, "{report:#?}");

    let session = second.session_id.to_string();
    for (account, region) in [
        (account(SOURCE), "us-east-1"),
        (account(TARGET), "eu-west-1"),
    ] {
        let left = e.cloud.db_cluster_snapshots(&account, region);
        assert_eq!(left.len(), 1, "{left:#?}");
        assert_eq!(
            tag_value(&left[0].tags, tags::SESSION),
            Some(session.as_str())
        );
    }
    assert!(
        e.cloud
            .calls()
            .get("rds:DeleteDBClusterSnapshot")
            .copied()
            .unwrap_or(0)
            >= 2
    );
}

#[tokio::test(start_paused = true)]
async fn an_unencrypted_cluster_is_replicated_unencrypted_with_a_warning() {
    let e = estate();
    cluster(&e, "orders", Encryption::None);
    let report = run(&e.cloud, &same_account_policy(&e), &EngineConfig::default()).await;
    // The simulator refuses a KmsKeyId for an unencrypted cluster snapshot, as AWS does.
    assert_eq!(report.status, Status::Warning, "{report:#?}");
    assert!(
        report.resources[0]
            .messages
            .join("\n")
            .contains("stays unencrypted")
    );
    let replicas = e.cloud.db_cluster_snapshots(&account(SOURCE), "us-west-2");
    assert_eq!(replicas.len(), 1, "{replicas:#?}");
    assert_eq!(replicas[0].kms_key, None);
}
