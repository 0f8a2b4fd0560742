//! `snaprelay gc [--yes]`: lists what the policy's sessions left in AWS that no record accounts
//! for (snapshots tagged for the policy but in no restore point, shares never removed), and with
//! `--yes` deletes and unshares it. Without `--yes` nothing is changed (SPEC section 4).
//! Snapshots of sessions the state does not know are listed apart, and taken only with
//! `--unknown-sessions` (SPEC section 6.7).

use snaprelay_core::app::gc;
use snaprelay_core::gc::GcReport;

use crate::Outcome;
use crate::output;

use super::{Settings, aws_app, emit, load_policy, open_existing_store, print_json};

pub async fn run(settings: &Settings, yes: bool, unknown_sessions: bool) -> Outcome {
    let result = async {
        let policy = load_policy(settings)?;
        let store = open_existing_store(settings).await?;
        let app = aws_app(&policy, store, None, settings.lease_ttl).await?;
        let done = gc(&app, &policy, yes, unknown_sessions).await?;
        if settings.json {
            print_json(&done.report)?;
        } else {
            emit(&output::gc_text(&done.report));
        }
        // What an interrupted session left is what its resume takes up: say so, once it
        // is listed (and, with --yes, after it was deleted: the resume then makes it again).
        for id in &done.interrupted {
            say!(
                "note: session {id} of policy {} was interrupted; `snaprelay run` (or `sessions \
                 resume {id}`) resumes it and takes up its copies in flight, which gc lists as \
                 left behind",
                policy.name
            );
        }
        Ok::<_, Outcome>(Outcome::Code(exit_code(&done.report)))
    };
    result.await.unwrap_or_else(|o| o)
}

fn exit_code(report: &GcReport) -> u8 {
    u8::from(!report.problems.is_empty())
}
