//! What snaprelay learns from AWS about the estate: instances, their volumes, KMS keys and
//! snapshots. Plain data, filled in by a cloud adapter and read by the planner and workflows.

use std::fmt;

use serde::Serialize;

use crate::config::{DbSetup, InstanceSetup, VolumeSetup};
use crate::ids::AccountId;

/// An EC2 instance selected by a policy, with the EBS volumes attached to it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Instance {
    pub id: String,
    pub region: String,
    pub name: Option<String>,
    pub volumes: Vec<Volume>,
    /// What a restore rebuilds (SPEC 6.1).
    pub setup: InstanceSetup,
}

impl Instance {
    /// An instance counts as encrypted when any of its volumes is (SPEC workflow A).
    pub fn is_encrypted(&self) -> bool {
        self.volumes.iter().any(|v| v.encrypted)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Volume {
    pub id: String,
    pub device: Option<String>,
    pub size_gib: i32,
    pub encrypted: bool,
    /// The key ARN as `DescribeVolumes` reports it.
    pub kms_key_id: Option<String>,
    /// What a restore rebuilds (SPEC 6.1).
    pub setup: VolumeSetup,
}

/// An RDS DB instance selected by a policy.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DbInstance {
    /// The DB instance identifier.
    pub id: String,
    pub arn: String,
    pub region: String,
    pub engine: String,
    /// `StorageEncrypted`.
    pub encrypted: bool,
    /// The key ARN as `DescribeDBInstances` reports it.
    pub kms_key_id: Option<String>,
    /// The Aurora cluster the instance belongs to: such instances are snapshotted through
    /// their cluster, not one by one.
    pub cluster: Option<String>,
    /// `AllocatedStorage`, in GiB.
    pub size_gib: Option<i64>,
    /// What a restore rebuilds (SPEC 6.1).
    pub setup: DbSetup,
}

/// An Aurora DB cluster selected by a policy (`type = "aurora"`): snapshotted as a whole by
/// `CreateDBClusterSnapshot`, never member by member.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DbCluster {
    /// What the RDS workflows read of it, as of a DB instance: the cluster identifier, its
    /// ARN, Region, engine, `StorageEncrypted`, key and `AllocatedStorage` (for Aurora a
    /// figure that "can vary": API_DBCluster.html); `cluster` is `None`.
    #[serde(flatten)]
    pub db: DbInstance,
    /// `DBClusterMembers`.
    pub members: Vec<ClusterMember>,
    /// `EngineMode`: `provisioned`, `serverless`, ...
    pub engine_mode: Option<String>,
    /// `ServerlessV2ScalingConfiguration`, for a cluster with Serverless v2 instances.
    pub serverless_v2_scaling: Option<crate::config::ServerlessV2Scaling>,
}

/// One DB instance of an Aurora cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ClusterMember {
    pub db_instance_id: String,
    /// `IsClusterWriter`.
    pub writer: bool,
    /// The member's `DBInstanceClass` (`db.serverless` for Serverless v2), from
    /// `DescribeDBInstances`: DescribeDBClusters does not say it.
    pub db_instance_class: Option<String>,
}

/// Which kind of RDS snapshot a DB workflow handles: DB snapshots of a DB instance, or DB
/// cluster snapshots of an Aurora cluster. They have APIs, identifier limits and copy quotas
/// of their own, and the same workflows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DbKind {
    Instance,
    Cluster,
}

impl DbKind {
    /// The copy quota the kind's copies count against.
    pub fn service(self) -> crate::report::Service {
        match self {
            Self::Instance => crate::report::Service::Rds,
            Self::Cluster => crate::report::Service::Aurora,
        }
    }

    /// What the kind's snapshots are called in messages.
    pub fn snapshot_noun(self) -> &'static str {
        match self {
            Self::Instance => "DB snapshot",
            Self::Cluster => "DB cluster snapshot",
        }
    }

    /// What is snapshotted, in messages.
    pub fn db_noun(self) -> &'static str {
        match self {
            Self::Instance => "DB instance",
            Self::Cluster => "DB cluster",
        }
    }

    /// The longest snapshot identifier RDS accepts: 255 for a DB snapshot
    /// (API_CreateDBSnapshot.html), 63 for a DB cluster snapshot (1 to 63 characters:
    /// https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CreateDBClusterSnapshot.html).
    pub fn snapshot_id_max(self) -> usize {
        match self {
            Self::Instance => 255,
            Self::Cluster => 63,
        }
    }
}

/// A resource a policy protects: an EC2 instance, an RDS DB instance or an Aurora cluster.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum Resource {
    #[serde(rename = "instance")]
    Ec2(Instance),
    #[serde(rename = "db_instance")]
    Rds(DbInstance),
    #[serde(rename = "db_cluster")]
    Aurora(DbCluster),
}

impl Resource {
    /// The instance id or DB instance identifier.
    pub fn id(&self) -> &str {
        match self {
            Resource::Ec2(i) => &i.id,
            Resource::Rds(d) => &d.id,
            Resource::Aurora(c) => &c.db.id,
        }
    }

