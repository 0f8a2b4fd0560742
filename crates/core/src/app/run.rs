//! `run_policy`: one session of a policy now, then its retention. A session of the policy that
//! was interrupted (its process killed) is resumed instead of starting a new one; a session
//! can also be named to resume (`sessions resume ID`).

use std::time::Instant;

use crate::engine::{EngineConfig, Interrupt, Progress, run_session};
use crate::plan::sizing::{self, Copied};
use crate::policy::Policy;
use crate::ports::{Lease, SessionId, StateStore, StoreError};
use crate::report::{Phases, SessionProgress, SessionReport};
use crate::retention::{self, Accesses, RetentionReport};
use crate::status::Status;

use super::{App, AppError, ErrorKind, hold_policy, still_running};

/// What to run.
#[derive(Clone, Debug, Default)]
pub struct RunRequest {
    /// The interrupted session to finish; `None`: the newest interrupted one, else a new one.
    pub resume: Option<SessionId>,
    /// Now, in seconds since the Unix epoch (retention by age reads it).
    pub now: u64,
    pub engine: EngineConfig,
}

/// What a run did.
#[derive(Debug)]
pub struct RunOutcome {
    pub report: SessionReport,
    /// The session was an interrupted one, taken up again.
    pub resumed: bool,
    /// What retention did after the session (`None`: no `[retention]`, or interrupted).
    pub retention: Option<RetentionReport>,
    /// Replicas the preflight refused (their source key cannot be used by their target).
    pub refused: usize,
    /// What the session copied, in bytes and USD (SPEC 6.5).
    pub copied: Copied,
    /// How long the session spent in each phase.
    pub phases: Phases,
}

impl RunOutcome {
    /// The session's status, or `Warning` when retention had to leave something it should
    /// have deleted.
    pub fn status(&self) -> Status {
        let mut status = self.report.status;
        if self
            .retention
            .as_ref()
            .is_some_and(|r| !r.problems.is_empty())
        {
            status = status.max(Status::Warning);
        }
        status
    }
}

/// Runs (or resumes) one session of `policy`, then applies its retention.
pub async fn run_policy(
    app: &App,
    policy: &Policy,
    request: &RunRequest,
    progress: &dyn Progress,
    interrupt: &Interrupt,
) -> Result<RunOutcome, AppError> {
    let started = Instant::now();
    let store = app.store.as_ref();
    // Two sessions of one policy must not overlap: the retention of one would delete the
    // source snapshots the other is still copying from. The lease is held to the end.
    let Some(lease) = hold_policy(app, &policy.name, true).await? else {
        return Err(still_running(store, &policy.name).await);
    };
    // Everything from here to the end runs under the lease: planning a large estate and the
    // retention after the session can take longer than its TTL. A lease that expires (a
    // shared database) is renewed all along; one that is lost stops the run where it stands,
    // as a crash would: the worker that took the lease over resumes it from its recorded steps,
    // and no retention of this run overlaps its session.
    let work = async {
        let resume = to_resume(store, &policy.name, request.resume.as_ref()).await?;
        let cloud = app.cloud.as_ref();
        let mut prepared = crate::engine::prepare(cloud, policy)
            .await
            .map_err(|e| AppError::of_prepare(e, "nothing was changed"))?;
        // Which EBS copies will be incremental is decided against the replicas made before this
        // session; the sizes are measured once the copies are made.
        let options = sizing::Options {
            predict: false,
            skip_session: resume.as_ref().map(|p| p.session_id.as_str()),
        };
        sizing::estimate(cloud, store, &mut prepared, &policy.prices, options).await;
        // The lease holds within this store; AWS shows a session of another store.
        super::guard::no_other_state_runs(cloud, store, &prepared, &policy.source.regions).await?;
        // The keys' policies and the target roles' IAM policies, checked as `check` does: a
        // replica that AWS would surely fail is refused now, with the fix, not hours later.
        let refused = crate::check::preflight(cloud, &mut prepared).await;
        if refused > 0 {
            progress.notice(&format!(
                "snaprelay: the preflight check refused {refused} replica(s) whose source key the \
                 target cannot use; each says why and how to fix it (snaprelay check shows all)"
            ));
        }
        if let Some(p) = &resume {
            progress.notice(&format!(
                "snaprelay: resuming session {} of policy {} (started {}, interrupted): {} of its \
                 tasks had ended, {} had begun and are taken up where AWS shows them; no new \
                 session is started",
                p.session_id,
                p.policy,
                p.started_at,
                p.tasks.len(),
                p.started().len().saturating_sub(p.tasks.len())
            ));
        }
        // On a store whose leases lapse, each change is begun only while the lease is still ours.
        let engine = EngineConfig {
            fence: lease.ttl.map(|_| lease.fence()),
            ..request.engine.clone()
        };
        let session = run_session(
            cloud,
            store,
            progress,
            &engine,
            interrupt,
            &prepared,
            resume.as_ref(),
        );
        let report = session.await?;

        // Measured before retention, which may delete the source snapshot a copy is compared with.
        let copied = sizing::copied(cloud, &prepared, &report, &policy.prices).await;
        if let Some(watch) = &request.engine.copy_watch {
            for r in &copied.replicas {
                for c in &r.copies {
                    if let Some(bytes) = c.estimate.bytes {
                        watch.copied(r.resource_type.service(), &c.account, &c.region, bytes);
                    }
                }
            }
        }
        // Kept with the session, so that `sessions show` and the API show it later.
        match serde_json::to_string(&copied) {
            Ok(json) => {
                if let Err(e) = store.record_copied(&report.session_id, &json).await {
                    tracing::warn!(error = %e, "what the session copied could not be recorded");
                }
            }
            Err(e) => tracing::warn!(error = %e, "what the session copied could not be encoded"),
        }
        let phases = match store.steps(&report.session_id).await {
            Ok(steps) => Phases::of(&steps),
            Err(e) => {
                tracing::warn!(error = %e, "the session's steps could not be read back for its phases");
                Phases::default()
            }
        };

        // Retention after the session, unless it was interrupted: the new restore points are
        // recorded by now, and the newest of each place is never deleted.
        let retention = if policy.retention == Default::default() || interrupt.is_raised() {
            None
        } else {
            // `now` was read at the start (or injected): move it on by the session's length.
            let now = request.now + started.elapsed().as_secs();
            let accesses = Accesses::of_plan(&prepared, &policy.source.regions);
            Some(
                retention::apply(
                    cloud,
                    store,
                    &policy.name,
                    &policy.retention,
                    &accesses,
                    now,
                    false,
                )
                .await?,
            )
        };
        Ok::<_, AppError>(RunOutcome {
            report,
            resumed: resume.is_some(),
            retention,
            refused,
            copied,
            phases,
        })
    };
    let outcome = match lease.ttl {
        None => work.await?,
        Some(ttl) => tokio::select! {
            outcome = work => outcome?,
            lost = keep(store, &lease, ttl) => return Err(lost),
        },
    };
    store.release_lease(lease).await?;
    Ok(outcome)
}

