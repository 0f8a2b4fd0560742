//! One behaviour suite of the state store port, run against every backend (SQLite now,
//! PostgreSQL next): sessions, steps, task reports, restore points, retention marks, leases
//! and concurrent writers. A backend provides a [`StoreFixture`] whose `open` gives a new
//! handle on one shared store, as a second process (or worker) would have.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use snaprelay_core::config::{Ec2Config, InstanceSetup, ResourceConfig, VolumeConfig};
use snaprelay_core::model::{ResourceType, SnapshotKind};
use snaprelay_core::ports::{
    Operation, OperationKind, PointFilter, RestorePointId, SessionId, StateStore,
};
use snaprelay_core::report::{
    LastDrill, PlaceReport, PointStatus, ResourceReport, RestorePoint, Service, SessionReport,
    SnapshotReport, StepDetail, StepKind, StepOutcome, StepRecord,
};
use snaprelay_core::status::Status;

/// What a backend gives the suite.
#[async_trait]
pub trait StoreFixture: Sync {
    /// A new handle on the store under test (the same data every time).
    async fn open(&self) -> Arc<dyn StateStore>;
    /// The lease TTL the suite asks for: short, so that a lapse is seen in seconds.
    fn ttl(&self) -> Duration {
        Duration::from_secs(2)
    }
}

/// A check of the suite.
pub type StoreCheck =
    for<'a> fn(&'a dyn StoreFixture) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

macro_rules! checks {
    ($($name:ident),* $(,)?) => {
        /// Every check, by name.
        pub fn checks() -> Vec<(&'static str, StoreCheck)> {
            vec![$((stringify!($name), |f| Box::pin($name(f)))),*]
        }
    };
}

checks!(
    a_session_is_listed_running_then_finished_with_its_report,
    a_step_begun_before_its_change_is_completed_in_place,
    a_task_report_is_kept_once_for_a_resume,
    a_restore_point_is_recorded_whole_and_found_by_filter,
    a_restore_or_drill_is_recorded_begun_then_ended,
    a_drill_of_a_point_is_its_last_drill,
    each_schedule_tick_is_claimed_once,
    retention_marks_a_restore_point_deleting_then_deleted,
    an_imported_restore_point_keeps_its_number_and_later_ones_follow_it,
    unfinished_sessions_are_listed_newest_first,
    two_holders_never_both_hold_a_lease,
    a_lease_whose_holder_died_can_be_taken_over,
    a_holder_whose_lease_was_taken_over_begins_no_change,
    of_many_concurrent_acquirers_exactly_one_holds,
    concurrent_writers_lose_nothing,
);

/// Runs every check, naming the one that fails.
pub async fn run_all(fixture: &dyn StoreFixture) {
    for (name, check) in checks() {
        eprintln!("store check: {name}");
        check(fixture).await;
    }
}

fn id(name: &str) -> SessionId {
    SessionId::new(format!("{name}-{}", unique()))
}

/// A suffix no other check of this process uses, so checks share one store.
fn unique() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn step(resource: &str, outcome: StepOutcome) -> StepRecord {
    StepRecord {
        resource_id: resource.into(),
        step: StepKind::Copy,
        place: "222222222222/eu-west-1".into(),
        started_at: "2026-12-04T10:00:00Z".into(),
        ended_at: String::new(),
        outcome,
        detail: StepDetail::None,
    }
}

fn task(resource: &str) -> ResourceReport {
    ResourceReport {
        resource_type: ResourceType::Ec2,
        id: resource.into(),
        region: "us-east-1".into(),
        status: Status::Success,
        messages: vec!["copied".into()],
        source: None,
        replicas: vec![],
    }
}

