//! RDS DB instances and Aurora DB clusters: the source snapshot, workflow A and workflow C.
//! A cluster takes the same steps with DB cluster snapshots (`api` picks the calls); AWS
//! copies a cluster snapshot shared from another account only within its Region
//! (https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/USER_CopySnapshot.html:
//! "You can't copy a DB cluster snapshot across Regions and accounts in a single step"), so
//! workflow C always takes two steps for a cluster in another Region.
//!
//! - [`source`]: step 1 of both workflows, a DB snapshot of the instance.
//! - [`same_account`]: workflow A, a copy to the target Region in the source account.
//! - [`cross_account`]: workflow C, share, copy into the target account (in two steps when the
//!   Region differs), delete the intermediate copy, unshare.
//! - `copy`: one `CopyDBSnapshot`, waited for, discarded if it fails.
//! - [`reencrypt`]: the default-key workaround, a snapshot under `aws/rds` copied under a
//!   customer managed key before workflow C shares it.

mod api;
mod copy;
pub mod cross_account;
pub mod reencrypt;
pub mod same_account;
pub mod source;

use crate::model::{DbKind, DbSnapshotStatus, SnapshotKind};
use crate::plan::ResolvedTarget;
use crate::policy::is_db_identifier;
use crate::report::{PlaceReport, SnapshotReport};
use crate::workflows::TaskContext;

/// The DB snapshot identifier of a resource in a session: unique per session and resource,
/// valid for RDS (letters, digits, single hyphens, a letter first, 255 characters at most; 63
/// for a DB cluster snapshot). The same name serves the source snapshot and its replicas,
/// which live in other places. A name too long for the kind keeps its start and ends with a
/// hash of the whole, so that two long names stay apart.
pub fn snapshot_identifier(kind: DbKind, policy: &str, db: &str, session_id: &str) -> String {
    let raw = format!("snaprelay-{policy}-{db}-{session_id}").to_ascii_lowercase();
    let mut id = String::with_capacity(raw.len());
    for c in raw.chars() {
        let c = if c.is_ascii_alphanumeric() { c } else { '-' };
        if !(c == '-' && id.ends_with('-')) {
            id.push(c);
        }
    }
    // Room for the longest suffix we add (`-staging-NN`; `-reencrypt` is shorter).
    let max = kind.snapshot_id_max() - STAGING_SUFFIX.len() - 3;
    if id.len() > max {
        let hash = format!("-{:08x}", fnv1a(&id));
        id.truncate(max - hash.len());
        while id.ends_with('-') {
            id.pop();
        }
        id.push_str(&hash);
    }
    while id.ends_with('-') {
        id.pop();
    }
    debug_assert!(is_db_identifier(
        &format!("{id}{STAGING_SUFFIX}-99"),
        kind.snapshot_id_max()
    ));
    id
}

/// A 32-bit FNV-1a hash: stable across builds and platforms, unlike `DefaultHasher`, so that
/// a resumed session computes the same names.
fn fnv1a(s: &str) -> u32 {
    s.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// Added to the identifier of the intermediate copy of workflow C.
pub const STAGING_SUFFIX: &str = "-staging";

/// The `KmsKeyId` of a copy to a target: its key, except for an unencrypted DB cluster
/// snapshot ("If you copy an unencrypted DB cluster snapshot and specify a value for the
/// KmsKeyId parameter, an error is returned":
/// https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CopyDBClusterSnapshot.html;
/// CopyDBSnapshot encrypts the copy instead).
fn copy_key(
    ctx: &TaskContext<'_>,
    source: &source::SourceDbSnapshot,
    key: Option<&str>,
) -> Option<String> {
    match ctx.db_kind() {
        DbKind::Cluster if !source.encrypted => None,
        _ => key.map(str::to_owned),
    }
}

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
        let id = snapshot_identifier(
            DbKind::Instance,
            "nightly_dr",
            "orders-db",
            "20261126T193056Z-4f1c",
        );
        assert_eq!(id, "snaprelay-nightly-dr-orders-db-20261126t193056z-4f1c");
        assert!(is_db_identifier(&id, 255));
        let long = snapshot_identifier(
            DbKind::Instance,
            &"p".repeat(64),
            &"d".repeat(63),
            &"s-".repeat(100),
        );
        assert!(long.len() + STAGING_SUFFIX.len() <= 255, "{}", long.len());
        assert!(
            is_db_identifier(&format!("{long}{STAGING_SUFFIX}"), 255),
            "{long}"
        );
    }

    #[test]
    fn cluster_snapshot_identifiers_fit_63_characters_with_the_staging_suffix() {
        let session = "20261126T193056Z-4f1c";
        let id = snapshot_identifier(DbKind::Cluster, "nightly", "orders", session);
        assert_eq!(id, "snaprelay-nightly-orders-20261126t193056z-4f1c");
        let a = snapshot_identifier(DbKind::Cluster, "nightly-dr", &"a".repeat(63), session);
        let b = snapshot_identifier(DbKind::Cluster, "nightly-dr", &"a".repeat(62), session);
        assert_ne!(a, b, "a hash keeps long names apart");
        for id in [&a, &b] {
            let staging = format!("{id}{STAGING_SUFFIX}-99");
            assert!(staging.len() <= 63, "{staging}");
            assert!(is_db_identifier(&staging, 63), "{staging}");
        }
    }
}
