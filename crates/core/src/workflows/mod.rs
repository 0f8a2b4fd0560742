//! The SPEC's workflows, one file each, and what they share: the task context, recorded steps,
//! waiting for snapshots to finish, retrying quota refusals.
//!
//! - [`ec2`]: EC2 instances: workflow A (same account) and workflow B (another account).
//! - [`rds`]: RDS DB instances and Aurora DB clusters: workflow A (same account) and workflow C
//!   (another account), the same steps with DB snapshots or DB cluster snapshots.

pub mod ec2;
mod error;
pub mod rds;

pub use error::{SnapshotFailure, TaskError, all_ended_well, failures, one_ended_well};

use std::future::Future;

use crate::config::ResourceConfig;
use crate::ids::AccountId;
use crate::model::{
    DbKind, DbSnapshotStatus, Resource, SnapshotKind, SnapshotStatus, Tag, tag_value, tags,
};
use crate::plan::{ResolvedTarget, Workflow};
use crate::ports::{Access, Cloud, CloudError};
use crate::report::{PlaceReport, RestorePoint, StepDetail, StepKind, StepOutcome, StepRecord};
use crate::runtime::clock::utc_now;
use crate::runtime::{
    ClusterSnapshotStatus, CopySlots, EngineConfig, Interrupt, Record, Service, Urgency, WaitError,
    Watcher, jitter, next_interval,
};
use crate::status::Status;

/// What a workflow works with for one resource.
pub struct TaskContext<'a> {
    pub cloud: &'a dyn Cloud,
    pub recorder: &'a dyn Record,
    pub config: &'a EngineConfig,
    pub slots: &'a CopySlots,
    pub ebs_watch: &'a Watcher<'a, SnapshotStatus>,
    pub rds_watch: &'a Watcher<'a, DbSnapshotStatus>,
    pub aurora_watch: &'a Watcher<'a, ClusterSnapshotStatus>,
    pub interrupt: &'a Interrupt,
    pub session_id: &'a str,
    pub policy: &'a str,
    pub source_account: &'a AccountId,
    pub source_access: &'a Access,
    pub resource: &'a Resource,
    /// Set when the session is resumed and this task had begun: the restore points it had
    /// recorded. Each step that changes AWS then first looks for what the interrupted
    /// attempt did (by tags and deterministic names) and takes it up instead of repeating it.
    pub resumed: Option<&'a [RestorePoint]>,
}

/// A replica the plan asks for: where, by which workflow, with which keys.
#[derive(Clone, Debug)]
pub struct Planned<'a> {
    pub target: &'a ResolvedTarget,
    pub workflow: Workflow,
    pub kms_key_id: Option<&'a str>,
    /// RDS workflow C through an intermediate copy in the source Region.
    pub two_step: bool,
    /// RDS workflow C in two steps: the key of the intermediate copy (none if unencrypted).
    pub staging_kms_key_id: Option<&'a str>,
    /// RDS workflow C in one copy.
    pub single_step: bool,
    /// The default-key workaround: what is copied under which key before it is shared.
    pub reencrypt: Option<&'a crate::plan::Reencrypt>,
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
    pub fn of(target: usize, replica: Result<PlaceReport, TaskError>) -> Self {
        match replica {
            Ok(replica) => Self {
                target,
                status: Status::Success,
                messages: vec![],
                replica: Some(replica),
            },
            Err(e) => Self::failed(target, &e),
        }
    }

    pub fn failed(target: usize, error: &TaskError) -> Self {
        Self {
            target,
            status: Status::Failed,
            messages: vec![error.to_string()],
            replica: None,
        }
    }
}

