//! SPEC workflow B, replicas of an EC2 instance in another account:
//! 1. the source snapshots (taken once per resource, see [`super::source`]);
//! 2. each snapshot shared with the target account (`createVolumePermission`), source role;
//! 3. in the target account, each shared snapshot copied straight to the target Region and
//!    re-encrypted with the target key, target role (once per target Region of that account);
//! 4. the share removed once every copy has completed (or failed): a share is never left behind.
//!
//! The planner has already refused snapshots under an AWS managed key, which AWS cannot share,
//! unless a re-encrypt key serves them: then their copies under it are shared and copied
//! instead (see [`super::reencrypt`]).
//! The source key's policy must admit the target account, or the copy ends in `error`.

use crate::ids::AccountId;
use crate::model::SnapshotKind;
use crate::report::{Service, StepKind};
use crate::status::Status;

use super::copy::copy_restore_point;
use super::source::SourceSnapshot;
use crate::workflows::{Planned, TargetOutcome, TaskContext, TaskError, share_detail};

/// Replicates to every target in `account` (one share serves all its Regions).
pub async fn replicate(
    ctx: &TaskContext<'_>,
    source: &[SourceSnapshot],
    account: &AccountId,
    targets: &[Planned<'_>],
) -> Vec<TargetOutcome> {
    let region = ctx.resource.region();
    let place = format!("{}/{region}", ctx.source_account);

    // Step 2: share, unless a resumed task has every replica of this account already (the
    // shares are still removed in step 4, in case the crash came before that).
    let replicated = targets.iter().all(|p| {
        ctx.recorded(SnapshotKind::Replica, account.as_str(), &p.target.region)
            .is_some()
    });
    let mut shared: Vec<&SourceSnapshot> = Vec::new();
    let mut share_error = None;
    if replicated {
        shared.extend(source);
    }
    for s in source.iter().filter(|_| !replicated) {
        if ctx.interrupt.is_raised() {
            share_error = Some(TaskError::interrupted(format!(
                "before {} was shared",
                s.shared_id()
            )));
            break;
        }
        let result = ctx
            .change(
                StepKind::Share,
                &place,
                |_| share_detail(Service::Ebs, s.shared_id(), account),
                async {
                    ctx.cloud
                        .set_snapshot_share(ctx.source_access, region, s.shared_id(), account, true)
                        .await
                        .map_err(TaskError::aws(format!(
                            "share {} with account {account}",
                            s.shared_id()
                        )))
                },
            )
            .await;
        // A failed call may still have shared: remove it in step 4 all the same.
        shared.push(s);
        if let Err(e) = result {
            share_error = Some(e);
            break;
        }
    }

    // Step 3: copy in the target account, each target Region side by side.
    let mut outcomes: Vec<TargetOutcome> = match share_error {
        Some(e) => targets
            .iter()
            .map(|p| TargetOutcome::failed(p.target.index, &e))
            .collect(),
        None => {
            let source_keys: Vec<&str> = source
                .iter()
                .filter_map(|s| s.kms_key_id.as_deref())
                .collect();
            let source_keys = &source_keys;
            let copies = targets.iter().map(|p| async move {
                let replica = copy_restore_point(ctx, source, p.target, p.kms_key_id)
                    .await
                    .map_err(|e| e.on_source_keys(source_keys, account));
                TargetOutcome::of(p.target.index, replica)
            });
            futures_util::future::join_all(copies).await
        }
    };

    // Step 4: unshare, whatever happened to the copies.
    for s in shared {
        let result = ctx
            .change(
                StepKind::Unshare,
                &place,
                |_| share_detail(Service::Ebs, s.shared_id(), account),
                async {
                    ctx.cloud
                        .set_snapshot_share(
                            ctx.source_access,
                            region,
                            s.shared_id(),
                            account,
                            false,
                        )
                        .await
                        .map_err(|e| TaskError::Left {
                            what: format!(
                                "snapshot {} is still shared with account {account}: removing the \
                             share failed: {e}",
                                s.shared_id()
                            ),
                            remedy: "remove it by hand (aws ec2 modify-snapshot-attribute)"
                                .to_owned(),
                        })
                },
            )
            .await;
        if let Err(e) = result {
            for o in &mut outcomes {
                o.status = Status::Failed;
                o.messages.push(e.to_string());
            }
        }
    }
    outcomes
}
