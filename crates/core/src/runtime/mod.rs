//! The runtime the workflows and the engine stand on, and nothing below them: throttling and
//! retries around the cloud port ([`Throttled`]), interruption ([`Interrupt`]), the clock,
//! progress events and records ([`Progress`], [`Record`]), waiting for snapshots
//! ([`Watcher`]), and the copy-slot scheduler ([`CopySlots`]). It imports only the ports and
//! the model.

mod backoff;
pub mod clock;
mod interrupt;
mod progress;
mod slots;
mod throttled;
mod watch;

use std::time::Duration;

pub use backoff::{jitter, next_interval};
pub use interrupt::{Interrupt, InterruptHandle, Interrupted};
pub use progress::{Progress, Record};
pub use slots::{CopySlots, Service, SlotWatch};
pub use throttled::{ChangeHook, Throttled};
pub use watch::{ClusterSnapshotStatus, Polled, Progressing, Urgency, WaitError, Watcher};

/// How the engine paces itself.
#[derive(Clone)]
pub struct EngineConfig {
    /// How many resources are worked on at once.
    pub concurrency: usize,
    /// The first wait before asking whether a snapshot has completed.
    pub poll_initial: Duration,
    /// The longest wait between two polls of a place where no snapshot reports progress yet.
    pub poll_max: Duration,
    /// The longest wait between two polls of a place whose snapshots report progress (the
    /// poll is planned for when the first of them should end).
    pub poll_horizon: Duration,
    /// EBS snapshot copies in flight per account and destination Region (AWS: 20).
    pub ebs_copy_slots: usize,
    /// RDS DB snapshot copies in progress per account and destination Region (AWS: 20).
    pub rds_copy_slots: usize,
    /// Aurora DB cluster snapshot copies in progress per account and destination Region
    /// (AWS: 5, "up to five snapshot copy requests in progress to a single destination Region
    /// per account": https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/USER_CopySnapshot.html).
    pub aurora_copy_slots: usize,
    /// The lease the session runs under, on a store whose leases can lapse: each change is
    /// begun only while it is held.
    pub fence: Option<crate::ports::Fence>,
    /// The id a new session takes (the API answers it before the session has begun); `None`:
    /// a fresh one.
    pub session_id: Option<crate::ports::SessionId>,
    /// Told of every copy slot taken and given back (the copies in flight).
    pub copy_watch: Option<std::sync::Arc<dyn SlotWatch>>,
}

impl std::fmt::Debug for EngineConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineConfig")
            .field("concurrency", &self.concurrency)
            .field("poll_initial", &self.poll_initial)
            .field("ebs_copy_slots", &self.ebs_copy_slots)
            .field("rds_copy_slots", &self.rds_copy_slots)
            .field("aurora_copy_slots", &self.aurora_copy_slots)
            .field("fence", &self.fence)
            .field("session_id", &self.session_id)
            .finish_non_exhaustive()
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            concurrency: 32,
            poll_initial: Duration::from_secs(2),
            poll_max: Duration::from_secs(30),
            poll_horizon: Duration::from_secs(900),
            ebs_copy_slots: 20,
            rds_copy_slots: 20,
            aurora_copy_slots: 5,
            fence: None,
            session_id: None,
            copy_watch: None,
        }
    }
}