impl TaskContext<'_> {
    /// Whether this task's DB is a DB instance or an Aurora cluster (a DB instance for an
    /// EC2 task, which never asks).
    pub fn db_kind(&self) -> DbKind {
        match self.resource {
            Resource::Aurora(_) => DbKind::Cluster,
            Resource::Ec2(_) | Resource::Rds(_) => DbKind::Instance,
        }
    }

    /// Records a restore point of this task's resource in one place, with the configuration
    /// a restore from it needs (SPEC 6.1).
    pub async fn record_point(&self, kind: SnapshotKind, place: &PlaceReport) {
        self.recorder
            .restore_point(&RestorePoint {
                policy: self.policy.to_owned(),
                resource_type: self.resource.kind(),
                resource_id: self.resource.id().to_owned(),
                kind,
                created_at: utc_now(),
                place: place.clone(),
                config: Some(ResourceConfig::of(self.resource, place)),
            })
            .await;
    }

    /// Runs one step, records it with its times and outcome, and says so on the progress line.
    pub async fn step<T, F>(
        &self,
        step: StepKind,
        place: &str,
        detail: impl FnOnce(&T) -> StepDetail,
        work: F,
    ) -> Result<T, TaskError>
    where
        F: Future<Output = Result<T, TaskError>>,
    {
        self.recorded_step(false, step, place, "", detail, work)
            .await
    }

    /// Like [`TaskContext::step`], for a step that changes AWS: it is recorded as begun
    /// before the call, so that a crash during it is known to have possibly happened.
    pub async fn change<T, F>(
        &self,
        step: StepKind,
        place: &str,
        detail: impl FnOnce(&T) -> StepDetail,
        work: F,
    ) -> Result<T, TaskError>
    where
        F: Future<Output = Result<T, TaskError>>,
    {
        self.recorded_step(true, step, place, "", detail, work)
            .await
    }

    /// Like [`TaskContext::change`], for one of several like steps of a resource: the
    /// progress line names `what` (a volume's copy, say), so that the lines can be told apart.
    pub async fn change_of<T, F>(
        &self,
        step: StepKind,
        place: &str,
        what: &str,
        detail: impl FnOnce(&T) -> StepDetail,
        work: F,
    ) -> Result<T, TaskError>
    where
        F: Future<Output = Result<T, TaskError>>,
    {
        self.recorded_step(true, step, place, what, detail, work)
            .await
    }

    /// Like [`TaskContext::step`], naming `what` as [`TaskContext::change_of`] does.
    pub async fn step_of<T, F>(
        &self,
        step: StepKind,
        place: &str,
        what: &str,
        detail: impl FnOnce(&T) -> StepDetail,
        work: F,
    ) -> Result<T, TaskError>
    where
        F: Future<Output = Result<T, TaskError>>,
    {
        self.recorded_step(false, step, place, what, detail, work)
            .await
    }

    async fn recorded_step<T, F>(
        &self,
        changes_aws: bool,
        step: StepKind,
        place: &str,
        what: &str,
        detail: impl FnOnce(&T) -> StepDetail,
        work: F,
    ) -> Result<T, TaskError>
    where
        F: Future<Output = Result<T, TaskError>>,
    {
        let mut record = StepRecord {
            resource_id: self.resource.id().to_owned(),
            step,
            place: place.to_owned(),
            started_at: utc_now(),
            ended_at: String::new(),
            outcome: StepOutcome::Started,
            detail: StepDetail::None,
        };
        let begun = if changes_aws {
            // No change is made that the state could not record first: a crash after it would
            // leave something no record points to (and a fenced-out worker must not act).
            let Some(begun) = self.recorder.begin_step(&record).await else {
                return Err(TaskError::Refused(format!(
                    "{step} in {place} was not made: the state could not record it first (the \
                     session ends with the store's error; the next run resumes it)"
                )));
            };
            Some(begun)
        } else {
            None
        };
        self.recorder.progress(
            self.resource.id(),
            &match what {
                "" => format!("{step} ({place})"),
                what => format!("{step} {what} ({place})"),
            },
        );
        let result = work.await;
        (record.outcome, record.detail) = match &result {
            Ok(v) => (StepOutcome::Ok, detail(v)),
            Err(e) => (
                StepOutcome::Failed,
                StepDetail::Error {
                    message: e.to_string(),
                },
            ),
        };
        record.ended_at = utc_now();
        self.recorder.end_step(begun, &record).await;
        result
    }

    /// Resuming: this session's snapshots of this resource and `kind` in a place (EC2
    /// `DescribeSnapshots` by the session's tag; the others are read from the answer).
    pub async fn session_snapshots(
        &self,
        access: &Access,
        region: &str,
        kind: SnapshotKind,
    ) -> Result<Vec<SnapshotStatus>, CloudError> {
        let session = Tag::new(tags::SESSION, self.session_id);
        let found = self.cloud.find_snapshots(access, region, &session).await?;
        Ok(found
            .into_iter()
            .filter(|s| {
                tag_value(&s.tags, tags::RESOURCE) == Some(self.resource.id())
                    && tag_value(&s.tags, tags::KIND) == Some(kind.as_str())
            })
            .collect())
    }

    /// The restore point a resumed task had recorded in a place.
    pub fn recorded(
        &self,
        kind: SnapshotKind,
        account: &str,
        region: &str,
    ) -> Option<&PlaceReport> {
        self.resumed?
            .iter()
            .find(|p| p.kind == kind && p.place.account == account && p.place.region == region)
            .map(|p| &p.place)
    }

    /// The tags every snapshot made for this resource carries, so ownership can be proven.
    pub fn tags(&self, kind: SnapshotKind) -> Vec<Tag> {
        vec![
            Tag::new(tags::POLICY, self.policy),
            Tag::new(tags::SESSION, self.session_id),
            Tag::new(tags::RESOURCE, self.resource.id()),
            Tag::new(tags::KIND, kind.as_str()),
        ]
    }

    /// [`Self::tags`], and for a snapshot of an Aurora cluster what restoring it needs when the
    /// state is rebuilt from the tags ([`crate::config::describing_cluster_tags`]).
    pub fn point_tags(&self, kind: SnapshotKind) -> Vec<Tag> {
        let mut tags = self.tags(kind);
        if let crate::model::Resource::Aurora(cluster) = self.resource {
            tags.extend(crate::config::describing_cluster_tags(cluster));
        }
        tags
    }

    /// Deletes snapshots this session made for a restore point that could not be completed,
    /// so that no orphan is left; says what could not be deleted.
    pub async fn discard(
        &self,
        service: Service,
        access: &Access,
        region: &str,
        place: &str,
        snapshot_ids: &[String],
    ) -> Vec<TaskError> {
        let mut left = Vec::new();
        for id in snapshot_ids {
            let result = self
                .change(
                    StepKind::Discard,
                    place,
                    |_| StepDetail::Discarded {
                        service,
                        snapshot: id.clone(),
                    },
                    async {
                        let deleted = match service {
                            Service::Ebs => self.cloud.delete_snapshot(access, region, id).await,
                            Service::Rds => self.cloud.delete_db_snapshot(access, region, id).await,
                            Service::Aurora => {
                                self.cloud
                                    .delete_db_cluster_snapshot(access, region, id)
                                    .await
                            }
                        };
                        match deleted {
                            // Already gone: deleted by an attempt that crashed before saying so.
                            Err(e) if e.is_not_found() => Ok(()),
                            other => other.map_err(TaskError::aws(format!("delete {id}"))),
                        }
                    },
                )
                .await;
            if let Err(e) = result {
                left.push(TaskError::Left {
                    what: format!(
                        "snapshot {id} of an incomplete restore point could not be deleted: {}",
                        match &e {
                            TaskError::Aws { error, .. } => error.to_string(),
                            other => other.to_string(),
                        }
                    ),
                    remedy: "delete it by hand once it has finished (it carries snaprelay's \
                             tags)"
                        .to_owned(),
                });
            }
        }
        left
    }

    /// Waits until each EBS snapshot of the batch has completed or failed. The session's
    /// watcher polls for all tasks at once (engine/watch.rs).
    pub async fn wait_for_snapshots(
        &self,
        access: &Access,
        region: &str,
        snapshot_ids: &[String],
        urgency: Urgency,
    ) -> Result<Vec<SnapshotStatus>, WaitError> {
        self.ebs_watch
            .wait(
                self.resource.id(),
                access,
                region,
                snapshot_ids,
                urgency,
                self.interrupt,
            )
            .await
    }

    /// Waits until each DB snapshot (DB cluster snapshot, for an Aurora cluster) of the
    /// batch is available or failed.
    pub async fn wait_for_db_snapshots(
        &self,
        access: &Access,
        region: &str,
        snapshot_ids: &[String],
        urgency: Urgency,
    ) -> Result<Vec<DbSnapshotStatus>, WaitError> {
        let id = self.resource.id();
        match self.db_kind() {
            DbKind::Instance => {
                self.rds_watch
                    .wait(id, access, region, snapshot_ids, urgency, self.interrupt)
                    .await
            }
            DbKind::Cluster => self
                .aurora_watch
                .wait(id, access, region, snapshot_ids, urgency, self.interrupt)
                .await
                .map(|found| found.into_iter().map(|s| s.0).collect()),
        }
    }
}

/// The detail of a share or unshare step: a resume reads it back to remove every share an
/// interrupted attempt made.
pub fn share_detail(service: Service, snapshot: &str, account: &AccountId) -> StepDetail {
    StepDetail::Share {
        service,
        snapshot: snapshot.to_owned(),
        account: account.to_string(),
        gone: false,
    }
}

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
                        self.resource.id(),
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