fn point(policy: &str, resource: &str, kind: SnapshotKind, snapshots: &[&str]) -> RestorePoint {
    RestorePoint {
        policy: policy.into(),
        resource_type: ResourceType::Ec2,
        resource_id: resource.into(),
        kind,
        created_at: "2026-12-04T10:05:00Z".into(),
        place: PlaceReport {
            account: "222222222222".into(),
            region: "eu-west-1".into(),
            snapshots: snapshots
                .iter()
                .map(|s| SnapshotReport {
                    id: (*s).into(),
                    source_id: format!("{s}-source"),
                    volume_id: "vol-1".into(),
                    device: Some("/dev/xvda".into()),
                    kms_key_id: Some("arn:aws:kms:eu-west-1:222222222222:key/k".into()),
                    size_gib: Some(8),
                })
                .collect(),
        },
        // What a restore rebuilds is kept whole with the point (SPEC 6.1).
        config: Some(ResourceConfig::Ec2(Ec2Config {
            instance: InstanceSetup {
                instance_type: Some("t3.micro".into()),
                root_device_name: Some("/dev/xvda".into()),
                security_group_ids: vec!["sg-1".into()],
                tags: [("Name".to_owned(), "web".to_owned())].into(),
                ..InstanceSetup::default()
            },
            volumes: snapshots
                .iter()
                .map(|s| VolumeConfig {
                    device_name: Some("/dev/xvda".into()),
                    volume_type: Some("gp3".into()),
                    size_gib: Some(8),
                    iops: Some(3000),
                    throughput: None,
                    delete_on_termination: Some(true),
                    snapshot_id: Some((*s).into()),
                })
                .collect(),
        })),
    }
}

fn report(session: &SessionId, policy: &str, tasks: Vec<ResourceReport>) -> SessionReport {
    SessionReport {
        session_id: session.clone(),
        policy: policy.into(),
        status: Status::Success,
        started_at: "2026-12-04T10:00:00Z".into(),
        ended_at: "2026-12-04T10:10:00Z".into(),
        source_account: "111111111111".into(),
        resources: tasks,
        messages: vec![],
    }
}

async fn a_session_is_listed_running_then_finished_with_its_report(f: &dyn StoreFixture) {
    let store = f.open().await;
    let policy = format!("p-{}", unique());
    let s = id("session");
    store
        .begin_session(&s, &policy, "2026-12-04T10:00:00Z")
        .await
        .unwrap();
    let listed = store.sessions(Some(&policy)).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].status.as_str(), listed[0].ended_at.as_deref()),
        ("Running", None)
    );
    assert_eq!(
        store.session(&s).await.unwrap(),
        None,
        "no report before it ends"
    );
    store
        .begin_step(&s, &step("i-1", StepOutcome::Started))
        .await
        .unwrap();
    store
        .record_step(&s, &step("i-1", StepOutcome::Ok))
        .await
        .unwrap();
    store
        .record_step(&s, &step("i-2", StepOutcome::Ok))
        .await
        .unwrap();
    assert_eq!(
        store.summary(&s).await.unwrap().expect("listed").resources,
        2,
        "an unfinished session counts the resources it had begun"
    );
    let done = report(&s, &policy, vec![task("i-1"), task("i-2")]);
    store.finish_session(&done).await.unwrap();
    let summary = store.summary(&s).await.unwrap().expect("recorded");
    assert_eq!((summary.status.as_str(), summary.resources), ("Success", 2));
    assert_eq!(store.session(&s).await.unwrap(), Some(done));
    // What it copied, measured after it ended, is kept with it.
    assert_eq!(store.copied(&s).await.unwrap(), None);
    let copied = r#"{"bytes":1024,"full_copies":1,"replicas":[]}"#;
    store.record_copied(&s, copied).await.unwrap();
    // Another handle reads the same.
    let other = f.open().await;
    assert_eq!(other.summary(&s).await.unwrap(), Some(summary));
    assert_eq!(other.copied(&s).await.unwrap().as_deref(), Some(copied));
    assert_eq!(store.summary(&id("unknown")).await.unwrap(), None);
    assert_eq!(store.copied(&id("unknown")).await.unwrap(), None);
}

