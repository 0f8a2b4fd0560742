//! `snaprelay retention apply [--dry-run]`: applies the policy's `[retention]` now (`run` does
//! the same at the end of every session). Exit code 0 when everything the policy lets go was
//! deleted (or, with --dry-run, could be), 1 when something had to be left.

use snaprelay_core::app::{apply_retention, without_retention};
use snaprelay_core::retention::RetentionReport;

use crate::Outcome;
use crate::output;

use super::{Settings, aws_app, emit, load_policy, now, open_existing_store, print_json};

pub async fn apply(settings: &Settings, dry_run: bool) -> Outcome {
    let result = async {
        let policy = load_policy(settings)?;
        let now = now()?;
        let report = match without_retention(&policy, dry_run) {
            Some(nothing) => nothing,
            None => {
                let store = open_existing_store(settings).await?;
                // The crash tests stop it after any of its deletions, as they stop `run`.
                let hook = crate::fault::abort_hook().map_err(Outcome::Invalid)?;
                let app = aws_app(&policy, store, hook, settings.lease_ttl).await?;
                apply_retention(&app, &policy, now, dry_run).await?
            }
        };
        if settings.json {
            print_json(&report)?;
        } else {
            emit(&output::retention_text(&report));
        }
        Ok::<_, Outcome>(Outcome::Code(exit_code(&report)))
    };
    result.await.unwrap_or_else(|o| o)
}

pub fn exit_code(report: &RetentionReport) -> u8 {
    u8::from(!report.problems.is_empty())
}
