//! What a restore rebuilds (SPEC 6.1): the configuration of a resource, read from AWS when its
//! source snapshot is taken and kept with every restore point of it, source and replicas.
//!
//! The inventory fills [`InstanceSetup`], [`VolumeSetup`] and [`DbSetup`] (what
//! `DescribeInstances`, `DescribeVolumes` and `DescribeDBInstances` say beyond what the
//! replication needs); [`ResourceConfig::of`] joins them with the snapshots of one place into
//! the document `restore-points --output json` shows under `"config"`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::{DbCluster, DbInstance, Instance, Resource, Tag, tag_value, tags};
use crate::report::PlaceReport;

/// What `DescribeInstances` says of an instance that a restore needs. `None` where AWS did
/// not say (or the fact does not apply).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceSetup {
    pub instance_type: Option<String>,
    /// `x86_64`, `arm64`, `i386`, `x86_64_mac`, ...
    pub architecture: Option<String>,
    /// `hvm` or `paravirtual`.
    pub virtualization_type: Option<String>,
    pub ena_support: Option<bool>,
    /// `legacy-bios`, `uefi`, `uefi-preferred`: the instance's `CurrentInstanceBootMode`,
    /// else its `BootMode`.
    pub boot_mode: Option<String>,
    pub root_device_name: Option<String>,
    pub availability_zone: Option<String>,
    pub subnet_id: Option<String>,
    pub security_group_ids: Vec<String>,
    pub iam_instance_profile_arn: Option<String>,
    pub key_name: Option<String>,
    pub tags: BTreeMap<String, String>,
    /// The billing product (`Linux/UNIX`, `Windows`, `Red Hat Enterprise Linux`, ...): only
    /// plain Linux/UNIX can be rebuilt by `RegisterImage` without losing its billing codes.
    pub platform_details: Option<String>,
}

/// What `DescribeVolumes` and the block device mapping say of a volume.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeSetup {
    /// `gp3`, `gp2`, `io1`, `io2`, `st1`, `sc1`, `standard`.
    pub volume_type: Option<String>,
    pub iops: Option<i32>,
    /// MiB/s (gp3).
    pub throughput: Option<i32>,
    pub delete_on_termination: Option<bool>,
}

/// What `DescribeDBInstances` says of a DB instance that a restore needs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DbSetup {
    pub engine_version: Option<String>,
    pub db_instance_class: Option<String>,
    pub port: Option<i32>,
    pub storage_type: Option<String>,
    pub iops: Option<i32>,
    pub multi_az: Option<bool>,
    pub db_subnet_group: Option<String>,
    pub db_parameter_group: Option<String>,
    pub option_group: Option<String>,
    pub vpc_security_group_ids: Vec<String>,
    pub tags: BTreeMap<String, String>,
}

/// A volume of an EC2 restore point: how it was attached and made, and its snapshot there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeConfig {
    pub device_name: Option<String>,
    pub volume_type: Option<String>,
    pub size_gib: Option<i64>,
    pub iops: Option<i32>,
    pub throughput: Option<i32>,
    pub delete_on_termination: Option<bool>,
    /// The snapshot of this volume in the restore point's place.
    pub snapshot_id: Option<String>,
}

/// The configuration of an EC2 instance, as `restore-points` shows it (SPEC 6.1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ec2Config {
    #[serde(flatten)]
    pub instance: InstanceSetup,
    /// Required in the document: what tells an EC2 configuration from an RDS one.
    pub volumes: Vec<VolumeConfig>,
}

/// The configuration of an RDS DB instance, as `restore-points` shows it (SPEC 6.1). The
/// default is what is known of a point recorded without one: nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RdsConfig {
    pub engine: String,
    pub allocated_storage_gib: Option<i64>,
    #[serde(flatten)]
    pub db: DbSetup,
}

/// `ServerlessV2ScalingConfiguration`: the cluster's capacity range in Aurora capacity units
/// (numbers such as 0.5, kept as JSON numbers).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerlessV2Scaling {
    pub min_capacity: Option<serde_json::Number>,
    pub max_capacity: Option<serde_json::Number>,
}

