//! `snaprelay run`: one session of the policy now, then the policy's retention. A session of
//! the policy that was interrupted (its process killed) is resumed instead of starting a new
//! one; `snaprelay sessions resume ID` names the session to resume.

use snaprelay_core::engine::{EngineConfig, run_session};
use snaprelay_core::ports::StateStore;
use snaprelay_core::report::{SessionProgress, SessionReport};
use snaprelay_core::retention::{self, Accesses, RetentionReport};
use snaprelay_core::status::Status;

use crate::Outcome;
use crate::output;

use super::{
    Settings, emit, interrupted_sessions, load_policy, lock_policy, now, open_existing_store,
    open_store, plan_policy, print_json, still_running,
};

/// `run --output json`: the session's report, and what retention did after it.
#[derive(serde::Serialize)]
struct RunDocument<'a> {
    #[serde(flatten)]
    report: &'a SessionReport,
    /// The session was an interrupted one, taken up again.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    resumed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    retention: Option<&'a RetentionReport>,
}

/// `run`, or with `resume` (a session id) `sessions resume ID`.
pub async fn run(settings: &Settings, concurrency: usize, resume: Option<&str>) -> Outcome {
    let result = async {
        let policy = load_policy(settings)?;
        let now = now()?;
        let started = std::time::Instant::now();
        let after_change = crate::fault::abort_hook().map_err(Outcome::Invalid)?;
        let mut store = match resume {
            Some(_) => open_existing_store(settings)?,
            None => open_store(settings)?,
        };
        // Two sessions of one policy must not overlap: the retention of one would delete the
        // source snapshots the other is still copying from. The lock is held to the end.
        let Some(lock) = lock_policy(&store, &policy.name, true)? else {
            return Err(still_running(&store, &policy.name));
        };
        let progress = to_resume(&store, &policy.name, resume, &lock)?;
        let (cloud, mut prepared) = plan_policy(&policy).await?;
        // The keys' policies and the target roles' IAM policies, checked as `check` does: a
        // replica that AWS would surely fail is refused now, with the fix, not hours later.
        let refused = snaprelay_core::check::preflight(&cloud, &mut prepared).await;
        if refused > 0 {
            say!(
                "snaprelay: the preflight check refused {refused} replica(s) whose source key \
                 the target cannot use; each says why and how to fix it (snaprelay check shows all)"
            );
        }
        if let Some(p) = &progress {
            say!(
                "snaprelay: resuming session {} of policy {} (started {}, interrupted): {} of its \
                 tasks had ended, {} had begun and are taken up where AWS shows them; no new \
                 session is started",
                p.session_id,
                p.policy,
                p.started_at,
                p.tasks.len(),
                p.started().len().saturating_sub(p.tasks.len())
            );
        }
        let config = EngineConfig {
            concurrency,
            poll_initial: settings.poll_interval,
            after_change,
            ..EngineConfig::default()
        };
        let interrupt = super::interrupt_on_signals();
        let report = run_session(
            &cloud,
            &mut store,
            super::progress(settings).as_ref(),
            &config,
            &interrupt,
            &prepared,
            progress.as_ref(),
        )
        .await
        .map_err(|e| Outcome::Failed(e.to_string()))?;

        // Retention after the session, unless it was interrupted: the new restore points are
        // recorded by now, and the newest of each place is never deleted.
        let kept = if policy.retention == Default::default() || interrupt.is_raised() {
            None
        } else {
            // `now` was read at the start (or injected): move it on by the session's length.
            let elapsed = started.elapsed().as_secs();
            Some(
                retention::apply(
                    &cloud,
                    &mut store,
                    &policy.name,
                    &policy.retention,
                    &Accesses::of_plan(&prepared, &policy.source.regions),
                    now + elapsed,
                    false,
                )
                .await
                .map_err(|e| Outcome::Failed(e.to_string()))?,
            )
        };

        if settings.json {
            print_json(&RunDocument {
                report: &report,
                resumed: progress.is_some(),
                retention: kept.as_ref(),
            })?;
        } else {
            emit(&output::report_text(&report));
            if let Some(r) = &kept {
                emit(&format!("\n{}", output::retention_text(r)));
            }
        }
        let mut status = report.status;
        if kept.as_ref().is_some_and(|r| !r.problems.is_empty()) {
            // Something retention should have deleted was left: worth a look.
            status = status.max(Status::Warning);
        }
        Ok::<_, Outcome>(Outcome::Code(status.exit_code() as u8))
    };
    result.await.unwrap_or_else(|o| o)
}

/// The interrupted session to finish: the one named, else the newest of the policy whose
/// process is gone, if any.
fn to_resume(
    store: &snaprelay_state::SqliteStore,
    policy: &str,
    named: Option<&str>,
    lock: &snaprelay_state::PolicyLock,
) -> Result<Option<SessionProgress>, Outcome> {
    let failed = |e: snaprelay_core::ports::StoreError| Outcome::Failed(e.to_string());
    let id = match named {
        None => interrupted_sessions(store, policy, lock)?
            .into_iter()
            .next(),
        Some(id) => {
            let summary = store.summary(id).map_err(failed)?.ok_or_else(|| {
                Outcome::Invalid(format!(
                    "session id {id:?}: no such session in the state file"
                ))
            })?;
            if summary.policy != policy {
                return Err(Outcome::Invalid(format!(
                    "session id {id:?} is a session of policy {:?}, not of {policy:?} (the \
                     policy file's name); nothing was done",
                    summary.policy
                )));
            }
            if summary.ended_at.is_some() {
                return Err(Outcome::Invalid(format!(
                    "session id {id:?} has ended ({}); there is nothing to resume",
                    summary.status
                )));
            }
            Some(id.to_owned())
        }
    };
    id.map(|id| store.progress_of(&id).map_err(failed))
        .transpose()
}
