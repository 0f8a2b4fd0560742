//! Restoring and drilling Aurora clusters on the simulator (SPEC 6.2, 6.3): a restore makes
//! the cluster, waits for it, adds one writer of the recorded class and waits for that; a
//! drill does the same in an isolated group, checks it, and deletes the writer and then the
//! cluster (RDS refuses a cluster whose instances are not being deleted), leaving nothing.
//! Printed RTOs are simulated seconds.

use std::sync::Arc;
use std::time::Duration;

use snaprelay_core::app::{
    App, AppError, DrillOptions, ErrorKind, RunRequest, Waiting, drill, restore, run_policy,
};
use snaprelay_core::engine::{Interrupt, Progress};
use snaprelay_core::ids::{AccountId, RoleArn};
use snaprelay_core::policy::Policy;
use snaprelay_core::ports::prelude::*;
use snaprelay_core::ports::{Access, Find};
use snaprelay_core::restore::drill::{DrillReport, DrillStatus};
use snaprelay_core::restore::{
    CreatedKind, DRILL_TAG, RESTORE_TAG, RestoreOptions, RestoreReport, RestoreStatus,
};
use snaprelay_core::status::Status;
use snaprelay_sim::{DbSpec, Encryption, Fault, SimCloud};
use snaprelay_state::SqliteStore;

struct Quiet;
impl Progress for Quiet {
    fn update(&self, _: &str, _: &str) {}
}

const SOURCE: &str = "111111111111";
const TARGET: &str = "222222222222";
const TARGET_REGION: &str = "eu-west-1";

fn account(s: &str) -> AccountId {
    AccountId::parse(s).unwrap()
}

struct Estate {
    cloud: Arc<SimCloud>,
    app: App,
    policy: Policy,
}

/// An Aurora PostgreSQL cluster with a writer of `db.r6g.2xlarge`, replicated once to another
/// account and Region.
async fn replicated() -> Estate {
    let (src, tgt) = (account(SOURCE), account(TARGET));
    let cloud = SimCloud::with_seed(&src, 7);
    cloud.add_account(&tgt);
    let app_key = cloud.create_key(&src, "us-east-1", Some("app"), std::slice::from_ref(&tgt));
    let vault = cloud.create_key(&tgt, TARGET_REGION, Some("vault"), &[]);
    cloud.add_db_cluster(
        &src,
        "us-east-1",
        DbSpec {
            id: "orders-cluster".into(),
            engine: "aurora-postgresql".into(),
            size_gib: 50,
            encryption: Encryption::Key(app_key.clone()),
            tags: vec![],
            cluster: None,
        },
    );
    cloud.add_db_instance(
        &src,
        "us-east-1",
        DbSpec {
            id: "orders-1".into(),
            engine: "aurora-postgresql".into(),
            size_gib: 50,
            encryption: Encryption::Key(app_key),
            tags: vec![],
            cluster: Some("orders-cluster".into()),
        },
    );
    cloud.set_db_instance_class(&src, "us-east-1", "orders-1", "db.r6g.2xlarge");
    let policy = Policy::from_toml(&format!(
        r#"
name = "dr"
[source]
regions = ["us-east-1"]
[[source.resources]]
type = "aurora"
ids = ["orders-cluster"]
[[targets]]
account = "{TARGET}"
region = "{TARGET_REGION}"
role_arn = "arn:aws:iam::{TARGET}:role/snaprelay-target"
kms_key = "{vault}"
"#
    ))
    .unwrap();
    let cloud = Arc::new(cloud);
    let store = Arc::new(SqliteStore::in_memory().unwrap());
    let app = App::new(cloud.clone(), store);
    let done = run_policy(
        &app,
        &policy,
        &RunRequest::default(),
        &Quiet,
        &Interrupt::never(),
    )
    .await
    .unwrap();
    assert_eq!(done.report.status, Status::Success, "{:#?}", done.report);
    Estate { cloud, app, policy }
}