impl ServerlessV2Scaling {
    /// From `MinCapacity` and `MaxCapacity` as AWS gives them (ACUs).
    pub fn of_acu(min: Option<f64>, max: Option<f64>) -> Self {
        Self {
            min_capacity: min.and_then(serde_json::Number::from_f64),
            max_capacity: max.and_then(serde_json::Number::from_f64),
        }
    }
}

/// One member of an Aurora cluster restore point: what a restore recreates of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuroraMemberConfig {
    pub db_instance_class: Option<String>,
    pub writer: bool,
}

/// The configuration of an Aurora DB cluster, as `restore-points` shows it (SPEC 6.1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuroraConfig {
    pub engine: String,
    pub engine_version: Option<String>,
    pub engine_mode: Option<String>,
    pub port: Option<i32>,
    pub db_subnet_group: Option<String>,
    pub db_cluster_parameter_group: Option<String>,
    pub vpc_security_group_ids: Vec<String>,
    pub storage_type: Option<String>,
    pub serverless_v2_scaling: Option<ServerlessV2Scaling>,
    pub tags: BTreeMap<String, String>,
    /// Required in the document: what tells an Aurora configuration from an RDS one.
    pub members: Vec<AuroraMemberConfig>,
}

impl AuroraConfig {
    pub fn of(cluster: &DbCluster) -> Self {
        let db = &cluster.db;
        Self {
            engine: db.engine.clone(),
            engine_version: db.setup.engine_version.clone(),
            engine_mode: cluster.engine_mode.clone(),
            port: db.setup.port,
            db_subnet_group: db.setup.db_subnet_group.clone(),
            // For a cluster the inventory keeps its DB cluster parameter group here.
            db_cluster_parameter_group: db.setup.db_parameter_group.clone(),
            vpc_security_group_ids: db.setup.vpc_security_group_ids.clone(),
            storage_type: db.setup.storage_type.clone(),
            serverless_v2_scaling: cluster.serverless_v2_scaling.clone(),
            tags: db.setup.tags.clone(),
            members: cluster
                .members
                .iter()
                .map(|m| AuroraMemberConfig {
                    db_instance_class: m.db_instance_class.clone(),
                    writer: m.writer,
                })
                .collect(),
        }
    }
}

/// The configuration a restore point carries. Untagged: each shape is told by its required
/// fields (EC2 `volumes`, Aurora `members`, RDS `engine`), tried in this order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ResourceConfig {
    Ec2(Ec2Config),
    Aurora(AuroraConfig),
    Rds(RdsConfig),
}

impl ResourceConfig {
    /// The configuration of `resource` with the snapshots of one place: each volume gets the
    /// snapshot of it there (matched by volume id, else by device).
    pub fn of(resource: &Resource, place: &PlaceReport) -> Self {
        match resource {
            Resource::Ec2(i) => Self::Ec2(Ec2Config::of(i, place)),
            Resource::Rds(d) => Self::Rds(RdsConfig::of(d)),
            Resource::Aurora(c) => Self::Aurora(AuroraConfig::of(c)),
        }
    }

    pub fn ec2(&self) -> Option<&Ec2Config> {
        match self {
            Self::Ec2(c) => Some(c),
            Self::Rds(_) | Self::Aurora(_) => None,
        }
    }

    pub fn rds(&self) -> Option<&RdsConfig> {
        match self {
            Self::Rds(c) => Some(c),
            Self::Ec2(_) | Self::Aurora(_) => None,
        }
    }

    pub fn aurora(&self) -> Option<&AuroraConfig> {
        match self {
            Self::Aurora(c) => Some(c),
            Self::Ec2(_) | Self::Rds(_) => None,
        }
    }

    /// The JSON kept in the state store.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "null".to_owned())
    }

    /// Reads what [`Self::to_json`] kept; `None` for `null` or a document it cannot read.
    pub fn from_json(stored: &str) -> Option<Self> {
        serde_json::from_str::<Option<Self>>(stored).ok().flatten()
    }
}

