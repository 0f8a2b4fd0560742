//! The copy at the heart of workflows A and B: every source snapshot of the restore point is
//! copied into the target (account, Region) with the target role, re-encrypted with the target
//! key, waited for, and recorded as a replica restore point. A restore point is whole or absent:
//! if any copy fails, the copies already made are deleted.

use futures_util::future::join_all;

use crate::model::{Resource, SnapshotKind, SnapshotState, SnapshotStatus, Tag, tag_value, tags};
use crate::plan::ResolvedTarget;
use crate::ports::CopyRequest;
use crate::report::{PlaceReport, SnapshotReport, StepDetail, StepKind};
use crate::runtime::{Service, Urgency};

use super::source::SourceSnapshot;
use crate::workflows::{TaskContext, TaskError, one_ended_well};

pub async fn copy_restore_point(
    ctx: &TaskContext<'_>,
    source: &[SourceSnapshot],
    target: &ResolvedTarget,
    kms_key_arn: Option<&str>,
) -> Result<PlaceReport, TaskError> {
    let _resource_id = ctx.resource.id();
    let place = format!("{}/{}", target.account, target.region);
    if let Some(recorded) = ctx.recorded(
        SnapshotKind::Replica,
        target.account.as_str(),
        &target.region,
    ) {
        return Ok(recorded.clone());
    }
    let earlier = match ctx.resumed {
        Some(_) => copied_earlier(ctx, target, &place).await?,
        None => Vec::new(),
    };
    let earlier = &earlier;

    // The volumes are copied side by side. Each copy takes a slot before it starts and gives
    // it back when it ends, as AWS counts it against the quota only while it runs: a restore
    // point's small volumes free their slots while its large one is still copying, and no
    // restore point holds slots while it waits for more.
    let copied = join_all(
        source
            .iter()
            .map(|s| copy_one(ctx, s, target, &place, kms_key_arn, earlier)),
    )
    .await;
    let mut copies: Vec<(String, &SourceSnapshot)> = Vec::new();
    let mut statuses = Vec::new();
    let mut failures = Vec::new();
    for (s, result) in source.iter().zip(copied) {
        match result {
            Ok((id, status)) => {
                copies.push((id, s));
                statuses.push(status);
            }
            Err((id, e)) => {
                copies.extend(id.map(|id| (id, s)));
                failures.push(e);
            }
        }
    }
    if let Some(failure) = copy_failure(failures, copies.len(), target) {
        return Err(discarding(ctx, target, &place, &copies, failure).await);
    }

    let replica = PlaceReport {
        account: target.account.to_string(),
        region: target.region.clone(),
        snapshots: copies
            .iter()
            .map(|(id, s)| SnapshotReport {
                id: id.clone(),
                source_id: s.snapshot_id.clone(),
                volume_id: s.volume_id.clone(),
                device: s.device.clone(),
                kms_key_id: statuses
                    .iter()
                    .find(|st| &st.id == id)
                    .and_then(|st| st.kms_key_id.clone())
                    .or_else(|| kms_key_arn.map(str::to_owned)),
                size_gib: s.size_gib,
            })
            .collect(),
    };
    ctx.record_point(SnapshotKind::Replica, &replica).await;
    Ok(replica)
}

/// One volume's copy: a slot, `CopySnapshot`, and its wait. The copy's id comes back with the
/// error when it was made but did not complete, so that it can be discarded.
async fn copy_one(
    ctx: &TaskContext<'_>,
    s: &SourceSnapshot,
    target: &ResolvedTarget,
    place: &str,
    kms_key_arn: Option<&str>,
    earlier: &[SnapshotStatus],
) -> Result<(String, SnapshotStatus), (Option<String>, TaskError)> {
    let resource_id = ctx.resource.id();
    let source_region = ctx.resource.region();
    let access = &target.access;
    if !ctx
        .slots
        .available(Service::Ebs, &target.account, &target.region)
    {
        ctx.recorder.progress(
            resource_id,
            &format!(
                "waiting for a copy slot in {place} for volume {}",
                s.volume_id
            ),
        );
    }
    let _slot = tokio::select! {
        permit = ctx.slots.acquire(Service::Ebs, &target.account, &target.region, volume_size(ctx, s)) => permit,
        () = ctx.interrupt.raised() => {
            return Err((None, TaskError::interrupted(format!("while waiting for a copy slot in {place}"))));
        }
    };
    let mut tags = ctx.tags(SnapshotKind::Replica);
    tags.extend([
        Tag::new(tags::VOLUME, &s.volume_id),
        Tag::new(tags::SOURCE_SNAPSHOT, &s.snapshot_id),
        Tag::new(tags::SOURCE_ACCOUNT, ctx.source_account.as_str()),
        Tag::new(tags::SOURCE_REGION, source_region),
    ]);
    if let Some(device) = &s.device {
        tags.push(Tag::new(tags::DEVICE, device));
    }
    if let crate::model::Resource::Ec2(instance) = ctx.resource {
        tags.extend(crate::config::describing_tags(instance, &s.volume_id));
    }
    let request = CopyRequest {
        source_region: source_region.to_owned(),
        source_snapshot_id: s.shared_id().to_owned(),
        kms_key_arn: kms_key_arn.map(str::to_owned),
        description: format!(
            "snaprelay {}: replica of {} ({} of {})",
            ctx.policy, s.snapshot_id, s.volume_id, resource_id
        ),
        tags,
    };
    let taken_up = take_up(ctx, s, target, place, earlier)
        .await
        .map_err(|e| (None, e))?;
    // CopySnapshot is called in the destination Region, with SourceRegion naming the source:
    // https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CopySnapshot.html
    let id = match taken_up {
        Some(id) => id,
        None => ctx
            .change_of(
                StepKind::Copy,
                place,
                &format!("of {} (volume {})", s.snapshot_id, s.volume_id),
                |id: &String| StepDetail::Copy {
                    service: Service::Ebs,
                    copy: id.clone(),
                    source: s.shared_id().to_owned(),
                },
                async {
                    ctx.retrying_quota("copy", || {
                        ctx.cloud.copy_snapshot(access, &target.region, &request)
                    })
                    .await
                    .map_err(TaskError::aws(format!(
                        "copy {} to {}",
                        s.snapshot_id,
                        target.label()
                    )))
                },
            )
            .await
            .map_err(|e| (None, e))?,
    };
    let status = ctx
        .step_of(
            StepKind::WaitCopy,
            place,
            &format!("{id} (volume {})", s.volume_id),
            |_| StepDetail::note(format!("{id} completed")),
            async {
                let statuses = ctx
                    .wait_for_snapshots(
                        access,
                        &target.region,
                        std::slice::from_ref(&id),
                        Urgency::Copy,
                    )
                    .await
                    .map_err(TaskError::wait(format!(
                        "follow the copies in {}",
                        target.label()
                    )))?;
                let doing = Some(format!("copy to {}", target.label()));
                one_ended_well(statuses, doing)
            },
        )
        .await;
    // Returning ends the copy's hold on its slot.
    match status {
        Ok(status) => Ok((id, status)),
        Err(e) => Err((Some(id), e)),
    }
}

