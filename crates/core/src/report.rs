//! What a session reports and records: the JSON document of `run --output json` (SPEC
//! section 5), the steps of each task, and the restore points it made.

use serde::{Deserialize, Serialize};

use crate::ids::{RestorePointId, SessionId};
use crate::status::Status;

/// The report of one session, printed by `run` and kept by the state store.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionReport {
    pub session_id: SessionId,
    pub policy: String,
    pub status: Status,
    pub started_at: String,
    pub ended_at: String,
    pub source_account: String,
    pub resources: Vec<ResourceReport>,
    /// Session-wide remarks (for example a tag selector that matched nothing).
    pub messages: Vec<String>,
}

/// What an unfinished session had done when it stopped, as its state file tells.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SessionProgress {
    pub session_id: SessionId,
    pub policy: String,
    pub started_at: String,
    /// The tasks that ended, with their reports: a resumed session does not touch them again.
    pub tasks: Vec<ResourceReport>,
    /// The restore points the session recorded.
    pub points: Vec<RestorePoint>,
    /// Every step it recorded, begun or ended (the shares it made, the places it copied to).
    pub steps: Vec<StepRecord>,
}

impl SessionProgress {
    /// The resources with at least one step recorded (begun or ended): only these may have
    /// changed AWS, and only these are reconciled with AWS before going on. (A step without
    /// a resource marks where a resume began.)
    pub fn started(&self) -> std::collections::BTreeSet<&str> {
        self.steps
            .iter()
            .map(|s| s.resource_id.as_str())
            .filter(|r| !r.is_empty())
            .collect()
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResourceReport {
    #[serde(rename = "type")]
    pub resource_type: String,
    /// The instance id (or DB instance identifier).
    pub id: String,
    pub region: String,
    pub status: Status,
    pub messages: Vec<String>,
    /// The source restore point, when the snapshots were taken.
    pub source: Option<PlaceReport>,
    pub replicas: Vec<PlaceReport>,
}

/// A restore point in one place: the snapshots of the resource there.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlaceReport {
    pub account: String,
    pub region: String,
    pub snapshots: Vec<SnapshotReport>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SnapshotReport {
    /// The EBS snapshot id.
    pub id: String,
    /// The snapshot it was copied from; for a source snapshot, the volume it was taken of.
    pub source_id: String,
    /// EBS: the volume the snapshot is of.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub volume_id: String,
    /// EBS: the device the volume was attached as (`/dev/xvda`), to rebuild the instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// The key ARN that encrypts it; `None` when unencrypted.
    pub kms_key_id: Option<String>,
    /// The size of the volume or DB it holds, in GiB, when the inventory knew it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_gib: Option<i64>,
}

/// A restore point as recorded in the state store.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RestorePoint {
    pub policy: String,
    pub resource_type: String,
    pub resource_id: String,
    /// `source` or `replica`.
    pub kind: String,
    pub created_at: String,
    #[serde(flatten)]
    pub place: PlaceReport,
}

/// A restore point and the session that made it, as `restore-points` lists them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecordedRestorePoint {
    /// The state store's number for it.
    pub id: RestorePointId,
    pub session_id: SessionId,
    pub status: PointStatus,
    #[serde(flatten)]
    pub point: RestorePoint,
    /// Snapshots retention has deleted already (all of them once `status` is `deleted`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deleted_snapshots: Vec<String>,
}

/// Whether a recorded restore point is still there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PointStatus {
    /// Made and not deleted.
    Complete,
    /// Retention deleted some of its snapshots; the next `retention apply` finishes.
    Deleting,
    /// Retention deleted it.
    Deleted,
}

/// One step of one task: what was done, when, and how it ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    pub resource_id: String,
    /// `snapshot`, `wait-snapshot`, `share`, `copy`, `wait-copy`, `unshare`.
    pub step: String,
    /// The place the step acts on (`account/region`).
    pub place: String,
    pub started_at: String,
    pub ended_at: String,
    /// `ok` or `failed`.
    pub outcome: String,
    pub detail: String,
}

/// A line of `sessions list`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionSummary {
    pub session_id: SessionId,
    pub policy: String,
    /// `Success`, `Warning`, `Failed`, or `Running` for a session that never finished.
    pub status: String,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub resources: usize,
}
