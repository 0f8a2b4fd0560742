//! `snaprelay gc [--yes]`: lists what the policy's sessions left in AWS that no record accounts
//! for (snapshots tagged for the policy but in no restore point, shares never removed), and with
//! `--yes` deletes and unshares it. Without `--yes` nothing is changed (SPEC section 4).

use snaprelay_core::gc::{self, GcReport};
use snaprelay_core::ports::StateStore;
use snaprelay_state::PointFilter;

use crate::Outcome;
use crate::output;

use super::{
    Settings, emit, load_policy, lock_policy, open_existing_store, plan_policy, print_json,
};

pub async fn run(settings: &Settings, yes: bool) -> Outcome {
    let result = async {
        let policy = load_policy(settings)?;
        let store = open_existing_store(settings)?;
        let failed = |e: snaprelay_core::ports::StoreError| Outcome::Failed(e.to_string());
        let recorded = store
            .find_restore_points(&PointFilter {
                policy: Some(&policy.name),
                ..PointFilter::default()
            })
            .map_err(failed)?;
        let known: std::collections::BTreeSet<String> = store
            .sessions(Some(&policy.name))
            .map_err(failed)?
            .into_iter()
            .map(|s| s.session_id)
            .collect();
        // Held while gc acts, so that no session starts meanwhile. When a session runs (its
        // process holds the lock), every unfinished session is left alone.
        let lock = lock_policy(&store, &policy.name, false)?;
        let free = lock.is_some();
        // Only `--yes` keeps it: a listing must not hold up a run that starts meanwhile.
        let _held = if yes { lock } else { None };
        let unfinished: Vec<String> = store
            .unfinished_sessions(Some(&policy.name))
            .map_err(|e| Outcome::Failed(e.to_string()))?
            .into_iter()
            .map(|u| u.id)
            .collect();
        let live: Vec<String> = if free { Vec::new() } else { unfinished.clone() };
        let (cloud, prepared) = plan_policy(&policy).await?;
        let report = gc::collect(
            &cloud,
            &prepared,
            &policy.source.regions,
            &recorded,
            &known,
            &live,
            yes,
        )
        .await
        .map_err(|e| Outcome::Failed(e.to_string()))?;
        if settings.json {
            print_json(&report)?;
        } else {
            emit(&output::gc_text(&report));
        }
        // What an interrupted session left is what its resume takes up: say so, once it
        // is listed (and, with --yes, after it was deleted: the resume then makes it again).
        for id in if free { unfinished } else { Vec::new() } {
            say!(
                "note: session {id} of policy {} was interrupted; `snaprelay run` (or `sessions \
                 resume {id}`) resumes it and takes up its copies in flight, which gc lists as \
                 left behind",
                policy.name
            );
        }
        Ok::<_, Outcome>(Outcome::Code(exit_code(&report)))
    };
    result.await.unwrap_or_else(|o| o)
}

fn exit_code(report: &GcReport) -> u8 {
    u8::from(!report.problems.is_empty())
}
