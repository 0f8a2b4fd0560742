//! What `restore` and `drill` ask of a place and learn from it (SPEC 6.2, 6.3): the network a
//! restored machine goes into, the image, instance, volumes and DB instance a restore makes,
//! and how each of them stands.

use crate::config::ServerlessV2Scaling;
use crate::model::Tag;

/// Which resources a `find_*` call of [`super::Machines`] or [`super::Databases`] lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Find<'a> {
    /// These ids (EC2 ids, DB instance identifiers); ids that do not exist are left out, not
    /// an error.
    Ids(&'a [String]),
    /// By name: an AMI's name, an instance's or volume's `Name` tag, a security group's
    /// name, a DB instance identifier.
    Name(&'a str),
    /// Everything of the caller's in that Region that carries a tag with this key
    /// (`snaprelay:restore`, `snaprelay:drill`): what `gc` and the next drill clean up.
    TagKey(&'a str),
}

/// A Region's default VPC, with its subnets and its `default` security group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Network {
    pub vpc_id: String,
    pub subnets: Vec<Subnet>,
    pub default_security_group: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subnet {
    pub id: String,
    pub vpc_id: String,
    pub availability_zone: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecurityGroup {
    pub id: String,
    pub name: String,
    pub vpc_id: Option<String>,
    pub tags: Vec<Tag>,
}

/// One block device of an image: a snapshot and how the volume made of it is to be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageVolume {
    pub device_name: String,
    pub snapshot_id: String,
    pub volume_type: Option<String>,
    pub size_gib: Option<i64>,
    pub iops: Option<i32>,
    pub throughput: Option<i32>,
    pub delete_on_termination: bool,
}

/// EC2 `RegisterImage` from snapshots.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRequest {
    /// Unique per account and Region: AWS refuses a second image of that name.
    pub name: String,
    pub description: String,
    pub architecture: Option<String>,
    pub virtualization_type: Option<String>,
    pub ena_support: Option<bool>,
    pub boot_mode: Option<String>,
    pub root_device_name: String,
    pub volumes: Vec<ImageVolume>,
    pub tags: Vec<Tag>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageStatus {
    pub id: String,
    pub name: String,
    /// `pending`, `available`, `deregistered`, `failed`, ...
    pub state: String,
    pub tags: Vec<Tag>,
}

/// EC2 `RunInstances` of one instance, with no public IP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LaunchRequest {
    pub image_id: String,
    pub instance_type: String,
    pub subnet_id: String,
    pub security_group_ids: Vec<String>,
    pub key_name: Option<String>,
    pub iam_instance_profile_arn: Option<String>,
    /// On the instance and on its volumes (`TagSpecifications`).
    pub tags: Vec<Tag>,
    /// `ClientToken`: a retried launch with the same token makes no second instance.
    pub client_token: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttachedVolume {
    pub device_name: String,
    pub volume_id: String,
}

/// What `DescribeInstances` says of an instance a restore made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MachineStatus {
    pub id: String,
    /// `pending`, `running`, `shutting-down`, `terminated`, `stopping`, `stopped`.
    pub state: String,
    pub volumes: Vec<AttachedVolume>,
    pub public_ip: Option<String>,
    pub tags: Vec<Tag>,
}

/// EC2 `CreateVolume` from a snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VolumeRequest {
    pub snapshot_id: String,
    pub availability_zone: String,
    pub volume_type: Option<String>,
    pub size_gib: Option<i64>,
    pub iops: Option<i32>,
    pub throughput: Option<i32>,
    pub tags: Vec<Tag>,
    /// `ClientToken`, as for [`LaunchRequest`].
    pub client_token: String,
}

/// What `DescribeVolumes` says of a volume.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VolumeStatus {
    pub id: String,
    /// `creating`, `available`, `in-use`, `deleting`, `deleted`, `error`.
    pub state: String,
    pub size_gib: i64,
    pub encrypted: bool,
    pub kms_key_id: Option<String>,
    pub snapshot_id: Option<String>,
    /// The instance it is attached to.
    pub attached_to: Option<String>,
    pub tags: Vec<Tag>,
}

/// RDS `RestoreDBInstanceFromDBSnapshot`. The snapshot's key encrypts the new instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DbRestoreRequest {
    pub db_instance_id: String,
    /// The DB snapshot identifier (a snapshot of the caller's) or ARN.
    pub snapshot_id: String,
    pub db_instance_class: Option<String>,
    pub port: Option<i32>,
    pub storage_type: Option<String>,
    pub iops: Option<i32>,
    pub multi_az: bool,
    pub publicly_accessible: bool,
    pub db_subnet_group: Option<String>,
    pub db_parameter_group: Option<String>,
    pub option_group: Option<String>,
    pub vpc_security_group_ids: Vec<String>,
    pub tags: Vec<Tag>,
}

/// What `DescribeDBInstances` says of a DB instance a restore made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DbStatus {
    pub id: String,
    pub arn: String,
    /// `creating`, `available`, `deleting`, `failed`, ...
    pub status: String,
    pub engine: String,
    pub engine_version: Option<String>,
    pub kms_key_id: Option<String>,
    /// The Aurora cluster it is an instance of.
    pub cluster: Option<String>,
    pub tags: Vec<Tag>,
}

/// RDS `RestoreDBClusterFromSnapshot`: an Aurora cluster, without instances, from a cluster
/// snapshot of the caller's. The snapshot's key encrypts the new cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterRestoreRequest {
    pub db_cluster_id: String,
    /// The DB cluster snapshot identifier (a snapshot of the caller's) or ARN.
    pub snapshot_id: String,
    /// Required by AWS, and it must be the snapshot's engine.
    pub engine: String,
    pub engine_version: Option<String>,
    pub port: Option<i32>,
    pub db_subnet_group: Option<String>,
    pub db_cluster_parameter_group: Option<String>,
    pub vpc_security_group_ids: Vec<String>,
    /// `aurora` or `aurora-iopt1`.
    pub storage_type: Option<String>,
    pub serverless_v2_scaling: Option<ServerlessV2Scaling>,
    pub tags: Vec<Tag>,
}

/// RDS `CreateDBInstance` of an instance in an Aurora cluster: its network, storage and key
/// are the cluster's. Never public.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterInstanceRequest {
    pub db_instance_id: String,
    pub db_cluster_id: String,
    /// The cluster's engine: AWS refuses another.
    pub engine: String,
    /// `db.r6g.large`, `db.serverless`, ...
    pub db_instance_class: String,
    pub publicly_accessible: bool,
    pub tags: Vec<Tag>,
}

/// What `DescribeDBClusters` says of a cluster a restore made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterStatus {
    pub id: String,
    pub arn: String,
    /// `creating`, `available`, `deleting`, `inaccessible-encryption-credentials`, ...
    pub status: String,
    pub engine: String,
    pub engine_version: Option<String>,
    pub kms_key_id: Option<String>,
    /// The DB instance identifiers of its members.
    pub members: Vec<String>,
    pub tags: Vec<Tag>,
}
