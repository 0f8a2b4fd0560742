//! SPEC workflow C, replicas of an RDS DB instance in another account:
//! 1. the source DB snapshot (see [`super::source`]);
//! 2. the snapshot shared with the target account (`ModifyDBSnapshotAttribute`, attribute
//!    `restore`), source role;
//! 3. in the target account, the shared snapshot copied by its ARN into the source Region
//!    (`KmsKeyId` is mandatory for a shared encrypted snapshot: the staging key, a key of the
//!    target account in that Region), once per staging key for all the account's targets;
//! 4. for each target in another Region, that copy copied to the target Region with the target
//!    key (a full copy: a copy of a copy is never incremental); a target in the source Region
//!    takes its replica straight from the shared snapshot, and so does every target with
//!    `rds_single_step` (one cross-account, cross-Region CopyDBSnapshot);
//! 5. the intermediate copies deleted once the final copies have ended;
//! 6. the share removed as soon as nothing reads the shared snapshot (after step 3 and the
//!    direct copies), whatever happened to the copies.
//!
//! The planner has already refused snapshots under the AWS managed `aws/rds` key, which AWS
//! cannot share: https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ShareSnapshot.html

use futures_util::future::join_all;

use crate::engine::{Interrupted, Service};
use crate::ids::AccountId;
use crate::model::DbSnapshotStatus;
use crate::ports::{Access, DbCopyRequest};
use crate::status::Status;
use crate::workflows::{Planned, TargetOutcome, TaskContext, with_key_hint};

use super::copy::{DbCopy, copy_db_snapshot};
use super::source::SourceDbSnapshot;
use super::{STAGING_SUFFIX, record_replica};

/// Replicates to every target in `account`: one share, one intermediate copy per staging key.
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

    // Step 3 and, for targets that need no intermediate copy, step 4: everything that reads
    // the shared snapshot.
    let (mut outcomes, staging) = match shared {
        // A failed call may still have shared: the share is removed below all the same.
        Err(e) => (fail_all(&e), Vec::new()),
        Ok(()) => copy_from_shared(ctx, source, account, targets).await,
    };

    // Step 6, as soon as nothing reads the shared snapshot any more: unshare.
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

    // Step 4 for the others: from their intermediate copy to their Region.
    let second_hops = targets.iter().filter(|p| p.two_step).map(|p| {
        let staging = &staging;
        async move {
            let from = staging
                .iter()
                .find(|(key, _, _)| *key == p.staging_kms_key_id)
                .map(|(_, _, copy)| copy);
            let replica = match from {
                Some(Ok(copy)) => final_copy(ctx, source, account, p, copy.arn.clone()).await,
                Some(Err(e)) => Err(format!(
                    "the intermediate copy in account {account} {region} failed: {e}"
                )),
                None => Err(format!(
                    "no intermediate copy in account {account} {region}"
                )),
            };
            TargetOutcome::of(p.target.index, replica)
        }
    });
    outcomes.extend(join_all(second_hops).await);

    // Step 5: the intermediate copies go once the final copies have ended (deleting them
    // earlier would fail those copies).
    for (_, access, copy) in &staging {
        if let Ok(copy) = copy {
            let place = format!("{account}/{region}");
            let left = ctx
                .discard(
                    Service::Rds,
                    access,
                    region,
                    &place,
                    std::slice::from_ref(&copy.id),
                )
                .await;
            for o in &mut outcomes {
                o.messages.extend(left.iter().cloned());
            }
        }
    }

    for o in &mut outcomes {
        if let Err(e) = &unshared {
            o.status = Status::Failed;
            o.messages.push(e.clone());
        }
        if o.status == Status::Failed {
            for m in &mut o.messages {
                *m = with_key_hint(std::mem::take(m), &source_keys, account);
            }
        }
    }
    outcomes
}

/// An intermediate copy: the staging key it was made with, who made it, and how it went.
type Staging<'a> = (
    Option<&'a str>,
    &'a Access,
    Result<DbSnapshotStatus, String>,
);

/// Step 3 (one intermediate copy per staging key) and the final copies of the targets that
/// need none, side by side: all the copies that read the shared snapshot.
async fn copy_from_shared<'a>(
    ctx: &TaskContext<'_>,
    source: &SourceDbSnapshot,
    account: &AccountId,
    targets: &'a [Planned<'a>],
) -> (Vec<TargetOutcome>, Vec<Staging<'a>>) {
    let region = source.region.as_str();
    let mut keys: Vec<(Option<&str>, &Access)> = Vec::new();
    for p in targets.iter().filter(|p| p.two_step) {
        if !keys.iter().any(|(k, _)| *k == p.staging_kms_key_id) {
            keys.push((p.staging_kms_key_id, &p.target.access));
        }
    }
    let intermediates = keys
        .iter()
        .enumerate()
        .map(|(n, (key, access))| async move {
            let suffix = if n == 0 {
                STAGING_SUFFIX.to_owned()
            } else {
                format!("{STAGING_SUFFIX}-{}", n + 1)
            };
            let copy = copy_db_snapshot(
                ctx,
                DbCopy {
                    access,
                    account,
                    region,
                    request: DbCopyRequest {
                        source_arn: source.arn.clone(),
                        target_id: format!("{}{suffix}", source.id),
                        kms_key_arn: key.map(str::to_owned),
                        tags: ctx.tags("staging"),
                    },
                },
            )
            .await;
            (*key, *access, copy)
        });
    let direct = targets.iter().filter(|p| !p.two_step).map(|p| async move {
        let replica = final_copy(ctx, source, account, p, source.arn.clone()).await;
        TargetOutcome::of(p.target.index, replica)
    });
    tokio::join!(join_all(direct), join_all(intermediates))
}

/// The copy that makes a target's replica, from the shared snapshot or an intermediate copy.
async fn final_copy(
    ctx: &TaskContext<'_>,
    source: &SourceDbSnapshot,
    account: &AccountId,
    p: &Planned<'_>,
    from: String,
) -> Result<crate::report::PlaceReport, String> {
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
    copy_db_snapshot(ctx, copy)
        .await
        .map(|copied| record_replica(ctx, p.target, source, &copied))
}
