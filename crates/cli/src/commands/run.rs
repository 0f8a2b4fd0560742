//! `snaprelay run` and `snaprelay sessions resume ID`: arguments in, the application's
//! `run_policy` (locking, resume-first, preflight, the session, retention), the report out.

use snaprelay_core::app::{RunRequest, run_policy};
use snaprelay_core::engine::EngineConfig;
use snaprelay_core::plan::sizing::Copied;
use snaprelay_core::ports::SessionId;
use snaprelay_core::report::{Phases, SessionReport};
use snaprelay_core::retention::RetentionReport;

use crate::Outcome;
use crate::output;

use super::{
    Settings, aws_app, emit, load_policy, now, open_existing_store, open_store, print_json,
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
    /// What the session copied, in bytes and USD (SPEC 6.5).
    copied: &'a Copied,
    /// How long the session spent in each phase.
    phases: &'a Phases,
}

/// `run`, or with `resume` (a session id) `sessions resume ID`.
pub async fn run(settings: &Settings, concurrency: usize, resume: Option<&str>) -> Outcome {
    let result = async {
        let policy = load_policy(settings)?;
        let request = RunRequest {
            resume: resume.map(SessionId::from),
            now: now()?,
            engine: EngineConfig {
                concurrency,
                poll_initial: settings.poll_interval,
                ..EngineConfig::default()
            },
        };
        let store = match resume {
            Some(_) => open_existing_store(settings).await?,
            None => open_store(settings).await?,
        };
        let hook = crate::fault::abort_hook().map_err(Outcome::Invalid)?;
        let app = aws_app(&policy, store, hook, settings.lease_ttl).await?;
        let interrupt = super::interrupt_on_signals();
        let progress = super::progress(settings);
        let done = run_policy(&app, &policy, &request, progress.as_ref(), &interrupt).await?;
        if settings.json {
            print_json(&RunDocument {
                report: &done.report,
                resumed: done.resumed,
                retention: done.retention.as_ref(),
                copied: &done.copied,
                phases: &done.phases,
            })?;
        } else {
            emit(&output::report_text(&done.report));
            emit(&format!(
                "\n{}",
                output::copied_text(&done.copied, &done.phases)
            ));
            if let Some(r) = &done.retention {
                emit(&format!("\n{}", output::retention_text(r)));
            }
        }
        Ok::<_, Outcome>(Outcome::Code(done.status().exit_code() as u8))
    };
    result.await.unwrap_or_else(|o| o)
}
