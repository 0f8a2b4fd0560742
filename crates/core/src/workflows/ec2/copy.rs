//! The copy at the heart of workflows A and B: every source snapshot of the restore point is
//! copied into the target (account, Region) with the target role, re-encrypted with the target
//! key, waited for, and recorded as a replica restore point. A restore point is whole or absent:
//! if any copy fails, the copies already made are deleted.

use crate::clock::utc_now;
use crate::engine::{Interrupted, Service};
use crate::model::{Tag, tags};
use crate::plan::ResolvedTarget;
use crate::ports::CopyRequest;
use crate::report::{PlaceReport, RestorePoint, SnapshotReport};

use super::source::SourceSnapshot;
use crate::workflows::{TaskContext, errors};

pub async fn copy_restore_point(
    ctx: &TaskContext<'_>,
    source: &[SourceSnapshot],
    target: &ResolvedTarget,
    kms_key_arn: Option<&str>,
) -> Result<PlaceReport, String> {
    let resource_id = ctx.resource.id();
    let source_region = ctx.resource.region();
    let place = format!("{}/{}", target.account, target.region);
    let access = &target.access;

    // Held until the copies have ended: AWS counts a copy against the quota while it runs.
    if !ctx
        .slots
        .available(Service::Ebs, &target.account, &target.region, source.len())
    {
        ctx.recorder
            .progress(resource_id, &format!("waiting for a copy slot in {place}"));
    }
    let _slots = tokio::select! {
        permit = ctx.slots.acquire(Service::Ebs, &target.account, &target.region, source.len()) => permit,
        () = ctx.interrupt.raised() => {
            return Err(format!("{Interrupted} while waiting for a copy slot in {place}"));
        }
    };

    let mut copies: Vec<(String, &SourceSnapshot)> = Vec::new();
    for s in source {
        if ctx.interrupt.is_raised() {
            let error = format!("{Interrupted} before {} was copied", s.snapshot_id);
            return Err(discarding(ctx, target, &place, &copies, error).await);
        }
        let mut tags = ctx.tags("replica");
        tags.extend([
            Tag::new(tags::VOLUME, &s.volume_id),
            Tag::new(tags::SOURCE_SNAPSHOT, &s.snapshot_id),
            Tag::new(tags::SOURCE_ACCOUNT, ctx.source_account.as_str()),
            Tag::new(tags::SOURCE_REGION, source_region),
        ]);
        if let Some(device) = &s.device {
            tags.push(Tag::new(tags::DEVICE, device));
        }
        let request = CopyRequest {
            source_region: source_region.to_owned(),
            source_snapshot_id: s.snapshot_id.clone(),
            kms_key_arn: kms_key_arn.map(str::to_owned),
            description: format!(
                "snaprelay {}: replica of {} ({} of {})",
                ctx.policy, s.snapshot_id, s.volume_id, resource_id
            ),
            tags,
        };
        // CopySnapshot is called in the destination Region, with SourceRegion naming the source:
        // https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CopySnapshot.html
        let copied = ctx
            .step(
                "copy",
                &place,
                |id: &String| format!("{id} from {}", s.snapshot_id),
                async {
                    ctx.retrying_quota("copy", || {
                        ctx.cloud.copy_snapshot(access, &target.region, &request)
                    })
                    .await
                    .map_err(|e| {
                        format!(
                            "could not copy {} to {}: {e}",
                            s.snapshot_id,
                            target.label()
                        )
                    })
                },
            )
            .await;
        match copied {
            Ok(id) => copies.push((id, s)),
            Err(e) => return Err(discarding(ctx, target, &place, &copies, e).await),
        }
    }

    let ids: Vec<String> = copies.iter().map(|(id, _)| id.clone()).collect();
    let waited = ctx
        .step("wait-copy", &place, |_| "completed".to_owned(), async {
            let statuses = ctx
                .wait_for_snapshots(access, &target.region, &ids)
                .await
                .map_err(|e| format!("could not follow the copies in {}: {e}", target.label()))?;
            let failed = errors(&statuses);
            if failed.is_empty() {
                Ok(statuses)
            } else {
                Err(format!(
                    "copy to {} failed: {}",
                    target.label(),
                    failed.join("; ")
                ))
            }
        })
        .await;
    let statuses = match waited {
        Ok(s) => s,
        Err(e) => return Err(discarding(ctx, target, &place, &copies, e).await),
    };

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
            })
            .collect(),
    };
    ctx.recorder.restore_point(&RestorePoint {
        policy: ctx.policy.to_owned(),
        resource_type: "ec2".into(),
        resource_id: resource_id.to_owned(),
        kind: "replica".into(),
        created_at: utc_now(),
        place: replica.clone(),
    });
    Ok(replica)
}

async fn discarding(
    ctx: &TaskContext<'_>,
    target: &ResolvedTarget,
    place: &str,
    copies: &[(String, &SourceSnapshot)],
    error: String,
) -> String {
    let ids: Vec<String> = copies.iter().map(|(id, _)| id.clone()).collect();
    let mut message = vec![error];
    message.extend(
        ctx.discard(Service::Ebs, &target.access, &target.region, place, &ids)
            .await,
    );
    message.join("; ")
}
