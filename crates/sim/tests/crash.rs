//! Crash and resume, on the simulator, at every point where a session changes AWS.
//!
//! A policy with an EC2 instance and an RDS DB instance, replicated to the source account in
//! another Region (workflow A) and to another account in the source Region and in a third
//! Region (workflows B and C, RDS in one and in two copies). For each N, the session "dies"
//! right after its Nth successful change: the crash hook panics, which unwinds the whole
//! session at that instant, as `kill -9` would (nothing after it runs, nothing more is
//! recorded; what the state store had committed stays). The session is then resumed from the
//! state store, and the final state of AWS and of the store must equal that of an
//! uninterrupted run: no duplicate, no orphan, no share left, every restore point recorded.
//! Each N is also tried with a second crash, at the first change of the resumed session.

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use snaprelay_core::engine::{
    ChangeHook, EngineConfig, Interrupt, Progress, Throttled, prepare, run_session,
};
use snaprelay_core::ids::AccountId;
use snaprelay_core::model::{Tag, tag_value, tags};
use snaprelay_core::policy::Policy;
use snaprelay_core::ports::{SessionId, StateStore};
use snaprelay_core::report::SessionReport;
use snaprelay_core::status::Status;
use snaprelay_sim::{DbSpec, Encryption, InstanceSpec, SimCloud, VolumeSpec};
use snaprelay_state::SqliteStore;

struct Quiet;
impl Progress for Quiet {
    fn update(&self, _: &str, _: &str) {}
}

/// The panic payload of a simulated crash (the panic hook keeps it quiet).
struct Crash;

const SOURCE: &str = "111111111111";
const TARGET: &str = "222222222222";
const PLACES: [(&str, &str); 4] = [
    (SOURCE, "us-east-1"),
    (SOURCE, "us-west-2"),
    (TARGET, "us-east-1"),
    (TARGET, "eu-west-1"),
];

fn account(s: &str) -> AccountId {
    AccountId::parse(s).unwrap()
}

/// The same estate every time (a fixed seed: the same ids), and its policy.
fn estate() -> (SimCloud, String) {
    estate_with(false)
}

/// An instance, a DB instance and an Aurora cluster. With `default_key`, the instance's second
/// volume is under `aws/ebs`, the DB and the cluster under `aws/rds`, and the policy names a
/// re-encrypt key (the default-key workaround, SPEC 6.4).
fn estate_with(default_key: bool) -> (SimCloud, String) {
    let (src, tgt) = (account(SOURCE), account(TARGET));
    let cloud = SimCloud::with_seed(&src, 7);
    cloud.add_account(&tgt);
    let source_key = cloud.create_key(&src, "us-east-1", Some("app"), std::slice::from_ref(&tgt));
    let west_key = cloud.create_key(&src, "us-west-2", Some("dr-west"), &[]);
    let vault_east = cloud.create_key(&tgt, "us-east-1", Some("vault"), &[]);
    let vault_west = cloud.create_key(&tgt, "eu-west-1", Some("vault"), &[]);
    let key = |size_gib| VolumeSpec {
        size_gib,
        encryption: Encryption::Key(source_key.clone()),
    };
    let second = match default_key {
        true => VolumeSpec {
            size_gib: 300,
            encryption: Encryption::DefaultKey,
        },
        false => key(300),
    };
    let reencrypt_keys = match default_key {
        true => format!("reencrypt_keys = {{ \"us-east-1\" = \"{source_key}\" }}"),
        false => String::new(),
    };
    let web = cloud.add_instance(
        &src,
        "us-east-1",
        InstanceSpec {
            name: Some("web".into()),
            volumes: vec![key(100), second],
            ..Default::default()
        },
    );
    cloud.add_db_instance(
        &src,
        "us-east-1",
        DbSpec {
            id: "orders".into(),
            engine: "postgres".into(),
            size_gib: 200,
            encryption: match default_key {
                true => Encryption::DefaultKey,
                false => Encryption::Key(source_key.clone()),
            },
            tags: vec![],
            cluster: None,
        },
    );
    cloud.add_db_cluster(
        &src,
        "us-east-1",
        DbSpec {
            id: "ledger".into(),
            engine: "aurora-postgresql".into(),
            size_gib: 150,
            encryption: match default_key {
                true => Encryption::DefaultKey,
                false => Encryption::Key(source_key.clone()),
            },
            tags: vec![],
            cluster: None,
        },
    );
    let policy = format!(
        r#"
name = "dr"
[source]
regions = ["us-east-1"]
{reencrypt_keys}
[[source.resources]]
type = "ec2"
ids = ["{web}"]
[[source.resources]]
type = "rds"
ids = ["orders"]
[[source.resources]]
type = "aurora"
ids = ["ledger"]
[[targets]]
region = "us-west-2"
kms_key = "{west_key}"
[[targets]]
account = "{TARGET}"
region = "us-east-1"
role_arn = "arn:aws:iam::{TARGET}:role/snaprelay-target"
kms_key = "{vault_east}"
[[targets]]
account = "{TARGET}"
region = "eu-west-1"
role_arn = "arn:aws:iam::{TARGET}:role/snaprelay-target"
kms_key = "{vault_west}"
staging_kms_key = "{vault_east}"
"#
    );
    (cloud, policy)
}

