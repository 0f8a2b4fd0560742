//! The AWS requests of a restore, built from a restore point and its configuration: the image
//! and the launch of an instance, the volumes, the DB instance. Plain functions: the use case
//! makes the calls.

use crate::config::{AuroraConfig, Ec2Config, RdsConfig};
use crate::model::{Tag, tags};
use crate::ports::{
    ClusterInstanceRequest, ClusterRestoreRequest, DbRestoreRequest, ImageRequest, ImageVolume,
    LaunchRequest, VolumeRequest,
};
use crate::report::RecordedRestorePoint;

use super::network::{DbNetwork, InstanceNetwork};

/// The tags of everything one restore or drill makes: what made it (`snaprelay:restore` or
/// `snaprelay:drill` = its id), the policy, and the `Name`. Not the session tags of a
/// snapshot: a snapshot a user takes of a restored resource may copy its tags.
pub fn made_tags(marker: &str, id: &str, policy: &str, name: &str) -> Vec<Tag> {
    vec![
        Tag::new(marker, id),
        Tag::new(tags::POLICY, policy),
        Tag::new("Name", name),
    ]
}

/// `RegisterImage` from the point's snapshots with the recorded block device mappings. `Err`
/// when the configuration cannot make an image (no root device, a volume without its
/// snapshot in this place).
pub fn image_request(
    config: &Ec2Config,
    name: &str,
    description: &str,
    tags: &[Tag],
) -> Result<ImageRequest, String> {
    let root = config
        .instance
        .root_device_name
        .clone()
        .ok_or("the restore point does not record the root device name")?;
    let mut volumes = Vec::with_capacity(config.volumes.len());
    for v in &config.volumes {
        let device_name = v
            .device_name
            .clone()
            .ok_or("a volume of the restore point has no recorded device name")?;
        let snapshot_id = v.snapshot_id.clone().ok_or_else(|| {
            format!("the restore point has no snapshot of the volume at {device_name}")
        })?;
        volumes.push(ImageVolume {
            device_name,
            snapshot_id,
            volume_type: v.volume_type.clone(),
            size_gib: v.size_gib,
            iops: iops_of(v.volume_type.as_deref(), v.iops),
            throughput: v
                .throughput
                .filter(|_| v.volume_type.as_deref() == Some("gp3")),
            // A restored instance keeps what it was told: a volume that outlived its instance
            // there outlives this one too.
            delete_on_termination: v.delete_on_termination.unwrap_or(true),
        });
    }
    if !volumes.iter().any(|v| v.device_name == root) {
        return Err(format!(
            "the restore point has no snapshot of the root device {root}"
        ));
    }
    Ok(ImageRequest {
        name: name.to_owned(),
        description: description.to_owned(),
        architecture: config.instance.architecture.clone(),
        virtualization_type: config.instance.virtualization_type.clone(),
        ena_support: config.instance.ena_support,
        boot_mode: config.instance.boot_mode.clone(),
        root_device_name: root,
        volumes,
        tags: tags.to_vec(),
    })
}

/// `Iops` is given only for the volume types that take it (AWS refuses it for gp2, st1, sc1
/// and standard).
fn iops_of(volume_type: Option<&str>, iops: Option<i32>) -> Option<i32> {
    matches!(volume_type, Some("io1" | "io2" | "gp3"))
        .then_some(iops)
        .flatten()
}

pub fn launch_request(
    image_id: &str,
    instance_type: &str,
    network: &InstanceNetwork,
    tags: &[Tag],
    client_token: &str,
) -> LaunchRequest {
    LaunchRequest {
        image_id: image_id.to_owned(),
        instance_type: instance_type.to_owned(),
        subnet_id: network.subnet.id.clone(),
        security_group_ids: network.security_group_ids.clone(),
        key_name: network.key_name.clone(),
        iam_instance_profile_arn: network.iam_instance_profile_arn.clone(),
        tags: tags.to_vec(),
        client_token: client_token.to_owned(),
    }
}

/// One `CreateVolume` per snapshot of the point, as recorded when the configuration says
/// (type, size, iops, throughput), else as the snapshot is.
pub fn volume_requests(
    point: &RecordedRestorePoint,
    config: Option<&Ec2Config>,
    zone: &str,
    tags: &[Tag],
    client_token: &str,
) -> Vec<VolumeRequest> {
    point
        .point
        .place
        .snapshots
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let recorded = config.and_then(|c| {
                c.volumes
                    .iter()
                    .find(|v| v.snapshot_id.as_deref() == Some(s.id.as_str()))
            });
            let volume_type = recorded.and_then(|v| v.volume_type.clone());
            VolumeRequest {
                snapshot_id: s.id.clone(),
                availability_zone: zone.to_owned(),
                iops: iops_of(volume_type.as_deref(), recorded.and_then(|v| v.iops)),
                throughput: recorded
                    .and_then(|v| v.throughput)
                    .filter(|_| volume_type.as_deref() == Some("gp3")),
                volume_type,
                size_gib: recorded.and_then(|v| v.size_gib).or(s.size_gib),
                tags: tags.to_vec(),
                // Idempotent per snapshot: a retried call makes no second volume.
                client_token: format!("{client_token}-{i}"),
            }
        })
        .collect()
}

