//! `state copy`: a whole state into an empty one (SQLite to PostgreSQL, and back), sessions
//! with their steps and task reports, restore points under their numbers with what retention
//! deleted of them and their last drill, restores and drills (SPEC section 6.7).

use crate::ports::{Operation, OperationKind, PointFilter, StateStore};
use crate::runtime::clock::utc_now;

use super::AppError;

/// What was copied.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Copied {
    pub sessions: usize,
    pub steps: usize,
    pub restore_points: usize,
    /// Restores and drills.
    pub operations: usize,
}

/// Copies `from` into `to`, which must hold no session and no restore point.
pub async fn state_copy(from: &dyn StateStore, to: &dyn StateStore) -> Result<Copied, AppError> {
    let held = to.sessions(None).await?.len();
    let points = to.find_restore_points(&PointFilter::default()).await?.len();
    if held > 0 || points > 0 {
        return Err(AppError::invalid(format!(
            "the destination holds {held} session(s) and {points} restore point(s): state copy \
             only fills an empty state, so that nothing is mixed or overwritten; nothing was copied"
        )));
    }
    let mut copied = Copied::default();
    // Oldest first, as they were made.
    let mut sessions = from.sessions(None).await?;
    sessions.reverse();
    for s in &sessions {
        to.begin_session(&s.session_id, &s.policy, &s.started_at)
            .await?;
        let steps = from.steps(&s.session_id).await?;
        for step in &steps {
            to.record_step(&s.session_id, step).await?;
        }
        copied.steps += steps.len();
        match (&s.ended_at, from.session(&s.session_id).await?) {
            (Some(_), Some(report)) => {
                to.finish_session(&report).await?;
                if let Some(c) = from.copied(&s.session_id).await? {
                    to.record_copied(&s.session_id, &c).await?;
                }
            }
            _ => {
                // Unfinished (interrupted): its ended tasks, for the resume.
                for task in from.progress_of(&s.session_id).await?.tasks {
                    to.record_task(&s.session_id, &task).await?;
                }
            }
        }
        copied.sessions += 1;
    }
    // When retention deleted them is not kept per snapshot; the copy's time stands for it.
    let now = utc_now();
    for p in from.find_restore_points(&PointFilter::default()).await? {
        to.import_restore_point(&p.session_id, p.id, &p.point)
            .await?;
        for snapshot in &p.deleted_snapshots {
            to.record_snapshot_deleted(p.id, snapshot, &now).await?;
        }
        if p.status == crate::report::PointStatus::Deleted {
            to.record_restore_point_deleted(p.id, &now).await?;
        }
        if let Some(drill) = &p.last_drill {
            to.record_drill_of(p.id, drill).await?;
        }
        copied.restore_points += 1;
    }
    // Restores and drills, oldest first, with how they ended.
    for kind in [OperationKind::Restore, OperationKind::Drill] {
        let mut ops = from.operations(kind, None).await?;
        ops.reverse();
        for op in ops {
            to.begin_operation(&Operation {
                status: "Running".into(),
                ended_at: None,
                document: None,
                ..op.clone()
            })
            .await?;
            if let (Some(ended), Some(doc)) = (&op.ended_at, &op.document) {
                to.end_operation(&op.id, &op.status, ended, doc).await?;
            }
            copied.operations += 1;
        }
    }
    Ok(copied)
}