impl Ec2Config {
    pub fn of(instance: &Instance, place: &PlaceReport) -> Self {
        let volumes = instance
            .volumes
            .iter()
            .map(|v| {
                let snapshot = place
                    .snapshots
                    .iter()
                    .find(|s| s.volume_id == v.id)
                    .or_else(|| {
                        place
                            .snapshots
                            .iter()
                            .find(|s| s.device.is_some() && s.device == v.device)
                    });
                VolumeConfig {
                    device_name: v.device.clone(),
                    volume_type: v.setup.volume_type.clone(),
                    size_gib: (v.size_gib > 0).then_some(i64::from(v.size_gib)),
                    iops: v.setup.iops,
                    throughput: v.setup.throughput,
                    delete_on_termination: v.setup.delete_on_termination,
                    snapshot_id: snapshot.map(|s| s.id.clone()),
                }
            })
            .collect();
        Self {
            instance: instance.setup.clone(),
            volumes,
        }
    }

    /// What a place's snapshots alone say of an instance: one volume per snapshot, with its
    /// device and size where they were recorded; nothing of the instance itself. For points
    /// recorded without a configuration, and for those `state rebuild` finds by their tags.
    pub fn of_snapshots(place: &PlaceReport) -> Self {
        Self {
            instance: InstanceSetup::default(),
            volumes: place
                .snapshots
                .iter()
                .map(|s| VolumeConfig {
                    device_name: s.device.clone(),
                    volume_type: None,
                    size_gib: s.size_gib,
                    iops: None,
                    throughput: None,
                    delete_on_termination: None,
                    snapshot_id: Some(s.id.clone()),
                })
                .collect(),
        }
    }

    /// [`Ec2Config::of_snapshots`], with what each snapshot's tags say (see
    /// [`describing_tags`]): the instance's type, architecture, virtualization, ENA, boot
    /// mode, root device and platform, each volume's type and size. What `state rebuild`
    /// brings back of a configuration.
    pub fn of_tagged(place: &PlaceReport, tags_of: &[Vec<Tag>]) -> Self {
        let mut config = Self::of_snapshots(place);
        for (volume, t) in config.volumes.iter_mut().zip(tags_of) {
            volume.volume_type = tag_value(t, tags::VOLUME_TYPE).map(str::to_owned);
            if volume.size_gib.is_none() {
                volume.size_gib = tag_value(t, tags::VOLUME_SIZE).and_then(|v| v.parse().ok());
            }
        }
        // Every replica carries its instance's tags; the first that does gives them.
        if let Some(t) = tags_of
            .iter()
            .find(|t| tag_value(t, tags::INSTANCE_TYPE).is_some())
        {
            let read = |key: &str| tag_value(t, key).map(str::to_owned);
            config.instance = InstanceSetup {
                instance_type: read(tags::INSTANCE_TYPE),
                architecture: read(tags::ARCHITECTURE),
                virtualization_type: read(tags::VIRTUALIZATION),
                ena_support: read(tags::ENA).map(|v| v == "true"),
                boot_mode: read(tags::BOOT_MODE),
                root_device_name: read(tags::ROOT_DEVICE),
                platform_details: read(tags::PLATFORM),
                ..InstanceSetup::default()
            };
        }
        config
    }

    /// Whether `RegisterImage` can rebuild this instance with its billing: only plain
    /// Linux/UNIX. AWS reports `PlatformDetails` for every instance; one it did not report is
    /// not taken for Linux (a Windows or Marketplace instance rebuilt without its billing
    /// codes would run unlicensed).
    pub fn is_plain_linux(&self) -> bool {
        self.instance.platform_details.as_deref() == Some("Linux/UNIX")
    }
}

