//! gc on the simulator: what a policy's sessions left in AWS that no record accounts for is
//! listed, and deleted or unshared only when asked (SPEC section 4); what gc cannot tell is
//! its own (another policy's, an unknown session's, a running session's) is left alone.

use std::collections::BTreeSet;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use snaprelay_core::engine::{
    ChangeHook, EngineConfig, Interrupt, Progress, Throttled, prepare, run_session,
};
use snaprelay_core::gc::{GcReport, Leftover, collect};
use snaprelay_core::ids::AccountId;
use snaprelay_core::model::{Tag, tags};
use snaprelay_core::policy::Policy;
use snaprelay_core::ports::prelude::*;
use snaprelay_core::ports::{Access, StateStore};
use snaprelay_core::report::SessionReport;
use snaprelay_core::status::Status;
use snaprelay_sim::{DbSpec, Encryption, InstanceSpec, SimCloud, VolumeSpec};
use snaprelay_state::SqliteStore;

struct Quiet;
impl Progress for Quiet {
    fn update(&self, _: &str, _: &str) {}
}

const SOURCE: &str = "111111111111";
const TARGET: &str = "222222222222";
const STRANGER: &str = "333333333333";
const SOURCE_REGION: &str = "us-east-1";

fn account(s: &str) -> AccountId {
    AccountId::parse(s).unwrap()
}

/// An instance and a DB instance replicated to another account (workflows B and C), a store,
/// and the source's credentials.
struct Estate {
    cloud: SimCloud,
    policy: Policy,
    store: SqliteStore,
    instance: String,
    source: Access,
}

fn estate() -> Estate {
    let (src, tgt) = (account(SOURCE), account(TARGET));
    let cloud = SimCloud::with_seed(&src, 11);
    cloud.add_account(&tgt);
    cloud.add_account(&account(STRANGER));
    let source_key = cloud.create_key(&src, SOURCE_REGION, Some("app"), std::slice::from_ref(&tgt));
    let vault = cloud.create_key(&tgt, "eu-west-1", Some("vault"), &[]);
    let instance = cloud.add_instance(
        &src,
        SOURCE_REGION,
        InstanceSpec {
            volumes: vec![VolumeSpec {
                size_gib: 20,
                encryption: Encryption::Key(source_key.clone()),
            }],
            ..Default::default()
        },
    );
    cloud.add_db_instance(
        &src,
        SOURCE_REGION,
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
regions = ["{SOURCE_REGION}"]
[[source.resources]]
type = "ec2"
ids = ["{instance}"]
[[source.resources]]
type = "rds"
ids = ["orders"]
[[targets]]
account = "{TARGET}"
region = "eu-west-1"
role_arn = "arn:aws:iam::{TARGET}:role/snaprelay-target"
kms_key = "{vault}"
"#
    ))
    .unwrap();
    Estate {
        cloud,
        policy,
        store: SqliteStore::in_memory().unwrap(),
        instance,
        source: Access::ambient(),
    }
}

impl Estate {
    /// One session of the policy, run to its end.
    async fn complete_session(&self) -> SessionReport {
        let cloud = Throttled::new(&self.cloud);
        let prepared = prepare(&cloud, &self.policy).await.unwrap();
        let report = run_session(
            &cloud,
            &self.store,
            &Quiet,
            &EngineConfig::default(),
            &Interrupt::never(),
            &prepared,
            None,
        )
        .await
        .unwrap();
        assert_eq!(report.status, Status::Success, "{report:#?}");
        report
    }

    /// gc as the application runs it, the sessions in `live` still running.
    async fn gc(&self, live: &[String], act: bool) -> GcReport {
        self.gc_with(live, act, false).await
    }

