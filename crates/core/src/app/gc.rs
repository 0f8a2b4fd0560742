//! `gc`: what the policy's sessions left in AWS that no record accounts for, listed, and with
//! `act` deleted and unshared (SPEC section 4).

use std::collections::BTreeSet;

use crate::gc::{self, GcReport};
use crate::policy::Policy;
use crate::ports::SessionId;

use super::restore::places;
use super::{App, AppError, hold_policy, leftovers, prepared};
use crate::gc::RemnantFound;
use crate::ports::OperationKind;
use crate::restore::{DRILL_TAG, RESTORE_TAG, Remnant};
use crate::runtime::clock::{parse_rfc3339, utc_now};

/// A restore recorded as running this long ago is taken as dead (its process killed): a
/// restore waits at most an hour for what it made.
const RESTORE_GRACE_SECS: u64 = 2 * 60 * 60;

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
    let prepared = prepared(app, policy).await?;
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
    let mut report = report;
    // What restores and drills left: an error there is reported, not the end of gc (the
    // snapshots above were listed, and perhaps deleted, already).
    if let Err(e) = remnants(app, policy, act, free, &mut report).await {
        report.problems.push(format!(
            "could not look for what restores and drills left: {}",
            e.message
        ));
    }
    if let Some(lease) = held {
        store.release_lease(lease).await?;
    }
    Ok(GcOutcome {
        report,
        interrupted: if free { unfinished } else { Vec::new() },
    })
}

/// What restores and drills left (SPEC 6.2, 6.3): found by their tags in every place of the
/// policy; deleted with `act` when no running drill or restore owns it. Drills hold the
/// policy's lease, so while gc holds it (`free`) none runs. A restore runs without it: what
/// it made is deleted only when it failed, or was recorded running so long ago that its
/// process is dead; a restore that succeeded made what the user asked for and is never listed.
async fn remnants(
    app: &App,
    policy: &Policy,
    act: bool,
    free: bool,
    report: &mut crate::gc::GcReport,
) -> Result<(), AppError> {
    let all = places(app, policy, None, &policy.source.regions).await?;
    let now = parse_rfc3339(&utc_now()).unwrap_or_default();
    for at in &all {
        let mut doomed: Vec<Remnant> = Vec::new();
        for marker in [DRILL_TAG, RESTORE_TAG] {
            let found = match leftovers::find(app, at, marker, &policy.name).await {
                Ok(found) => found,
                Err(e) => {
                    report.problems.push(format!(
                        "could not list what restores and drills left in {}: {e}",
                        at.place
                    ));
                    continue;
                }
            };
            for remnant in found {
                let (action, why) = judge(app, &remnant, free, now).await?;
                if action == "skip" {
                    continue;
                }
                if action == "delete" {
                    doomed.push(remnant.clone());
                }
                report.restores_and_drills.push(RemnantFound {
                    remnant,
                    action,
                    why,
                });
            }
        }
        if act && !doomed.is_empty() {
            let problems = leftovers::remove(
                app,
                at,
                &doomed,
                std::time::Duration::from_secs(10 * 60),
                std::time::Duration::from_secs(5),
            )
            .await;
            report.problems.extend(problems);
        }
    }
    Ok(())
}

/// Whether what a restore made can be in use: anything but an image, a group, or a resource
/// that failed or stopped.
fn usable(remnant: &Remnant) -> bool {
    use crate::restore::CreatedKind::*;
    match remnant.kind {
        Image | SecurityGroup => false,
        Instance => !matches!(remnant.state.as_str(), "stopped" | "stopping"),
        Volume => remnant.state != "error",
        DbInstance | DbCluster => !matches!(
            remnant.state.as_str(),
            "failed" | "incompatible-restore" | "incompatible-parameters" | "incompatible-network"
        ),
    }
}

/// `delete`, `keep` (listed, with why) or `skip` (not a leftover: a restore that succeeded).
async fn judge(
    app: &App,
    remnant: &Remnant,
    free: bool,
    now: u64,
) -> Result<(&'static str, String), AppError> {
    let kind = if remnant.tag == DRILL_TAG {
        OperationKind::Drill
    } else {
        OperationKind::Restore
    };
    let op = app.store.operation(&remnant.made_by).await?;
    Ok(match (kind, op) {
        (OperationKind::Drill, None) => (
            "keep",
            format!(
                "made by drill {}, which this state does not know (another installation's?): \
                 delete it by hand if it is not wanted",
                remnant.made_by
            ),
        ),
        (OperationKind::Drill, _) if free => (
            "delete",
            format!(
                "left by drill {} (no drill of the policy runs)",
                remnant.made_by
            ),
        ),
        (OperationKind::Drill, _) => (
            "keep",
            format!(
                "drill {} may still run (the policy's lease is held)",
                remnant.made_by
            ),
        ),
        (OperationKind::Restore, None) => (
            "keep",
            format!(
                "made by restore {}, which this state does not know: delete it by hand if it \
                 is not wanted",
                remnant.made_by
            ),
        ),
        // What a restore made that can be in use (a running instance, an available volume or
        // DB) is the user's, whatever became of the restore: listed, never deleted.
        (OperationKind::Restore, Some(op)) if op.status != "Success" && usable(remnant) => (
            "keep",
            format!(
                "made by restore {} ({}), and {}: it may be in use; delete it by hand if \
                     it is not",
                op.id, op.status, remnant.state
            ),
        ),
        (OperationKind::Restore, Some(op)) => match op.status.as_str() {
            "Success" => ("skip", String::new()),
            "Running"
                if parse_rfc3339(&op.started_at)
                    .is_some_and(|t| now.saturating_sub(t) < RESTORE_GRACE_SECS) =>
            {
                (
                    "keep",
                    format!(
                        "restore {} may still run (begun {} by {})",
                        op.id, op.started_at, op.holder
                    ),
                )
            }
            "Running" => (
                "delete",
                format!(
                    "restore {} was begun {} and never ended: its process was killed",
                    op.id, op.started_at
                ),
            ),
            status => ("delete", format!("restore {} ended {status}", op.id)),
        },
    })
}
