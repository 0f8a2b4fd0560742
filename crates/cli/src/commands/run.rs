//! `snaprelay run`: one session of the policy now, then the policy's retention.

use snaprelay_core::engine::{EngineConfig, run_session};
use snaprelay_core::report::SessionReport;
use snaprelay_core::retention::{self, Accesses, RetentionReport};
use snaprelay_core::status::Status;

use crate::Outcome;
use crate::output;

use super::{
    Settings, emit, load_policy, now, open_store, plan_policy, print_json, running_sessions,
};

/// `run --output json`: the session's report, and what retention did after it.
#[derive(serde::Serialize)]
struct RunDocument<'a> {
    #[serde(flatten)]
    report: &'a SessionReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    retention: Option<&'a RetentionReport>,
}

pub async fn run(settings: &Settings, concurrency: usize) -> Outcome {
    let result = async {
        let policy = load_policy(settings)?;
        let now = now()?;
        let started = std::time::Instant::now();
        let after_change = crate::fault::abort_hook().map_err(Outcome::Invalid)?;
        let mut store = open_store(settings)?;
        // Two sessions of one policy must not overlap: the retention of one would delete the
        // source snapshots the other is still copying from.
        if let Some((id, pid)) = running_sessions(&store, &policy.name)?.into_iter().next() {
            return Err(Outcome::Failed(format!(
                "session {id} of policy {} is still running{}; wait for it to end (two sessions \
                 of one policy must not overlap). Nothing was done",
                policy.name,
                pid.map(|p| format!(" (process {p})")).unwrap_or_default()
            )));
        }
        let (cloud, prepared) = plan_policy(&policy).await?;
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
