//! Step 1 of the RDS workflows: a DB snapshot of the instance, taken with the source role,
//! waited for until `available`, recorded as the source restore point.

use crate::model::{DbInstance, SnapshotKind};
use crate::report::{PlaceReport, SnapshotOf, SnapshotReport, StepDetail, StepKind};
use crate::runtime::Urgency;
use crate::workflows::{TaskContext, TaskError, one_ended_well};

use super::{api, snapshot_identifier};

/// The available source DB snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceDbSnapshot {
    /// The DB snapshot identifier; replicas take the same one.
    pub id: String,
    pub arn: String,
    pub region: String,
    pub db_instance_arn: String,
    pub encrypted: bool,
    pub kms_key_id: Option<String>,
    /// The DB's allocated storage.
    pub size_gib: Option<i64>,
    /// The default-key workaround: the copy of this snapshot under the re-encrypt key (its
    /// identifier and ARN), which workflow C shares and copies in its stead.
    pub shared_copy: Option<(String, String)>,
}

impl SourceDbSnapshot {
    /// The identifier of the snapshot shared with another account: this one, or its copy
    /// under the re-encrypt key.
    pub fn shared_id(&self) -> &str {
        self.shared_copy.as_ref().map_or(&self.id, |(id, _)| id)
    }

    /// The ARN another account copies from.
    pub fn shared_arn(&self) -> &str {
        self.shared_copy.as_ref().map_or(&self.arn, |(_, arn)| arn)
    }

    pub fn report(&self) -> SnapshotReport {
        SnapshotReport {
            id: self.arn.clone(),
            source_id: self.db_instance_arn.clone(),
            volume_id: String::new(),
            device: None,
            kms_key_id: self.kms_key_id.clone(),
            size_gib: self.size_gib,
        }
    }
}

pub async fn take_snapshot(
    ctx: &TaskContext<'_>,
    db: &DbInstance,
) -> Result<SourceDbSnapshot, TaskError> {
    let region = db.region.as_str();
    let access = ctx.source_access;
    let place = format!("{}/{region}", ctx.source_account);
    let id = snapshot_identifier(ctx.db_kind(), ctx.policy, &db.id, ctx.session_id);

    if let Some(recorded) = ctx.recorded(SnapshotKind::Source, ctx.source_account.as_str(), region)
        && let Some(r) = recorded.snapshots.first()
    {
        return Ok(SourceDbSnapshot {
            id,
            arn: r.id.clone(),
            region: region.to_owned(),
            db_instance_arn: db.arn.clone(),
            encrypted: r.kms_key_id.is_some() || db.encrypted,
            kms_key_id: r.kms_key_id.clone(),
            size_gib: db.size_gib,
            shared_copy: None,
        });
    }
    // Resuming: the snapshot's name is the session's, so an interrupted attempt's snapshot
    // is found by it and waited for instead of being taken again.
    let taken = match ctx.resumed {
        Some(_) => super::copy::existing(ctx, access, region, &place, &id).await?,
        None => None,
    };
    if taken.is_none() {
        let tags = ctx.point_tags(SnapshotKind::Source);
        ctx.change(
            StepKind::Snapshot,
            &place,
            |_| StepDetail::Snapshots {
                snapshots: vec![SnapshotOf {
                    snapshot: id.clone(),
                    of: db.id.clone(),
                }],
            },
            async {
                ctx.retrying_quota("snapshot", || {
                    api::create(ctx, access, region, &db.id, &id, &tags)
                })
                .await
                .map_err(TaskError::aws(format!(
                    "snapshot {} {}",
                    ctx.db_kind().db_noun(),
                    db.id
                )))
            },
        )
        .await?;
    }

    let ids = vec![id.clone()];
    let waited = ctx
        .step(
            StepKind::WaitSnapshot,
            &place,
            |_| StepDetail::note("available"),
            async {
                let statuses = ctx
                    .wait_for_db_snapshots(access, region, &ids, Urgency::Snapshot)
                    .await
                    .map_err(TaskError::wait(format!("follow the snapshot of {}", db.id)))?;
                one_ended_well(statuses, None)
            },
        )
        .await;
    let status = match waited {
        Ok(s) => s,
        Err(e) => {
            let left = ctx
                .discard(ctx.db_kind().service(), access, region, &place, &ids)
                .await;
            return Err(e.then(left));
        }
    };

    let snapshot = SourceDbSnapshot {
        id,
        arn: status.arn,
        region: region.to_owned(),
        db_instance_arn: db.arn.clone(),
        encrypted: status.encrypted || db.encrypted,
        kms_key_id: status.kms_key_id.or_else(|| db.kms_key_id.clone()),
        size_gib: db.size_gib,
        shared_copy: None,
    };
    let place = PlaceReport {
        account: ctx.source_account.to_string(),
        region: region.to_owned(),
        snapshots: vec![snapshot.report()],
    };
    ctx.record_point(SnapshotKind::Source, &place).await;
    Ok(snapshot)
}
