//! Step 1 of every workflow: a crash-consistent snapshot of each EBS volume of the instance,
//! taken with the source role, waited for until completed, recorded as the source restore point.

use crate::model::{Instance, SnapshotKind, SnapshotState, SnapshotStatus, VolumeSnapshot};
use crate::report::{PlaceReport, SnapshotOf, SnapshotReport, StepDetail, StepKind};
use crate::runtime::{Service, Urgency};

use crate::workflows::{TaskContext, TaskError, all_ended_well};

/// A completed snapshot of one source volume.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceSnapshot {
    pub snapshot_id: String,
    pub volume_id: String,
    /// The device the volume is attached as.
    pub device: Option<String>,
    pub encrypted: bool,
    /// The key ARN that encrypts it.
    pub kms_key_id: Option<String>,
    /// The volume's size.
    pub size_gib: Option<i64>,
    /// The default-key workaround: the copy of this snapshot under the re-encrypt key, which
    /// workflow B shares and copies in its stead (this one stays the restore point's).
    pub shared_copy: Option<String>,
}

impl SourceSnapshot {
    /// A snapshot of the source restore point an interrupted attempt recorded.
    fn recorded(r: &SnapshotReport, instance: &Instance) -> Self {
        let volume = instance.volumes.iter().find(|v| v.id == r.volume_id);
        Self {
            snapshot_id: r.id.clone(),
            volume_id: r.volume_id.clone(),
            device: r.device.clone(),
            encrypted: r.kms_key_id.is_some() || volume.is_some_and(|v| v.encrypted),
            kms_key_id: r.kms_key_id.clone(),
            size_gib: r.size_gib,
            shared_copy: None,
        }
    }

    /// The snapshot shared with another account and copied there: this one, or its copy
    /// under the re-encrypt key.
    pub fn shared_id(&self) -> &str {
        self.shared_copy.as_deref().unwrap_or(&self.snapshot_id)
    }

    pub fn report(&self) -> SnapshotReport {
        SnapshotReport {
            id: self.snapshot_id.clone(),
            source_id: self.volume_id.clone(),
            volume_id: self.volume_id.clone(),
            device: self.device.clone(),
            kms_key_id: self.kms_key_id.clone(),
            size_gib: self.size_gib,
        }
    }
}