/// The size of the volume a snapshot was taken of, in GiB (0 if unknown): larger copies get
/// free slots first.
fn volume_size(ctx: &TaskContext<'_>, s: &SourceSnapshot) -> u64 {
    match ctx.resource {
        Resource::Ec2(instance) => instance
            .volumes
            .iter()
            .find(|v| v.id == s.volume_id)
            .map_or(0, |v| u64::try_from(v.size_gib).unwrap_or(0)),
        Resource::Rds(_) | Resource::Aurora(_) => 0,
    }
}

async fn discarding(
    ctx: &TaskContext<'_>,
    target: &ResolvedTarget,
    place: &str,
    copies: &[(String, &SourceSnapshot)],
    error: TaskError,
) -> TaskError {
    let ids: Vec<String> = copies.iter().map(|(id, _)| id.clone()).collect();
    let left = ctx
        .discard(Service::Ebs, &target.access, &target.region, place, &ids)
        .await;
    error.then(left)
}

/// The copies' failures as one. An interrupt stops every copy in flight at once: that is said
/// once, with what becomes of the copies (deleted now, or by the resume), not once per copy.
fn copy_failure(
    mut failures: Vec<TaskError>,
    copies_made: usize,
    target: &ResolvedTarget,
) -> Option<TaskError> {
    if !failures.is_empty() && failures.iter().all(TaskError::is_interrupted) {
        return Some(TaskError::interrupted(match copies_made {
            0 => format!(
                "before copying into {}: no copy was started there",
                target.label()
            ),
            n => format!(
                "while copying into {}: the {n} cop{} in flight there {} deleted, not left \
                 to finish; the next `snaprelay run` copies again",
                target.label(),
                if n == 1 { "y" } else { "ies" },
                if n == 1 { "is" } else { "are" },
            ),
        }));
    }
    failures.dedup();
    TaskError::all(failures)
}

/// Resuming: the copies an interrupted attempt made into the target place for this resource
/// (found by the session's and the resource's tags, which `CopySnapshot` applies with the copy).
async fn copied_earlier(
    ctx: &TaskContext<'_>,
    target: &ResolvedTarget,
    place: &str,
) -> Result<Vec<SnapshotStatus>, TaskError> {
    ctx.step(
        StepKind::FindCopies,
        place,
        |found: &Vec<SnapshotStatus>| StepDetail::note(format!("{} found", found.len())),
        async {
            ctx.session_snapshots(&target.access, &target.region, SnapshotKind::Replica)
                .await
                .map_err(TaskError::aws(format!(
                    "look for earlier copies in {place}"
                )))
        },
    )
    .await
}

/// Resuming: an earlier copy of `s` that has not failed is taken up; failed ones and any
/// second copy are deleted, so that one copy of each snapshot is left.
async fn take_up(
    ctx: &TaskContext<'_>,
    s: &SourceSnapshot,
    target: &ResolvedTarget,
    place: &str,
    earlier: &[SnapshotStatus],
) -> Result<Option<String>, TaskError> {
    let mut kept = None;
    let mut extra = Vec::new();
    for copy in earlier
        .iter()
        .filter(|c| tag_value(&c.tags, tags::SOURCE_SNAPSHOT) == Some(s.snapshot_id.as_str()))
    {
        if kept.is_none() && copy.state != SnapshotState::Error {
            kept = Some(copy.id.clone());
        } else {
            extra.push(copy.id.clone());
        }
    }
    let left = ctx
        .discard(Service::Ebs, &target.access, &target.region, place, &extra)
        .await;
    match TaskError::all(left) {
        Some(left) => Err(left),
        None => Ok(kept),
    }
}
