//! The engine's workflows run end to end on the simulator, on virtual time: a day of AWS time
//! in milliseconds. These test the engine, not AWS; the conformance suite ties the simulator
//! to AWS's behaviour.

use snaprelay_core::engine::{EngineConfig, Interrupt, Progress, Throttled, prepare, run_session};
use snaprelay_core::ids::AccountId;
use snaprelay_core::model::SnapshotState;
use snaprelay_core::policy::Policy;
use snaprelay_core::report::SessionReport;
use snaprelay_core::status::Status;
use snaprelay_sim::{DbSpec, Encryption, Fault, InstanceSpec, SimCloud, VolumeSpec};
use snaprelay_state::SqliteStore;

struct Quiet;
impl Progress for Quiet {
    fn update(&self, _: &str, _: &str) {}
}

fn account(s: &str) -> AccountId {
    AccountId::parse(s).unwrap()
}

const SOURCE: &str = "111111111111";
const TARGET: &str = "222222222222";

struct Estate {
    cloud: SimCloud,
    source_key: String,
    west_key: String,
    vault_key: String,
}

fn estate() -> Estate {
    let (src, tgt) = (account(SOURCE), account(TARGET));
    let cloud = SimCloud::new(&src);
    cloud.add_account(&tgt);
    let source_key = cloud.create_key(&src, "us-east-1", Some("app"), std::slice::from_ref(&tgt));
    let west_key = cloud.create_key(&src, "us-west-2", Some("dr-west"), &[]);
    let vault_key = cloud.create_key(&tgt, "eu-west-1", Some("vault"), &[]);
    Estate {
        cloud,
        source_key,
        west_key,
        vault_key,
    }
}

async fn run(cloud: &SimCloud, policy: &str) -> SessionReport {
    let policy = Policy::from_toml(policy).expect("policy");
    // As the application does: throttled calls retried where they leave for AWS.
    let cloud = Throttled::new(cloud);
    let prepared = prepare(&cloud, &policy).await.expect("prepare");
    let store = SqliteStore::in_memory().unwrap();
    run_session(
        &cloud,
        &store,
        &Quiet,
        &EngineConfig::default(),
        &Interrupt::never(),
        &prepared,
        None,
    )
    .await
    .expect("session")
}

fn volume(size_gib: u32, key: &str) -> VolumeSpec {
    VolumeSpec {
        size_gib,
        encryption: Encryption::Key(key.to_owned()),
    }
}