/// Takes, waits for and records the source restore point. On failure the snapshots already
/// made are deleted (a restore point is kept whole or not at all) and the error is returned.
pub async fn take_snapshots(
    ctx: &TaskContext<'_>,
    instance: &Instance,
) -> Result<Vec<SourceSnapshot>, TaskError> {
    let region = instance.region.as_str();
    let access = ctx.source_access;
    let place = format!("{}/{region}", ctx.source_account);

    // CreateSnapshots with an instance specification snapshots every attached volume at the
    // same point in time: https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateSnapshots.html
    if let Some(recorded) = ctx.recorded(SnapshotKind::Source, ctx.source_account.as_str(), region)
    {
        return Ok(recorded
            .snapshots
            .iter()
            .map(|r| SourceSnapshot::recorded(r, instance))
            .collect());
    }
    let description = format!(
        "snaprelay {}: {} session {}",
        ctx.policy, instance.id, ctx.session_id
    );
    let earlier = match ctx.resumed {
        Some(_) => taken_earlier(ctx, instance, &place).await?,
        None => None,
    };
    let created = match earlier {
        Some(created) => created,
        None => {
            ctx.change(
                StepKind::Snapshot,
                &place,
                |v: &Vec<VolumeSnapshot>| StepDetail::Snapshots {
                    snapshots: v
                        .iter()
                        .map(|s| SnapshotOf {
                            snapshot: s.snapshot_id.clone(),
                            of: s.volume_id.clone(),
                        })
                        .collect(),
                },
                async {
                    let tags = ctx.tags(SnapshotKind::Source);
                    ctx.retrying_quota("snapshot", || {
                        ctx.cloud.create_snapshots(
                            access,
                            region,
                            &instance.id,
                            &description,
                            &tags,
                        )
                    })
                    .await
                    .map_err(TaskError::aws(format!("snapshot instance {}", instance.id)))
                },
            )
            .await?
        }
    };
    let ids: Vec<String> = created.iter().map(|s| s.snapshot_id.clone()).collect();

    let waited = ctx
        .step(
            StepKind::WaitSnapshot,
            &place,
            |_| StepDetail::note("completed"),
            async {
                let statuses = ctx
                    .wait_for_snapshots(access, region, &ids, Urgency::Snapshot)
                    .await
                    .map_err(TaskError::wait(format!(
                        "follow the snapshots of {}",
                        instance.id
                    )))?;
                all_ended_well(statuses, None)
            },
        )
        .await;
    let statuses = match waited {
        Ok(s) => s,
        Err(e) => {
            let left = ctx
                .discard(Service::Ebs, access, region, &place, &ids)
                .await;
            return Err(e.then(left));
        }
    };

    let snapshots: Vec<SourceSnapshot> = created
        .iter()
        .map(|c| {
            let status = statuses.iter().find(|s| s.id == c.snapshot_id);
            let volume = instance.volumes.iter().find(|v| v.id == c.volume_id);
            SourceSnapshot {
                snapshot_id: c.snapshot_id.clone(),
                volume_id: c.volume_id.clone(),
                device: volume.and_then(|v| v.device.clone()),
                encrypted: status.is_some_and(|s| s.encrypted)
                    || volume.is_some_and(|v| v.encrypted),
                // DescribeSnapshots reports the key; the volume's key is the same one.
                kms_key_id: status
                    .and_then(|s| s.kms_key_id.clone())
                    .or_else(|| volume.and_then(|v| v.kms_key_id.clone())),
                size_gib: volume.map(|v| i64::from(v.size_gib)),
                shared_copy: None,
            }
        })
        .collect();
    let place = PlaceReport {
        account: ctx.source_account.to_string(),
        region: region.to_owned(),
        snapshots: snapshots.iter().map(SourceSnapshot::report).collect(),
    };
    ctx.record_point(SnapshotKind::Source, &place).await;
    Ok(snapshots)
}

/// Resuming: the source snapshots an interrupted attempt took (found by the session's and the
/// resource's tags, which `CreateSnapshots` applies atomically). They are taken up when they
/// cover the instance's volumes, one each, none failed; otherwise they are deleted and the
/// instance is snapshotted again.
async fn taken_earlier(
    ctx: &TaskContext<'_>,
    instance: &Instance,
    place: &str,
) -> Result<Option<Vec<VolumeSnapshot>>, TaskError> {
    let region = instance.region.as_str();
    let found = ctx
        .step(
            StepKind::FindSnapshots,
            place,
            |found: &Vec<SnapshotStatus>| StepDetail::note(format!("{} found", found.len())),
            async {
                ctx.session_snapshots(ctx.source_access, region, SnapshotKind::Source)
                    .await
                    .map_err(TaskError::aws(format!(
                        "look for the snapshots of {}",
                        instance.id
                    )))
            },
        )
        .await?;
    if found.is_empty() {
        return Ok(None);
    }
    let mut volumes: Vec<&str> = found
        .iter()
        .filter_map(|s| s.volume_id.as_deref())
        .collect();
    volumes.sort_unstable();
    let mut wanted: Vec<&str> = instance.volumes.iter().map(|v| v.id.as_str()).collect();
    wanted.sort_unstable();
    let whole = volumes == wanted && found.iter().all(|s| s.state != SnapshotState::Error);
    if whole {
        return Ok(Some(
            found
                .into_iter()
                .map(|s| VolumeSnapshot {
                    snapshot_id: s.id,
                    volume_id: s.volume_id.unwrap_or_default(),
                })
                .collect(),
        ));
    }
    let ids: Vec<String> = found.into_iter().map(|s| s.id).collect();
    let left = ctx
        .discard(Service::Ebs, ctx.source_access, region, place, &ids)
        .await;
    match TaskError::all(left) {
        None => Ok(None),
        Some(left) => Err(left),
    }
}