/// The tags a replica of `volume_id` carries of its instance and volume, so that a state
/// rebuilt from tags alone (SPEC 6.7) can still restore the instance: what `RegisterImage`
/// needs (architecture, virtualization, ENA, boot mode, root device; AWS's defaults for a
/// missing one are i386 and paravirtual), the type to launch, the platform that decides
/// whether it may be rebuilt, and the volume's type and size. Facts AWS did not report are
/// left out; tag values are short (EC2 allows 256 characters).
pub fn describing_tags(instance: &Instance, volume_id: &str) -> Vec<Tag> {
    let setup = &instance.setup;
    let mut out = Vec::new();
    let mut add = |key: &'static str, value: Option<String>| {
        if let Some(v) = value.filter(|v| !v.is_empty() && v.len() <= 256) {
            out.push(Tag::new(key, v));
        }
    };
    add(tags::INSTANCE_TYPE, setup.instance_type.clone());
    add(tags::ARCHITECTURE, setup.architecture.clone());
    add(tags::VIRTUALIZATION, setup.virtualization_type.clone());
    add(tags::ENA, setup.ena_support.map(|e| e.to_string()));
    add(tags::BOOT_MODE, setup.boot_mode.clone());
    add(tags::ROOT_DEVICE, setup.root_device_name.clone());
    add(tags::PLATFORM, setup.platform_details.clone());
    if let Some(v) = instance.volumes.iter().find(|v| v.id == volume_id) {
        add(tags::VOLUME_TYPE, v.setup.volume_type.clone());
        add(
            tags::VOLUME_SIZE,
            (v.size_gib > 0).then(|| v.size_gib.to_string()),
        );
    }
    out
}

/// The tags a snapshot of an Aurora cluster carries so that a state rebuilt from the tags can
/// restore it: the engine (RestoreDBClusterFromSnapshot requires it), its version, the
/// writer's class and the Serverless v2 capacity (a `db.serverless` writer needs it).
pub fn describing_cluster_tags(cluster: &DbCluster) -> Vec<Tag> {
    let config = AuroraConfig::of(cluster);
    let mut out = Vec::new();
    let mut add = |key: &'static str, value: Option<String>| {
        if let Some(v) = value.filter(|v| !v.is_empty() && v.len() <= 256) {
            out.push(Tag::new(key, v));
        }
    };
    add(tags::ENGINE, Some(config.engine.clone()));
    add(tags::ENGINE_VERSION, config.engine_version.clone());
    add(
        tags::WRITER_CLASS,
        crate::restore::build::writer_class(&config, None),
    );
    add(
        tags::ACU,
        config.serverless_v2_scaling.as_ref().and_then(|s| {
            Some(format!(
                "{}-{}",
                s.min_capacity.as_ref()?,
                s.max_capacity.as_ref()?
            ))
        }),
    );
    out
}

impl AuroraConfig {
    /// What [`describing_cluster_tags`] kept; `None` without the engine (a snapshot of an
    /// older version).
    pub fn of_tagged(tags_of: &[Tag]) -> Option<Self> {
        let engine = tag_value(tags_of, tags::ENGINE)?.to_owned();
        let acu = tag_value(tags_of, tags::ACU).and_then(|v| {
            let (min, max) = v.split_once('-')?;
            Some(ServerlessV2Scaling::of_acu(
                min.parse().ok(),
                max.parse().ok(),
            ))
        });
        Some(Self {
            engine,
            engine_version: tag_value(tags_of, tags::ENGINE_VERSION).map(str::to_owned),
            engine_mode: None,
            port: None,
            db_subnet_group: None,
            db_cluster_parameter_group: None,
            vpc_security_group_ids: Vec::new(),
            storage_type: None,
            serverless_v2_scaling: acu,
            tags: BTreeMap::new(),
            members: tag_value(tags_of, tags::WRITER_CLASS)
                .map(|class| AuroraMemberConfig {
                    db_instance_class: Some(class.to_owned()),
                    writer: true,
                })
                .into_iter()
                .collect(),
        })
    }
}