#[tokio::test(start_paused = true)]
async fn same_and_cross_account_replicas_of_ec2_and_rds_complete_on_virtual_time() {
    let e = estate();
    let src = account(SOURCE);
    let web = e.cloud.add_instance(
        &src,
        "us-east-1",
        InstanceSpec {
            name: Some("web".into()),
            volumes: vec![volume(100, &e.source_key), volume(500, &e.source_key)],
            ..Default::default()
        },
    );
    e.cloud.add_db_instance(
        &src,
        "us-east-1",
        DbSpec {
            id: "orders".into(),
            engine: "postgres".into(),
            size_gib: 200,
            encryption: Encryption::Key(e.source_key.clone()),
            tags: vec![],
            cluster: None,
        },
    );
    let policy = format!(
        r#"
name = "dr"
[source]
regions = ["us-east-1"]
[[source.resources]]
type = "ec2"
ids = ["{web}"]
[[source.resources]]
type = "rds"
ids = ["orders"]
[[targets]]
region = "us-west-2"
kms_key = "{west}"
[[targets]]
account = "{TARGET}"
region = "eu-west-1"
role_arn = "arn:aws:iam::{TARGET}:role/snaprelay-target"
kms_key = "{vault}"
"#,
        west = e.west_key,
        vault = e.vault_key
    );
    let started = tokio::time::Instant::now();
    let report = run(&e.cloud, &policy).await;
    assert_eq!(report.status, Status::Success, "{report:#?}");
    assert!(
        started.elapsed().as_secs() > 600,
        "copies take simulated minutes"
    );
    let tgt = account(TARGET);
    let replicas = e.cloud.snapshots(&tgt, "eu-west-1");
    assert_eq!(replicas.len(), 2);
    assert!(replicas.iter().all(|s| s.state == SnapshotState::Completed
        && s.kms_key.as_deref() == Some(e.vault_key.as_str())));
    // Every share was removed once the copies were made.
    assert!(
        e.cloud
            .snapshots(&src, "us-east-1")
            .iter()
            .all(|s| s.shared_with.is_empty())
    );
    // Workflow C in two steps left only the final copy in the target account.
    assert!(e.cloud.db_snapshots(&tgt, "us-east-1").is_empty());
    assert_eq!(e.cloud.db_snapshots(&tgt, "eu-west-1").len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_copy_that_ends_in_error_fails_its_task_and_is_deleted() {
    let e = estate();
    let src = account(SOURCE);
    let web = e.cloud.add_instance(
        &src,
        "us-east-1",
        InstanceSpec {
            volumes: vec![volume(10, &e.source_key)],
            ..Default::default()
        },
    );
    e.cloud.inject(Fault::FailCopy {
        nth: 1,
        message: "internal error".into(),
    });
    let policy = format!(
        "name = \"dr\"\n[source]\nregions = [\"us-east-1\"]\n[[source.resources]]\ntype = \"ec2\"\n\
         ids = [\"{web}\"]\n[[targets]]\nregion = \"us-west-2\"\nkms_key = \"{}\"\n",
        e.west_key
    );
    let report = run(&e.cloud, &policy).await;
    assert_eq!(report.status, Status::Failed);
    let message = report.resources[0].messages.join("; ");
    assert!(message.contains("internal error"), "{message}");
    assert!(
        e.cloud.snapshots(&src, "us-west-2").is_empty(),
        "the failed copy is discarded"
    );
}

#[tokio::test(start_paused = true)]
async fn the_demo_scenarios_end_as_the_seed_says() {
    let (cloud, scenarios) = snaprelay_sim::demo::estate();
    for scenario in scenarios {
        let report = run(&cloud, &scenario.policy).await;
        assert_eq!(
            report.status, scenario.expected,
            "{}: {report:#?}",
            scenario.title
        );
    }
}

/// `count` instances of one volume each under the source key, replicated to us-west-2.
fn many_instances(e: &Estate, count: usize) -> String {
    let src = account(SOURCE);
    for n in 0..count {
        e.cloud.add_instance(
            &src,
            "us-east-1",
            InstanceSpec {
                tags: vec![("fleet".into(), "yes".into())],
                volumes: vec![volume(50 + 10 * n as u32, &e.source_key)],
                ..Default::default()
            },
        );
    }
    format!(
        "name = \"fleet\"\n[source]\nregions = [\"us-east-1\"]\n[[source.resources]]\ntype = \"ec2\"\n\
         tags = {{ fleet = \"yes\" }}\n[[targets]]\nregion = \"us-west-2\"\nkms_key = \"{}\"\n",
        e.west_key
    )
}

#[tokio::test(start_paused = true)]
async fn copies_stay_within_the_quota_of_twenty_per_place_and_all_complete() {
    let e = estate();
    let policy = many_instances(&e, 45);
    let report = run(&e.cloud, &policy).await;
    assert_eq!(report.status, Status::Success);
    let stats = e.cloud.place_stats();
    assert_eq!(stats.len(), 1, "{stats:?}");
    assert_eq!(
        stats[0].peak_in_flight, 20,
        "the quota is used, never exceeded"
    );
    assert_eq!(
        e.cloud.calls().get("ec2:CopySnapshot"),
        Some(&45),
        "no copy was refused"
    );
}

#[tokio::test(start_paused = true)]
async fn one_describe_call_covers_every_waiting_task_of_a_place() {
    let e = estate();
    let policy = many_instances(&e, 30);
    let report = run(&e.cloud, &policy).await;
    assert_eq!(report.status, Status::Success);
    // 30 source snapshots and 30 copies, each waited for by its own task: polled one task at a
    // time that would be dozens of calls per task.
    let polls = e.cloud.calls()["ec2:DescribeSnapshots"];
    assert!(
        polls < 60,
        "{polls} DescribeSnapshots calls for 60 snapshots"
    );
}

fn ec2_and_rds_cross_account(e: &Estate, instances: usize) -> String {
    let src = account(SOURCE);
    for _ in 0..instances {
        e.cloud.add_instance(
            &src,
            "us-east-1",
            InstanceSpec {
                tags: vec![("fleet".into(), "yes".into())],
                volumes: vec![volume(20, &e.source_key), volume(40, &e.source_key)],
                ..Default::default()
            },
        );
    }
    e.cloud.add_db_instance(
        &src,
        "us-east-1",
        DbSpec {
            id: "orders".into(),
            engine: "postgres".into(),
            size_gib: 100,
            encryption: Encryption::Key(e.source_key.clone()),
            tags: vec![("fleet".into(), "yes".into())],
            cluster: None,
        },
    );
    format!(
        r#"name = "faults"
[source]
regions = ["us-east-1"]
[[source.resources]]
type = "ec2"
tags = {{ fleet = "yes" }}
[[source.resources]]
type = "rds"
tags = {{ fleet = "yes" }}
[[targets]]
region = "us-west-2"
kms_key = "{west}"
[[targets]]
account = "{TARGET}"
region = "eu-west-1"
role_arn = "arn:aws:iam::{TARGET}:role/snaprelay-target"
kms_key = "{vault}"
"#,
        west = e.west_key,
        vault = e.vault_key
    )
}

#[tokio::test(start_paused = true)]
async fn a_session_with_30_percent_of_calls_throttled_still_succeeds() {
    let e = estate();
    let policy = ec2_and_rds_cross_account(&e, 10);
    e.cloud.inject(Fault::Throttle { per_mille: 300 });
    let report = run(&e.cloud, &policy).await;
    assert_eq!(report.status, Status::Success, "{report:#?}");
    let (_, throttled) = e.cloud.faults_fired();
    assert!(throttled > 30, "only {throttled} calls were throttled");
    // Every share was removed and no intermediate RDS copy is left, throttled or not.
    let src = account(SOURCE);
    assert!(
        e.cloud
            .snapshots(&src, "us-east-1")
            .iter()
            .all(|s| s.shared_with.is_empty())
    );
    assert!(
        e.cloud
            .db_snapshots(&account(TARGET), "us-east-1")
            .is_empty()
    );
    assert_eq!(e.cloud.snapshots(&account(TARGET), "eu-west-1").len(), 20);
}

#[tokio::test(start_paused = true)]
async fn quota_refusals_put_the_copy_back_in_the_queue_and_never_fail_it() {
    let e = estate();
    let policy = ec2_and_rds_cross_account(&e, 3);
    for nth in [1, 2, 5] {
        e.cloud.inject(Fault::FailCall {
            operation: "ec2:CopySnapshot",
            nth,
            code: "ResourceLimitExceeded",
            message: "You have reached the limit of 20 concurrent snapshot copies.".into(),
        });
    }
    e.cloud.inject(Fault::FailCall {
        operation: "rds:CopyDBSnapshot",
        nth: 1,
        code: "SnapshotQuotaExceeded",
        message: "Cannot copy more than 20 snapshots across regions".into(),
    });
    let report = run(&e.cloud, &policy).await;
    assert_eq!(report.status, Status::Success, "{report:#?}");
    assert_eq!(e.cloud.faults_fired().0, 4);
    assert_eq!(
        e.cloud.calls()["ec2:CopySnapshot"],
        12 + 3,
        "each refused copy tried again"
    );
}

#[tokio::test(start_paused = true)]
async fn a_key_revoked_mid_session_fails_its_task_with_the_aws_message_and_the_others_finish() {
    let e = estate();
    let (src, tgt) = (account(SOURCE), account(TARGET));
    let other_key =
        e.cloud
            .create_key(&src, "us-east-1", Some("other"), std::slice::from_ref(&tgt));
    let kept = e.cloud.add_instance(
        &src,
        "us-east-1",
        InstanceSpec {
            volumes: vec![volume(50, &e.source_key), volume(80, &e.source_key)],
            ..Default::default()
        },
    );
    let revoked = e.cloud.add_instance(
        &src,
        "us-east-1",
        InstanceSpec {
            volumes: vec![volume(60, &other_key), volume(90, &other_key)],
            ..Default::default()
        },
    );
    let policy = format!(
        "name = \"dr\"\n[source]\nregions = [\"us-east-1\"]\n[[source.resources]]\ntype = \"ec2\"\n\
         ids = [\"{kept}\", \"{revoked}\"]\n[[targets]]\naccount = \"{TARGET}\"\nregion = \"eu-west-1\"\n\
         role_arn = \"arn:aws:iam::{TARGET}:role/snaprelay-target\"\nkms_key = \"{}\"\n",
        e.vault_key
    );
    // The key policy stops admitting the target account while the source snapshots are taken.
    let revoke = async {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        e.cloud.set_key_admits(&other_key, &tgt, false);
    };
    let (report, ()) = tokio::join!(run(&e.cloud, &policy), revoke);

    assert_eq!(report.status, Status::Failed, "{report:#?}");
    let by_id = |id: &str| report.resources.iter().find(|r| r.id == id).unwrap();
    assert_eq!(by_id(&kept).status, Status::Success);
    let failed = by_id(&revoked);
    assert_eq!(failed.status, Status::Failed);
    let message = failed.messages.join("; ");
    assert!(
        message.contains(snaprelay_sim::KEY_NOT_ACCESSIBLE) && message.contains(&other_key),
        "AWS's message and the key to fix: {message}"
    );
    // The failed task's copies were deleted, the other's are there; no share is left; both
    // source restore points stay (they are whole).
    let replicas = e.cloud.snapshots(&tgt, "eu-west-1");
    assert_eq!(replicas.len(), 2);
    assert!(replicas.iter().all(|s| s.state == SnapshotState::Completed));
    let sources = e.cloud.snapshots(&src, "us-east-1");
    assert_eq!(sources.len(), 4);
    assert!(sources.iter().all(|s| s.shared_with.is_empty()));
    assert!(failed.source.is_some() && failed.replicas.is_empty());
}

/// A server runs several policies at once: each session is an owned value started from a
/// spawned task, and both record into one shared store.
#[tokio::test(start_paused = true)]
async fn two_policies_run_at_once_from_spawned_tasks_on_one_store() {
    use std::sync::Arc;

    use snaprelay_core::app::{App, RunRequest, run_policy};
    use snaprelay_core::ports::StateStore;

    let e = estate();
    let src = account(SOURCE);
    let web = e.cloud.add_instance(
        &src,
        "us-east-1",
        InstanceSpec {
            name: Some("web".into()),
            volumes: vec![volume(100, &e.source_key)],
            ..Default::default()
        },
    );
    e.cloud.add_db_instance(
        &src,
        "us-east-1",
        DbSpec {
            id: "orders".into(),
            engine: "postgres".into(),
            size_gib: 200,
            encryption: Encryption::Key(e.source_key.clone()),
            tags: vec![],
            cluster: None,
        },
    );
    let policy = |name: &str, kind: &str, id: &str| {
        Policy::from_toml(&format!(
            r#"
name = "{name}"
[source]
regions = ["us-east-1"]
[[source.resources]]
type = "{kind}"
ids = ["{id}"]
[[targets]]
account = "{TARGET}"
region = "eu-west-1"
role_arn = "arn:aws:iam::{TARGET}:role/snaprelay-target"
kms_key = "{vault}"
"#,
            vault = e.vault_key
        ))
        .expect("policy")
    };
    let store = Arc::new(SqliteStore::in_memory().unwrap());
    let app = App::new(Arc::new(e.cloud), store.clone());
    let tasks: Vec<_> = [
        policy("web-dr", "ec2", &web),
        policy("db-dr", "rds", "orders"),
    ]
    .into_iter()
    .map(|policy| {
        let app = app.clone();
        tokio::spawn(async move {
            run_policy(
                &app,
                &policy,
                &RunRequest::default(),
                &Quiet,
                &Interrupt::never(),
            )
            .await
            .expect("session")
        })
    })
    .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        let done = t.await.expect("no panic");
        statuses.push((done.report.policy.clone(), done.report.status));
    }
    assert_eq!(
        statuses,
        vec![
            ("web-dr".to_owned(), Status::Success),
            ("db-dr".to_owned(), Status::Success)
        ]
    );
    let sessions = store.sessions(None).await.unwrap();
    assert_eq!(sessions.len(), 2);
    assert!(sessions.iter().all(|s| s.ended_at.is_some()));
    for name in ["web-dr", "db-dr"] {
        let points = store.policy_restore_points(name).await.unwrap();
        assert_eq!(
            points
                .iter()
                .map(|p| p.point.kind.as_str())
                .collect::<Vec<_>>(),
            vec!["source", "replica"],
            "{name}"
        );
        assert!(
            !store.lease_held(name).await.unwrap(),
            "released at the end"
        );
    }
}

/// SPEC section 5: the first SIGINT deletes the copies in flight and the report says so once,
/// for RDS as for EBS; the intermediate copy of workflow C was interrupted, not failed.
#[tokio::test(start_paused = true)]
async fn an_interrupted_rds_copy_is_said_once_with_what_became_of_it() {
    let e = estate();
    let src = account(SOURCE);
    let tgt = account(TARGET);
    e.cloud.add_db_instance(
        &src,
        "us-east-1",
        DbSpec {
            id: "orders".into(),
            engine: "postgres".into(),
            size_gib: 500,
            encryption: Encryption::Key(e.source_key.clone()),
            tags: vec![],
            cluster: None,
        },
    );
    let policy = Policy::from_toml(&format!(
        r#"
name = "dr"
[source]
regions = ["us-east-1"]
[[source.resources]]
type = "rds"
ids = ["orders"]
[[targets]]
account = "{TARGET}"
region = "eu-west-1"
role_arn = "arn:aws:iam::{TARGET}:role/snaprelay-target"
kms_key = "{vault}"
"#,
        vault = e.vault_key
    ))
    .expect("policy");
    let cloud = Throttled::new(&e.cloud);
    let prepared = prepare(&cloud, &policy).await.expect("prepare");
    let store = SqliteStore::in_memory().unwrap();
    let (handle, interrupt) = Interrupt::new();
    let config = EngineConfig::default();
    let session = run_session(&cloud, &store, &Quiet, &config, &interrupt, &prepared, None);
    // The source snapshot of 500 GiB takes simulated minutes, the intermediate copy longer:
    // the interrupt comes while it is in flight.
    let raise = async {
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(30)).await;
            if !e.cloud.db_snapshots(&tgt, "us-east-1").is_empty() {
                handle.raise();
                return;
            }
        }
    };
    let (report, ()) = tokio::join!(session, raise);
    let report = report.expect("session");
    assert_eq!(report.status, Status::Failed);
    let message = report.resources[0].messages.join("; ");
    assert_eq!(
        message.matches("interrupted while copying").count(),
        1,
        "said once: {message}"
    );
    assert!(!message.contains("could not follow"), "{message}");
    assert!(
        !message.contains("intermediate copy in account"),
        "not said to have failed: {message}"
    );
    // RDS deletes only available DB snapshots (as AWS does): the copy in flight is named, left
    // to finish, with what to do about it.
    let left = e.cloud.db_snapshots(&tgt, "us-east-1");
    assert_eq!(left.len(), 1);
    assert!(
        message.contains("could not be deleted while it runs")
            && message.contains(&left[0].id)
            && message.contains("delete it by hand once it has finished"),
        "{message}"
    );
    assert!(e.cloud.db_snapshots(&tgt, "eu-west-1").is_empty());
}