fn target() -> Access {
    Access::role(Some(
        RoleArn::parse(&format!("arn:aws:iam::{TARGET}:role/snaprelay-target")).unwrap(),
    ))
}

impl Estate {
    async fn drill(&self, options: DrillOptions) -> DrillReport {
        drill(
            &self.app,
            &self.policy,
            &options,
            Duration::from_secs(5),
            &|_: &str| {},
        )
        .await
        .unwrap()
    }

    async fn restore(&self, options: RestoreOptions) -> Result<RestoreReport, AppError> {
        restore(
            &self.app,
            &self.policy,
            &options,
            Waiting {
                poll: Duration::from_secs(5),
                timeout: Duration::from_secs(60 * 60),
            },
            &|_: &str| {},
        )
        .await
    }

    /// The clusters and DB instances in the target carrying `tag`, with their states.
    async fn tagged(&self, tag: &str) -> Vec<String> {
        let c = self.cloud.as_ref();
        let mut left = Vec::new();
        for x in c
            .find_clusters(&target(), TARGET_REGION, &Find::TagKey(tag))
            .await
            .unwrap()
        {
            left.push(format!("cluster {} {}", x.id, x.status));
        }
        for d in c
            .find_dbs(&target(), TARGET_REGION, &Find::TagKey(tag))
            .await
            .unwrap()
        {
            left.push(format!("db {} {}", d.id, d.status));
        }
        for g in c
            .find_security_groups(&target(), TARGET_REGION, &Find::TagKey(tag))
            .await
            .unwrap()
        {
            left.push(format!("group {}", g.id));
        }
        left
    }
}

fn options() -> DrillOptions {
    DrillOptions {
        timeout: Duration::from_secs(30 * 60),
        ..DrillOptions::default()
    }
}

#[tokio::test(start_paused = true)]
async fn a_drill_of_a_cluster_passes_and_deletes_the_writer_then_the_cluster() {
    let e = replicated().await;
    let report = e.drill(options()).await;
    let r = &report.results[0];
    println!("simulated RTO of the cluster: {:?} s", r.rto_seconds);
    assert_eq!(report.status, DrillStatus::Passed, "{report:#?}");
    let checks: Vec<(&str, bool)> = r.checks.iter().map(|c| (c.name, c.ok)).collect();
    assert_eq!(checks, [("db_available", true), ("engine_version", true)]);
    let kinds: Vec<CreatedKind> = r.created.iter().map(|c| c.kind).collect();
    assert_eq!(
        kinds,
        [
            CreatedKind::SecurityGroup,
            CreatedKind::DbCluster,
            CreatedKind::DbInstance
        ]
    );
    // Both DB identifiers are the drill's name (SPEC 6.3): RDS keeps clusters and instances
    // apart.
    assert_eq!(r.created[1].id, r.created[2].id, "{:?}", r.created);
    assert!(
        r.created[1].id.starts_with("snaprelay-drill-d-"),
        "{:?}",
        r.created
    );
    // A cluster restore (10 simulated minutes) and its writer (10 more).
    assert!(r.rto_seconds.unwrap() >= 1200.0, "{r:#?}");
    assert!(r.cleaned_up, "{r:#?}");
    assert_eq!(e.tagged(DRILL_TAG).await, Vec::<String>::new());
}

#[tokio::test(start_paused = true)]
async fn a_small_drill_takes_the_smallest_class_of_the_family() {
    let e = replicated().await;
    let report = e
        .drill(DrillOptions {
            small: true,
            keep: true,
            ..options()
        })
        .await;
    assert_eq!(report.status, DrillStatus::Passed, "{report:#?}");
    let writer = &report.results[0].created[2].id;
    assert_eq!(
        e.cloud
            .db_instance_class(&account(TARGET), TARGET_REGION, writer)
            .as_deref(),
        Some("db.r6g.large")
    );
    // Kept: the next drill deletes it, the writer before the cluster.
    let left = e.tagged(DRILL_TAG).await;
    assert_eq!(left.len(), 3, "{left:?}");
    let next = e.drill(options()).await;
    assert_eq!(next.status, DrillStatus::Passed, "{next:#?}");
    assert!(
        next.messages
            .iter()
            .any(|m| m.contains("removed what earlier drills left")),
        "{next:#?}"
    );
    assert_eq!(e.tagged(DRILL_TAG).await, Vec::<String>::new());
}

