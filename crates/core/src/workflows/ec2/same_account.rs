//! SPEC workflow A, a replica in the source account:
//! 1. the source snapshots (taken once per resource, see [`super::source`]);
//! 2. a copy to the target Region, re-encrypted with the target key, using the target role.

use super::copy::copy_restore_point;
use super::source::SourceSnapshot;
use crate::workflows::{Planned, TargetOutcome, TaskContext};

pub async fn replicate(
    ctx: &TaskContext<'_>,
    source: &[SourceSnapshot],
    planned: &Planned<'_>,
) -> TargetOutcome {
    let replica = copy_restore_point(ctx, source, planned.target, planned.kms_key_id).await;
    TargetOutcome::of(planned.target.index, replica)
}
