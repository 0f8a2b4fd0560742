//! Drills on the simulator (SPEC 6.3): a drill of an instance and a DB instance passes and
//! leaves nothing; every failure (an instance that never runs, a DB restore that fails, a
//! timeout) ends the drill `Failed` with a message naming the check, and it still cleans up;
//! throttling changes nothing but the time it takes. Printed RTOs are simulated seconds.

use std::sync::Arc;
use std::time::Duration;

use snaprelay_core::app::{
    App, DrillOptions, ErrorKind, RunRequest, Waiting, drill, restore, run_policy,
};
use snaprelay_core::engine::{Interrupt, Progress, Throttled};
use snaprelay_core::ids::{AccountId, RoleArn};
use snaprelay_core::policy::Policy;
use snaprelay_core::ports::prelude::*;
use snaprelay_core::ports::{Access, Find, StateStore};
use snaprelay_core::restore::drill::{DrillReport, DrillStatus};
use snaprelay_core::restore::{DRILL_TAG, PlaceChoice, RestoreAs, RestoreOptions, RestoreStatus};
use snaprelay_core::status::Status;
use snaprelay_sim::{DbSpec, Encryption, Fault, InstanceSpec, SimCloud, VolumeSpec};
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
    store: Arc<SqliteStore>,
    policy: Policy,
    instance: String,
}

