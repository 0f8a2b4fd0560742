//! The policy guarded in AWS, not only in the state store. The lease keeps two sessions of a
//! policy apart when they share a state store; two state files (a laptop and a server, say)
//! would each grant it. What they cannot hide is in AWS: snapshots in flight tagged with the
//! policy by a session this state does not know mean another snaprelay is running the policy
//! now, against the same resources, and its retention or ours would delete what the other is
//! copying from.

use std::collections::{BTreeSet, HashSet};

use crate::gc::places;
use crate::model::{ResourceType, SnapshotState, Tag, made_by_a_session, tag_value, tags};
use crate::plan::prepare::Prepared;
use crate::ports::{Cloud, StateStore};
use crate::retention::Accesses;

use super::{AppError, ErrorKind};

/// Refuses (conflict) when a snapshot of the policy is in flight in one of its places for a
/// session the store does not know. A place that cannot be read is skipped with a warning:
/// the guard must not stop a run the lease allows.
pub(super) async fn no_other_state_runs(
    cloud: &dyn Cloud,
    store: &dyn StateStore,
    prepared: &Prepared,
    source_regions: &[String],
) -> Result<(), AppError> {
    let plan = &prepared.plan;
    let accesses = Accesses::of_plan(prepared, source_regions);
    let known: HashSet<String> = store
        .sessions(Some(&plan.policy))
        .await?
        .into_iter()
        .map(|s| s.session_id.to_string())
        .collect();
    let tag = Tag::new(tags::POLICY, &plan.policy);
    let kinds: BTreeSet<ResourceType> = plan.tasks.iter().map(|t| t.resource_type).collect();
    let mut others = Vec::new();
    for (account, region) in places(prepared, source_regions) {
        let Some(access) = accesses.of(account.as_str()) else {
            continue;
        };
        for kind in &kinds {
            let in_flight = match kind {
                ResourceType::Ec2 => {
                    cloud
                        .find_snapshots(access, &region, &tag)
                        .await
                        .map(|found| {
                            found
                                .into_iter()
                                .filter(|s| s.state == SnapshotState::Pending)
                                .filter(|s| made_by_a_session(&s.tags))
                                .map(|s| (s.id, s.tags))
                                .collect::<Vec<_>>()
                        })
                }
                ResourceType::Aurora => cloud
                    .find_db_cluster_snapshots(access, &region, &tag)
                    .await
                    .map(|found| {
                        found
                            .into_iter()
                            .filter(|s| s.state() == SnapshotState::Pending)
                            .filter(|s| made_by_a_session(&s.tags))
                            .map(|s| (s.id, s.tags))
                            .collect::<Vec<_>>()
                    }),
                ResourceType::Rds => {
                    cloud
                        .find_db_snapshots(access, &region, &tag)
                        .await
                        .map(|found| {
                            found
                                .into_iter()
                                .filter(|s| s.state() == SnapshotState::Pending)
                                .filter(|s| made_by_a_session(&s.tags))
                                .map(|s| (s.id, s.tags))
                                .collect::<Vec<_>>()
                        })
                }
            };
            let in_flight = match in_flight {
                Ok(found) => found,
                Err(e) => {
                    tracing::warn!(error = %e, region, "could not look for other runs of the policy here");
                    continue;
                }
            };
            for (id, snapshot_tags) in in_flight {
                let session = tag_value(&snapshot_tags, tags::SESSION).unwrap_or_default();
                if !known.contains(session) {
                    others.push(format!("{id} in {region} (session {session})"));
                }
            }
        }
    }
    if others.is_empty() {
        return Ok(());
    }
    others.sort();
    others.dedup();
    Err(AppError::new(
        ErrorKind::Conflict,
        format!(
            "policy {} is being run by another snaprelay with another state: its snapshots are \
             in flight for sessions this state does not know: {}. Two sessions of one policy \
             must not overlap; run the policy from one state (one file, or one shared \
             database). If that state was lost while its session ran, wait for these \
             snapshots to complete, then `snaprelay gc` lists them. Nothing was done",
            plan.policy,
            others.join(", ")
        ),
    ))
}
