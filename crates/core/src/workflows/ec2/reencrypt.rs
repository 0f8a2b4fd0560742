//! The default-key workaround for EBS (SPEC 6.4). AWS cannot share a snapshot under the AWS
//! managed key `aws/ebs`
//! (<https://docs.aws.amazon.com/ebs/latest/userguide/ebs-modifying-snapshot-permissions.html>),
//! but it can copy it within its account and Region under another key
//! (<https://docs.aws.amazon.com/ebs/latest/userguide/encryption-examples.html#reencrypt-snapshot>).
//! So, before workflow B, each such snapshot is copied in the source account and Region under
//! the policy's re-encrypt key, with the source role; workflow B shares and copies those
//! copies as usual; once it has (its shares removed), the copies are deleted. The original is
//! never shared.
//!
//! Crash-safe like every copy: each is recorded as begun before it is made, tagged with the
//! session, the resource and `snaprelay:kind = reencrypted`; a resumed session takes up the
//! copies of its interrupted attempt (by those tags and `snaprelay:source-snapshot`), and gc
//! lists and deletes the copies of a session that will not be resumed (they are never a
//! restore point).

use futures_util::future::join_all;

use crate::model::{SnapshotKind, SnapshotState, SnapshotStatus, Tag, tag_value, tags};
use crate::plan::Reencrypt;
use crate::ports::CopyRequest;
use crate::report::{StepDetail, StepKind};
use crate::runtime::{Service, Urgency};

use super::source::SourceSnapshot;
use crate::workflows::{TaskContext, TaskError, one_ended_well};

/// What [`copies`] made.
pub struct Reencrypted {
    /// The source snapshots as the cross-account targets share them: each one under
    /// `aws/ebs` with its copy under the re-encrypt key (`shared_copy`).
    pub shared: Vec<SourceSnapshot>,
    /// The extra copies, to delete once every target has copied them.
    pub made: Vec<String>,
}

/// Copies each snapshot of `source` that `reencrypt` names under its key (or takes up the
/// copy an interrupted attempt made). On failure, the copies made so far come back with the
/// error, to be deleted.
pub async fn copies(
    ctx: &TaskContext<'_>,
    source: &[SourceSnapshot],
    reencrypt: &Reencrypt,
) -> Result<Reencrypted, (Vec<String>, TaskError)> {
    let region = ctx.resource.region();
    let place = format!("{}/{region}", ctx.source_account);
    let earlier = match ctx.resumed {
        Some(_) => ctx
            .session_snapshots(ctx.source_access, region, SnapshotKind::Reencrypted)
            .await
            .map_err(|e| {
                (
                    Vec::new(),
                    TaskError::aws(format!("look for earlier re-encrypted copies in {place}"))(e),
                )
            })?,
        None => Vec::new(),
    };
    let wanted = |s: &&SourceSnapshot| reencrypt.volumes.contains(&s.volume_id);
    let made = join_all(
        source
            .iter()
            .filter(wanted)
            .map(|s| copy_one(ctx, s, reencrypt, &place, &earlier)),
    )
    .await;
    let mut ids = Vec::new();
    let mut failures = Vec::new();
    let mut copied = Vec::new();
    for (s, result) in source.iter().filter(wanted).zip(made) {
        match result {
            Ok(id) => {
                ids.push(id.clone());
                copied.push((s.snapshot_id.clone(), id));
            }
            Err((id, e)) => {
                ids.extend(id);
                failures.push(e);
            }
        }
    }
    if let Some(e) = TaskError::all(failures) {
        return Err((ids, e));
    }
    let shared = source
        .iter()
        .map(
            |s| match copied.iter().find(|(of, _)| *of == s.snapshot_id) {
                Some((_, id)) => SourceSnapshot {
                    shared_copy: Some(id.clone()),
                    kms_key_id: Some(reencrypt.kms_key_id.clone()),
                    ..s.clone()
                },
                None => s.clone(),
            },
        )
        .collect();
    Ok(Reencrypted { shared, made: ids })
}