    pub fn region(&self) -> &str {
        match self {
            Resource::Ec2(i) => &i.region,
            Resource::Rds(d) => &d.region,
            Resource::Aurora(c) => &c.db.region,
        }
    }

    pub fn kind(&self) -> ResourceType {
        match self {
            Resource::Ec2(_) => ResourceType::Ec2,
            Resource::Rds(_) => ResourceType::Rds,
            Resource::Aurora(_) => ResourceType::Aurora,
        }
    }

    /// A DB instance or an Aurora cluster, as the RDS workflows see it, with its kind.
    pub fn db(&self) -> Option<(&DbInstance, DbKind)> {
        match self {
            Resource::Ec2(_) => None,
            Resource::Rds(d) => Some((d, DbKind::Instance)),
            Resource::Aurora(c) => Some((&c.db, DbKind::Cluster)),
        }
    }
}

/// What kind of resource: one word for the policy (`type = "ec2"`), the plan, the reports,
/// the state store and the tags.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum ResourceType {
    /// An EC2 instance, protected by EBS snapshots of its volumes.
    Ec2,
    /// An RDS DB instance, protected by DB snapshots.
    Rds,
    /// An Aurora DB cluster, protected by DB cluster snapshots.
    Aurora,
}

impl ResourceType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ec2 => "ec2",
            Self::Rds => "rds",
            Self::Aurora => "aurora",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Ec2, Self::Rds, Self::Aurora]
            .into_iter()
            .find(|t| t.as_str() == s)
    }

    /// The snapshot service that protects it.
    pub fn service(self) -> crate::report::Service {
        match self {
            Self::Ec2 => crate::report::Service::Ebs,
            Self::Rds => crate::report::Service::Rds,
            Self::Aurora => crate::report::Service::Aurora,
        }
    }
}

impl fmt::Display for ResourceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What `DescribeDBSnapshots` says of one DB snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DbSnapshotStatus {
    pub id: String,
    pub arn: String,
    /// `creating`, `available`, `copying`, `failed`, ...
    pub status: String,
    pub progress: Option<u8>,
    pub encrypted: bool,
    pub kms_key_id: Option<String>,
    /// `TagList`: what proves snaprelay made it (`snaprelay:policy`, ...).
    pub tags: Vec<Tag>,
}

impl DbSnapshotStatus {
    pub fn state(&self) -> SnapshotState {
        match self.status.as_str() {
            "available" => SnapshotState::Completed,
            "failed" | "error" | "incompatible-restore" | "incompatible-parameters" => {
                SnapshotState::Error
            }
            _ => SnapshotState::Pending,
        }
    }
}

/// Who manages a KMS key. AWS managed keys (`aws/ebs`, `aws/rds`) have fixed key policies and
/// can never be used from another account.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyManager {
    Aws,
    Customer,
}

/// A KMS key as `DescribeKey` reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KeyInfo {
    pub arn: String,
    pub account: AccountId,
    pub region: String,
    pub manager: KeyManager,
    /// `KeyState`: `Enabled`, `Disabled`, `PendingDeletion`, ...
    pub state: String,
    /// `KeyUsage`: snapshots need `ENCRYPT_DECRYPT`.
    pub usage: String,
    /// `KeySpec`: snapshots need `SYMMETRIC_DEFAULT`.
    pub spec: String,
}

impl KeyInfo {
    pub fn is_enabled(&self) -> bool {
        self.state == "Enabled"
    }

    /// Why this key cannot encrypt EBS snapshots, if it cannot.
    pub fn unusable_for_snapshots(&self) -> Option<String> {
        if !self.is_enabled() {
            return Some(format!("key {} is {}, not Enabled", self.arn, self.state));
        }
        if self.usage != "ENCRYPT_DECRYPT" || self.spec != "SYMMETRIC_DEFAULT" {
            return Some(format!(
                "key {} is {} {}; EBS and RDS need a symmetric ENCRYPT_DECRYPT key",
                self.arn, self.spec, self.usage
            ));
        }
        None
    }
}

/// The lifecycle state of an EBS snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SnapshotState {
    Pending,
    Completed,
    Error,
    /// Anything newer AWS may answer (`recoverable`, `recovering`): treated as still in progress.
    Other,
}

/// What `DescribeSnapshots` says of one snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotStatus {
    pub id: String,
    pub state: SnapshotState,
    /// `Progress` without its `%` sign.
    pub progress: Option<u8>,
    pub state_message: Option<String>,
    /// The volume a snapshot was taken of (a copy's is not meaningful: AWS answers
    /// `vol-ffffffff`).
    pub volume_id: Option<String>,
    pub encrypted: bool,
    pub kms_key_id: Option<String>,
    /// What proves snaprelay made it (`snaprelay:policy`, ...).
    pub tags: Vec<Tag>,
    /// `FullSnapshotSizeInBytes`: the data the snapshot holds, when AWS reports it (it does
    /// for completed snapshots; some emulators never do).
    pub full_size_bytes: Option<u64>,
    /// `VolumeSize`: the size in GiB of the volume it was taken of (and of a volume made
    /// from it, by default).
    pub volume_size_gib: Option<i64>,
}