async fn a_step_begun_before_its_change_is_completed_in_place(f: &dyn StoreFixture) {
    let store = f.open().await;
    let s = id("steps");
    store.begin_session(&s, "steps", "t0").await.unwrap();
    let begun = store
        .begin_step(&s, &step("i-1", StepOutcome::Started))
        .await
        .unwrap();
    store
        .record_step(&s, &step("i-2", StepOutcome::Ok))
        .await
        .unwrap();
    // A crash here leaves the first step `started`: resume reads it so.
    assert_eq!(
        store.steps(&s).await.unwrap()[0].outcome,
        StepOutcome::Started
    );
    let mut ended = step("i-1", StepOutcome::Ok);
    ended.ended_at = "2026-12-04T10:01:00Z".into();
    ended.detail = StepDetail::Copy {
        service: Service::Rds,
        copy: "arn:aws:rds:eu-west-1:222222222222:snapshot:c".into(),
        source: "arn:aws:rds:us-east-1:111111111111:snapshot:s".into(),
    };
    store.end_step(begun, &ended).await.unwrap();
    let steps = store.steps(&s).await.unwrap();
    assert_eq!(steps.len(), 2, "ended in place, not added");
    assert_eq!(steps[0], ended, "its typed detail read back as written");
    assert_eq!(steps[1].resource_id, "i-2");
}

async fn a_task_report_is_kept_once_for_a_resume(f: &dyn StoreFixture) {
    let store = f.open().await;
    let s = id("tasks");
    store.begin_session(&s, "tasks", "t0").await.unwrap();
    store
        .begin_step(&s, &step("i-1", StepOutcome::Started))
        .await
        .unwrap();
    store.record_task(&s, &task("i-1")).await.unwrap();
    store.record_task(&s, &task("i-1")).await.unwrap();
    store
        .record_restore_point(
            &s,
            &point("tasks", "i-1", SnapshotKind::Source, &["snap-a"]),
        )
        .await
        .unwrap();
    let progress = store.progress_of(&s).await.unwrap();
    assert_eq!(progress.session_id, s);
    assert_eq!(progress.policy, "tasks");
    assert_eq!(
        progress.tasks,
        vec![task("i-1")],
        "recorded twice, kept once"
    );
    assert_eq!(progress.points.len(), 1);
    assert_eq!(progress.steps.len(), 1);
    store.resume_session(&s).await.unwrap();
    assert!(store.progress_of(&id("nope")).await.is_err());
}

