//! The state store port: where sessions, their steps, task reports and restore points are
//! recorded, and the lease that keeps two sessions of one policy from overlapping.
//!
//! The port is async and shared (`&self`, `Send + Sync`) so that a server can run several
//! policies' sessions on one store from spawned tasks. Every backend (SQLite today, PostgreSQL
//! next) passes the one conformance suite in `snaprelay-conformance` (`store` module).

use std::any::Any;
use std::fmt;
use std::time::Duration;

pub use crate::ids::{RestorePointId, SessionId, StepId};
use crate::report::{
    LastDrill, RecordedRestorePoint, ResourceReport, RestorePoint, SessionProgress, SessionReport,
    SessionSummary, StepRecord,
};
use async_trait::async_trait;

/// An error of the state store. The store is the journal of what was started: a write that
/// fails ends the session (the tasks under way are still finished and cleaned up).
#[derive(Debug, thiserror::Error)]
#[error("state store: {0}")]
pub struct StoreError(pub String);

/// A session that never finished, and the process that ran it (for people to read: whether
/// it still runs is told by its policy's lease, [`StateStore::lease_held`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unfinished {
    pub id: SessionId,
    pub policy: String,
    /// `None` for sessions recorded before sessions recorded their process.
    pub pid: Option<u32>,
}

/// Whether an [`Operation`] is a restore or a drill.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OperationKind {
    Restore,
    Drill,
}

impl OperationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Restore => "restore",
            Self::Drill => "drill",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Restore, Self::Drill]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// A restore or a drill as the state store keeps it: begun (with who runs it) before it
/// changes AWS, ended with its JSON document. What it made carries its id as a tag, so that
/// `gc` can tell leftovers of one that no longer runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation {
    /// `r-…` or `d-…`.
    pub id: String,
    pub kind: OperationKind,
    pub policy: String,
    /// `Running` until it ends; then the document's status (`Success`, `Failed`, `Passed`).
    pub status: String,
    pub started_at: String,
    pub ended_at: Option<String>,
    /// The process that runs it (`host:pid`).
    pub holder: String,
    /// The `--output json` document, once it ended.
    pub document: Option<String>,
}

/// Which restore points [`StateStore::find_restore_points`] lists; `None` matches all.
#[derive(Clone, Copy, Debug, Default)]
pub struct PointFilter<'a> {
    pub session: Option<&'a SessionId>,
    pub policy: Option<&'a str>,
    pub resource: Option<&'a str>,
}

/// The right to run a policy's sessions, held by one holder at a time.
///
/// Each backend keeps it its own way: SQLite as an OS file lock beside the state file, which
/// the kernel frees the moment its process dies (`kill -9` included), so it never needs
/// renewing; a database as a row with an expiry that its holder renews. `generation` grows
/// with every acquisition, so a holder whose lease lapsed and was taken over can be told
/// apart from the new one.
pub struct Lease {
    pub policy: String,
    pub holder: String,
    pub generation: u64,
    /// How long the lease lasts without a renewal; `None` while its process lives.
    pub ttl: Option<Duration>,
    /// What keeps the lease held in this process (a locked file, say); dropping it is
    /// dying, not releasing: a backend with expiry lets the lease lapse.
    pub guard: Option<Box<dyn Any + Send + Sync>>,
}

impl Lease {
    /// What writes under this lease carry, so that a store whose leases lapse can refuse the
    /// writes of a holder that lost it.
    pub fn fence(&self) -> Fence {
        Fence {
            policy: self.policy.clone(),
            holder: self.holder.clone(),
            generation: self.generation,
        }
    }
}

/// Who holds a lease, as people read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseHolder {
    pub holder: String,
    pub generation: u64,
    /// When it lapses unless renewed (RFC 3339, by the database's clock); `None` where a
    /// lease lasts as long as its process.
    pub expires_at: Option<String>,
}

/// A lease as writes under it name it: the policy, the holder and the generation taken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fence {
    pub policy: String,
    pub holder: String,
    pub generation: u64,
}

impl fmt::Debug for Lease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lease")
            .field("policy", &self.policy)
            .field("holder", &self.holder)
            .field("generation", &self.generation)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

