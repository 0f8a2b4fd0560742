//! Polling that scales: one `Describe*` call per (credentials, Region, service) per round
//! covering every snapshot any task waits for there, instead of one call per task.
//!
//! Tasks register the snapshots they wait for and get each one back once it has ended
//! (`completed`/`available`, or `error`/`failed`). One loop, run beside the session's tasks,
//! polls each place when it is due:
//!
//! - A place whose snapshots report progress is polled when the first of them is expected to
//!   end (its elapsed time scaled by its percent), plus a slack (a share of its expected
//!   duration) so that completions close together are collected by one call; never sooner than
//!   `poll_initial` nor later than `poll_horizon`. A snapshot stuck at 99% thus gets polled
//!   less and less often rather than every `poll_initial`. The slack is small for copies
//!   (each holds one of the 20 copy slots of its place until it is seen to end, so a late poll
//!   idles a slot) and larger for source snapshots (nothing waits on a quota for them).
//! - A place where nothing reports progress yet (EBS copies often sit at 0% for a while) backs
//!   off from `poll_initial` to `poll_max`.
//! - Throttling (`RequestLimitExceeded`, `Throttling`) is retried in a later round; any other
//!   error ends the waits of that place with the error.
//! - A snapshot missing from the answers for `MAX_UNSEEN_ROUNDS` rounds (right after its
//!   creation `Describe*` may not show it yet: eventual consistency) is reported gone.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Duration;

use futures_util::future::join_all;
use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;

use super::{EngineConfig, Interrupt, Interrupted, Record, jitter, next_interval};
use crate::model::{DbSnapshotStatus, SnapshotState, SnapshotStatus};
use crate::ports::{Access, Cloud, CloudError};

/// How many polls a just-created snapshot may stay invisible before it counts as gone.
const MAX_UNSEEN_ROUNDS: u32 = 10;
/// How long each snapshot id of a describe call may be (the SDK adapter chunks further).
const BATCH: usize = 1000;

/// A snapshot type a watcher can poll: EBS snapshots or RDS DB snapshots.
pub trait Polled: Progressing + Send + Sized + 'static {
    fn describe<'a>(
        cloud: &'a dyn Cloud,
        access: &'a Access,
        region: &'a str,
        ids: &'a [String],
    ) -> Pin<Box<dyn Future<Output = Result<Vec<Self>, CloudError>> + Send + 'a>>;
}

impl Polled for SnapshotStatus {
    fn describe<'a>(
        cloud: &'a dyn Cloud,
        access: &'a Access,
        region: &'a str,
        ids: &'a [String],
    ) -> Pin<Box<dyn Future<Output = Result<Vec<Self>, CloudError>> + Send + 'a>> {
        cloud.describe_snapshots(access, region, ids)
    }
}

impl Polled for DbSnapshotStatus {
    fn describe<'a>(
        cloud: &'a dyn Cloud,
        access: &'a Access,
        region: &'a str,
        ids: &'a [String],
    ) -> Pin<Box<dyn Future<Output = Result<Vec<Self>, CloudError>> + Send + 'a>> {
        cloud.describe_db_snapshots(access, region, ids)
    }
}

/// A DB cluster snapshot as the watcher polls it (`DescribeDBClusterSnapshots`): the same
/// status as a DB snapshot, asked of another API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterSnapshotStatus(pub DbSnapshotStatus);

impl Polled for ClusterSnapshotStatus {
    fn describe<'a>(
        cloud: &'a dyn Cloud,
        access: &'a Access,
        region: &'a str,
        ids: &'a [String],
    ) -> Pin<Box<dyn Future<Output = Result<Vec<Self>, CloudError>> + Send + 'a>> {
        Box::pin(async move {
            let found = cloud
                .describe_db_cluster_snapshots(access, region, ids)
                .await?;
            Ok(found.into_iter().map(ClusterSnapshotStatus).collect())
        })
    }
}

impl Progressing for ClusterSnapshotStatus {
    fn id(&self) -> &str {
        &self.0.id
    }
    fn state(&self) -> SnapshotState {
        self.0.state()
    }
    fn progress(&self) -> Option<u8> {
        self.0.progress
    }
    fn message(&self) -> Option<&str> {
        None
    }
}

type Answer<S> = Result<S, WaitError>;

/// Why a wait for snapshots ended without their end.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WaitError {
    /// The session was interrupted before these snapshots ended.
    #[error("{Interrupted} before snapshot(s) {} completed", .snapshots.join(", "))]
    Interrupted { snapshots: Vec<String> },
    /// AWS could not be asked how they are.
    #[error(transparent)]
    Cloud(CloudError),
    /// AWS stopped listing a snapshot before it ended (deleted by someone else, say).
    #[error("snapshot {snapshot} disappeared from {region} before completing")]
    Disappeared { snapshot: String, region: String },
    /// The session stopped polling (it is ending).
    #[error("the session stopped polling")]
    Stopped,
}