    /// gc with `--unknown-sessions` or without.
    async fn gc_with(&self, live: &[String], act: bool, unknown_sessions: bool) -> GcReport {
        let prepared = prepare(&self.cloud, &self.policy).await.unwrap();
        let recorded = self
            .store
            .policy_restore_points(&self.policy.name)
            .await
            .unwrap();
        let known: BTreeSet<String> = self
            .store
            .sessions(Some(&self.policy.name))
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.session_id.to_string())
            .collect();
        collect(
            &self.cloud,
            &prepared,
            &self.policy.source.regions,
            &recorded,
            &known,
            live,
            snaprelay_core::gc::Options {
                act,
                unknown_sessions,
            },
        )
        .await
        .unwrap()
    }

    /// A snapshot of the instance's volume with `tags`, as a session would have left it
    /// (taken, then the process died before recording it). Returns its id, once completed.
    async fn ebs_snapshot(&self, tags: &[Tag]) -> String {
        let made = self
            .cloud
            .create_snapshots(
                &self.source,
                SOURCE_REGION,
                &self.instance,
                "left behind",
                tags,
            )
            .await
            .unwrap();
        // Let it complete: snapshots take simulated minutes.
        tokio::time::sleep(Duration::from_secs(6 * 3600)).await;
        made[0].snapshot_id.clone()
    }

    /// A DB snapshot of `orders` named `id` with `tags`, once available.
    async fn db_snapshot(&self, id: &str, tags: &[Tag]) -> String {
        self.cloud
            .create_db_snapshot(&self.source, SOURCE_REGION, "orders", id, tags)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(6 * 3600)).await;
        id.to_owned()
    }

    fn ebs_ids(&self) -> Vec<String> {
        self.cloud
            .snapshots(&account(SOURCE), SOURCE_REGION)
            .into_iter()
            .map(|s| s.id)
            .collect()
    }

    fn db_ids(&self) -> Vec<String> {
        self.cloud
            .db_snapshots(&account(SOURCE), SOURCE_REGION)
            .into_iter()
            .map(|s| s.id)
            .collect()
    }
}

/// The tags snaprelay puts on a snapshot of `policy` made by `session`.
fn tagged(policy: &str, session: &str) -> Vec<Tag> {
    vec![
        Tag::new(tags::POLICY, policy),
        Tag::new(tags::SESSION, session),
        Tag::new(tags::KIND, "source"),
    ]
}

fn ids(found: &[Leftover]) -> BTreeSet<(&str, &str)> {
    found.iter().map(|l| (l.action, l.id.as_str())).collect()
}

#[tokio::test(start_paused = true)]
async fn after_a_complete_session_gc_finds_nothing() {
    let e = estate();
    e.complete_session().await;
    let report = e.gc(&[], false).await;
    assert_eq!(report.found, vec![], "{report:#?}");
    assert!(
        report.skipped.is_empty() && report.problems.is_empty(),
        "{report:#?}"
    );
    assert!(!report.acted);
}

#[tokio::test(start_paused = true)]
async fn a_tagged_snapshot_in_no_restore_point_is_listed_and_deleted_only_when_asked() {
    let e = estate();
    let session = e.complete_session().await.session_id.to_string();
    let snapshot = e.ebs_snapshot(&tagged("dr", &session)).await;
    let db_snapshot = e
        .db_snapshot("dr-left-behind", &tagged("dr", &session))
        .await;

    let listing = e.gc(&[], false).await;
    assert_eq!(
        ids(&listing.found),
        BTreeSet::from([
            ("delete", snapshot.as_str()),
            ("delete", db_snapshot.as_str())
        ]),
        "{listing:#?}"
    );
    for l in &listing.found {
        assert_eq!(
            (l.account.as_str(), l.region.as_str(), l.session.as_deref()),
            (SOURCE, SOURCE_REGION, Some(session.as_str()))
        );
        assert!(l.why.contains("recorded in no restore point"), "{}", l.why);
    }
    assert!(!listing.acted);
    assert!(e.ebs_ids().contains(&snapshot), "a listing changes nothing");
    assert!(
        e.db_ids().contains(&db_snapshot),
        "a listing changes nothing"
    );

    let acted = e.gc(&[], true).await;
    assert!(acted.acted && acted.problems.is_empty(), "{acted:#?}");
    assert_eq!(acted.found, listing.found);
    assert!(!e.ebs_ids().contains(&snapshot));
    assert!(!e.db_ids().contains(&db_snapshot));
    // The recorded snapshots are still there, and nothing is left to find.
    assert!(!e.ebs_ids().is_empty() && !e.db_ids().is_empty());
    assert_eq!(e.gc(&[], false).await.found, vec![]);
}