/// Where sessions, tasks, steps and restore points are recorded.
#[async_trait]
pub trait StateStore: Send + Sync {
    // --- sessions ---
    async fn begin_session(
        &self,
        session: &SessionId,
        policy: &str,
        started_at: &str,
    ) -> Result<(), StoreError>;
    /// An unfinished session is taken up by this process.
    async fn resume_session(&self, session: &SessionId) -> Result<(), StoreError>;
    async fn finish_session(&self, report: &SessionReport) -> Result<(), StoreError>;
    /// The sessions of `policy` (else of every policy), newest first.
    async fn sessions(&self, policy: Option<&str>) -> Result<Vec<SessionSummary>, StoreError>;
    /// One session's summary, finished or not.
    async fn summary(&self, session: &SessionId) -> Result<Option<SessionSummary>, StoreError>;
    /// A finished session's report.
    async fn session(&self, session: &SessionId) -> Result<Option<SessionReport>, StoreError>;
    /// Keeps what a session copied (`run`'s `copied` document, JSON), measured after it ended.
    async fn record_copied(&self, session: &SessionId, copied: &str) -> Result<(), StoreError>;
    /// What [`Self::record_copied`] kept of the session, if anything.
    async fn copied(&self, session: &SessionId) -> Result<Option<String>, StoreError>;
    /// Sessions never finished (of `policy`, else of every policy), newest first.
    async fn unfinished_sessions(
        &self,
        policy: Option<&str>,
    ) -> Result<Vec<Unfinished>, StoreError>;
    /// What an unfinished session had done, for resuming it.
    async fn progress_of(&self, session: &SessionId) -> Result<SessionProgress, StoreError>;

    // --- steps and tasks ---
    async fn record_step(&self, session: &SessionId, step: &StepRecord) -> Result<(), StoreError>;
    /// Records, before it is made, a step that changes AWS (outcome `started`), so that a
    /// crash in the middle leaves a trace: its task is reconciled with AWS on resume.
    async fn begin_step(
        &self,
        session: &SessionId,
        step: &StepRecord,
    ) -> Result<StepId, StoreError>;
    /// Like [`StateStore::begin_step`], only while `fence`'s lease is still held: a worker
    /// whose lease lapsed and was taken over must not start a change (the new holder is
    /// resuming the session). A store whose leases cannot lapse while their holder lives
    /// (SQLite's file lock) needs no check.
    async fn begin_step_fenced(
        &self,
        session: &SessionId,
        step: &StepRecord,
        _fence: &Fence,
    ) -> Result<StepId, StoreError> {
        self.begin_step(session, step).await
    }
    /// Whether `fence`'s lease is still held, for the writes that are not changes (a lease
    /// that cannot lapse while its holder lives always is).
    async fn lease_is(&self, _fence: &Fence) -> Result<bool, StoreError> {
        Ok(true)
    }
    /// Records how a step begun with [`StateStore::begin_step`] ended.
    async fn end_step(&self, id: StepId, step: &StepRecord) -> Result<(), StoreError>;
    async fn steps(&self, session: &SessionId) -> Result<Vec<StepRecord>, StoreError>;
    /// Records the report of a task as soon as it has ended: a resumed session keeps it.
    async fn record_task(
        &self,
        session: &SessionId,
        report: &ResourceReport,
    ) -> Result<(), StoreError>;

    // --- restore points ---
    /// Records a restore point, whole or not at all.
    async fn record_restore_point(
        &self,
        session: &SessionId,
        point: &RestorePoint,
    ) -> Result<RestorePointId, StoreError>;
    /// Records a restore point under the number another store gave it (`state copy`), whole
    /// or not at all; later restore points are numbered after it.
    async fn import_restore_point(
        &self,
        session: &SessionId,
        id: RestorePointId,
        point: &RestorePoint,
    ) -> Result<(), StoreError>;
    /// Restore points matching the filter, deleted ones included, in the order they were made.
    async fn find_restore_points(
        &self,
        filter: &PointFilter<'_>,
    ) -> Result<Vec<RecordedRestorePoint>, StoreError>;
    /// Retention deleted one snapshot of a restore point.
    async fn record_snapshot_deleted(
        &self,
        point: RestorePointId,
        snapshot_id: &str,
        at: &str,
    ) -> Result<(), StoreError>;
    /// Retention deleted the last snapshot of a restore point.
    async fn record_restore_point_deleted(
        &self,
        point: RestorePointId,
        at: &str,
    ) -> Result<(), StoreError>;