/// An instance with two volumes and a DB instance, replicated once to another account and
/// Region.
async fn replicated(windows: bool) -> Estate {
    let (src, tgt) = (account(SOURCE), account(TARGET));
    let cloud = SimCloud::with_seed(&src, 5);
    cloud.add_account(&tgt);
    let source_key = cloud.create_key(&src, "us-east-1", Some("app"), std::slice::from_ref(&tgt));
    let vault = cloud.create_key(&tgt, TARGET_REGION, Some("vault"), &[]);
    let instance = cloud.add_instance(
        &src,
        "us-east-1",
        InstanceSpec {
            name: Some("web".into()),
            volumes: vec![
                VolumeSpec {
                    size_gib: 8,
                    encryption: Encryption::Key(source_key.clone()),
                },
                VolumeSpec {
                    size_gib: 100,
                    encryption: Encryption::Key(source_key.clone()),
                },
            ],
            ..Default::default()
        },
    );
    if windows {
        cloud.set_platform(&instance, "Windows");
    }
    cloud.add_db_instance(
        &src,
        "us-east-1",
        DbSpec {
            id: "orders".into(),
            engine: "postgres".into(),
            size_gib: 20,
            encryption: Encryption::Key(source_key),
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
type = "ec2"
ids = ["{instance}"]
[[source.resources]]
type = "rds"
ids = ["orders"]
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
    let app = App::new(cloud.clone(), store.clone());
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
    Estate {
        cloud,
        app,
        store,
        policy,
        instance,
    }
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

    /// Whatever a drill made that is still there in the target, by its tag.
    async fn left_in_target(&self) -> Vec<String> {
        let access = Access::role(Some(
            RoleArn::parse(&format!("arn:aws:iam::{TARGET}:role/snaprelay-target")).unwrap(),
        ));
        let tag = Find::TagKey(DRILL_TAG);
        // Through the retrying layer, as snaprelay calls AWS: a throttled test may look too.
        let c = Throttled::new(self.cloud.as_ref());
        let mut left = Vec::new();
        for m in c.find_machines(&access, TARGET_REGION, &tag).await.unwrap() {
            if m.state != "terminated" {
                left.push(format!("instance {} {}", m.id, m.state));
            }
        }
        for v in c.find_volumes(&access, TARGET_REGION, &tag).await.unwrap() {
            left.push(format!("volume {} {}", v.id, v.state));
        }
        for i in c.find_images(&access, TARGET_REGION, &tag).await.unwrap() {
            left.push(format!("image {} {}", i.id, i.state));
        }
        for g in c
            .find_security_groups(&access, TARGET_REGION, &tag)
            .await
            .unwrap()
        {
            left.push(format!("group {}", g.id));
        }
        for d in c.find_dbs(&access, TARGET_REGION, &tag).await.unwrap() {
            left.push(format!("db {} {}", d.id, d.status));
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
async fn a_drill_of_an_instance_and_a_db_passes_and_leaves_nothing() {
    let e = replicated(false).await;
    let report = e.drill(options()).await;
    for r in &report.results {
        println!(
            "simulated RTO of {} {}: {:?} s",
            r.resource.resource_type, r.resource.id, r.rto_seconds
        );
    }
    assert_eq!(report.status, DrillStatus::Passed, "{report:#?}");
    assert_eq!(report.results.len(), 2);
    let names: Vec<Vec<&str>> = report
        .results
        .iter()
        .map(|r| r.checks.iter().map(|c| c.name).collect())
        .collect();
    assert_eq!(
        names,
        [
            vec![
                "instance_running",
                "volume_count",
                "volume_size",
                "volume_key"
            ],
            vec!["db_available", "engine_version"],
        ]
    );
    assert!(report.results.iter().all(|r| r.cleaned_up));
    assert_eq!(e.left_in_target().await, Vec::<String>::new());
    // Each replica restore point shows the drill.
    let points = e.store.policy_restore_points("dr").await.unwrap();
    let drilled: Vec<_> = points
        .iter()
        .filter_map(|p| p.last_drill.as_ref())
        .collect();
    assert_eq!(drilled.len(), 2);
    assert!(
        drilled
            .iter()
            .all(|d| d.drill_id == report.drill_id && d.status == "Passed")
    );
}

#[tokio::test(start_paused = true)]
async fn an_instance_that_never_runs_fails_the_drill_by_its_check_and_is_cleaned_up() {
    let e = replicated(false).await;
    e.cloud.inject(Fault::StayPending { nth: 1 });
    let report = e
        .drill(DrillOptions {
            resource: Some(e.instance.clone()),
            timeout: Duration::from_secs(5 * 60),
            ..options()
        })
        .await;
    assert_eq!(report.status, DrillStatus::Failed);
    let r = &report.results[0];
    let check = &r.checks[0];
    assert_eq!(
        (check.name, check.ok),
        ("instance_running", false),
        "{r:#?}"
    );
    assert!(
        check.detail.contains("not usable after 300 s"),
        "{}",
        check.detail
    );
    assert_eq!(r.rto_seconds, None);
    assert!(r.cleaned_up, "{r:#?}");
    assert_eq!(e.left_in_target().await, Vec::<String>::new());
}

#[tokio::test(start_paused = true)]
async fn an_instance_that_stops_itself_fails_the_drill_at_once_and_is_cleaned_up() {
    let e = replicated(false).await;
    e.cloud.inject(Fault::StopsItself { nth: 1 });
    let report = e
        .drill(DrillOptions {
            resource: Some(e.instance.clone()),
            ..options()
        })
        .await;
    assert_eq!(report.status, DrillStatus::Failed);
    let r = &report.results[0];
    let check = &r.checks[0];
    assert_eq!(
        (check.name, check.ok),
        ("instance_running", false),
        "{r:#?}"
    );
    assert!(
        check.detail.contains("it is stopped") && !check.detail.contains("not usable after"),
        "failed when it stopped, not at the timeout: {}",
        check.detail
    );
    assert!(r.cleaned_up, "{r:#?}");
    assert_eq!(e.left_in_target().await, Vec::<String>::new());
}

#[tokio::test(start_paused = true)]
async fn a_db_restore_that_fails_fails_the_drill_by_its_check_and_is_cleaned_up() {
    let e = replicated(false).await;
    e.cloud.inject(Fault::FailDbRestore { nth: 1 });
    let report = e
        .drill(DrillOptions {
            resource: Some("orders".into()),
            ..options()
        })
        .await;
    assert_eq!(report.status, DrillStatus::Failed);
    let r = &report.results[0];
    assert_eq!(
        (r.checks[0].name, r.checks[0].ok),
        ("db_available", false),
        "{r:#?}"
    );
    assert!(
        r.checks[0].detail.contains("failed"),
        "{}",
        r.checks[0].detail
    );
    assert!(r.cleaned_up, "{r:#?}");
    assert_eq!(e.left_in_target().await, Vec::<String>::new());
}

/// A drill of the DB `orders` with a timeout of 60 s: shorter than its restore.
async fn drill_orders_for_a_minute(e: &Estate) -> DrillReport {
    e.drill(DrillOptions {
        resource: Some("orders".into()),
        timeout: Duration::from_secs(60),
        ..options()
    })
    .await
}

#[tokio::test(start_paused = true)]
async fn a_timeout_shorter_than_a_db_restore_fails_it_and_still_cleans_up() {
    let e = replicated(false).await;
    let report = drill_orders_for_a_minute(&e).await;
    let r = &report.results[0];
    assert_eq!(r.status, DrillStatus::Failed);
    assert!(
        r.checks[0].detail.contains("not usable after 60 s"),
        "{r:#?}"
    );
    assert!(r.cleaned_up, "{r:#?}");
    assert_eq!(e.left_in_target().await, Vec::<String>::new());
}

/// RDS refuses to delete a DB instance that is not in a state to be deleted (still being
/// created or modified: InvalidDBInstanceState). The cleanup asks again while it waits, rather
/// than wait for a DB that nobody is deleting.
#[tokio::test(start_paused = true)]
async fn a_db_delete_refused_while_the_db_is_being_created_is_asked_again() {
    let e = replicated(false).await;
    e.cloud.inject(Fault::FailCall {
        operation: "rds:DeleteDBInstance",
        nth: 1,
        code: "InvalidDBInstanceState",
        message: "Instance is not in a state to be deleted: it is creating".into(),
    });
    let began = tokio::time::Instant::now();
    let report = drill_orders_for_a_minute(&e).await;
    let r = &report.results[0];
    assert_eq!(r.status, DrillStatus::Failed, "{r:#?}");
    assert!(r.cleaned_up, "{r:#?}");
    assert_eq!(e.left_in_target().await, Vec::<String>::new());
    assert_eq!(e.cloud.calls().get("rds:DeleteDBInstance"), Some(&2));
    assert!(
        began.elapsed() < Duration::from_secs(30 * 60),
        "deleted on the second asking, not left to the cleanup's patience: {:?}",
        began.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn throttling_only_slows_a_drill_down() {
    let e = replicated(false).await;
    e.cloud.inject(Fault::Throttle { per_mille: 300 });
    let report = e.drill(options()).await;
    assert_eq!(report.status, DrillStatus::Passed, "{report:#?}");
    assert!(e.cloud.faults_fired().1 > 0, "throttling fired");
    assert_eq!(e.left_in_target().await, Vec::<String>::new());
}

#[tokio::test(start_paused = true)]
async fn what_ec2_does_not_see_yet_is_asked_again() {
    // EC2's eventual consistency: the group and image just made are NotFound to the next
    // call, twice each.
    let e = replicated(false).await;
    for nth in [1, 2] {
        e.cloud.inject(Fault::FailCall {
            operation: "ec2:RevokeSecurityGroupEgress",
            nth,
            code: "InvalidGroup.NotFound",
            message: "The security group does not exist".into(),
        });
        e.cloud.inject(Fault::FailCall {
            operation: "ec2:RunInstances",
            nth,
            code: "InvalidAMIID.NotFound",
            message: "The image id does not exist".into(),
        });
    }
    let report = e
        .drill(DrillOptions {
            resource: Some(e.instance.clone()),
            ..options()
        })
        .await;
    assert_eq!(report.status, DrillStatus::Passed, "{report:#?}");
    assert_eq!(e.cloud.faults_fired().0, 4, "every fault fired");
    let calls = e.cloud.calls();
    assert_eq!(calls["ec2:RunInstances"], 3, "{calls:?}");
    assert_eq!(e.left_in_target().await, Vec::<String>::new());
}

#[tokio::test(start_paused = true)]
async fn a_windows_instance_is_drilled_as_volumes() {
    let e = replicated(true).await;
    let report = e
        .drill(DrillOptions {
            resource: Some(e.instance.clone()),
            ..options()
        })
        .await;
    let r = &report.results[0];
    assert_eq!(r.status, DrillStatus::Passed, "{r:#?}");
    assert_eq!(r.checks[0].name, "volume_available");
    assert!(r.messages.iter().any(|m| m.contains("Windows")), "{r:#?}");
    assert_eq!(e.left_in_target().await, Vec::<String>::new());
}

#[tokio::test(start_paused = true)]
async fn a_kept_drill_is_removed_by_the_next_one() {
    let e = replicated(false).await;
    let kept = e
        .drill(DrillOptions {
            keep: true,
            ..options()
        })
        .await;
    assert_eq!(kept.status, DrillStatus::Passed, "{kept:#?}");
    assert!(kept.results.iter().all(|r| !r.cleaned_up));
    assert!(!e.left_in_target().await.is_empty());
    let next = e.drill(options()).await;
    assert_eq!(next.status, DrillStatus::Passed, "{next:#?}");
    assert!(
        next.messages
            .iter()
            .any(|m| m.contains("earlier drills left")),
        "{next:#?}"
    );
    assert_eq!(e.left_in_target().await, Vec::<String>::new());
}

#[tokio::test(start_paused = true)]
async fn a_place_without_a_point_fails_and_a_bad_place_is_invalid() {
    let e = replicated(false).await;
    let err = drill(
        &e.app,
        &e.policy,
        &DrillOptions {
            place: PlaceChoice::At {
                account: account(TARGET),
                region: "us-west-2".into(),
            },
            ..options()
        },
        Duration::from_secs(5),
        &|_: &str| {},
    )
    .await
    .unwrap_err();
    assert!(
        err.message.contains("not a place of the policy"),
        "{}",
        err.message
    );
    let source = e
        .drill(DrillOptions {
            place: PlaceChoice::Source,
            resource: Some("orders".into()),
            ..options()
        })
        .await;
    assert_eq!(source.status, DrillStatus::Passed, "{source:#?}");
}

/// `restore --availability-zone` names one of the Region's zones (DescribeAvailabilityZones);
/// a role that may not list them gets the check by name only, and the restore goes on.
#[tokio::test(start_paused = true)]
async fn a_restore_zone_is_one_the_region_has_or_by_name_when_zones_cannot_be_listed() {
    let e = replicated(false).await;
    let volumes_in = |zone: &str| RestoreOptions {
        resource_id: e.instance.clone(),
        restore_as: Some(RestoreAs::Volumes),
        availability_zone: Some(zone.to_owned()),
        ..RestoreOptions::default()
    };
    let waiting = Waiting {
        poll: Duration::from_secs(5),
        timeout: Duration::from_secs(60 * 60),
    };
    let zone = format!("{TARGET_REGION}z");
    let refused = restore(
        &e.app,
        &e.policy,
        &volumes_in(&zone),
        waiting,
        &|_: &str| {},
    )
    .await
    .unwrap_err();
    assert_eq!(refused.kind, ErrorKind::InvalidInput, "{refused:?}");
    assert!(
        refused.message.contains(&format!(
            "(it has {TARGET_REGION}a, {TARGET_REGION}b, {TARGET_REGION}c)"
        )),
        "{}",
        refused.message
    );

    e.cloud.inject(Fault::FailCall {
        operation: "ec2:DescribeAvailabilityZones",
        nth: 2,
        code: "UnauthorizedOperation",
        message: "You are not authorized to perform this operation.".into(),
    });
    let said = std::sync::Mutex::new(Vec::new());
    let note = |line: &str| said.lock().unwrap().push(line.to_owned());
    let zone = format!("{TARGET_REGION}b");
    let done = restore(&e.app, &e.policy, &volumes_in(&zone), waiting, &note)
        .await
        .unwrap();
    assert_eq!(done.status, RestoreStatus::Success, "{done:#?}");
    assert!(
        said.lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("checked by its name only")),
        "{said:?}"
    );
}
