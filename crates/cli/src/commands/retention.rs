//! `snaprelay retention apply [--dry-run]`: applies the policy's `[retention]` now (`run` does
//! the same at the end of every session). Exit code 0 when everything the policy lets go was
//! deleted (or, with --dry-run, could be), 1 when something had to be left.

use snaprelay_core::retention::{self, Accesses, RetentionReport};

use crate::Outcome;
use crate::output;

use super::{
    Settings, emit, load_policy, lock_policy, now, open_existing_store, plan_policy, print_json,
    still_running,
};

pub async fn apply(settings: &Settings, dry_run: bool) -> Outcome {
    let result = async {
        let policy = load_policy(settings)?;
        if policy.retention == Default::default() {
            emit(&format!(
                "Policy {} has no [retention] section: every restore point is kept, nothing to do.\n",
                policy.name
            ));
            return Ok(Outcome::Code(0));
        }
        let now = now()?;
        let mut store = open_existing_store(settings)?;
        // Not while a session of the policy runs: its restore points are not recorded yet.
        let Some(_lock) = lock_policy(&store, &policy.name, true)? else {
            return Err(still_running(&store, &policy.name));
        };
        let (cloud, prepared) = plan_policy(&policy).await?;
        let report = retention::apply(
            &cloud,
            &mut store,
            &policy.name,
            &policy.retention,
            &Accesses::of_plan(&prepared, &policy.source.regions),
            now,
            dry_run,
        )
        .await
        .map_err(|e| Outcome::Failed(e.to_string()))?;
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
