//! The SPEC's workflows, one file each, and what they share: the task context, recorded steps,
//! and waiting for snapshots to finish.
//!
//! - [`source`]: step 1 of every workflow, the source snapshots of the instance.
//! - [`same_account`]: workflow A, a copy to the target Region in the source account.
//! - [`cross_account_ec2`]: workflow B, share, copy in the target account, unshare.

mod copy;
pub mod cross_account_ec2;
pub mod same_account;
pub mod source;

use std::future::Future;
use std::time::Duration;

use crate::clock::utc_now;
use crate::engine::{CopySlots, EngineConfig, Interrupt, Record};
use crate::ids::AccountId;
use crate::model::{Instance, SnapshotState, SnapshotStatus, Tag, tags};
use crate::ports::{Access, Cloud, CloudError};
use crate::report::{PlaceReport, StepRecord};
use crate::status::Status;

/// What a workflow works with for one resource.
pub struct TaskContext<'a> {
    pub cloud: &'a dyn Cloud,
    pub recorder: &'a dyn Record,
    pub config: &'a EngineConfig,
    pub slots: &'a CopySlots,
    pub interrupt: &'a Interrupt,
    pub session_id: &'a str,
    pub policy: &'a str,
    pub source_account: &'a AccountId,
    pub source_access: &'a Access,
    pub instance: &'a Instance,
}

/// How one target of one resource ended.
#[derive(Clone, Debug, PartialEq)]
pub struct TargetOutcome {
    pub target: usize,
    pub status: Status,
    pub messages: Vec<String>,
    /// The replica restore point, when it was made.
    pub replica: Option<PlaceReport>,
}

impl TargetOutcome {
    /// The outcome of a replica restore point that was made, or of the error that stopped it.
    pub fn of(target: usize, replica: Result<PlaceReport, String>) -> Self {
        match replica {
            Ok(replica) => Self {
                target,
                status: Status::Success,
                messages: vec![],
                replica: Some(replica),
            },
            Err(e) => Self::failed(target, e),
        }
    }

    pub fn failed(target: usize, message: String) -> Self {
        Self {
            target,
            status: Status::Failed,
            messages: vec![message],
            replica: None,
        }
    }
}