/// One snapshot's copy under the re-encrypt key, waited for: its id, or the error (with the
/// id when the copy was made).
async fn copy_one(
    ctx: &TaskContext<'_>,
    s: &SourceSnapshot,
    reencrypt: &Reencrypt,
    place: &str,
    earlier: &[SnapshotStatus],
) -> Result<String, (Option<String>, TaskError)> {
    let region = ctx.resource.region();
    let taken_up = earlier
        .iter()
        .find(|c| {
            tag_value(&c.tags, tags::SOURCE_SNAPSHOT) == Some(s.snapshot_id.as_str())
                && c.state != SnapshotState::Error
        })
        .map(|c| c.id.clone());
    // The copy counts against the source Region's copy quota while it runs.
    let size = s.size_gib.and_then(|g| u64::try_from(g).ok()).unwrap_or(0);
    let _slot = tokio::select! {
        permit = ctx.slots.acquire(Service::Ebs, ctx.source_account, region, size) => permit,
        () = ctx.interrupt.raised() => {
            return Err((None, TaskError::interrupted(format!(
                "while waiting for a copy slot in {place} to re-encrypt {}", s.snapshot_id
            ))));
        }
    };
    let id = match taken_up {
        Some(id) => id,
        None => {
            let mut tags = ctx.tags(SnapshotKind::Reencrypted);
            tags.extend([
                Tag::new(tags::VOLUME, &s.volume_id),
                Tag::new(tags::SOURCE_SNAPSHOT, &s.snapshot_id),
            ]);
            let request = CopyRequest {
                source_region: region.to_owned(),
                source_snapshot_id: s.snapshot_id.clone(),
                kms_key_arn: Some(reencrypt.kms_key_id.clone()),
                description: format!(
                    "snaprelay {}: {} re-encrypted to share it (default-key workaround; \
                     deleted once copied)",
                    ctx.policy, s.snapshot_id
                ),
                tags,
            };
            ctx.change_of(
                StepKind::Copy,
                place,
                &format!("of {} under the re-encrypt key", s.snapshot_id),
                |id: &String| StepDetail::Copy {
                    service: Service::Ebs,
                    copy: id.clone(),
                    source: s.snapshot_id.clone(),
                },
                async {
                    ctx.retrying_quota("copy", || {
                        ctx.cloud.copy_snapshot(ctx.source_access, region, &request)
                    })
                    .await
                    .map_err(TaskError::aws(format!(
                        "copy {} under the re-encrypt key {}",
                        s.snapshot_id, reencrypt.kms_key_id
                    )))
                },
            )
            .await
            .map_err(|e| (None, e))?
        }
    };
    let waited = ctx
        .step_of(
            StepKind::WaitCopy,
            place,
            &format!("{id} (re-encrypted {})", s.snapshot_id),
            |_| StepDetail::note(format!("{id} completed")),
            async {
                let statuses = ctx
                    .wait_for_snapshots(
                        ctx.source_access,
                        region,
                        std::slice::from_ref(&id),
                        Urgency::Copy,
                    )
                    .await
                    .map_err(TaskError::wait(format!(
                        "follow the re-encrypted copies in {place}"
                    )))?;
                one_ended_well(statuses, Some(format!("re-encrypt in {place}")))
            },
        )
        .await;
    match waited {
        Ok(_) => Ok(id),
        Err(e) => Err((Some(id), e)),
    }
}

/// Resuming a task whose every cross-account replica is recorded: the extra copies its
/// interrupted attempt made, still to delete, and what may still be shared, whose shares are
/// removed: those copies, and the snapshots shared as they are (not under a default key).
/// An original under the default key is never in it: it was never shared, and a copy of it
/// no longer found was deleted, its share with it.
pub async fn left_by_the_interrupted_attempt(
    ctx: &TaskContext<'_>,
    source: &[SourceSnapshot],
    reencrypt: &Reencrypt,
) -> Result<Reencrypted, TaskError> {
    if ctx.resumed.is_none() {
        return Ok(Reencrypted {
            shared: source.to_vec(),
            made: Vec::new(),
        });
    }
    let region = ctx.resource.region();
    let found = ctx
        .session_snapshots(ctx.source_access, region, SnapshotKind::Reencrypted)
        .await
        .map_err(TaskError::aws(format!(
            "look for earlier re-encrypted copies in {}/{region}",
            ctx.source_account
        )))?;
    let shared = source
        .iter()
        .filter_map(|s| {
            if !reencrypt.volumes.contains(&s.volume_id) {
                return Some(s.clone());
            }
            found
                .iter()
                .find(|c| tag_value(&c.tags, tags::SOURCE_SNAPSHOT) == Some(s.snapshot_id.as_str()))
                .map(|c| SourceSnapshot {
                    shared_copy: Some(c.id.clone()),
                    kms_key_id: Some(reencrypt.kms_key_id.clone()),
                    ..s.clone()
                })
        })
        .collect();
    Ok(Reencrypted {
        shared,
        made: found.into_iter().map(|s| s.id).collect(),
    })
}

/// Deletes the extra copies (their shares are gone by now); what could not be deleted.
pub async fn discard(ctx: &TaskContext<'_>, made: &[String]) -> Vec<TaskError> {
    let region = ctx.resource.region();
    let place = format!("{}/{region}", ctx.source_account);
    ctx.discard(Service::Ebs, ctx.source_access, region, &place, made)
        .await
}