    // --- restores and drills ---
    /// Records a restore or drill as begun (status `Running`), before it changes AWS.
    async fn begin_operation(&self, operation: &Operation) -> Result<(), StoreError>;
    /// Records how it ended, with its document.
    async fn end_operation(
        &self,
        id: &str,
        status: &str,
        ended_at: &str,
        document: &str,
    ) -> Result<(), StoreError>;
    /// Restores or drills (of `policy`, else of every policy), newest first.
    async fn operations(
        &self,
        kind: OperationKind,
        policy: Option<&str>,
    ) -> Result<Vec<Operation>, StoreError>;
    /// One restore or drill.
    async fn operation(&self, id: &str) -> Result<Option<Operation>, StoreError>;
    /// The outcome of a drill of one restore point: what `restore-points` shows as its
    /// `last_drill` (the newest recorded wins).
    async fn record_drill_of(
        &self,
        point: RestorePointId,
        drill: &LastDrill,
    ) -> Result<(), StoreError>;

    // --- schedules ---
    /// Claims one schedule tick (`what`: `session` or `drill`, at `tick`, RFC 3339) for
    /// `holder`: true for the one claimer that gets it, false for every other (SPEC 6.7:
    /// each tick starts exactly one session, whichever worker claims it).
    async fn claim_tick(
        &self,
        policy: &str,
        what: &str,
        tick: &str,
        holder: &str,
    ) -> Result<bool, StoreError>;

    // --- the policy lease ---
    /// Takes the lease of `policy` for `holder` if nobody else holds it (or its holder's lease
    /// lapsed); `None` while another holder has it. `ttl` is how long it lasts unrenewed, on
    /// backends where leases expire.
    async fn acquire_lease(
        &self,
        policy: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Option<Lease>, StoreError>;
    /// Keeps a lease held for another `ttl`; false if it was lost (lapsed and taken over):
    /// its holder must stop writing.
    async fn renew_lease(&self, lease: &Lease) -> Result<bool, StoreError>;
    /// Gives a lease up, so another holder may take it at once.
    async fn release_lease(&self, lease: Lease) -> Result<(), StoreError>;
    /// Whether a lease lapses when its holder stops renewing it (a database row with an
    /// expiry), rather than the moment its process dies (a file lock). Where it lapses,
    /// several workers share the store, and one takes over what a dead one left (SPEC 6.7).
    fn leases_lapse(&self) -> bool {
        false
    }
    /// Gives up every lease `holder` has, at once: a worker that stops and dropped its jobs
    /// lets another take their sessions over without waiting for the TTL. Where a lease
    /// lasts only as long as what holds it (a file lock), dropping was enough.
    async fn release_leases_of(&self, holder: &str) -> Result<(), StoreError> {
        let _ = holder;
        Ok(())
    }
    /// Whether some live holder has the lease of `policy` now.
    async fn lease_held(&self, policy: &str) -> Result<bool, StoreError>;
    /// Who holds the lease of `policy` now, if a live holder does: what the console and
    /// `sessions` show as the worker running a policy's session or drill.
    async fn lease_holder(&self, policy: &str) -> Result<Option<LeaseHolder>, StoreError>;

    /// The restore points of one policy, deleted ones included, in the order they were made.
    async fn policy_restore_points(
        &self,
        policy: &str,
    ) -> Result<Vec<RecordedRestorePoint>, StoreError> {
        self.find_restore_points(&PointFilter {
            policy: Some(policy),
            ..PointFilter::default()
        })
        .await
    }

    /// The restore points one session made, in the order they were made.
    async fn session_restore_points(
        &self,
        session: &SessionId,
    ) -> Result<Vec<RestorePoint>, StoreError> {
        let found = self
            .find_restore_points(&PointFilter {
                session: Some(session),
                ..PointFilter::default()
            })
            .await?;
        Ok(found.into_iter().map(|p| p.point).collect())
    }
}