/// A crash hook: counts the changes and dies right after the `at`th one.
fn crash_after(at: Option<usize>, seen: &Arc<AtomicUsize>) -> Option<ChangeHook> {
    let seen = Arc::clone(seen);
    Some(ChangeHook(Arc::new(move |_operation| {
        let n = seen.fetch_add(1, Ordering::SeqCst) + 1;
        if Some(n) == at {
            std::panic::panic_any(Crash);
        }
    })))
}

/// Waits for a state store call (they need no timer or I/O driver).
fn block<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime")
        .block_on(f)
}

/// Runs (or resumes) a session on a paused-clock runtime; `None` when it crashed.
fn session(
    rt: &tokio::runtime::Runtime,
    cloud: &SimCloud,
    store: &SqliteStore,
    policy: &Policy,
    hook: Option<ChangeHook>,
) -> Option<SessionReport> {
    // Where calls leave for AWS: throttling retried, each change told to the crash hook.
    let cloud = Throttled::with_hook(cloud, hook);
    let config = EngineConfig::default();
    let resume = rt.block_on(async {
        let unfinished = store.unfinished_sessions(Some(&policy.name)).await.unwrap();
        match unfinished.first() {
            Some(u) => Some(store.progress_of(&u.id).await.unwrap()),
            None => None,
        }
    });
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
        rt.block_on(async {
            let prepared = prepare(&cloud, policy).await.expect("prepare");
            run_session(
                &cloud,
                store,
                &Quiet,
                &config,
                &Interrupt::never(),
                &prepared,
                resume.as_ref(),
            )
            .await
            .expect("session")
        })
    }));
    match result {
        Ok(report) => Some(report),
        Err(payload) if payload.is::<Crash>() => None,
        Err(payload) => std::panic::resume_unwind(payload),
    }
}

/// What is in AWS, without the ids that differ from run to run: one line per snapshot, with
/// how many there are of it.
fn aws_state(cloud: &SimCloud) -> BTreeMap<String, usize> {
    let mut state = BTreeMap::new();
    let tag = |tags: &[Tag], key: &str| tag_value(tags, key).unwrap_or("-").to_owned();
    for (acct, region) in PLACES {
        for s in cloud.snapshots(&account(acct), region) {
            let volume = match tag(&s.tags, tags::KIND).as_str() {
                "source" => s.volume_id.clone(),
                _ => tag(&s.tags, tags::VOLUME),
            };
            let line = format!(
                "ebs {acct}/{region} {} of {} volume {volume} key {:?} {:?} shared with {:?}",
                tag(&s.tags, tags::KIND),
                tag(&s.tags, tags::RESOURCE),
                s.kms_key,
                s.state,
                s.shared_with
            );
            *state.entry(line).or_default() += 1;
        }
        for s in cloud.db_snapshots(&account(acct), region) {
            let line = format!(
                "rds {acct}/{region} {} of {} staging {} key {:?} {:?} shared with {:?}",
                tag(&s.tags, tags::KIND),
                tag(&s.tags, tags::RESOURCE),
                s.id.contains("-staging"),
                s.kms_key,
                s.state,
                s.shared_with
            );
            *state.entry(line).or_default() += 1;
        }
        for s in cloud.db_cluster_snapshots(&account(acct), region) {
            let line = format!(
                "aurora {acct}/{region} {} of {} staging {} key {:?} {:?} shared with {:?}",
                tag(&s.tags, tags::KIND),
                tag(&s.tags, tags::RESOURCE),
                s.id.contains("-staging"),
                s.kms_key,
                s.state,
                s.shared_with
            );
            *state.entry(line).or_default() += 1;
        }
    }
    state
}