/// How soon after its expected end a snapshot should be seen to have ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Urgency {
    /// A copy holding a copy slot: its end frees the slot for the next copy.
    Copy,
    /// A snapshot of a source resource.
    Snapshot,
}

impl Urgency {
    /// The share of the expected duration a poll may come after the expected end. Chosen with
    /// the fleet benchmark: with 20 copies in flight per place, 2.5% keeps the makespan within
    /// 4% of its lower bound at about one poll per two copies.
    fn slack(self) -> f64 {
        match self {
            Urgency::Copy => 0.025,
            Urgency::Snapshot => 0.25,
        }
    }
}

struct Waiting<S> {
    resource: String,
    since: Instant,
    tx: oneshot::Sender<Answer<S>>,
    unseen: u32,
    /// When the snapshot is expected to end, and how long it takes in all.
    eta: Option<(Instant, Duration)>,
    /// The last progress reported, in tens of percent.
    reported: Option<u8>,
    slack: f64,
}

struct Place<S> {
    waiting: HashMap<String, Waiting<S>>,
    due: Instant,
    quiet: Duration,
}

/// The snapshots the session waits for, per place, and the loop that polls them.
pub struct Watcher<'a, S> {
    cloud: &'a dyn Cloud,
    config: &'a EngineConfig,
    places: Mutex<HashMap<(Access, String), Place<S>>>,
    wake: Notify,
}

impl<'a, S: Polled> Watcher<'a, S> {
    pub fn new(cloud: &'a dyn Cloud, config: &'a EngineConfig) -> Self {
        Self {
            cloud,
            config,
            places: Mutex::new(HashMap::new()),
            wake: Notify::new(),
        }
    }

    fn places(&self) -> std::sync::MutexGuard<'_, HashMap<(Access, String), Place<S>>> {
        self.places.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until every snapshot of `ids` has ended; their last statuses, in `ids`' order.
    pub async fn wait(
        &self,
        resource: &str,
        access: &Access,
        region: &str,
        ids: &[String],
        urgency: Urgency,
        interrupt: &Interrupt,
    ) -> Result<Vec<S>, WaitError> {
        let now = Instant::now();
        let mut answers = Vec::with_capacity(ids.len());
        {
            let mut places = self.places();
            let place = places
                .entry((access.clone(), region.to_owned()))
                .or_insert_with(|| Place {
                    waiting: HashMap::new(),
                    due: now,
                    quiet: self.config.poll_initial,
                });
            if place.waiting.is_empty() {
                // A place with nothing to poll starts over; otherwise the new snapshots are
                // included in the next round already planned.
                place.due = now + self.config.poll_initial;
                place.quiet = self.config.poll_initial;
            }
            for id in ids {
                let (tx, rx) = oneshot::channel();
                place.waiting.insert(
                    id.clone(),
                    Waiting {
                        resource: resource.to_owned(),
                        since: now,
                        tx,
                        unseen: 0,
                        eta: None,
                        reported: None,
                        slack: urgency.slack(),
                    },
                );
                answers.push(rx);
            }
        }
        self.wake.notify_one();
        let outcome = tokio::select! {
            all = join_all(answers) => Ok(all),
            () = interrupt.raised() => Err(Interrupted),
        };
        let all = match outcome {
            Ok(all) => all,
            Err(Interrupted) => {
                let mut places = self.places();
                if let Some(place) = places.get_mut(&(access.clone(), region.to_owned())) {
                    for id in ids {
                        place.waiting.remove(id);
                    }
                }
                return Err(WaitError::Interrupted {
                    snapshots: ids.to_vec(),
                });
            }
        };
        all.into_iter()
            .map(|a| a.unwrap_or(Err(WaitError::Stopped)))
            .collect()
    }

