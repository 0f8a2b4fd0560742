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

use crate::ids::AccountId;
use crate::model::{DbKind, DbSnapshotStatus, SnapshotKind};
use crate::ports::{Access, DbCopyRequest};
use crate::report::StepKind;
use crate::status::Status;
use crate::workflows::{Planned, TargetOutcome, TaskContext, TaskError, share_detail};

use super::api;
use super::copy::{DbCopy, copy_db_snapshot};
use super::source::SourceDbSnapshot;
use super::{STAGING_SUFFIX, record_replica};

/// Replicates to every target in `account`: one share, one intermediate copy per staging key.
pub async fn replicate(
    ctx: &TaskContext<'_>,
    source: &SourceDbSnapshot,
    account: &AccountId,
    all: &[Planned<'_>],
) -> Vec<TargetOutcome> {
    // A resumed task keeps the replicas it had recorded and works on the other targets.
    let (mut recorded, targets): (Vec<TargetOutcome>, Vec<Planned<'_>>) = {
        let mut recorded = Vec::new();
        let mut targets = Vec::new();
        for p in all {
            match ctx.recorded(SnapshotKind::Replica, account.as_str(), &p.target.region) {
                Some(place) => recorded.push(TargetOutcome::of(p.target.index, Ok(place.clone()))),
                None => targets.push(p.clone()),
            }
        }
        (recorded, targets)
    };
    let targets = targets.as_slice();
    let fail_all = |e: TaskError| -> Vec<TargetOutcome> {
        let e = on_source_key(e, source, account);
        targets
            .iter()
            .map(|p| TargetOutcome::failed(p.target.index, &e))
            .collect()
    };

    // Step 2: share.
    if ctx.interrupt.is_raised() {
        recorded.extend(fail_all(TaskError::interrupted(format!(
            "before {} was shared",
            source.id
        ))));
        return recorded;
    }
    let shared = if targets.is_empty() {
        // Nothing left to copy: only the share a crash may have left is removed below.
        Ok(())
    } else {
        set_share(ctx, source, account, true).await
    };

    // Step 3 and, for targets that need no intermediate copy, step 4: everything that reads
    // the shared snapshot.
    let (mut outcomes, staging) = match shared {
        // A failed call may still have shared: the share is removed below all the same.
        Err(e) => (fail_all(e), Vec::new()),
        Ok(()) => copy_from_shared(ctx, source, account, all, targets).await,
    };

    // Step 6, as soon as nothing reads the shared snapshot any more: unshare.
    let unshared = set_share(ctx, source, account, false).await;

    // Step 4 for the others: from their intermediate copy to their Region.
    outcomes.extend(second_hops(ctx, source, account, targets, &staging).await);

    // Step 5: the intermediate copies go once the final copies have ended (deleting them
    // earlier would fail those copies).
    let left = discard_staging(ctx, source, account, all, &staging).await;
    for o in &mut outcomes {
        o.messages.extend(left.iter().map(ToString::to_string));
    }
    if let Err(e) = &unshared {
        for o in &mut outcomes {
            o.status = Status::Failed;
            o.messages.push(e.to_string());
        }
    }
    recorded.extend(outcomes);
    recorded
}

/// Steps 2 and 6: shares the source DB snapshot with `account` (the `restore` attribute), or
/// removes the share; a share that cannot be removed is left, and said.
async fn set_share(
    ctx: &TaskContext<'_>,
    source: &SourceDbSnapshot,
    account: &AccountId,
    shared: bool,
) -> Result<(), TaskError> {
    let region = source.region.as_str();
    let place = format!("{}/{region}", ctx.source_account);
    let step = if shared {
        StepKind::Share
    } else {
        StepKind::Unshare
    };
    ctx.change(
        step,
        &place,
        |_| share_detail(ctx.db_kind().service(), source.shared_id(), account),
        async {
            let result = api::set_share(
                ctx,
                ctx.source_access,
                region,
                source.shared_id(),
                account,
                shared,
            )
            .await;
            match (result, shared) {
                (Ok(()), _) => Ok(()),
                (Err(e), true) => Err(TaskError::aws(format!(
                    "share {} with account {account}",
                    source.shared_id()
                ))(e)),
                (Err(e), false) => Err(TaskError::Left {
                    what: format!(
                        "{} {} is still shared with account {account}: removing the share \
                         failed: {e}",
                        ctx.db_kind().snapshot_noun(),
                        source.shared_id()
                    ),
                    remedy: match ctx.db_kind() {
                        DbKind::Instance => {
                            "remove it by hand (aws rds modify-db-snapshot-attribute)"
                        }
                        DbKind::Cluster => {
                            "remove it by hand (aws rds modify-db-cluster-snapshot-attribute)"
                        }
                    }
                    .to_owned(),
                }),
            }
        },
    )
    .await
}

/// Step 4 for the targets in two steps: each from its intermediate copy to its Region.
async fn second_hops(
    ctx: &TaskContext<'_>,
    source: &SourceDbSnapshot,
    account: &AccountId,
    targets: &[Planned<'_>],
    staging: &[Staging<'_>],
) -> Vec<TargetOutcome> {
    let region = source.region.as_str();
    let hops = targets.iter().filter(|p| p.two_step).map(|p| async move {
        let from = staging
            .iter()
            .find(|(key, _, _)| *key == p.staging_kms_key_id)
            .map(|(_, _, copy)| copy);
        let replica = match from {
            Some(Ok(copy)) => final_copy(ctx, source, account, p, copy.arn.clone()).await,
            // Interrupted, the intermediate copy says so itself; it did not fail.
            Some(Err(e)) if e.is_interrupted() => Err(e.clone()),
            Some(Err(e)) => Err(TaskError::Because {
                what: format!("the intermediate copy in account {account} {region} failed"),
                cause: Box::new(e.clone()),
            }),
            None => Err(TaskError::Refused(format!(
                "no intermediate copy in account {account} {region}"
            ))),
        };
        let replica = replica.map_err(|e| on_source_key(e, source, account));
        TargetOutcome::of(p.target.index, replica)
    });
    join_all(hops).await
}

/// Step 5: deletes the intermediate copies this attempt made, and (resuming) those an
/// interrupted attempt made that this one did not need; what could not be deleted.
async fn discard_staging(
    ctx: &TaskContext<'_>,
    source: &SourceDbSnapshot,
    account: &AccountId,
    all: &[Planned<'_>],
    staging: &[Staging<'_>],
) -> Vec<TaskError> {
    let region = source.region.as_str();
    let place = format!("{account}/{region}");
    let mut left = Vec::new();
    if ctx.resumed.is_some() {
        left.extend(leftover_staging(ctx, source, account, all, staging).await);
    }
    for (_, access, copy) in staging {
        if let Ok(copy) = copy {
            left.extend(
                ctx.discard(
                    ctx.db_kind().service(),
                    access,
                    region,
                    &place,
                    std::slice::from_ref(&copy.id),
                )
                .await,
            );
        }
    }
    left
}

/// The intermediate copies workflow C makes for `all` the targets of an account: one per
/// staging key, with the identifier and role each is made with. The numbering depends on all
/// the targets, so that a resumed task finds the copies an interrupted attempt made.
fn staging_copies<'a>(
    source: &SourceDbSnapshot,
    all: &'a [Planned<'a>],
) -> Vec<(Option<&'a str>, &'a Access, String)> {
    let mut keys: Vec<(Option<&str>, &Access)> = Vec::new();
    for p in all.iter().filter(|p| p.two_step) {
        if !keys.iter().any(|(k, _)| *k == p.staging_kms_key_id) {
            keys.push((p.staging_kms_key_id, &p.target.access));
        }
    }
    keys.into_iter()
        .enumerate()
        .map(|(n, (key, access))| {
            let suffix = if n == 0 {
                STAGING_SUFFIX.to_owned()
            } else {
                format!("{STAGING_SUFFIX}-{}", n + 1)
            };
            (key, access, format!("{}{suffix}", source.id))
        })
        .collect()
}

/// Resuming: intermediate copies an interrupted attempt made that this attempt did not need
/// (their targets were replicated already) are deleted. Says what could not be.
async fn leftover_staging(
    ctx: &TaskContext<'_>,
    source: &SourceDbSnapshot,
    account: &AccountId,
    all: &[Planned<'_>],
    made: &[Staging<'_>],
) -> Vec<TaskError> {
    let region = source.region.as_str();
    let place = format!("{account}/{region}");
    let mut left = Vec::new();
    for (key, access, id) in staging_copies(source, all) {
        if made.iter().any(|(k, _, _)| *k == key) {
            continue;
        }
        let ids = vec![id];
        match api::describe(ctx, access, region, &ids).await {
            Ok(found) if found.is_empty() => {}
            Ok(_) => left.extend(
                ctx.discard(ctx.db_kind().service(), access, region, &place, &ids)
                    .await,
            ),
            Err(e) => left.push(TaskError::Left {
                what: format!(
                    "could not look for the intermediate copy {} in {place}: {e}",
                    ids[0]
                ),
                remedy: "`snaprelay gc` finds it if it is there".to_owned(),
            }),
        }
    }
    left
}

/// An intermediate copy: the staging key it was made with, who made it, and how it went.
type Staging<'a> = (
    Option<&'a str>,
    &'a Access,
    Result<DbSnapshotStatus, TaskError>,
);

/// Step 3 (one intermediate copy per staging key) and the final copies of the targets that
/// need none, side by side: all the copies that read the shared snapshot.
async fn copy_from_shared<'a>(
    ctx: &TaskContext<'_>,
    source: &SourceDbSnapshot,
    account: &AccountId,
    all: &'a [Planned<'a>],
    targets: &'a [Planned<'a>],
) -> (Vec<TargetOutcome>, Vec<Staging<'a>>) {
    let region = source.region.as_str();
    // Only the staging keys of targets still to be replicated.
    let keys: Vec<_> = staging_copies(source, all)
        .into_iter()
        .filter(|(key, _, _)| {
            targets
                .iter()
                .any(|p| p.two_step && p.staging_kms_key_id == *key)
        })
        .collect();
    let intermediates = keys.into_iter().map(|(key, access, target_id)| async move {
        let copy = copy_db_snapshot(
            ctx,
            DbCopy {
                access,
                account,
                region,
                request: DbCopyRequest {
                    source_arn: source.shared_arn().to_owned(),
                    target_id,
                    kms_key_arn: key.map(str::to_owned),
                    tags: ctx.tags(SnapshotKind::Staging),
                },
            },
        )
        .await;
        (key, access, copy)
    });
    let direct = targets.iter().filter(|p| !p.two_step).map(|p| async move {
        let replica = final_copy(ctx, source, account, p, source.shared_arn().to_owned())
            .await
            .map_err(|e| on_source_key(e, source, account));
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
) -> Result<crate::report::PlaceReport, TaskError> {
    let copy = DbCopy {
        access: &p.target.access,
        account,
        region: &p.target.region,
        request: DbCopyRequest {
            source_arn: from,
            target_id: source.id.clone(),
            kms_key_arn: super::copy_key(ctx, source, p.kms_key_id),
            tags: ctx.point_tags(SnapshotKind::Replica),
        },
    };
    let copied = copy_db_snapshot(ctx, copy).await?;
    Ok(record_replica(ctx, p.target, source, &copied).await)
}

/// A failure that concerns a key, said to be on the source key: across accounts that is
/// nearly always its key policy.
fn on_source_key(e: TaskError, source: &SourceDbSnapshot, account: &AccountId) -> TaskError {
    let keys: Vec<&str> = source.kms_key_id.as_deref().into_iter().collect();
    e.on_source_keys(&keys, account)
}
