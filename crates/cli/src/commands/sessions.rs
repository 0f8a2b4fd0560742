//! `snaprelay sessions list | show ID`: past sessions from the state store.

use snaprelay_core::app::{INTERRUPTED, mark_interrupted};
use snaprelay_core::ports::SessionId;

use crate::Outcome;
use crate::output;

use super::{Settings, emit, load_policy, open_existing_store, print_json};

pub async fn list(settings: &Settings) -> Outcome {
    let result = async {
        let policy = match settings.policy {
            Some(_) => Some(load_policy(settings)?.name),
            None => None,
        };
        let store = open_existing_store(settings).await?;
        let mut sessions = store.sessions(policy.as_deref()).await?;
        mark_interrupted(store.as_ref(), &mut sessions).await?;
        if settings.json {
            print_json(&sessions)?;
        } else {
            emit(&output::sessions_text(&sessions));
        }
        Ok::<_, Outcome>(Outcome::Code(0))
    };
    result.await.unwrap_or_else(|o| o)
}

/// `sessions show --output json`: the session's report, as `run --output json` printed it,
/// with its steps; a session that never finished has no report, only its summary.
#[derive(serde::Serialize)]
struct Shown {
    #[serde(flatten)]
    session: Session,
    /// A finished session's time per phase, from its steps, as `run` reported it.
    #[serde(skip_serializing_if = "Option::is_none")]
    phases: Option<snaprelay_core::report::Phases>,
    /// What it copied, as `run` reported it (sessions of older versions have none).
    #[serde(skip_serializing_if = "Option::is_none")]
    copied: Option<serde_json::Value>,
    steps: Vec<snaprelay_core::report::StepRecord>,
}

#[derive(serde::Serialize)]
#[serde(untagged)]
enum Session {
    Finished(snaprelay_core::report::SessionReport),
    Unfinished(snaprelay_core::report::SessionSummary),
}

pub async fn show(settings: &Settings, id: &str) -> Outcome {
    let result = async {
        let store = open_existing_store(settings).await?;
        let session_id = SessionId::from(id);
        let summary = store.summary(&session_id).await?.ok_or_else(|| {
            Outcome::Invalid(format!(
                "session id {id:?}: no such session in the state file"
            ))
        })?;
        let mut summaries = vec![summary];
        mark_interrupted(store.as_ref(), &mut summaries).await?;
        let summary = summaries.remove(0);
        let steps = store.steps(&session_id).await?;
        let session = match store.session(&session_id).await? {
            Some(report) => Session::Finished(report),
            None => Session::Unfinished(summary),
        };
        let phases = match &session {
            Session::Finished(_) => Some(snaprelay_core::report::Phases::of(&steps)),
            Session::Unfinished(_) => None,
        };
        let copied: Option<serde_json::Value> = store
            .copied(&session_id)
            .await?
            .and_then(|json| serde_json::from_str(&json).ok());
        if settings.json {
            print_json(&Shown {
                session,
                phases,
                copied,
                steps,
            })?;
        } else {
            match &session {
                Session::Finished(r) => {
                    emit(&output::report_text(r));
                    if let Some(line) = copied
                        .as_ref()
                        .and_then(snaprelay_core::plan::estimate::copied_text)
                    {
                        emit(&format!("Copied: {line}\n"));
                    }
                }
                Session::Unfinished(s) if s.status == INTERRUPTED => emit(&format!(
                    "Session {} of policy {}: {} (started {}; its process is gone: `snaprelay \
                     run` or `snaprelay sessions resume {id}` finishes it)\n",
                    id, s.policy, s.status, s.started_at
                )),
                Session::Unfinished(s) => emit(&format!(
                    "Session {} of policy {}: {} (started {}, not finished)\n",
                    id, s.policy, s.status, s.started_at
                )),
            }
            emit(&output::steps_text(&steps));
        }
        Ok::<_, Outcome>(Outcome::Code(0))
    };
    result.await.unwrap_or_else(|o| o)
}