    /// Polls every place when it is due, for as long as the session runs (the caller drops
    /// this future when the tasks are done).
    pub async fn run(&self, recorder: &dyn Record) -> Infallible {
        loop {
            let next = {
                let places = self.places();
                places
                    .values()
                    .filter(|p| !p.waiting.is_empty())
                    .map(|p| p.due)
                    .min()
            };
            match next {
                None => self.wake.notified().await,
                Some(due) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(due) => {}
                        () = self.wake.notified() => continue,
                    }
                }
            }
            let now = Instant::now();
            let due: Vec<(Access, String)> = self
                .places()
                .iter()
                .filter(|(_, p)| !p.waiting.is_empty() && p.due <= now)
                .map(|(k, _)| k.clone())
                .collect();
            join_all(
                due.iter()
                    .map(|(access, region)| self.poll(recorder, access, region)),
            )
            .await;
        }
    }

    async fn poll(&self, recorder: &dyn Record, access: &Access, region: &str) {
        let key = (access.clone(), region.to_owned());
        let ids: Vec<String> = {
            let mut places = self.places();
            let Some(place) = places.get_mut(&key) else {
                return;
            };
            // Waits given up (interrupted tasks) are not asked about.
            place.waiting.retain(|_, w| !w.tx.is_closed());
            place.waiting.keys().cloned().collect()
        };
        let mut statuses = Vec::with_capacity(ids.len());
        let mut failure = None;
        for chunk in ids.chunks(BATCH) {
            match S::describe(self.cloud, access, region, chunk).await {
                Ok(found) => statuses.extend(found),
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }

        let now = Instant::now();
        let mut places = self.places();
        let Some(place) = places.get_mut(&key) else {
            return;
        };
        if let Some(e) = failure {
            if e.is_throttling() {
                place.quiet = next_interval(place.quiet, self.config.poll_max);
                place.due = now + jitter(place.quiet);
                return;
            }
            for id in &ids {
                if let Some(w) = place.waiting.remove(id) {
                    let _ = w.tx.send(Err(WaitError::Cloud(e.clone())));
                }
            }
            return;
        }

        let mut by_id: HashMap<String, S> = statuses
            .into_iter()
            .map(|s| (s.id().to_owned(), s))
            .collect();
        let mut ended = false;
        for id in &ids {
            let Some(w) = place.waiting.get_mut(id) else {
                continue;
            };
            match by_id.remove(id) {
                None => {
                    w.unseen += 1;
                    if w.unseen > MAX_UNSEEN_ROUNDS
                        && let Some(w) = place.waiting.remove(id)
                    {
                        let _ = w.tx.send(Err(WaitError::Disappeared {
                            snapshot: id.clone(),
                            region: region.to_owned(),
                        }));
                    }
                }
                Some(s) if matches!(s.state(), SnapshotState::Completed | SnapshotState::Error) => {
                    ended = true;
                    if let Some(w) = place.waiting.remove(id) {
                        let _ = w.tx.send(Ok(s));
                    }
                }
                Some(s) => {
                    w.unseen = 0;
                    let percent = s.progress().unwrap_or(0);
                    w.eta = (percent > 0).then(|| {
                        let elapsed = now.saturating_duration_since(w.since);
                        let total = elapsed.mul_f64(100.0 / f64::from(percent));
                        (w.since + total, total)
                    });
                    let decile = percent / 10;
                    if w.reported != Some(decile) {
                        w.reported = Some(decile);
                        recorder.progress(
                            &w.resource,
                            &format!("snapshot {id} in {region}: {percent}%"),
                        );
                    }
                }
            }
        }
        place.due = self.next_due(place, now, ended);
    }

    /// When to ask about a place again (see the module documentation).
    fn next_due(&self, place: &mut Place<S>, now: Instant, ended: bool) -> Instant {
        let earliest = now + self.config.poll_initial;
        let expected = place
            .waiting
            .values()
            .filter_map(|w| w.eta.map(|(eta, total)| (eta, total, w.slack)))
            .map(|(eta, total, slack)| eta + total.mul_f64(slack).max(self.config.poll_initial))
            .min();
        match expected {
            Some(t) => t.clamp(
                earliest,
                now + self.config.poll_horizon.max(self.config.poll_initial),
            ),
            None => {
                place.quiet = if ended {
                    self.config.poll_initial
                } else {
                    next_interval(place.quiet, self.config.poll_max)
                };
                now + place.quiet
            }
        }
    }
}

/// A snapshot whose end is waited for: EBS or RDS.
pub trait Progressing {
    fn id(&self) -> &str;
    fn state(&self) -> SnapshotState;
    fn progress(&self) -> Option<u8>;
    /// What AWS says about a failure.
    fn message(&self) -> Option<&str>;
}

impl Progressing for SnapshotStatus {
    fn id(&self) -> &str {
        &self.id
    }
    fn state(&self) -> SnapshotState {
        self.state
    }
    fn progress(&self) -> Option<u8> {
        self.progress
    }
    fn message(&self) -> Option<&str> {
        self.state_message.as_deref()
    }
}

impl Progressing for DbSnapshotStatus {
    fn id(&self) -> &str {
        &self.id
    }
    fn state(&self) -> SnapshotState {
        DbSnapshotStatus::state(self)
    }
    fn progress(&self) -> Option<u8> {
        self.progress
    }
    fn message(&self) -> Option<&str> {
        // RDS has no state message: the status itself (failed, incompatible-*) is all it says.
        None
    }
}