impl RdsConfig {
    pub fn of(db: &DbInstance) -> Self {
        Self {
            engine: db.engine.clone(),
            allocated_storage_gib: db.size_gib,
            db: db.setup.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Volume;
    use crate::report::SnapshotReport;

    fn instance() -> Instance {
        Instance {
            id: "i-1".into(),
            region: "us-east-1".into(),
            name: None,
            volumes: vec![
                Volume {
                    id: "vol-1".into(),
                    device: Some("/dev/xvda".into()),
                    size_gib: 8,
                    encrypted: true,
                    kms_key_id: None,
                    setup: VolumeSetup {
                        volume_type: Some("gp3".into()),
                        iops: Some(3000),
                        throughput: Some(125),
                        delete_on_termination: Some(true),
                    },
                },
                Volume {
                    id: "vol-2".into(),
                    device: Some("/dev/sdf".into()),
                    size_gib: 100,
                    encrypted: true,
                    kms_key_id: None,
                    setup: VolumeSetup::default(),
                },
            ],
            setup: InstanceSetup {
                instance_type: Some("t3.micro".into()),
                root_device_name: Some("/dev/xvda".into()),
                platform_details: Some("Linux/UNIX".into()),
                ..InstanceSetup::default()
            },
        }
    }

    fn place() -> PlaceReport {
        PlaceReport {
            account: "222222222222".into(),
            region: "eu-west-1".into(),
            snapshots: vec![SnapshotReport {
                id: "snap-r2".into(),
                source_id: "snap-s2".into(),
                volume_id: "vol-2".into(),
                device: Some("/dev/sdf".into()),
                kms_key_id: None,
                size_gib: Some(100),
            }],
        }
    }

    #[test]
    fn what_the_replicas_tags_carry_comes_back_from_them() {
        let i = instance();
        let mut p = place();
        p.snapshots[0].size_gib = None;
        let tags = vec![describing_tags(&i, "vol-2")];
        let back = Ec2Config::of_tagged(&p, &tags);
        assert_eq!(back.instance.instance_type.as_deref(), Some("t3.micro"));
        assert_eq!(back.instance.root_device_name.as_deref(), Some("/dev/xvda"));
        assert!(back.is_plain_linux());
        assert_eq!(back.instance.architecture, None, "not reported, not tagged");
        assert_eq!(back.volumes[0].size_gib, Some(100));
        assert_eq!(
            back.volumes[0].volume_type, None,
            "vol-2's type was not reported"
        );
        assert_eq!(back.volumes[0].device_name.as_deref(), Some("/dev/sdf"));
        // Untagged (made before these tags): the snapshots alone.
        assert_eq!(
            Ec2Config::of_tagged(&p, &[Vec::new()]),
            Ec2Config::of_snapshots(&p)
        );
    }

    #[test]
    fn each_volume_gets_its_snapshot_in_that_place() {
        let config = Ec2Config::of(&instance(), &place());
        assert_eq!(config.volumes[0].snapshot_id, None);
        assert_eq!(config.volumes[1].snapshot_id.as_deref(), Some("snap-r2"));
        assert_eq!(config.volumes[0].volume_type.as_deref(), Some("gp3"));
        assert_eq!(config.volumes[1].size_gib, Some(100));
    }

    #[test]
    fn the_document_has_the_spec_names_and_reads_back() {
        let config = ResourceConfig::of(&Resource::Ec2(instance()), &place());
        let json: serde_json::Value = serde_json::to_value(&config).unwrap();
        for key in [
            "instance_type",
            "architecture",
            "virtualization_type",
            "ena_support",
            "boot_mode",
            "root_device_name",
            "availability_zone",
            "subnet_id",
            "security_group_ids",
            "iam_instance_profile_arn",
            "key_name",
            "tags",
            "platform_details",
            "volumes",
        ] {
            assert!(json.get(key).is_some(), "{key} missing from {json}");
        }
        assert!(json["architecture"].is_null());
        assert!(json["tags"].is_object());
        for key in [
            "device_name",
            "volume_type",
            "size_gib",
            "iops",
            "throughput",
            "delete_on_termination",
            "snapshot_id",
        ] {
            assert!(json["volumes"][0].get(key).is_some(), "{key} missing");
        }
        assert_eq!(
            ResourceConfig::from_json(&config.to_json()).as_ref(),
            Some(&config)
        );

        let db = DbInstance {
            id: "db".into(),
            arn: "arn:aws:rds:us-east-1:111111111111:db:db".into(),
            region: "us-east-1".into(),
            engine: "postgres".into(),
            encrypted: true,
            kms_key_id: None,
            cluster: None,
            size_gib: Some(20),
            setup: DbSetup {
                engine_version: Some("16.3".into()),
                ..DbSetup::default()
            },
        };
        let rds = ResourceConfig::of(&Resource::Rds(db), &place());
        let json = serde_json::to_value(&rds).unwrap();
        for key in [
            "engine",
            "engine_version",
            "db_instance_class",
            "port",
            "storage_type",
            "allocated_storage_gib",
            "iops",
            "multi_az",
            "db_subnet_group",
            "db_parameter_group",
            "option_group",
            "vpc_security_group_ids",
            "tags",
        ] {
            assert!(json.get(key).is_some(), "{key} missing from {json}");
        }
        assert_eq!(ResourceConfig::from_json(&rds.to_json()), Some(rds));
        assert_eq!(ResourceConfig::from_json("null"), None);
    }

    #[test]
    fn an_aurora_config_has_the_spec_fields_and_reads_back_as_aurora() {
        let cluster = DbCluster {
            db: DbInstance {
                id: "orders".into(),
                arn: "arn:aws:rds:us-east-1:111111111111:cluster:orders".into(),
                region: "us-east-1".into(),
                engine: "aurora-postgresql".into(),
                encrypted: true,
                kms_key_id: None,
                cluster: None,
                size_gib: Some(1),
                setup: DbSetup {
                    engine_version: Some("16.2".into()),
                    db_parameter_group: Some("default.aurora-postgresql16".into()),
                    ..DbSetup::default()
                },
            },
            members: vec![crate::model::ClusterMember {
                db_instance_id: "orders-writer".into(),
                writer: true,
                db_instance_class: Some("db.serverless".into()),
            }],
            engine_mode: Some("provisioned".into()),
            serverless_v2_scaling: Some(ServerlessV2Scaling::of_acu(Some(0.5), Some(8.0))),
        };
        // What the snapshot's tags keep comes back in a rebuilt state: enough to restore it.
        let back = AuroraConfig::of_tagged(&describing_cluster_tags(&cluster)).unwrap();
        assert_eq!(
            (back.engine.as_str(), back.engine_version.as_deref()),
            ("aurora-postgresql", Some("16.2"))
        );
        assert_eq!(
            crate::restore::build::writer_class(&back, None).as_deref(),
            Some("db.serverless")
        );
        assert_eq!(back.serverless_v2_scaling, cluster.serverless_v2_scaling);
        assert_eq!(AuroraConfig::of_tagged(&[]), None, "no engine, no config");
        let aurora = ResourceConfig::of(&Resource::Aurora(cluster), &place());
        let json = serde_json::to_value(&aurora).unwrap();
        for key in [
            "engine",
            "engine_version",
            "engine_mode",
            "port",
            "db_subnet_group",
            "db_cluster_parameter_group",
            "vpc_security_group_ids",
            "storage_type",
            "serverless_v2_scaling",
            "tags",
            "members",
        ] {
            assert!(json.get(key).is_some(), "{key} missing from {json}");
        }
        assert_eq!(
            json["members"],
            serde_json::json!([{"db_instance_class": "db.serverless", "writer": true}])
        );
        assert_eq!(json["serverless_v2_scaling"]["min_capacity"], 0.5);
        assert_eq!(
            json["db_cluster_parameter_group"],
            "default.aurora-postgresql16"
        );
        assert_eq!(ResourceConfig::from_json(&aurora.to_json()), Some(aurora));
    }

    #[test]
    fn only_plain_linux_rebuilds_as_an_instance() {
        let mut config = Ec2Config::of(&instance(), &place());
        assert!(config.is_plain_linux());
        config.instance.platform_details = Some("Windows".into());
        assert!(!config.is_plain_linux());
        config.instance.platform_details = None;
        assert!(!config.is_plain_linux(), "unknown is not plain Linux");
    }
}