/// Renews `lease` every third of its TTL for as long as it is polled; the error that ends it.
pub(super) async fn keep(
    store: &dyn StateStore,
    lease: &Lease,
    ttl: std::time::Duration,
) -> AppError {
    loop {
        tokio::time::sleep(ttl / 3).await;
        match store.renew_lease(lease).await {
            Ok(true) => {}
            Ok(false) => {
                return AppError::new(
                    ErrorKind::Conflict,
                    format!(
                        "the lease of policy {} lapsed and another worker took it over: this \
                         run stopped where it stood; that worker resumes the session",
                        lease.policy
                    ),
                );
            }
            Err(e) => {
                return AppError::from(StoreError(format!(
                    "{}; the session stopped where it stood (no AWS change is made that the \
                     state cannot record), and the next run resumes it",
                    e.0
                )));
            }
        }
    }
}

/// The interrupted session to finish: the one named, else the newest of the policy (the
/// caller holds the policy's lease, so none of them is running), if any.
async fn to_resume(
    store: &dyn StateStore,
    policy: &str,
    named: Option<&SessionId>,
) -> Result<Option<SessionProgress>, AppError> {
    let id = match named {
        None => store
            .unfinished_sessions(Some(policy))
            .await?
            .into_iter()
            .next()
            .map(|u| u.id),
        Some(id) => {
            let summary = store.summary(id).await?.ok_or_else(|| {
                AppError::invalid(format!(
                    "session id {:?}: no such session in the state file",
                    id.as_str()
                ))
            })?;
            if summary.policy != policy {
                return Err(AppError::invalid(format!(
                    "session id {:?} is a session of policy {:?}, not of {policy:?} (the \
                     policy file's name); nothing was done",
                    id.as_str(),
                    summary.policy
                )));
            }
            if summary.ended_at.is_some() {
                return Err(AppError::invalid(format!(
                    "session id {:?} has ended ({}); there is nothing to resume",
                    id.as_str(),
                    summary.status
                )));
            }
            Some(id.clone())
        }
    };
    match id {
        Some(id) => Ok(Some(store.progress_of(&id).await?)),
        None => Ok(None),
    }
}