async fn a_restore_point_is_recorded_whole_and_found_by_filter(f: &dyn StoreFixture) {
    let store = f.open().await;
    let policy = format!("rp-{}", unique());
    let (s1, s2) = (id("rp1"), id("rp2"));
    for s in [&s1, &s2] {
        store.begin_session(s, &policy, "t0").await.unwrap();
    }
    let a = point(&policy, "i-1", SnapshotKind::Source, &["snap-1", "snap-2"]);
    let b = point(&policy, "i-1", SnapshotKind::Replica, &["snap-3", "snap-4"]);
    let c = point(
        &policy,
        "db-1",
        SnapshotKind::Replica,
        &["arn:aws:rds:eu-west-1:222222222222:snapshot:x"],
    );
    let ida = store.record_restore_point(&s1, &a).await.unwrap();
    let idb = store.record_restore_point(&s1, &b).await.unwrap();
    store.record_restore_point(&s2, &c).await.unwrap();
    assert_ne!(ida, idb);
    let all = store.policy_restore_points(&policy).await.unwrap();
    assert_eq!(
        all.iter().map(|p| p.point.clone()).collect::<Vec<_>>(),
        vec![a.clone(), b.clone(), c.clone()],
        "whole, in the order made"
    );
    assert!(all.iter().all(|p| p.status == PointStatus::Complete));
    assert_eq!(all[0].session_id, s1);
    let of_i1 = store
        .find_restore_points(&PointFilter {
            policy: Some(&policy),
            resource: Some("i-1"),
            ..PointFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(of_i1.len(), 2);
    assert_eq!(store.session_restore_points(&s2).await.unwrap(), vec![c]);
    // A staging copy is no restore point: refused, and nothing of it is kept.
    let bad = point(&policy, "i-9", SnapshotKind::Staging, &["snap-9"]);
    assert!(store.record_restore_point(&s2, &bad).await.is_err());
    assert_eq!(store.policy_restore_points(&policy).await.unwrap().len(), 3);
}

async fn a_restore_or_drill_is_recorded_begun_then_ended(f: &dyn StoreFixture) {
    let store = f.open().await;
    let policy = format!("op-{}", unique());
    let op = |id: &str, kind, started_at: &str| Operation {
        id: format!("{id}-{}", unique()),
        kind,
        policy: policy.clone(),
        status: "Running".into(),
        started_at: started_at.into(),
        ended_at: None,
        holder: "host:1".into(),
        document: None,
    };
    let first = op("d-1", OperationKind::Drill, "2026-12-05T01:00:00Z");
    let second = op("d-2", OperationKind::Drill, "2026-12-05T02:00:00Z");
    let restore = op("r-1", OperationKind::Restore, "2026-12-05T03:00:00Z");
    for o in [&first, &second, &restore] {
        store.begin_operation(o).await.unwrap();
    }
    assert_eq!(
        store.operation(&first.id).await.unwrap().as_ref(),
        Some(&first)
    );
    let doc = r#"{"drill_id":"d-1","status":"Passed"}"#;
    store
        .end_operation(&first.id, "Passed", "2026-12-05T01:10:00Z", doc)
        .await
        .unwrap();
    let ended = store.operation(&first.id).await.unwrap().unwrap();
    assert_eq!(ended.status, "Passed");
    assert_eq!(ended.ended_at.as_deref(), Some("2026-12-05T01:10:00Z"));
    assert_eq!(ended.document.as_deref(), Some(doc));
    let drills = store
        .operations(OperationKind::Drill, Some(&policy))
        .await
        .unwrap();
    assert_eq!(
        drills.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(),
        [second.id.as_str(), first.id.as_str()],
        "drills only, newest first"
    );
    let restores = store
        .operations(OperationKind::Restore, None)
        .await
        .unwrap();
    assert!(restores.iter().any(|r| r.id == restore.id));
    assert!(store.operation("d-none").await.unwrap().is_none());
    // One id, one record.
    assert!(store.begin_operation(&first).await.is_err());
}

async fn each_schedule_tick_is_claimed_once(f: &dyn StoreFixture) {
    let policy = format!("tick-{}", unique());
    let tick = "2026-12-05T03:00:00Z";
    // Three workers on one store race for the same tick: one wins.
    let mut claims = Vec::new();
    for worker in ["w1", "w2", "w3"] {
        let store = f.open().await;
        let policy = policy.clone();
        claims.push(tokio::spawn(async move {
            store
                .claim_tick(&policy, "session", tick, worker)
                .await
                .unwrap()
        }));
    }
    let mut won = 0;
    for c in claims {
        won += usize::from(c.await.unwrap());
    }
    assert_eq!(won, 1, "exactly one worker claims a tick");
    let store = f.open().await;
    assert!(
        store
            .claim_tick(&policy, "drill", tick, "w1")
            .await
            .unwrap(),
        "a drill's tick is another tick"
    );
    assert!(
        store
            .claim_tick(&policy, "session", "2026-12-05T03:00:01Z", "w2")
            .await
            .unwrap(),
        "the next tick is free"
    );
}

async fn a_drill_of_a_point_is_its_last_drill(f: &dyn StoreFixture) {
    let store = f.open().await;
    let policy = format!("ld-{}", unique());
    let s = id("ld");
    store.begin_session(&s, &policy, "t0").await.unwrap();
    let p = point(&policy, "i-1", SnapshotKind::Replica, &["snap-1"]);
    let point_id = store.record_restore_point(&s, &p).await.unwrap();
    let points = store.policy_restore_points(&policy).await.unwrap();
    assert_eq!(points[0].last_drill, None, "never drilled");
    for (drill, status) in [("d-1", "Failed"), ("d-2", "Passed")] {
        let last = LastDrill {
            drill_id: drill.into(),
            status: status.into(),
            rto_seconds: Some(42.5),
            at: "2026-12-05T01:00:00Z".into(),
        };
        store.record_drill_of(point_id, &last).await.unwrap();
    }
    let points = store.policy_restore_points(&policy).await.unwrap();
    let last = points[0].last_drill.as_ref().expect("a last drill");
    assert_eq!(
        (last.drill_id.as_str(), last.status.as_str()),
        ("d-2", "Passed")
    );
    assert_eq!(last.rto_seconds, Some(42.5));
    assert_eq!(points[0].point.config, p.config, "the config is kept whole");
}

async fn retention_marks_a_restore_point_deleting_then_deleted(f: &dyn StoreFixture) {
    let store = f.open().await;
    let policy = format!("ret-{}", unique());
    let s = id("ret");
    store.begin_session(&s, &policy, "t0").await.unwrap();
    let p = store
        .record_restore_point(
            &s,
            &point(&policy, "i-1", SnapshotKind::Replica, &["snap-1", "snap-2"]),
        )
        .await
        .unwrap();
    store
        .record_snapshot_deleted(p, "snap-1", "2026-12-05T00:00:00Z")
        .await
        .unwrap();
    let [half] = &store.policy_restore_points(&policy).await.unwrap()[..] else {
        panic!("one restore point");
    };
    assert_eq!(half.status, PointStatus::Deleting);
    assert_eq!(half.deleted_snapshots, vec!["snap-1".to_owned()]);
    store
        .record_snapshot_deleted(p, "snap-2", "2026-12-05T00:00:01Z")
        .await
        .unwrap();
    store
        .record_restore_point_deleted(p, "2026-12-05T00:00:01Z")
        .await
        .unwrap();
    let [gone] = &store.policy_restore_points(&policy).await.unwrap()[..] else {
        panic!("still listed once deleted");
    };
    assert_eq!(gone.status, PointStatus::Deleted);
    assert_eq!(gone.point.place.snapshots.len(), 2, "what it held is kept");
}

async fn an_imported_restore_point_keeps_its_number_and_later_ones_follow_it(f: &dyn StoreFixture) {
    let store = f.open().await;
    let policy = format!("import-{}", unique());
    let s = id("import");
    store.begin_session(&s, &policy, "t0").await.unwrap();
    let far = RestorePointId(900_000 + i64::from(std::process::id() % 1000));
    let p = point(&policy, "i-1", SnapshotKind::Replica, &["snap-i"]);
    store.import_restore_point(&s, far, &p).await.unwrap();
    let next = store
        .record_restore_point(
            &s,
            &point(&policy, "i-1", SnapshotKind::Replica, &["snap-j"]),
        )
        .await
        .unwrap();
    assert!(next > far, "{next:?} after {far:?}");
    let found = store.policy_restore_points(&policy).await.unwrap();
    assert_eq!((found[0].id, &found[0].point), (far, &p));
}

async fn unfinished_sessions_are_listed_newest_first(f: &dyn StoreFixture) {
    let store = f.open().await;
    let policy = format!("unf-{}", unique());
    let (old, new, done) = (id("old"), id("new"), id("done"));
    store
        .begin_session(&old, &policy, "2026-12-01T00:00:00Z")
        .await
        .unwrap();
    store
        .begin_session(&new, &policy, "2026-12-02T00:00:00Z")
        .await
        .unwrap();
    store
        .begin_session(&done, &policy, "2026-12-03T00:00:00Z")
        .await
        .unwrap();
    store
        .finish_session(&report(&done, &policy, vec![]))
        .await
        .unwrap();
    let unfinished = store.unfinished_sessions(Some(&policy)).await.unwrap();
    assert_eq!(
        unfinished.iter().map(|u| u.id.clone()).collect::<Vec<_>>(),
        vec![new, old]
    );
    assert!(unfinished.iter().all(|u| u.policy == policy));
    let everyone = store.unfinished_sessions(None).await.unwrap();
    assert!(everyone.len() >= 2);
}

async fn two_holders_never_both_hold_a_lease(f: &dyn StoreFixture) {
    let (a, b) = (f.open().await, f.open().await);
    let policy = format!("lease-{}", unique());
    assert!(!a.lease_held(&policy).await.unwrap());
    let held = a
        .acquire_lease(&policy, "holder-a", f.ttl())
        .await
        .unwrap()
        .expect("free");
    assert_eq!(held.holder, "holder-a");
    assert!(b.lease_held(&policy).await.unwrap());
    let seen = b.lease_holder(&policy).await.unwrap().expect("a holder");
    assert_eq!(
        (seen.holder.as_str(), seen.generation),
        ("holder-a", held.generation),
        "who holds it, as another handle reads it"
    );
    assert!(
        b.acquire_lease(&policy, "holder-b", f.ttl())
            .await
            .unwrap()
            .is_none(),
        "held by a"
    );
    assert!(
        a.acquire_lease(&policy, "holder-a2", f.ttl())
            .await
            .unwrap()
            .is_none(),
        "not twice through one handle either"
    );
    let other = format!("{policy}-other");
    let other_lease = b
        .acquire_lease(&other, "holder-b", f.ttl())
        .await
        .unwrap()
        .expect("one lease per policy");
    assert!(a.renew_lease(&held).await.unwrap(), "renewed while held");
    let generation = held.generation;
    a.release_lease(held).await.unwrap();
    assert!(!b.lease_held(&policy).await.unwrap());
    assert_eq!(b.lease_holder(&policy).await.unwrap(), None);
    let taken = b
        .acquire_lease(&policy, "holder-b", f.ttl())
        .await
        .unwrap()
        .expect("free once released");
    assert!(taken.generation > generation, "a new generation");
    b.release_lease(taken).await.unwrap();
    b.release_lease(other_lease).await.unwrap();

    // A stopping worker gives up every lease it holds at once; others' stay held.
    let mine = a
        .acquire_lease(&policy, "stopping-worker", f.ttl())
        .await
        .unwrap()
        .expect("free");
    let theirs = b
        .acquire_lease(&other, "other-worker", f.ttl())
        .await
        .unwrap()
        .expect("free");
    drop(mine); // a job dropped where it stood: not released
    a.release_leases_of("stopping-worker").await.unwrap();
    assert!(!b.lease_held(&policy).await.unwrap(), "released at once");
    assert!(
        a.lease_held(&other).await.unwrap(),
        "another holder's lease stays"
    );
    b.release_lease(theirs).await.unwrap();
}

async fn a_lease_whose_holder_died_can_be_taken_over(f: &dyn StoreFixture) {
    let (a, b) = (f.open().await, f.open().await);
    let policy = format!("died-{}", unique());
    let held = a
        .acquire_lease(&policy, "holder-a", f.ttl())
        .await
        .unwrap()
        .expect("free");
    let generation = held.generation;
    // The holder dies without releasing: its process (or its handle) is gone.
    drop(held);
    drop(a);
    // What `leases_lapse` says is what happens: right after its holder died, a lease that
    // lapses is still held; one that is a file lock is free at once.
    assert_eq!(
        b.lease_held(&policy).await.unwrap(),
        b.leases_lapse(),
        "leases_lapse() tells how this backend frees a dead holder's lease"
    );
    // A backend whose leases expire frees it after its TTL; one whose leases die with their
    // process frees it at once. Neither takes longer than the TTL and a margin.
    let deadline = tokio::time::Instant::now() + f.ttl() + Duration::from_secs(3);
    let taken = loop {
        if let Some(l) = b.acquire_lease(&policy, "holder-b", f.ttl()).await.unwrap() {
            break l;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "a dead holder's lease was not freed within its TTL"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(taken.generation > generation);
    assert_eq!(taken.holder, "holder-b");
    b.release_lease(taken).await.unwrap();
}

async fn a_holder_whose_lease_was_taken_over_begins_no_change(f: &dyn StoreFixture) {
    let (a, b) = (f.open().await, f.open().await);
    let policy = format!("fenced-{}", unique());
    let s = id("fenced");
    a.begin_session(&s, &policy, "t0").await.unwrap();
    let held = a
        .acquire_lease(&policy, "holder-a", f.ttl())
        .await
        .unwrap()
        .expect("free");
    let fence = held.fence();
    a.begin_step_fenced(&s, &step("i-1", StepOutcome::Started), &fence)
        .await
        .expect("a change begun under a held lease is recorded");
    if held.ttl.is_none() {
        // This backend's leases cannot lapse while their holder lives (a file lock): there is
        // no taking over to fence against.
        return;
    }
    // The holder stalls past its TTL (a paused process, say) and another takes the lease.
    tokio::time::sleep(f.ttl() + Duration::from_millis(500)).await;
    let taken = b
        .acquire_lease(&policy, "holder-b", f.ttl())
        .await
        .unwrap()
        .expect("a lapsed lease is taken over");
    assert!(
        a.begin_step_fenced(&s, &step("i-2", StepOutcome::Started), &fence)
            .await
            .is_err(),
        "the old holder's change is refused"
    );
    assert!(!a.renew_lease(&held).await.unwrap(), "nor can it renew");
    assert!(
        !a.lease_is(&fence).await.unwrap(),
        "it knows its lease is gone"
    );
    assert_eq!(
        a.steps(&s).await.unwrap().len(),
        1,
        "nothing of it was recorded"
    );
    b.begin_step_fenced(&s, &step("i-2", StepOutcome::Started), &taken.fence())
        .await
        .expect("the new holder's is");
    b.release_lease(taken).await.unwrap();
}

async fn of_many_concurrent_acquirers_exactly_one_holds(f: &dyn StoreFixture) {
    let policy = format!("race-{}", unique());
    let mut handles = Vec::new();
    for n in 0..8 {
        let store = f.open().await;
        let policy = policy.clone();
        let ttl = f.ttl();
        handles.push(tokio::spawn(async move {
            let lease = store
                .acquire_lease(&policy, &format!("holder-{n}"), ttl)
                .await
                .unwrap();
            // Each keeps what it got until all have tried.
            tokio::time::sleep(Duration::from_millis(300)).await;
            let got = lease.is_some();
            if let Some(l) = lease {
                store.release_lease(l).await.unwrap();
            }
            got
        }));
    }
    let mut winners = 0;
    for h in handles {
        winners += usize::from(h.await.expect("no panic"));
    }
    assert_eq!(
        winners, 1,
        "exactly one of eight concurrent acquirers holds the lease"
    );
}

async fn concurrent_writers_lose_nothing(f: &dyn StoreFixture) {
    let store = f.open().await;
    let sessions = [id("w1"), id("w2")];
    for s in &sessions {
        store.begin_session(s, "writers", "t0").await.unwrap();
    }
    let mut handles = Vec::new();
    for n in 0..16 {
        let store = store.clone();
        let s = sessions[n % 2].clone();
        handles.push(tokio::spawn(async move {
            for k in 0..20 {
                let resource = format!("i-{n}-{k}");
                let begun = store
                    .begin_step(&s, &step(&resource, StepOutcome::Started))
                    .await
                    .unwrap();
                tokio::task::yield_now().await;
                store
                    .end_step(begun, &step(&resource, StepOutcome::Ok))
                    .await
                    .unwrap();
            }
            store
                .record_task(&s, &task(&format!("i-{n}")))
                .await
                .unwrap();
        }));
    }
    for h in handles {
        h.await.expect("no panic");
    }
    for s in &sessions {
        let steps = store.steps(s).await.unwrap();
        assert_eq!(steps.len(), 8 * 20);
        assert!(
            steps.iter().all(|st| st.outcome == StepOutcome::Ok),
            "each ended in place"
        );
        assert_eq!(store.progress_of(s).await.unwrap().tasks.len(), 8);
    }
}