/// One snapshot that `CreateSnapshots` made of one volume.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VolumeSnapshot {
    pub snapshot_id: String,
    pub volume_id: String,
}

/// A tag snaprelay puts on what it creates, so that ownership can be proven later.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

impl Tag {
    pub fn new(key: &str, value: impl Into<String>) -> Self {
        Self {
            key: key.to_owned(),
            value: value.into(),
        }
    }
}

/// The value of tag `key` among `tags`.
pub fn tag_value<'a>(tags: &'a [Tag], key: &str) -> Option<&'a str> {
    tags.iter().find(|t| t.key == key).map(|t| t.value.as_str())
}

/// Whether a snapshot carrying `tags` was made by a snaprelay session: it has the session's
/// and the kind's tags, and none of a restore's or drill's. A user's snapshot of a resource
/// that a restore made can copy that resource's `snaprelay:policy` tag (DLM `CopyTags`,
/// `CopyTagsFromSource`, RDS `CopyTagsToSnapshot`); it is never taken for snaprelay's.
pub fn made_by_a_session(tags: &[Tag]) -> bool {
    tag_value(tags, self::tags::SESSION).is_some()
        && tag_value(tags, self::tags::KIND).is_some()
        && tag_value(tags, self::tags::RESTORE).is_none()
        && tag_value(tags, self::tags::DRILL).is_none()
}

/// The tag keys snaprelay writes.
/// What a snapshot snaprelay made is for: its `snaprelay:kind` tag, and the kind of a
/// restore point (a source or a replica; a staging copy is never a restore point).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum SnapshotKind {
    /// A snapshot of the resource, in its own account and Region.
    Source,
    /// A copy in a target: what a restore is made from.
    Replica,
    /// RDS workflow C's intermediate copy in the target account and the source Region.
    Staging,
    /// The default-key workaround's copy in the source account and Region, under the
    /// re-encrypt key: shared instead of the original, deleted once the targets copied it.
    Reencrypted,
}

impl SnapshotKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Source => "source",
            Self::Replica => "replica",
            Self::Staging => "staging",
            Self::Reencrypted => "reencrypted",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Source,
            Self::Replica,
            Self::Staging,
            Self::Reencrypted,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

impl fmt::Display for SnapshotKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

pub mod tags {
    pub const POLICY: &str = "snaprelay:policy";
    pub const SESSION: &str = "snaprelay:session";
    pub const RESOURCE: &str = "snaprelay:resource";
    /// `source` for a snapshot of the resource, `replica` for a copy in a target.
    pub const KIND: &str = "snaprelay:kind";
    pub const VOLUME: &str = "snaprelay:volume";
    pub const SOURCE_SNAPSHOT: &str = "snaprelay:source-snapshot";
    pub const SOURCE_ACCOUNT: &str = "snaprelay:source-account";
    pub const SOURCE_REGION: &str = "snaprelay:source-region";
    /// The device the source volume was attached as, to rebuild the instance from replicas.
    pub const DEVICE: &str = "snaprelay:device";
    /// What a replica says of its instance and volume, for `state rebuild` (SPEC 6.7); see
    /// `config::describing_tags`.
    pub const INSTANCE_TYPE: &str = "snaprelay:instance-type";
    pub const ARCHITECTURE: &str = "snaprelay:architecture";
    pub const VIRTUALIZATION: &str = "snaprelay:virtualization";
    pub const ENA: &str = "snaprelay:ena";
    pub const BOOT_MODE: &str = "snaprelay:boot-mode";
    pub const ROOT_DEVICE: &str = "snaprelay:root-device";
    pub const PLATFORM: &str = "snaprelay:platform";
    pub const VOLUME_TYPE: &str = "snaprelay:volume-type";
    pub const VOLUME_SIZE: &str = "snaprelay:volume-size";
    /// What an Aurora cluster snapshot says of its cluster, for `state rebuild`: what
    /// `RestoreDBClusterFromSnapshot` and the writer need (`config::describing_cluster_tags`).
    pub const ENGINE: &str = "snaprelay:engine";
    pub const ENGINE_VERSION: &str = "snaprelay:engine-version";
    pub const WRITER_CLASS: &str = "snaprelay:writer-class";
    /// Serverless v2 capacity, `MIN-MAX` in ACUs (`0.5-16`).
    pub const ACU: &str = "snaprelay:acu";
    /// What a restore made, valued with its restore id (SPEC 6.2).
    pub const RESTORE: &str = "snaprelay:restore";
    /// What a drill made, valued with its drill id (SPEC 6.3).
    pub const DRILL: &str = "snaprelay:drill";
}