#[tokio::test(start_paused = true)]
async fn a_cluster_restore_that_fails_fails_the_drill_and_is_cleaned_up() {
    let e = replicated().await;
    e.cloud.inject(Fault::FailDbRestore { nth: 1 });
    let report = e.drill(options()).await;
    assert_eq!(report.status, DrillStatus::Failed);
    let r = &report.results[0];
    assert_eq!(
        (r.checks[0].name, r.checks[0].ok),
        ("db_available", false),
        "{r:#?}"
    );
    assert!(r.checks[0].detail.contains("failed"), "{r:#?}");
    assert!(r.cleaned_up, "{r:#?}");
    assert_eq!(e.tagged(DRILL_TAG).await, Vec::<String>::new());
}

#[tokio::test(start_paused = true)]
async fn a_restore_makes_the_cluster_and_its_writer_of_the_recorded_class() {
    let e = replicated().await;
    let report = e
        .restore(RestoreOptions {
            resource_id: "orders-cluster".into(),
            name: Some("orders-dr".into()),
            ..RestoreOptions::default()
        })
        .await
        .unwrap();
    assert_eq!(report.status, RestoreStatus::Success, "{report:#?}");
    let made: Vec<(CreatedKind, &str, &str)> = report
        .created
        .iter()
        .map(|c| (c.kind, c.id.as_str(), c.state.as_str()))
        .collect();
    assert_eq!(
        made,
        [
            (CreatedKind::DbCluster, "orders-dr", "available"),
            (CreatedKind::DbInstance, "orders-dr", "available"),
        ]
    );
    assert_eq!(
        e.cloud
            .db_instance_class(&account(TARGET), TARGET_REGION, "orders-dr")
            .as_deref(),
        Some("db.r6g.2xlarge")
    );
    let cluster = e
        .cloud
        .find_clusters(&target(), TARGET_REGION, &Find::Name("orders-dr"))
        .await
        .unwrap();
    assert_eq!(cluster[0].members, ["orders-dr"]);
    assert!(
        cluster[0]
            .kms_key_id
            .as_deref()
            .is_some_and(|k| k.contains(TARGET)),
        "the replica's key: {cluster:?}"
    );
    assert_eq!(e.tagged(RESTORE_TAG).await.len(), 2);

    // The name is taken now: invalid input, nothing made.
    let again = e
        .restore(RestoreOptions {
            resource_id: "orders-cluster".into(),
            name: Some("orders-dr".into()),
            ..RestoreOptions::default()
        })
        .await
        .unwrap_err();
    assert_eq!(again.kind, ErrorKind::InvalidInput, "{again:?}");
    assert!(
        again.message.contains("DB cluster orders-dr exists"),
        "{again:?}"
    );
    // Taken by a DB instance of that name (the writer's, were it restored) alone: the same.
    e.cloud.add_db_instance(
        &account(TARGET),
        TARGET_REGION,
        DbSpec {
            id: "busy".into(),
            engine: "postgres".into(),
            size_gib: 20,
            encryption: Encryption::None,
            tags: vec![],
            cluster: None,
        },
    );
    let err = e
        .restore(RestoreOptions {
            resource_id: "orders-cluster".into(),
            name: Some("busy".into()),
            ..RestoreOptions::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidInput, "{err:?}");
    assert!(err.message.contains("DB instance busy"), "{err:?}");
    // Flags that do not apply to a database are named, not dropped.
    let err = e
        .restore(RestoreOptions {
            resource_id: "orders-cluster".into(),
            subnet: Some("subnet-0123456789abcdef0".into()),
            ..RestoreOptions::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidInput, "{err:?}");
    assert!(
        err.message
            .contains("--subnet applies only to --as instance"),
        "{err:?}"
    );
    assert_eq!(
        e.tagged(RESTORE_TAG).await.len(),
        2,
        "nothing more was made"
    );
}

#[tokio::test(start_paused = true)]
async fn a_restore_with_no_wait_still_waits_for_the_cluster_but_not_for_the_writer() {
    let e = replicated().await;
    let report = e
        .restore(RestoreOptions {
            resource_id: "orders-cluster".into(),
            db_instance_class: Some("db.r6g.xlarge".into()),
            no_wait: true,
            ..RestoreOptions::default()
        })
        .await
        .unwrap();
    assert_eq!(report.status, RestoreStatus::Success, "{report:#?}");
    let states: Vec<&str> = report.created.iter().map(|c| c.state.as_str()).collect();
    assert_eq!(states, ["available", "creating"]);
    assert!(
        report.messages.iter().any(|m| m.contains("--no-wait")),
        "{report:#?}"
    );
    assert_eq!(
        e.cloud
            .db_instance_class(&account(TARGET), TARGET_REGION, &report.created[1].id)
            .as_deref(),
        Some("db.r6g.xlarge")
    );
}

#[tokio::test(start_paused = true)]
async fn a_serverless_v2_cluster_comes_back_with_its_capacity_and_a_serverless_writer() {
    let e = replicated().await;
    let (src, tgt) = (account(SOURCE), account(TARGET));
    // The same cluster, made Serverless v2, and replicated again.
    e.cloud
        .set_cluster_serverless_v2(&src, "us-east-1", "orders-cluster", 0.5, 8.0);
    e.cloud
        .set_db_instance_class(&src, "us-east-1", "orders-1", "db.serverless");
    let done = run_policy(
        &e.app,
        &e.policy,
        &RunRequest::default(),
        &Quiet,
        &Interrupt::never(),
    )
    .await
    .unwrap();
    assert_eq!(done.report.status, Status::Success);

    let report = e
        .restore(RestoreOptions {
            resource_id: "orders-cluster".into(),
            name: Some("orders-v2".into()),
            ..RestoreOptions::default()
        })
        .await
        .unwrap();
    assert_eq!(report.status, RestoreStatus::Success, "{report:#?}");
    assert_eq!(
        e.cloud
            .db_instance_class(&tgt, TARGET_REGION, "orders-v2")
            .as_deref(),
        Some("db.serverless")
    );

    // AWS's rule, which the restore met by sending the capacity: a db.serverless instance
    // in a cluster without it is refused.
    let point = e
        .cloud
        .db_cluster_snapshots(&tgt, TARGET_REGION)
        .into_iter()
        .next()
        .unwrap();
    let plain = snaprelay_core::ports::ClusterRestoreRequest {
        db_cluster_id: "plain".into(),
        snapshot_id: point.id.clone(),
        engine: "aurora-postgresql".into(),
        engine_version: None,
        port: None,
        db_subnet_group: None,
        db_cluster_parameter_group: None,
        vpc_security_group_ids: vec![],
        storage_type: None,
        serverless_v2_scaling: None,
        tags: vec![],
    };
    e.cloud
        .restore_db_cluster(&target(), TARGET_REGION, &plain)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3600)).await;
    let refused = e
        .cloud
        .create_cluster_instance(
            &target(),
            TARGET_REGION,
            &snaprelay_core::ports::ClusterInstanceRequest {
                db_instance_id: "plain".into(),
                db_cluster_id: "plain".into(),
                engine: "aurora-postgresql".into(),
                db_instance_class: "db.serverless".into(),
                publicly_accessible: false,
                tags: vec![],
            },
        )
        .await
        .unwrap_err();
    assert_eq!(
        refused.code.as_deref(),
        Some("InvalidDBClusterStateFault"),
        "{refused}"
    );
}
