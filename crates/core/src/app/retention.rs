//! `apply_retention`: the policy's `[retention]` applied now (`run_policy` does the same at the
//! end of every session).

use crate::policy::Policy;
use crate::retention::{self, Accesses, RetentionReport};

use super::{App, AppError, hold_policy, prepared, still_running};

/// Deletes (or, with `dry_run`, lists) the restore points the policy lets go. Not while a
/// session of the policy runs: its restore points are not recorded yet.
pub async fn apply_retention(
    app: &App,
    policy: &Policy,
    now: u64,
    dry_run: bool,
) -> Result<RetentionReport, AppError> {
    if let Some(nothing) = without_retention(policy, dry_run) {
        return Ok(nothing);
    }
    let store = app.store.as_ref();
    let Some(lease) = hold_policy(app, &policy.name, true).await? else {
        return Err(still_running(store, &policy.name).await);
    };
    let prepared = prepared(app, policy).await?;
    let report = retention::apply(
        app.cloud.as_ref(),
        store,
        &policy.name,
        &policy.retention,
        &Accesses::of_plan(&prepared, &policy.source.regions),
        now,
        dry_run,
    )
    .await?;
    store.release_lease(lease).await?;
    Ok(report)
}

/// The report of a policy without `[retention]`: nothing to look at, no store or AWS needed.
pub fn without_retention(policy: &Policy, dry_run: bool) -> Option<RetentionReport> {
    (policy.retention == Default::default()).then(|| RetentionReport {
        policy: policy.name.clone(),
        dry_run,
        note: Some(format!(
            "policy {} has no [retention] section: every restore point is kept, nothing to do",
            policy.name
        )),
        ..RetentionReport::default()
    })
}
