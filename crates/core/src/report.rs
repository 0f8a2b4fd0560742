//! What a session reports and records: the JSON document of `run --output json` (SPEC
//! section 5), the steps of each task, and the restore points it made.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::config::ResourceConfig;
use crate::ids::{RestorePointId, SessionId};
use crate::model::{ResourceType, SnapshotKind};
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
    pub resource_type: ResourceType,
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
    pub resource_type: ResourceType,
    pub resource_id: String,
    /// `source` or `replica`.
    pub kind: SnapshotKind,
    pub created_at: String,
    #[serde(flatten)]
    pub place: PlaceReport,
    /// What a restore rebuilds (SPEC 6.1); `None` for points recorded before it was kept.
    #[serde(default)]
    pub config: Option<ResourceConfig>,
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
    /// The newest drill of this point (SPEC 6.3); `null` when none was.
    #[serde(default)]
    pub last_drill: Option<LastDrill>,
}

/// The last drill of a restore point, as `restore-points` shows it (SPEC 6.3).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LastDrill {
    pub drill_id: String,
    /// `Passed` or `Failed`.
    pub status: String,
    pub rto_seconds: Option<f64>,
    pub at: String,
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

/// One step of one task: what was done, where, when, how it ended, and what it concerned.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// The resource (instance id, DB instance identifier); empty for a session's own steps.
    pub resource_id: String,
    pub step: StepKind,
    /// The place the step acts on (`account/region`).
    pub place: String,
    pub started_at: String,
    pub ended_at: String,
    pub outcome: StepOutcome,
    pub detail: StepDetail,
}

/// What a step does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepKind {
    /// `CreateSnapshots` / `CreateDBSnapshot`.
    Snapshot,
    WaitSnapshot,
    /// Resuming: this session's source snapshots of an instance, found by their tags.
    FindSnapshots,
    /// Resuming: a DB snapshot of this session, found by its deterministic name.
    FindSnapshot,
    /// Sharing a snapshot with the target account (`createVolumePermission` / `restore`).
    Share,
    Unshare,
    Copy,
    WaitCopy,
    /// Resuming: this session's copies in a place, found by their tags.
    FindCopies,
    /// Deleting a snapshot the session made and does not keep (a failed or duplicate copy,
    /// an intermediate copy, an unfinished restore point).
    Discard,
    /// Where, among a session's steps, a resume began.
    Resume,
}

impl StepKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Snapshot => "snapshot",
            Self::WaitSnapshot => "wait-snapshot",
            Self::FindSnapshots => "find-snapshots",
            Self::FindSnapshot => "find-snapshot",
            Self::Share => "share",
            Self::Unshare => "unshare",
            Self::Copy => "copy",
            Self::WaitCopy => "wait-copy",
            Self::FindCopies => "find-copies",
            Self::Discard => "discard",
            Self::Resume => "resume",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        const ALL: [StepKind; 11] = [
            StepKind::Snapshot,
            StepKind::WaitSnapshot,
            StepKind::FindSnapshots,
            StepKind::FindSnapshot,
            StepKind::Share,
            StepKind::Unshare,
            StepKind::Copy,
            StepKind::WaitCopy,
            StepKind::FindCopies,
            StepKind::Discard,
            StepKind::Resume,
        ];
        ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for StepKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a step ended; `started` is a step that changes AWS, recorded before its call and not
/// (yet) ended: a crash happened during it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepOutcome {
    Started,
    Ok,
    Failed,
}

impl StepOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Started => "started",
            Self::Ok => "ok",
            Self::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Started, Self::Ok, Self::Failed]
            .into_iter()
            .find(|o| o.as_str() == s)
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Ebs => "ebs",
            Self::Rds => "rds",
            Self::Aurora => "aurora",
        })
    }
}

impl fmt::Display for StepOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The snapshot service a snapshot belongs to: EBS snapshots and RDS DB snapshots have APIs
/// (and copy quotas) of their own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Service {
    Ebs,
    Rds,
    /// Aurora DB cluster snapshots: their own API and a copy quota of 5.
    Aurora,
}

/// What a step concerned, typed so that a resume reads it back without parsing text.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StepDetail {
    /// Nothing beyond the kind and the place.
    None,
    /// Snapshots made: EBS, one per volume (`of` the volume id); RDS, one (`of` the DB).
    Snapshots { snapshots: Vec<SnapshotOf> },
    /// A share added or removed (`gone`: the snapshot was no longer there to unshare).
    Share {
        service: Service,
        snapshot: String,
        account: String,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        gone: bool,
    },
    /// A copy started: the copy's id (EBS snapshot id, DB snapshot ARN) and its source.
    Copy {
        service: Service,
        copy: String,
        source: String,
    },
    /// A snapshot deleted.
    Discarded { service: Service, snapshot: String },
    /// A session taken up again by a process.
    Resumed { process: u32 },
    /// Why the step failed.
    Error { message: String },
    /// What a wait or a search saw, for people to read.
    Note { text: String },
}

/// A snapshot and what it is a snapshot of.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SnapshotOf {
    pub snapshot: String,
    pub of: String,
}

impl StepDetail {
    pub fn note(text: impl Into<String>) -> Self {
        Self::Note { text: text.into() }
    }

