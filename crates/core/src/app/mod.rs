//! The application layer: one entry per use case — [`plan`], [`run_policy`] (which also
//! resumes), [`check`], [`apply_retention`], [`gc`] — that the CLI (and later the HTTP API and
//! the scheduler) call and only render. Each takes an [`App`]: the cloud and the state store
//! it acts through, both shared, so a server can run several policies at once from spawned
//! tasks.
//!
//! Errors leave this layer as one [`AppError`], whose [`ErrorKind`] fixes the exit code and
//! the JSON error `code` of SPEC section 5.

mod drill;
mod error;
mod gc;
mod guard;
mod leftovers;
mod rebuild;
mod restore;
mod retention;
mod run;
mod state_copy;

use std::sync::Arc;
use std::time::Duration;

pub use drill::{DrillOptions, drill};
pub use error::{AppError, ErrorKind};
pub use gc::{GcOutcome, gc};
pub use rebuild::{Rebuilt, rebuild};
pub use restore::{ProgressFn, Waiting, restore};
pub use retention::{apply_retention, without_retention};
pub use run::{RunOutcome, RunRequest, run_policy};
pub use state_copy::{Copied, state_copy};

use crate::check::CheckReport;
use crate::engine::{Prepared, prepare};
use crate::policy::Policy;
use crate::ports::{Cloud, Lease, StateStore};
use crate::runtime::{ChangeHook, Throttled};

/// What the use cases act through.
#[derive(Clone)]
pub struct App {
    /// The cloud, throttled calls retried (see [`App::with_change_hook`]).
    pub cloud: Arc<dyn Cloud>,
    pub store: Arc<dyn StateStore>,
    /// Who takes the policies' leases (`process 1234`), for people reading who holds one.
    pub holder: String,
    /// How long a lease lasts unrenewed, on stores where leases expire.
    pub lease_ttl: Duration,
}

impl App {
    pub fn new(cloud: Arc<dyn Cloud>, store: Arc<dyn StateStore>) -> Self {
        Self::with_change_hook(cloud, store, None)
    }

    /// The application over `cloud`, whose calls that changed AWS are told to `after_change`
    /// (the crash tests abort the process there). Throttled calls are retried here, once for
    /// every use case: each call leaves for AWS through this one wrapper.
    pub fn with_change_hook(
        cloud: Arc<dyn Cloud>,
        store: Arc<dyn StateStore>,
        after_change: Option<ChangeHook>,
    ) -> Self {
        Self {
            cloud: Arc::new(Throttled::with_hook(cloud, after_change)),
            store,
            holder: format!("process {}", std::process::id()),
            lease_ttl: Duration::from_secs(60),
        }
    }
}

/// What a run would do; nothing is changed in AWS.
/// Each copy is sized (SPEC 6.5) from the restore points the store recorded and what AWS says.
pub async fn plan(app: &App, policy: &Policy) -> Result<Prepared, AppError> {
    let mut prepared = prepared(app, policy).await?;
    let options = crate::plan::sizing::Options {
        predict: true,
        skip_session: None,
    };
    crate::plan::sizing::estimate(
        app.cloud.as_ref(),
        app.store.as_ref(),
        &mut prepared,
        &policy.prices,
        options,
    )
    .await;
    Ok(prepared)
}

/// The policy resolved against AWS (resources, targets, workflows), without the copies'
/// sizes: what retention, gc and rebuild need, with none of the sizing's read calls.
pub(crate) async fn prepared(app: &App, policy: &Policy) -> Result<Prepared, AppError> {
    prepare(app.cloud.as_ref(), policy)
        .await
        .map_err(|e| AppError::of_prepare(e, "nothing was changed"))
}

/// `check`: the roles and keys a run needs, evaluated with read calls only.
pub async fn check(app: &App, policy: &Policy) -> Result<CheckReport, AppError> {
    crate::check::check(app.cloud.as_ref(), policy)
        .await
        .map_err(|e| AppError::of_prepare(e, "nothing could be checked"))
}

/// Takes the lease of `policy`. With `wait`, a holder that only looks (`sessions list` probes
/// the lease) is given two seconds to let go. `None` while another holder has it.
pub async fn hold_policy(app: &App, policy: &str, wait: bool) -> Result<Option<Lease>, AppError> {
    let tries = if wait { 10 } else { 1 };
    for n in 0..tries {
        if let Some(lease) = app
            .store
            .acquire_lease(policy, &app.holder, app.lease_ttl)
            .await?
        {
            return Ok(Some(lease));
        }
        if n + 1 < tries {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    Ok(None)
}

/// The status of a session that never finished and whose policy's lease nobody holds: its
/// process is gone, and the next run (or `serve` at start) resumes it (SPEC 6.6).
pub const INTERRUPTED: &str = "Interrupted";

/// Marks as [`INTERRUPTED`] the unfinished sessions among `sessions` whose policy's lease is
/// free: no process runs them.
pub async fn mark_interrupted(
    store: &dyn StateStore,
    sessions: &mut [crate::report::SessionSummary],
) -> Result<(), crate::ports::StoreError> {
    let mut free: std::collections::BTreeMap<String, bool> = Default::default();
    for s in sessions.iter_mut().filter(|s| s.ended_at.is_none()) {
        let is_free = match free.get(&s.policy) {
            Some(f) => *f,
            None => {
                let f = !store.lease_held(&s.policy).await?;
                free.insert(s.policy.clone(), f);
                f
            }
        };
        if is_free {
            s.status = INTERRUPTED.to_owned();
        }
    }
    Ok(())
}

/// Why a command refuses while a session of the policy runs, naming it.
pub async fn still_running(store: &dyn StateStore, policy: &str) -> AppError {
    let running = store
        .unfinished_sessions(Some(policy))
        .await
        .ok()
        .and_then(|u| u.into_iter().next());
    AppError::new(
        ErrorKind::Conflict,
        format!(
            "a session of policy {policy} is still running in another process{}; wait for it to \
             end (two sessions of one policy must not overlap). Nothing was done",
            running
                .map(|u| format!(
                    " (session {}{})",
                    u.id,
                    u.pid
                        .map(|p| format!(", started by process {p}"))
                        .unwrap_or_default()
                ))
                .unwrap_or_default()
        ),
    )
}