#[tokio::test(start_paused = true)]
async fn a_snapshot_of_another_policy_or_without_tags_is_never_listed_nor_deleted() {
    let e = estate();
    let session = e.complete_session().await.session_id.to_string();
    let other_policy = e.ebs_snapshot(&tagged("another-policy", &session)).await;
    let untagged = e.ebs_snapshot(&[]).await;
    let other_db = e
        .db_snapshot("other-policy", &tagged("another-policy", &session))
        .await;

    let report = e.gc(&[], true).await;
    assert_eq!(report.found, vec![], "{report:#?}");
    // gc asks AWS only for the policy's tag: it does not even see them.
    assert!(report.skipped.is_empty(), "{report:#?}");
    for id in [&other_policy, &untagged] {
        assert!(e.ebs_ids().contains(id), "{id}");
    }
    assert!(e.db_ids().contains(&other_db));
}

#[tokio::test(start_paused = true)]
async fn a_snapshot_of_a_session_this_state_file_does_not_know_is_left_alone_unless_asked() {
    let e = estate();
    e.complete_session().await;
    let unknown = e
        .ebs_snapshot(&tagged("dr", "some-other-state-file-session"))
        .await;
    // Only the policy's tag, no session's: a user's snapshot of a resource a restore made
    // (tags copied from it), never snaprelay's. Not even listed.
    let no_session = e.ebs_snapshot(&[Tag::new(tags::POLICY, "dr")]).await;
    let of_a_restore = e
        .ebs_snapshot(
            &[
                tagged("dr", "some-session"),
                vec![Tag::new(tags::RESTORE, "r-1")],
            ]
            .concat(),
        )
        .await;

    let report = e.gc(&[], true).await;
    assert_eq!(report.found, vec![], "{report:#?}");
    assert_eq!(report.skipped.len(), 1, "{report:#?}");
    assert!(
        report
            .skipped
            .iter()
            .all(|s| s.contains("which this state file does not know")),
        "{report:#?}"
    );
    assert!(e.ebs_ids().contains(&unknown) && e.ebs_ids().contains(&no_session));

    // SPEC 6.7: listed, then deleted, only when the operator asks for them.
    let listing = e.gc_with(&[], false, true).await;
    let mut listed: Vec<&str> = listing.found.iter().map(|l| l.id.as_str()).collect();
    listed.sort_unstable();
    assert_eq!(listed, vec![unknown.as_str()], "{listing:#?}");
    assert!(e.ebs_ids().contains(&unknown), "a listing deletes nothing");
    let acted = e.gc_with(&[], true, true).await;
    assert!(acted.problems.is_empty(), "{acted:#?}");
    assert!(!e.ebs_ids().contains(&unknown));
    assert!(
        e.ebs_ids().contains(&no_session) && e.ebs_ids().contains(&of_a_restore),
        "what no session made is never deleted"
    );
    assert_eq!(
        e.gc_with(&[], false, true).await.found,
        vec![],
        "the session's own are kept"
    );
}

#[tokio::test(start_paused = true)]
async fn a_share_left_in_place_is_listed_and_removed_when_asked_and_a_strangers_is_only_reported() {
    let e = estate();
    e.complete_session().await;
    let source_snapshots = e.cloud.snapshots(&account(SOURCE), SOURCE_REGION);
    let source_dbs = e.cloud.db_snapshots(&account(SOURCE), SOURCE_REGION);
    let (snapshot, db_snapshot) = (&source_snapshots[0].id, &source_dbs[0].id);
    assert!(
        source_snapshots[0].shared_with.is_empty(),
        "a session unshares"
    );
    // As if the process died between a copy and its unshare.
    for (who, id) in [(TARGET, snapshot), (STRANGER, snapshot)] {
        e.cloud
            .set_snapshot_share(&e.source, SOURCE_REGION, id, &account(who), true)
            .await
            .unwrap();
    }
    e.cloud
        .set_db_snapshot_share(
            &e.source,
            SOURCE_REGION,
            db_snapshot,
            &account(TARGET),
            true,
        )
        .await
        .unwrap();

    let listing = e.gc(&[], false).await;
    assert_eq!(
        ids(&listing.found),
        BTreeSet::from([
            ("unshare", snapshot.as_str()),
            ("unshare", db_snapshot.as_str())
        ]),
        "{listing:#?}"
    );
    assert!(
        listing
            .found
            .iter()
            .all(|l| l.shared_with == [TARGET.to_owned()])
    );
    assert!(
        listing
            .skipped
            .iter()
            .any(|s| s.contains(snapshot) && s.contains(STRANGER)),
        "{listing:#?}"
    );
    let shared = |id: &str| -> BTreeSet<AccountId> {
        let ebs = e.cloud.snapshots(&account(SOURCE), SOURCE_REGION);
        let rds = e.cloud.db_snapshots(&account(SOURCE), SOURCE_REGION);
        ebs.into_iter()
            .map(|s| (s.id, s.shared_with))
            .chain(rds.into_iter().map(|s| (s.id, s.shared_with)))
            .find(|(s, _)| s == id)
            .map(|(_, with)| with)
            .unwrap()
    };
    assert_eq!(shared(snapshot).len(), 2, "a listing changes nothing");

    let acted = e.gc(&[], true).await;
    assert!(acted.problems.is_empty(), "{acted:#?}");
    assert_eq!(shared(snapshot), BTreeSet::from([account(STRANGER)]));
    assert!(shared(db_snapshot).is_empty());
    // The snapshots themselves are recorded: kept.
    assert!(e.ebs_ids().contains(snapshot) && e.db_ids().contains(db_snapshot));
}

