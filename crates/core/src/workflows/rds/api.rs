//! The RDS calls of the workflows, for a DB instance's DB snapshots or an Aurora cluster's DB
//! cluster snapshots. The two have APIs of their own (each call keeps its own operation name
//! for the logs, the metrics and the crash hook) and the same shape, so workflow A and C are
//! written once and call these.

use crate::ids::AccountId;
use crate::model::{DbKind, DbSnapshotStatus, Tag};
use crate::ports::{Access, CloudError, DbCopyRequest};
use crate::workflows::TaskContext;

/// `CreateDBSnapshot` or `CreateDBClusterSnapshot`.
pub async fn create(
    ctx: &TaskContext<'_>,
    access: &Access,
    region: &str,
    db_id: &str,
    snapshot_id: &str,
    tags: &[Tag],
) -> Result<DbSnapshotStatus, CloudError> {
    match ctx.db_kind() {
        DbKind::Instance => {
            ctx.cloud
                .create_db_snapshot(access, region, db_id, snapshot_id, tags)
                .await
        }
        DbKind::Cluster => {
            ctx.cloud
                .create_db_cluster_snapshot(access, region, db_id, snapshot_id, tags)
                .await
        }
    }
}

/// `DescribeDBSnapshots` or `DescribeDBClusterSnapshots` of the caller's own snapshots.
pub async fn describe(
    ctx: &TaskContext<'_>,
    access: &Access,
    region: &str,
    ids: &[String],
) -> Result<Vec<DbSnapshotStatus>, CloudError> {
    match ctx.db_kind() {
        DbKind::Instance => ctx.cloud.describe_db_snapshots(access, region, ids).await,
        DbKind::Cluster => {
            ctx.cloud
                .describe_db_cluster_snapshots(access, region, ids)
                .await
        }
    }
}

/// `CopyDBSnapshot` or `CopyDBClusterSnapshot`, called in the destination Region.
pub async fn copy(
    ctx: &TaskContext<'_>,
    access: &Access,
    region: &str,
    request: &DbCopyRequest,
) -> Result<DbSnapshotStatus, CloudError> {
    match ctx.db_kind() {
        DbKind::Instance => ctx.cloud.copy_db_snapshot(access, region, request).await,
        DbKind::Cluster => {
            ctx.cloud
                .copy_db_cluster_snapshot(access, region, request)
                .await
        }
    }
}

/// `ModifyDBSnapshotAttribute` or `ModifyDBClusterSnapshotAttribute` `restore`.
pub async fn set_share(
    ctx: &TaskContext<'_>,
    access: &Access,
    region: &str,
    snapshot_id: &str,
    account: &AccountId,
    shared: bool,
) -> Result<(), CloudError> {
    match ctx.db_kind() {
        DbKind::Instance => {
            ctx.cloud
                .set_db_snapshot_share(access, region, snapshot_id, account, shared)
                .await
        }
        DbKind::Cluster => {
            ctx.cloud
                .set_db_cluster_snapshot_share(access, region, snapshot_id, account, shared)
                .await
        }
    }
}