/// Every snapshot in AWS, EBS ids and DB snapshot ARNs.
fn aws_ids(cloud: &SimCloud) -> Vec<String> {
    let mut ids = Vec::new();
    for (acct, region) in PLACES {
        ids.extend(
            cloud
                .snapshots(&account(acct), region)
                .into_iter()
                .map(|s| s.id),
        );
        ids.extend(
            cloud
                .db_snapshots(&account(acct), region)
                .into_iter()
                .map(|s| s.arn),
        );
        ids.extend(
            cloud
                .db_cluster_snapshots(&account(acct), region)
                .into_iter()
                .map(|s| s.arn),
        );
    }
    ids.sort();
    ids
}

/// The restore points recorded, as (resource, kind, account/region, snapshots), and every
/// snapshot id they hold.
fn recorded(store: &SqliteStore, session_id: &SessionId) -> (Vec<String>, Vec<String>) {
    let points = block(store.session_restore_points(session_id)).unwrap();
    let mut lines: Vec<String> = points
        .iter()
        .map(|p| {
            format!(
                "{} {} {}/{} {} snapshots",
                p.resource_id,
                p.kind,
                p.place.account,
                p.place.region,
                p.place.snapshots.len()
            )
        })
        .collect();
    lines.sort();
    let mut ids: Vec<String> = points
        .iter()
        .flat_map(|p| p.place.snapshots.iter().map(|s| s.id.clone()))
        .collect();
    ids.sort();
    (lines, ids)
}

/// How one run ended, to compare with the uninterrupted one.
#[derive(Debug, PartialEq)]
struct Outcome {
    status: Status,
    /// Per resource: status and number of replica restore points.
    resources: Vec<(String, Status, usize)>,
    aws: BTreeMap<String, usize>,
    points: Vec<String>,
}

fn outcome(cloud: &SimCloud, store: &SqliteStore, report: &SessionReport, run: &str) -> Outcome {
    let (points, point_ids) = recorded(store, &report.session_id);
    assert_eq!(
        point_ids,
        aws_ids(cloud),
        "{run}: every snapshot in AWS is in a recorded restore point, and every recorded one is \
         in AWS"
    );
    let unfinished = block(store.unfinished_sessions(Some("dr"))).unwrap();
    assert!(
        unfinished.is_empty(),
        "{run}: sessions left unfinished: {unfinished:?}"
    );
    Outcome {
        status: report.status,
        resources: report
            .resources
            .iter()
            .map(|r| (r.id.clone(), r.status, r.replicas.len()))
            .collect(),
        aws: aws_state(cloud),
        points,
    }
}

/// Simulated crashes unwind quietly; other panics are reported as usual.
fn quiet_crashes() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !info.payload().is::<Crash>() {
                default_hook(info);
            }
        }));
    });
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap()
}

#[test]
fn a_session_killed_after_any_change_resumes_to_the_uninterrupted_result() {
    // EC2: 1 CreateSnapshots, 2 copies to us-west-2, 2 shares, 4 copies into the other
    // account, 2 unshares. RDS and Aurora each: 1 snapshot, 1 copy, 1 share, 3 copies, 1
    // unshare, 1 delete.
    kill_everywhere(false, 27);
}

