//! SPEC workflow A for RDS, a replica in the source account:
//! 1. the source DB snapshot (see [`super::source`]);
//! 2. `CopyDBSnapshot` in the target Region from the source snapshot's ARN, re-encrypted with
//!    the target key, using the target role.

use crate::model::SnapshotKind;
use crate::ports::DbCopyRequest;
use crate::workflows::{Planned, TargetOutcome, TaskContext};

use super::copy::{DbCopy, copy_db_snapshot};
use super::record_replica;
use super::source::SourceDbSnapshot;

pub async fn replicate(
    ctx: &TaskContext<'_>,
    source: &SourceDbSnapshot,
    planned: &Planned<'_>,
) -> TargetOutcome {
    let target = planned.target;
    if let Some(recorded) = ctx.recorded(
        SnapshotKind::Replica,
        target.account.as_str(),
        &target.region,
    ) {
        return TargetOutcome::of(target.index, Ok(recorded.clone()));
    }
    let copy = DbCopy {
        access: &target.access,
        account: &target.account,
        region: &target.region,
        request: DbCopyRequest {
            source_arn: source.arn.clone(),
            target_id: source.id.clone(),
            kms_key_arn: super::copy_key(ctx, source, planned.kms_key_id),
            tags: ctx.point_tags(SnapshotKind::Replica),
        },
    };
    let replica = match copy_db_snapshot(ctx, copy).await {
        Ok(copied) => Ok(record_replica(ctx, target, source, &copied).await),
        Err(e) => Err(e),
    };
    TargetOutcome::of(target.index, replica)
}