    /// The detail as the state store keeps it: one JSON document.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{\"type\":\"none\"}".to_owned())
    }

    /// A stored detail read back. Steps recorded before details were typed hold text: a
    /// share's was `SNAPSHOT with ACCOUNT` (`from`, for an unshare, with ` (gone)`), and the
    /// service was told by the snapshot id (EBS ids start with `snap-`); any other text is
    /// kept as a note.
    pub fn from_stored(kind: StepKind, stored: &str) -> Self {
        if stored.starts_with('{')
            && let Ok(detail) = serde_json::from_str(stored)
        {
            return detail;
        }
        let word = match kind {
            StepKind::Share => Some(" with "),
            StepKind::Unshare => Some(" from "),
            _ => None,
        };
        let share = word.and_then(|w| {
            let (snapshot, rest) = stored.split_once(w)?;
            let account = rest.split_whitespace().next()?;
            Some(Self::Share {
                service: if snapshot.starts_with("snap-") {
                    Service::Ebs
                } else {
                    Service::Rds
                },
                snapshot: snapshot.to_owned(),
                account: account.to_owned(),
                gone: rest.contains("(gone)"),
            })
        });
        share.unwrap_or_else(|| {
            if stored.is_empty() {
                Self::None
            } else {
                Self::note(stored)
            }
        })
    }
}

/// The detail in a line for people.
impl fmt::Display for StepDetail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => Ok(()),
            Self::Snapshots { snapshots } => {
                let list: Vec<String> = snapshots
                    .iter()
                    .map(|s| format!("{} of {}", s.snapshot, s.of))
                    .collect();
                f.write_str(&list.join(", "))
            }
            Self::Share {
                snapshot,
                account,
                gone,
                ..
            } => write!(
                f,
                "{snapshot} for account {account}{}",
                if *gone { " (gone)" } else { "" }
            ),
            Self::Copy { copy, source, .. } => write!(f, "{copy} from {source}"),
            Self::Discarded { snapshot, .. } => f.write_str(snapshot),
            Self::Resumed { process } => write!(f, "taken up by process {process}"),
            Self::Error { message } => f.write_str(message),
            Self::Note { text } => f.write_str(text),
        }
    }
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

/// How long a session spent in each phase (SPEC 6.5): the time during which at least one
/// step of that phase was under way, so that steps of many resources side by side count once.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Phases {
    /// Taking the source snapshots and waiting for them.
    pub snapshot_seconds: u64,
    /// Sharing them with target accounts.
    pub share_seconds: u64,
    /// Copying to the targets and waiting for the copies.
    pub copy_seconds: u64,
    /// Unsharing, and deleting what is not kept (intermediate and failed copies).
    pub cleanup_seconds: u64,
}

impl Phases {
    pub fn of(steps: &[StepRecord]) -> Self {
        let mut spans: [Vec<(u64, u64)>; 4] = Default::default();
        for s in steps {
            let phase = match s.step {
                StepKind::Snapshot
                | StepKind::WaitSnapshot
                | StepKind::FindSnapshots
                | StepKind::FindSnapshot => 0,
                StepKind::Share => 1,
                StepKind::Copy | StepKind::WaitCopy | StepKind::FindCopies => 2,
                StepKind::Unshare | StepKind::Discard => 3,
                StepKind::Resume => continue,
            };
            let parse = crate::runtime::clock::parse_rfc3339;
            if let (Some(a), Some(b)) = (parse(&s.started_at), parse(&s.ended_at)) {
                spans[phase].push((a, b.max(a)));
            }
        }
        let [snapshot, share, copy, cleanup] = spans.map(covered);
        Self {
            snapshot_seconds: snapshot,
            share_seconds: share,
            copy_seconds: copy,
            cleanup_seconds: cleanup,
        }
    }
}

/// The length of the union of the intervals.
fn covered(mut spans: Vec<(u64, u64)>) -> u64 {
    spans.sort_unstable();
    let mut total = 0;
    let mut current: Option<(u64, u64)> = None;
    for (a, b) in spans {
        current = match current {
            Some((s, e)) if a <= e => Some((s, e.max(b))),
            Some((s, e)) => {
                total += e - s;
                Some((a, b))
            }
            None => Some((a, b)),
        };
    }
    total + current.map_or(0, |(s, e)| e - s)
}

#[cfg(test)]
mod phase_tests {
    use super::*;

    fn step(kind: StepKind, from: &str, to: &str) -> StepRecord {
        StepRecord {
            resource_id: "i-1".into(),
            step: kind,
            place: String::new(),
            started_at: from.into(),
            ended_at: to.into(),
            outcome: StepOutcome::Ok,
            detail: StepDetail::None,
        }
    }

    #[test]
    fn a_phase_lasts_while_any_of_its_steps_is_under_way() {
        let steps = [
            step(
                StepKind::Copy,
                "2026-01-01T00:00:00Z",
                "2026-01-01T00:00:10Z",
            ),
            step(
                StepKind::WaitCopy,
                "2026-01-01T00:00:05Z",
                "2026-01-01T00:00:20Z",
            ),
            step(
                StepKind::WaitCopy,
                "2026-01-01T00:01:00Z",
                "2026-01-01T00:01:30Z",
            ),
            step(
                StepKind::Share,
                "2026-01-01T00:00:00Z",
                "2026-01-01T00:00:01Z",
            ),
            step(
                StepKind::Resume,
                "2026-01-01T00:00:00Z",
                "2026-01-01T09:00:00Z",
            ),
        ];
        let p = Phases::of(&steps);
        assert_eq!(p.copy_seconds, 50);
        assert_eq!(p.share_seconds, 1);
        assert_eq!(p.snapshot_seconds, 0);
        assert_eq!(p.cleanup_seconds, 0);
    }
}