#[test]
fn a_default_key_workaround_killed_after_any_change_resumes_to_the_uninterrupted_result() {
    // EC2, RDS and Aurora each add the copy of the snapshot under aws/ebs or aws/rds under the
    // re-encrypt key, and its deletion once both target Regions of the other account copied it.
    kill_everywhere(true, 33);
}

/// Kills a session after each of its changes (and again at the resume's first), resumes it,
/// and compares with the uninterrupted run, which makes `total` changes.
fn kill_everywhere(default_key: bool, total: usize) {
    quiet_crashes();
    let estate = || estate_with(default_key);

    // The uninterrupted run: the expected result, and how many changes it makes.
    let (cloud, policy_text) = estate();
    let policy = Policy::from_toml(&policy_text).unwrap();
    let rt = runtime();
    let store = SqliteStore::in_memory().unwrap();
    let changes = Arc::new(AtomicUsize::new(0));
    let report =
        session(&rt, &cloud, &store, &policy, crash_after(None, &changes)).expect("no crash");
    assert_eq!(report.status, Status::Success, "{report:#?}");
    let expected = outcome(&cloud, &store, &report, "uninterrupted");
    assert_eq!(expected.points.len(), 12, "{:#?}", expected.points);
    assert_eq!(changes.load(Ordering::SeqCst), total);

    let mut crashes = 0;
    for n in 1..=total {
        for second_crash in [false, true] {
            let (cloud, _) = estate();
            let rt = runtime();
            let store = SqliteStore::in_memory().unwrap();
            let seen = Arc::new(AtomicUsize::new(0));
            let first = session(&rt, &cloud, &store, &policy, crash_after(Some(n), &seen));
            assert!(first.is_none(), "the session dies after change {n}");
            crashes += 1;
            if second_crash {
                let seen = Arc::new(AtomicUsize::new(0));
                let again = session(&rt, &cloud, &store, &policy, crash_after(Some(1), &seen));
                if again.is_none() {
                    crashes += 1;
                }
            }
            let report = session(&rt, &cloud, &store, &policy, None).expect("no crash");
            let run =
                format!("killed after change {n} (second crash: {second_crash}), then resumed");
            let got = outcome(&cloud, &store, &report, &run);
            assert_eq!(got, expected, "{run}");
        }
    }
    println!(
        "crash suite: {total} kill points, {crashes} crashes, every one resumed to the uninterrupted result"
    );
}

#[test]
fn a_target_removed_before_the_resume_leaves_no_share_and_its_copies_are_named() {
    quiet_crashes();
    let (cloud, text) = estate();
    let policy = Policy::from_toml(&text).unwrap();
    let rt = runtime();
    let store = SqliteStore::in_memory().unwrap();
    // Killed after its 8th change: the shares with the other account are in place.
    let seen = Arc::new(AtomicUsize::new(0));
    let first = session(&rt, &cloud, &store, &policy, crash_after(Some(8), &seen));
    assert!(first.is_none());
    let shared = |cloud: &SimCloud| {
        cloud
            .snapshots(&account(SOURCE), "us-east-1")
            .iter()
            .filter(|s| !s.shared_with.is_empty())
            .count()
            + cloud
                .db_snapshots(&account(SOURCE), "us-east-1")
                .iter()
                .filter(|s| !s.shared_with.is_empty())
                .count()
    };
    assert!(shared(&cloud) > 0, "the crash left shares");

    // Both targets in the other account are removed from the policy; then the resume.
    let only_west = text
        .split("[[targets]]")
        .take(2)
        .collect::<Vec<_>>()
        .join("[[targets]]");
    let smaller = Policy::from_toml(&only_west).unwrap();
    let report = session(&rt, &cloud, &store, &smaller, None).expect("no crash");
    assert_eq!(shared(&cloud), 0, "{report:#?}");
    assert_eq!(report.status, Status::Warning, "{report:#?}");
    assert!(
        report
            .messages
            .iter()
            .any(|m| m.contains(&format!("copied into {TARGET}/")) && m.contains("no longer")),
        "{:#?}",
        report.messages
    );
}