impl TaskContext<'_> {
    /// Runs one step, records it with its times and outcome, and says so on the progress line.
    pub async fn step<T, F>(
        &self,
        step: &str,
        place: &str,
        detail: impl FnOnce(&T) -> String,
        work: F,
    ) -> Result<T, String>
    where
        F: Future<Output = Result<T, String>>,
    {
        let started_at = utc_now();
        self.recorder
            .progress(&self.instance.id, &format!("{step} ({place})"));
        let result = work.await;
        let (outcome, detail) = match &result {
            Ok(v) => ("ok", detail(v)),
            Err(e) => ("failed", e.clone()),
        };
        self.recorder.step(&StepRecord {
            resource_id: self.instance.id.clone(),
            step: step.to_owned(),
            place: place.to_owned(),
            started_at,
            ended_at: utc_now(),
            outcome: outcome.to_owned(),
            detail,
        });
        result
    }

    /// The tags every snapshot made for this resource carries, so ownership can be proven.
    pub fn tags(&self, kind: &str) -> Vec<Tag> {
        vec![
            Tag::new(tags::POLICY, self.policy),
            Tag::new(tags::SESSION, self.session_id),
            Tag::new(tags::RESOURCE, &self.instance.id),
            Tag::new(tags::KIND, kind),
        ]
    }

    /// Deletes snapshots this session made for a restore point that could not be completed,
    /// so that no orphan is left; says what could not be deleted.
    pub async fn discard(
        &self,
        access: &Access,
        region: &str,
        place: &str,
        snapshot_ids: &[String],
    ) -> Vec<String> {
        let mut left = Vec::new();
        for id in snapshot_ids {
            let result = self
                .step("discard", place, |_| id.clone(), async {
                    self.cloud
                        .delete_snapshot(access, region, id)
                        .await
                        .map_err(|e| e.to_string())
                })
                .await;
            if let Err(e) = result {
                left.push(format!(
                    "snapshot {id} of an incomplete restore point could not be deleted: {e}"
                ));
            }
        }
        left
    }

    /// Polls `DescribeSnapshots` for a batch of snapshots, backing off, until each has completed
    /// or failed. One call covers the whole batch.
    pub async fn wait_for_snapshots(
        &self,
        access: &Access,
        region: &str,
        snapshot_ids: &[String],
    ) -> Result<Vec<SnapshotStatus>, String> {
        let mut interval = self.config.poll_initial;
        let mut unseen_rounds = 0;
        loop {
            self.interrupt.sleep(interval).await.map_err(|i| {
                format!(
                    "{i} before snapshot(s) {} completed",
                    snapshot_ids.join(", ")
                )
            })?;
            let statuses = self
                .cloud
                .describe_snapshots(access, region, snapshot_ids)
                .await
                .map_err(|e| e.to_string())?;
            let missing: Vec<&String> = snapshot_ids
                .iter()
                .filter(|id| !statuses.iter().any(|s| &s.id == *id))
                .collect();
            if !missing.is_empty() {
                // Just created, so DescribeSnapshots may lag behind (eventual consistency); a
                // snapshot that stays invisible was deleted by someone else.
                unseen_rounds += 1;
                if unseen_rounds > MAX_UNSEEN_ROUNDS {
                    return Err(format!(
                        "snapshot(s) {} disappeared from {region} before completing",
                        missing
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
            } else if statuses
                .iter()
                .all(|s| matches!(s.state, SnapshotState::Completed | SnapshotState::Error))
            {
                return Ok(statuses);
            } else {
                let percent: u32 = statuses
                    .iter()
                    .map(|s| u32::from(s.progress.unwrap_or(0)))
                    .sum::<u32>()
                    / statuses.len().max(1) as u32;
                self.recorder.progress(
                    &self.instance.id,
                    &format!("{} snapshot(s) in {region}: {percent}%", statuses.len()),
                );
            }
            interval = next_interval(interval, self.config.poll_max);
        }
    }
}

/// How many polls a just-created snapshot may stay invisible before it counts as gone.
const MAX_UNSEEN_ROUNDS: u32 = 10;

impl TaskContext<'_> {
    /// Makes an AWS call until AWS stops refusing it for a used-up quota, waiting longer each
    /// time (with jitter, so that many waiting tasks do not all try again at once).
    pub async fn retrying_quota<T, F, Fut>(&self, what: &str, mut call: F) -> Result<T, CloudError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, CloudError>>,
    {
        let mut delay = self.config.poll_initial;
        loop {
            match call().await {
                Err(e) if e.is_quota() => {
                    let wait = jitter(delay);
                    self.recorder.progress(
                        &self.instance.id,
                        &format!(
                            "{what}: AWS quota reached ({}), trying again in {:.1}s",
                            e.code.as_deref().unwrap_or_default(),
                            wait.as_secs_f64()
                        ),
                    );
                    if self.interrupt.sleep(wait).await.is_err() {
                        return Err(e);
                    }
                    delay = next_interval(delay, self.config.poll_max);
                }
                other => return other,
            }
        }
    }
}

/// `d` scaled by a factor between 0.75 and 1.25, from the clock's nanoseconds.
fn jitter(d: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |t| t.subsec_nanos());
    d.mul_f64(0.75 + f64::from(nanos % 1000) / 2000.0)
}

fn next_interval(current: Duration, max: Duration) -> Duration {
    (current * 3 / 2).min(max)
}

/// The snapshots among `statuses` that ended in `error`, with AWS's state message.
pub fn errors(statuses: &[SnapshotStatus]) -> Vec<String> {
    statuses
        .iter()
        .filter(|s| s.state == SnapshotState::Error)
        .map(|s| {
            format!(
                "snapshot {} ended in state error: {}",
                s.id,
                s.state_message
                    .as_deref()
                    .unwrap_or("AWS gave no state message")
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polling_backs_off_to_the_maximum() {
        let max = Duration::from_secs(30);
        let mut d = Duration::from_secs(2);
        let mut seen = vec![];
        for _ in 0..10 {
            d = next_interval(d, max);
            seen.push(d.as_secs());
        }
        assert_eq!(seen[0], 3);
        assert!(seen.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(*seen.last().unwrap(), 30);
    }
}