/// The panic payload of a simulated crash.
struct Crash;

#[test]
fn what_a_crashed_session_left_is_left_alone_while_it_runs_and_listed_once_it_does_not() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !info.payload().is::<Crash>() {
            default_hook(info);
        }
    }));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    let e = estate();
    // The session dies right after its first change in AWS, before recording it.
    let changes = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&changes);
    let hook = ChangeHook(Arc::new(move |_operation| {
        if seen.fetch_add(1, Ordering::SeqCst) == 0 {
            std::panic::panic_any(Crash);
        }
    }));
    let crashed = std::panic::catch_unwind(AssertUnwindSafe(|| {
        rt.block_on(async {
            let cloud = Throttled::with_hook(&e.cloud, Some(hook));
            let prepared = prepare(&cloud, &e.policy).await.unwrap();
            run_session(
                &cloud,
                &e.store,
                &Quiet,
                &EngineConfig::default(),
                &Interrupt::never(),
                &prepared,
                None,
            )
            .await
        })
    }));
    assert!(crashed.is_err_and(|p| p.is::<Crash>()));
    let unfinished = rt
        .block_on(e.store.unfinished_sessions(Some("dr")))
        .unwrap();
    let running = vec![unfinished[0].id.to_string()];
    let before = (e.ebs_ids(), e.db_ids());
    assert!(before != (vec![], vec![]), "the crash left a snapshot");

    let report = rt.block_on(e.gc(&running, true));
    assert_eq!(report.found, vec![], "{report:#?}");
    assert!(
        !report.skipped.is_empty()
            && report
                .skipped
                .iter()
                .all(|s| s.contains("is still running")),
        "{report:#?}"
    );
    assert_eq!(
        (e.ebs_ids(), e.db_ids()),
        before,
        "nothing of a running session is touched"
    );

    let report = rt.block_on(e.gc(&[], false));
    assert!(!report.found.is_empty(), "{report:#?}");
    assert!(
        report
            .found
            .iter()
            .all(|l| l.action == "delete" && l.session.as_ref() == Some(&running[0])),
        "{report:#?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_reencrypted_copy_a_killed_session_left_is_listed_and_deleted() {
    // The default-key workaround's extra copy (kind `reencrypted`) is never a restore point:
    // one left by a session that will not be resumed is gc's to list and, when asked, delete.
    let e = estate();
    let session = e.complete_session().await.session_id.to_string();
    let mut tags = tagged("dr", &session);
    tags.retain(|t| t.key != tags::KIND);
    tags.push(Tag::new(tags::KIND, "reencrypted"));
    let extra = e.ebs_snapshot(&tags).await;
    let listing = e.gc(&[], false).await;
    assert_eq!(
        ids(&listing.found),
        BTreeSet::from([("delete", extra.as_str())]),
        "{listing:#?}"
    );
    let acted = e.gc(&[], true).await;
    assert!(acted.acted && acted.problems.is_empty(), "{acted:#?}");
    assert!(!e.ebs_ids().contains(&extra));
}
