//! One `CopyDBSnapshot` (`CopyDBClusterSnapshot` for an Aurora cluster) into (account,
//! Region), within the copy quota of its kind (20 RDS, 5 Aurora), waited for until
//! `available`; a copy that fails is deleted so that nothing half-made is left.

use crate::ids::AccountId;
use crate::model::{DbKind, DbSnapshotStatus};
use crate::ports::{Access, DbCopyRequest};
use crate::report::{StepDetail, StepKind};
use crate::runtime::Urgency;
use crate::workflows::{TaskContext, TaskError, one_ended_well};

use super::api;

pub struct DbCopy<'a> {
    pub access: &'a Access,
    pub account: &'a AccountId,
    pub region: &'a str,
    pub request: DbCopyRequest,
}

/// The DB's allocated storage in GiB (0 if unknown): larger copies get free slots first.
fn db_size(ctx: &TaskContext<'_>) -> u64 {
    ctx.resource
        .db()
        .and_then(|(db, _)| db.size_gib)
        .and_then(|g| u64::try_from(g).ok())
        .unwrap_or(0)
}

pub async fn copy_db_snapshot(
    ctx: &TaskContext<'_>,
    copy: DbCopy<'_>,
) -> Result<DbSnapshotStatus, TaskError> {
    let DbCopy {
        access,
        account,
        region,
        request,
    } = copy;
    let place = format!("{account}/{region}");
    let kind = ctx.db_kind();
    let service = kind.service();
    let quota = match kind {
        DbKind::Instance => "an RDS copy slot",
        DbKind::Cluster => "an Aurora copy slot",
    };
    // Held until the copy has ended: RDS counts it against the quota while it runs.
    if !ctx.slots.available(service, account, region) {
        ctx.recorder.progress(
            ctx.resource.id(),
            &format!("waiting for {quota} in {place}"),
        );
    }
    let _slot = tokio::select! {
        permit = ctx.slots.acquire(service, account, region, db_size(ctx)) => permit,
        () = ctx.interrupt.raised() => {
            return Err(TaskError::interrupted(format!("while waiting for {quota} in {place}")));
        }
    };
    if ctx.interrupt.is_raised() {
        return Err(TaskError::interrupted(format!(
            "before {} was copied",
            request.source_arn
        )));
    }
    // Resuming: the copy's name is fixed by the session, so an interrupted attempt's copy is
    // found by it and waited for instead of being made again.
    let earlier = match ctx.resumed {
        Some(_) => existing(ctx, access, region, &place, &request.target_id).await?,
        None => None,
    };
    // CopyDBSnapshot is called in the destination Region; the source is named by its ARN,
    // which is required for a snapshot of another Region or account:
    // https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CopyDBSnapshot.html
    let copied = match earlier {
        Some(copied) => copied,
        None => {
            ctx.change(
                StepKind::Copy,
                &place,
                |c: &DbSnapshotStatus| StepDetail::Copy {
                    service,
                    copy: c.arn.clone(),
                    source: request.source_arn.clone(),
                },
                async {
                    ctx.retrying_quota("copy", || api::copy(ctx, access, region, &request))
                        .await
                        .map_err(TaskError::aws(format!(
                            "copy {} to {place}",
                            request.source_arn
                        )))
                },
            )
            .await?
        }
    };
    let ids = vec![request.target_id.clone()];
    let waited = ctx
        .step(
            StepKind::WaitCopy,
            &place,
            |_| StepDetail::note("available"),
            async {
                let statuses = ctx
                    .wait_for_db_snapshots(access, region, &ids, Urgency::Copy)
                    .await
                    .map_err(TaskError::wait(format!("follow the copy in {place}")))?;
                let doing = Some(format!("copy to {place}"));
                one_ended_well(statuses, doing)
            },
        )
        .await;
    match waited {
        Ok(status) => Ok(DbSnapshotStatus {
            kms_key_id: status.kms_key_id.or(copied.kms_key_id),
            ..status
        }),
        Err(e) => {
            let left = ctx.discard(service, access, region, &place, &ids).await;
            // An interrupt: say what became of the copy, once (SPEC section 5). RDS deletes only
            // an available DB snapshot, so a copy in flight may have to be left to finish.
            let e = match (e.is_interrupted(), left.is_empty()) {
                (true, true) => TaskError::interrupted(format!(
                    "while copying {} into {place}: the copy in flight is deleted, not left \
                     to finish; the next `snaprelay run` copies again",
                    request.source_arn
                )),
                (true, false) => TaskError::interrupted(format!(
                    "while copying {} into {place}: the copy in flight could not be deleted \
                     while it runs",
                    request.source_arn
                )),
                (false, _) => e,
            };
            Err(e.then(left))
        }
    }
}

/// The caller's DB snapshot named `id` in `region`, if there is one.
pub(super) async fn existing(
    ctx: &TaskContext<'_>,
    access: &Access,
    region: &str,
    place: &str,
    id: &str,
) -> Result<Option<DbSnapshotStatus>, TaskError> {
    ctx.step(
        StepKind::FindSnapshot,
        place,
        |found: &Option<DbSnapshotStatus>| {
            StepDetail::note(match found {
                Some(s) => format!("{id} found ({})", s.status),
                None => format!("{id} not found"),
            })
        },
        async {
            let ids = [id.to_owned()];
            api::describe(ctx, access, region, &ids)
                .await
                .map(|found| found.into_iter().find(|s| s.id == id))
                .map_err(TaskError::aws(format!("look for {id} in {place}")))
        },
    )
    .await
}
