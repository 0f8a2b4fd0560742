//! RDS DB instances: the source snapshot, workflow A and workflow C.
//!
//! - [`source`]: step 1 of both workflows, a DB snapshot of the instance.
//! - [`same_account`]: workflow A, a copy to the target Region in the source account.
//! - [`cross_account`]: workflow C, share, copy into the target account (in two steps when the
//!   Region differs), delete the intermediate copy, unshare.
//! - `copy`: one `CopyDBSnapshot`, waited for, discarded if it fails.
//! - [`reencrypt`]: the default-key workaround, a snapshot under `aws/rds` copied under a
//!   customer managed key before workflow C shares it.

mod copy;
pub mod cross_account;
pub mod reencrypt;
pub mod same_account;
pub mod source;

use crate::model::{DbSnapshotStatus, SnapshotKind};
use crate::plan::ResolvedTarget;
use crate::policy::is_db_identifier;
use crate::report::{PlaceReport, SnapshotReport};
use crate::workflows::TaskContext;

/// The DB snapshot identifier of a resource in a session: unique per session and resource,
/// valid for RDS (letters, digits, single hyphens, a letter first, 255 characters at most).
/// The same name serves the source snapshot and its replicas, which live in other places.
pub fn snapshot_identifier(policy: &str, db_instance: &str, session_id: &str) -> String {
    let raw = format!("snaprelay-{policy}-{db_instance}-{session_id}").to_ascii_lowercase();
    let mut id = String::with_capacity(raw.len());
    for c in raw.chars() {
        let c = if c.is_ascii_alphanumeric() { c } else { '-' };
        if !(c == '-' && id.ends_with('-')) {
            id.push(c);
        }
    }
    // Room for the longest suffix we add (`-staging-NN`).
    id.truncate(255 - STAGING_SUFFIX.len() - 3);
    while id.ends_with('-') {
        id.pop();
    }
    debug_assert!(is_db_identifier(&format!("{id}{STAGING_SUFFIX}-99"), 255));
    id
}

/// Added to the identifier of the intermediate copy of workflow C.
pub const STAGING_SUFFIX: &str = "-staging";

/// Records a replica restore point and returns it for the report.
async fn record_replica(
    ctx: &TaskContext<'_>,
    target: &ResolvedTarget,
    source: &source::SourceDbSnapshot,
    replica: &DbSnapshotStatus,
) -> PlaceReport {
    let place = PlaceReport {
        account: target.account.to_string(),
        region: target.region.clone(),
        snapshots: vec![SnapshotReport {
            id: replica.arn.clone(),
            source_id: source.arn.clone(),
            volume_id: String::new(),
            device: None,
            kms_key_id: replica.kms_key_id.clone(),
            size_gib: source.size_gib,
        }],
    };
    ctx.record_point(SnapshotKind::Replica, &place).await;
    place
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_identifiers_follow_the_rds_rules() {
        let id = snapshot_identifier("nightly_dr", "orders-db", "20261126T193056Z-4f1c");
        assert_eq!(id, "snaprelay-nightly-dr-orders-db-20261126t193056z-4f1c");
        assert!(is_db_identifier(&id, 255));
        let long = snapshot_identifier(&"p".repeat(64), &"d".repeat(63), &"s-".repeat(100));
        assert!(long.len() + STAGING_SUFFIX.len() <= 255, "{}", long.len());
        assert!(
            is_db_identifier(&format!("{long}{STAGING_SUFFIX}"), 255),
            "{long}"
        );
    }
}
