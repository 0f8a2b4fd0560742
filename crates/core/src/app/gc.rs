//! `gc`: what the policy's sessions left in AWS that no record accounts for, listed, and with
//! `act` deleted and unshared (SPEC section 4).

use std::collections::BTreeSet;

use crate::gc::{self, GcReport};
use crate::policy::Policy;
use crate::ports::SessionId;

use super::{App, AppError, hold_policy, plan};

/// What gc found (and did), and the interrupted sessions whose leftovers a resume takes up.
#[derive(Debug)]
pub struct GcOutcome {
    pub report: GcReport,
    /// Sessions of the policy that were interrupted (none of them runs): `run` resumes them.
    pub interrupted: Vec<SessionId>,
}

pub async fn gc(
    app: &App,
    policy: &Policy,
    act: bool,
    unknown_sessions: bool,
) -> Result<GcOutcome, AppError> {
    let store = app.store.as_ref();
    let recorded = store.policy_restore_points(&policy.name).await?;
    let known: BTreeSet<String> = store
        .sessions(Some(&policy.name))
        .await?
        .into_iter()
        .map(|s| s.session_id.to_string())
        .collect();
    // Held while gc acts, so that no session starts meanwhile. When a session runs (another
    // holder has the lease), every unfinished session is left alone.
    let lease = hold_policy(app, &policy.name, false).await?;
    let free = lease.is_some();
    // Only acting keeps it: a listing must not hold up a run that starts meanwhile.
    let held = match lease {
        Some(lease) if !act => {
            store.release_lease(lease).await?;
            None
        }
        lease => lease,
    };
    let unfinished: Vec<SessionId> = store
        .unfinished_sessions(Some(&policy.name))
        .await?
        .into_iter()
        .map(|u| u.id)
        .collect();
    let live: Vec<String> = if free {
        Vec::new()
    } else {
        unfinished.iter().map(ToString::to_string).collect()
    };
    let prepared = plan(app, policy).await?;
    let report = gc::collect(
        app.cloud.as_ref(),
        &prepared,
        &policy.source.regions,
        &recorded,
        &known,
        &live,
        gc::Options {
            act,
            unknown_sessions,
        },
    )
    .await
    .map_err(|e| AppError::new(AppError::class_of(&e), e.to_string()))?;
    if let Some(lease) = held {
        store.release_lease(lease).await?;
    }
    Ok(GcOutcome {
        report,
        interrupted: if free { unfinished } else { Vec::new() },
    })
}
