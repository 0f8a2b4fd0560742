//! `snaprelay sessions list | show ID`: past sessions from the state store.

use snaprelay_core::ports::StateStore;

use crate::Outcome;
use crate::output;

use super::{Settings, load_policy, open_store, print_json};

pub fn list(settings: &Settings) -> Outcome {
    let result = (|| {
        let policy = match settings.policy {
            Some(_) => Some(load_policy(settings)?.name),
            None => None,
        };
        let store = open_store(settings)?;
        let sessions = store
            .sessions(policy.as_deref())
            .map_err(|e| Outcome::Failed(e.to_string()))?;
        if settings.json {
            print_json(&sessions)?;
        } else {
            print!("{}", output::sessions_text(&sessions));
        }
        Ok::<_, Outcome>(Outcome::Code(0))
    })();
    result.unwrap_or_else(|o| o)
}

#[derive(serde::Serialize)]
struct Shown {
    #[serde(flatten)]
    summary: snaprelay_core::report::SessionSummary,
    report: Option<snaprelay_core::report::SessionReport>,
    steps: Vec<snaprelay_core::report::StepRecord>,
}

pub fn show(settings: &Settings, id: &str) -> Outcome {
    let result = (|| {
        let store = open_store(settings)?;
        let failed = |e: snaprelay_core::ports::StoreError| Outcome::Failed(e.to_string());
        let summary = store
            .sessions(None)
            .map_err(failed)?
            .into_iter()
            .find(|s| s.session_id == id)
            .ok_or_else(|| {
                Outcome::Invalid(format!(
                    "session id {id:?}: no such session in the state file"
                ))
            })?;
        let shown = Shown {
            report: store.session(id).map_err(failed)?,
            steps: store.steps(id).map_err(failed)?,
            summary,
        };
        if settings.json {
            print_json(&shown)?;
        } else {
            if let Some(r) = &shown.report {
                print!("{}", output::report_text(r));
            } else {
                println!(
                    "Session {} of policy {}: {} (started {})",
                    id, shown.summary.policy, shown.summary.status, shown.summary.started_at
                );
            }
            print!("{}", output::steps_text(&shown.steps));
        }
        Ok::<_, Outcome>(Outcome::Code(0))
    })();
    result.unwrap_or_else(|o| o)
}
