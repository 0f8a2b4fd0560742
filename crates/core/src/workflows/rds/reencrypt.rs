//! The default-key workaround for RDS (SPEC 6.4). AWS cannot share a DB snapshot under the
//! AWS managed key `aws/rds`
//! (<https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ShareSnapshot.html>), but
//! `CopyDBSnapshot` in the same account and Region re-encrypts with the `KmsKeyId` given
//! (<https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CopyDBSnapshot.html>). So
//! before workflow C the source snapshot is copied as `<id>-reencrypt` under the policy's
//! re-encrypt key with the source role; workflow C shares and copies that copy instead; once
//! every target of the DB has copied it (shares removed), it is deleted. The original is never
//! shared. The copy's name is fixed by the session, so a resumed session finds and takes it up;
//! gc lists one that a session left.

use crate::model::SnapshotKind;
use crate::plan::Reencrypt;
use crate::ports::DbCopyRequest;

use super::copy::{DbCopy, copy_db_snapshot};
use super::source::SourceDbSnapshot;
use crate::workflows::{TaskContext, TaskError};

/// Added to the source snapshot's identifier for its copy under the re-encrypt key (it fits:
/// `snapshot_identifier` leaves room for the longer `-staging-NN`).
pub const REENCRYPT_SUFFIX: &str = "-reencrypt";

/// The source snapshot with its copy under the re-encrypt key (made now, or taken up from an
/// interrupted attempt), to share and copy in its stead. A copy that fails is deleted by
/// `copy_db_snapshot`.
pub async fn copy(
    ctx: &TaskContext<'_>,
    source: &SourceDbSnapshot,
    reencrypt: &Reencrypt,
) -> Result<SourceDbSnapshot, TaskError> {
    let target_id = format!("{}{REENCRYPT_SUFFIX}", source.id);
    let copied = copy_db_snapshot(
        ctx,
        DbCopy {
            access: ctx.source_access,
            account: ctx.source_account,
            region: &source.region,
            request: DbCopyRequest {
                source_arn: source.arn.clone(),
                target_id: target_id.clone(),
                kms_key_arn: Some(reencrypt.kms_key_id.clone()),
                tags: ctx.tags(SnapshotKind::Reencrypted),
            },
        },
    )
    .await?;
    Ok(SourceDbSnapshot {
        shared_copy: Some((target_id, copied.arn)),
        kms_key_id: Some(reencrypt.kms_key_id.clone()),
        ..source.clone()
    })
}

/// Deletes the copy under the re-encrypt key (one already gone is fine: a resumed session
/// calls this whether or not its interrupted attempt made it).
pub async fn discard(ctx: &TaskContext<'_>, source: &SourceDbSnapshot) -> Vec<TaskError> {
    let place = format!("{}/{}", ctx.source_account, source.region);
    let id = format!("{}{REENCRYPT_SUFFIX}", source.id);
    ctx.discard(
        ctx.db_kind().service(),
        ctx.source_access,
        &source.region,
        &place,
        std::slice::from_ref(&id),
    )
    .await
}
