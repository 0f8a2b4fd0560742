//! SPEC workflow A, a replica in the source account:
//! 1. the source snapshots (taken once per resource, see [`super::source`]);
//! 2. a copy to the target Region, re-encrypted with the target key, using the target role.

use crate::plan::ResolvedTarget;

use super::copy::copy_restore_point;
use super::source::SourceSnapshot;
use super::{TargetOutcome, TaskContext};

pub async fn replicate(
    ctx: &TaskContext<'_>,
    source: &[SourceSnapshot],
    target: &ResolvedTarget,
    kms_key_arn: Option<&str>,
) -> TargetOutcome {
    TargetOutcome::of(
        target.index,
        copy_restore_point(ctx, source, target, kms_key_arn).await,
    )
}