/// `RestoreDBInstanceFromDBSnapshot` of the point's DB snapshot, as recorded, never public.
#[allow(clippy::too_many_arguments)]
pub fn db_request(
    point: &RecordedRestorePoint,
    config: Option<&RdsConfig>,
    name: &str,
    class: Option<String>,
    network: &DbNetwork,
    parameter_group: Option<String>,
    option_group: Option<String>,
    multi_az: bool,
    tags: &[Tag],
) -> Result<DbRestoreRequest, String> {
    let snapshot = point
        .point
        .place
        .snapshots
        .first()
        .ok_or("the restore point holds no DB snapshot")?;
    // The point's snapshot is in the restore's own account and Region: RDS names it by its
    // identifier there (an ARN is for a snapshot shared from another account).
    // https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_RestoreDBInstanceFromDBSnapshot.html
    let snapshot_id = snapshot
        .id
        .rsplit_once(":snapshot:")
        .map_or(snapshot.id.as_str(), |(_, name)| name)
        .to_owned();
    Ok(DbRestoreRequest {
        db_instance_id: name.to_owned(),
        snapshot_id,
        db_instance_class: class.or_else(|| config.and_then(|c| c.db.db_instance_class.clone())),
        port: config.and_then(|c| c.db.port),
        storage_type: config.and_then(|c| c.db.storage_type.clone()),
        // gp3 reports its baseline IOPS, which RDS refuses to be given below its storage
        // threshold; only provisioned-IOPS storage takes them back.
        iops: config
            .filter(|c| matches!(c.db.storage_type.as_deref(), Some("io1" | "io2")))
            .and_then(|c| c.db.iops),
        multi_az,
        publicly_accessible: false,
        db_subnet_group: network.db_subnet_group.clone(),
        db_parameter_group: parameter_group,
        option_group,
        vpc_security_group_ids: network.vpc_security_group_ids.clone(),
        tags: tags.to_vec(),
    })
}

/// Whether the cluster restored is Aurora Serverless v1, to which RDS adds no instances
/// ("Instances cannot be added to Aurora Serverless clusters").
pub fn is_serverless_v1(config: &AuroraConfig) -> bool {
    config.engine_mode.as_deref() == Some("serverless")
}

/// The class of the writer a cluster restore adds: the one asked, else the recorded writer's,
/// else the first recorded member's. `None`: the point records none.
pub fn writer_class(config: &AuroraConfig, asked: Option<&String>) -> Option<String> {
    asked.cloned().or_else(|| {
        config
            .members
            .iter()
            .find(|m| m.writer)
            .or(config.members.first())
            .and_then(|m| m.db_instance_class.clone())
    })
}

/// `RestoreDBClusterFromSnapshot` of the point's cluster snapshot, as recorded: engine (which
/// AWS requires) and version, port, storage, Serverless v2 capacity, and the network chosen.
pub fn cluster_request(
    point: &RecordedRestorePoint,
    config: &AuroraConfig,
    name: &str,
    network: &DbNetwork,
    parameter_group: Option<String>,
    tags: &[Tag],
) -> Result<ClusterRestoreRequest, String> {
    let snapshot = point
        .point
        .place
        .snapshots
        .first()
        .ok_or("the restore point holds no DB cluster snapshot")?;
    // In its own account and Region a cluster snapshot is named by its identifier.
    let snapshot_id = snapshot
        .id
        .rsplit_once(":cluster-snapshot:")
        .map_or(snapshot.id.as_str(), |(_, name)| name)
        .to_owned();
    Ok(ClusterRestoreRequest {
        db_cluster_id: name.to_owned(),
        snapshot_id,
        engine: config.engine.clone(),
        engine_version: config.engine_version.clone(),
        port: config.port,
        db_subnet_group: network.db_subnet_group.clone(),
        db_cluster_parameter_group: parameter_group,
        vpc_security_group_ids: network.vpc_security_group_ids.clone(),
        storage_type: config.storage_type.clone(),
        serverless_v2_scaling: config.serverless_v2_scaling.clone(),
        tags: tags.to_vec(),
    })
}

/// `CreateDBInstance` of the writer of a restored cluster, never public. It takes the
/// cluster's identifier: DB instance and DB cluster identifiers are apart in RDS (each unique
/// among its own kind), and the name asked for (`--name`, a drill's
/// `snaprelay-drill-<id>-<n>`) is then the name of every DB identifier the restore makes.
pub fn writer_request(
    config: &AuroraConfig,
    cluster_id: &str,
    class: &str,
    tags: &[Tag],
) -> ClusterInstanceRequest {
    ClusterInstanceRequest {
        db_instance_id: cluster_id.to_owned(),
        db_cluster_id: cluster_id.to_owned(),
        engine: config.engine.clone(),
        db_instance_class: class.to_owned(),
        publicly_accessible: false,
        tags: tags.to_vec(),
    }
}
