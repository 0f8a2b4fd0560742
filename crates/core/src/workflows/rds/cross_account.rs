//! SPEC workflow C, replicas of an RDS DB instance in another account:
//! 1. the source DB snapshot (see [`super::source`]);
//! 2. the snapshot shared with the target account (`ModifyDBSnapshotAttribute`, attribute
//!    `restore`), source role;
//! 3. in the target account, the shared snapshot copied by its ARN into the source Region
//!    (`KmsKeyId` is mandatory for a shared encrypted snapshot: the staging key, a key of the
//!    target account in that Region), once for all the account's targets;
//! 4. for each target in another Region, that copy copied to the target Region with the target
//!    key (a full copy: a copy of a copy is never incremental); a target in the source Region
//!    takes its replica straight from the shared snapshot, and so does every target with
//!    `rds_single_step` (one cross-account, cross-Region CopyDBSnapshot);
//! 5. the intermediate copy deleted once the final copies have ended;
//! 6. the share removed, whatever happened to the copies.
//!
//! The planner has already refused snapshots under the AWS managed `aws/rds` key, which AWS
//! cannot share: https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ShareSnapshot.html

use futures_util::future::join_all;

use crate::engine::{Interrupted, Service};
use crate::ids::AccountId;
use crate::model::DbSnapshotStatus;
use crate::ports::DbCopyRequest;
use crate::status::Status;
use crate::workflows::{Planned, TargetOutcome, TaskContext, with_key_hint};

use super::copy::{DbCopy, copy_db_snapshot};
use super::source::SourceDbSnapshot;
use super::{STAGING_SUFFIX, record_replica};

/// Replicates to every target in `account` (one share, one intermediate copy at most).
pub async fn replicate(
    ctx: &TaskContext<'_>,
    source: &SourceDbSnapshot,
    account: &AccountId,
    targets: &[Planned<'_>],
) -> Vec<TargetOutcome> {
    let region = source.region.as_str();
    let source_place = format!("{}/{region}", ctx.source_account);
    let source_keys: Vec<&str> = source.kms_key_id.as_deref().into_iter().collect();
    let fail_all = |e: &str| -> Vec<TargetOutcome> {
        targets
            .iter()
            .map(|p| TargetOutcome::failed(p.target.index, e.to_owned()))
            .collect()
    };

    // Step 2: share.
    if ctx.interrupt.is_raised() {
        return fail_all(&format!("{Interrupted} before {} was shared", source.id));
    }
    let shared = ctx
        .step(
            "share",
            &source_place,
            |_| format!("{} with {account}", source.id),
            async {
                ctx.cloud
                    .set_db_snapshot_share(ctx.source_access, region, &source.id, account, true)
                    .await
                    .map_err(|e| {
                        format!("could not share {} with account {account}: {e}", source.id)
                    })
            },
        )
        .await;

    let mut outcomes = match shared {
        // A failed call may still have shared: the share is removed in step 6 all the same.
        Err(e) => fail_all(&e),
        Ok(()) => copy_to_targets(ctx, source, account, targets).await,
    };
    for o in outcomes.iter_mut().filter(|o| o.status == Status::Failed) {
        for m in &mut o.messages {
            *m = with_key_hint(std::mem::take(m), &source_keys, account);
        }
    }

    // Step 6: unshare.
    let unshared = ctx
        .step("unshare", &source_place, |_| format!("{} from {account}", source.id), async {
            ctx.cloud
                .set_db_snapshot_share(ctx.source_access, region, &source.id, account, false)
                .await
                .map_err(|e| {
                    format!(
                        "DB snapshot {} is still shared with account {account}: removing the \
                         share failed: {e}; remove it by hand (aws rds modify-db-snapshot-attribute)",
                        source.id
                    )
                })
        })
        .await;
    if let Err(e) = unshared {
        for o in &mut outcomes {
            o.status = Status::Failed;
            o.messages.push(e.clone());
        }
    }
    outcomes
}

/// Steps 3 to 5.
async fn copy_to_targets(
    ctx: &TaskContext<'_>,
    source: &SourceDbSnapshot,
    account: &AccountId,
    targets: &[Planned<'_>],
) -> Vec<TargetOutcome> {
    let region = source.region.as_str();
    // Step 3: the intermediate copy, if any target needs one (the first one's staging key).
    let two_step = targets
        .iter()
        .find_map(|p| p.staging_kms_key_id.map(|k| (p, k)));
    let staging: Option<Result<DbSnapshotStatus, String>> = match two_step {
        None => None,
        Some((p, staging_key)) => Some(
            copy_db_snapshot(
                ctx,
                DbCopy {
                    access: &p.target.access,
                    account,
                    region,
                    request: DbCopyRequest {
                        source_arn: source.arn.clone(),
                        target_id: format!("{}{STAGING_SUFFIX}", source.id),
                        kms_key_arn: Some(staging_key.to_owned()),
                        tags: ctx.tags("staging"),
                    },
                },
            )
            .await,
        ),
    };

    // Step 4: the final copies, side by side.
    let copies = targets.iter().map(|p| {
        let staging = &staging;
        async move {
            let from = match (p.staging_kms_key_id, staging) {
                (None, _) => source.arn.clone(),
                (Some(_), Some(Ok(copy))) => copy.arn.clone(),
                (Some(_), Some(Err(e))) => {
                    return TargetOutcome::failed(
                        p.target.index,
                        format!("the intermediate copy in account {account} {region} failed: {e}"),
                    );
                }
                (Some(_), None) => unreachable!("a two-step target makes the intermediate copy"),
            };
            let copy = DbCopy {
                access: &p.target.access,
                account,
                region: &p.target.region,
                request: DbCopyRequest {
                    source_arn: from,
                    target_id: source.id.clone(),
                    kms_key_arn: p.kms_key_id.map(str::to_owned),
                    tags: ctx.tags("replica"),
                },
            };
            let replica = copy_db_snapshot(ctx, copy)
                .await
                .map(|copied| record_replica(ctx, p.target, source, &copied));
            TargetOutcome::of(p.target.index, replica)
        }
    });
    let mut outcomes = join_all(copies).await;

    // Step 5: the intermediate copy goes once the final copies have ended (deleting it
    // earlier could fail them).
    if let (Some((p, _)), Some(Ok(copy))) = (two_step, &staging) {
        let place = format!("{account}/{region}");
        let left = ctx
            .discard(
                Service::Rds,
                &p.target.access,
                region,
                &place,
                std::slice::from_ref(&copy.id),
            )
            .await;
        for o in &mut outcomes {
            o.messages.extend(left.iter().cloned());
            if !left.is_empty() {
                o.status = Status::Failed;
            }
        }
    }
    outcomes
}
