use super::network::{Found, candidates, db_network, instance_network};
use super::*;
use crate::config::{DbSetup, Ec2Config, InstanceSetup, RdsConfig, ResourceConfig, VolumeConfig};
use crate::ids::RestorePointId;
use crate::ids::SessionId;
use crate::policy::RestoreDefaults;
use crate::ports::{Network, SecurityGroup, Subnet};
use crate::report::{PlaceReport, RestorePoint, SnapshotReport};

fn place() -> Place {
    Place {
        account: AccountId::parse("222222222222").unwrap(),
        region: "eu-west-1".into(),
    }
}

fn point(id: i64, created_at: &str, region: &str, status: PointStatus) -> RecordedRestorePoint {
    RecordedRestorePoint {
        id: RestorePointId(id),
        session_id: SessionId::new("s"),
        status,
        point: RestorePoint {
            policy: "p".into(),
            resource_type: ResourceType::Ec2,
            resource_id: "i-1".into(),
            kind: SnapshotKind::Replica,
            created_at: created_at.into(),
            place: PlaceReport {
                account: "222222222222".into(),
                region: region.into(),
                snapshots: vec![SnapshotReport {
                    id: format!("snap-{id}"),
                    source_id: "snap-s".into(),
                    volume_id: "vol-1".into(),
                    device: Some("/dev/xvda".into()),
                    kms_key_id: None,
                    size_gib: Some(8),
                }],
            },
            config: None,
        },
        deleted_snapshots: vec![],
        last_drill: None,
    }
}

#[test]
fn the_newest_complete_point_in_the_place_is_chosen() {
    let points = [
        point(
            1,
            "2026-12-01T00:00:00Z",
            "eu-west-1",
            PointStatus::Complete,
        ),
        point(2, "2026-12-03T00:00:00Z", "eu-west-1", PointStatus::Deleted),
        point(
            3,
            "2026-12-02T00:00:00Z",
            "eu-west-1",
            PointStatus::Complete,
        ),
        point(
            4,
            "2026-12-04T00:00:00Z",
            "us-west-2",
            PointStatus::Complete,
        ),
    ];
    let chosen = choose_point(
        &points,
        "i-1",
        &place(),
        SnapshotKind::Replica,
        PointChoice::Latest,
    )
    .unwrap();
    assert_eq!(chosen.id.0, 3);
    let named = choose_point(
        &points,
        "i-1",
        &place(),
        SnapshotKind::Replica,
        PointChoice::Id(1),
    );
    assert_eq!(named.unwrap().id.0, 1);
    for (id, why) in [
        (2, "retention deleted"),
        (4, "not 222222222222/eu-west-1"),
        (9, "no restore point 9"),
    ] {
        let err = choose_point(
            &points,
            "i-1",
            &place(),
            SnapshotKind::Replica,
            PointChoice::Id(id),
        )
        .unwrap_err();
        assert!(err.contains(why), "{err}");
    }
    let none = choose_point(
        &points,
        "i-2",
        &place(),
        SnapshotKind::Replica,
        PointChoice::Latest,
    );
    assert!(none.unwrap_err().contains("no complete restore point"));
}

#[test]
fn flags_parse_or_are_refused() {
    assert_eq!(PointChoice::parse("latest"), Some(PointChoice::Latest));
    assert_eq!(PointChoice::parse("12"), Some(PointChoice::Id(12)));
    assert_eq!(PointChoice::parse("0"), None);
    assert_eq!(PointChoice::parse("x"), None);
    assert_eq!(PlaceChoice::parse("source"), Some(PlaceChoice::Source));
    assert_eq!(
        PlaceChoice::parse("222222222222/eu-west-1"),
        Some(PlaceChoice::At {
            account: AccountId::parse("222222222222").unwrap(),
            region: "eu-west-1".into()
        })
    );
    for bad in ["2222/eu-west-1", "222222222222/europe", "target"] {
        assert_eq!(PlaceChoice::parse(bad), None, "{bad}");
    }
    assert!(RestoreAs::Volumes.fits(ResourceType::Ec2));
    assert!(!RestoreAs::Db.fits(ResourceType::Ec2));
    assert!(!RestoreAs::Instance.fits(ResourceType::Rds));
}

#[test]
fn a_name_must_fit_every_kind_it_names() {
    assert_eq!(
        name_problem("snaprelay-restore-r-20261205t011700z-3f9a"),
        None
    );
    for bad in ["ab", "1abc", "a--b", "abc-", "a_b", &"a".repeat(64)] {
        assert!(name_problem(bad).is_some(), "{bad}");
    }
    let id = new_restore_id();
    assert_eq!(
        name_problem(&format!("snaprelay-restore-{id}")),
        None,
        "{id}"
    );
    let drill = new_drill_id();
    assert_eq!(name_problem(&format!("snaprelay-drill-{drill}-1")), None);
}

#[test]
fn the_recorded_zone_letter_is_kept_when_the_zone_exists() {
    let zones = ["eu-west-1a".to_owned(), "eu-west-1b".to_owned()];
    assert_eq!(
        zone_like(Some("us-east-1b"), "eu-west-1", &zones).as_deref(),
        Some("eu-west-1b")
    );
    assert_eq!(zone_like(Some("us-east-1f"), "eu-west-1", &zones), None);
    assert_eq!(zone_like(None, "eu-west-1", &zones), None);
}

fn config() -> Ec2Config {
    Ec2Config {
        instance: InstanceSetup {
            instance_type: Some("t3.micro".into()),
            root_device_name: Some("/dev/xvda".into()),
            availability_zone: Some("us-east-1b".into()),
            subnet_id: Some("subnet-0000000000000000a".into()),
            security_group_ids: vec!["sg-0000000000000000a".into()],
            key_name: Some("ops".into()),
            iam_instance_profile_arn: Some("arn:aws:iam::111111111111:instance-profile/web".into()),
            ..InstanceSetup::default()
        },
        volumes: vec![
            VolumeConfig {
                device_name: Some("/dev/xvda".into()),
                volume_type: Some("gp2".into()),
                size_gib: Some(8),
                iops: Some(100),
                throughput: Some(125),
                delete_on_termination: Some(true),
                snapshot_id: Some("snap-r1".into()),
            },
            VolumeConfig {
                device_name: Some("/dev/sdf".into()),
                volume_type: Some("gp3".into()),
                size_gib: Some(100),
                iops: Some(3000),
                throughput: Some(250),
                delete_on_termination: Some(false),
                snapshot_id: Some("snap-r2".into()),
            },
        ],
    }
}

fn default_network() -> Network {
    let subnet = |id: &str, az: &str| Subnet {
        id: id.into(),
        vpc_id: "vpc-1".into(),
        availability_zone: az.into(),
    };
    Network {
        vpc_id: "vpc-1".into(),
        subnets: vec![
            subnet("subnet-0000000000000000c", "eu-west-1c"),
            subnet("subnet-0000000000000000b", "eu-west-1b"),
        ],
        default_security_group: Some("sg-000000000000000de".into()),
    }
}

#[test]
fn in_another_account_the_default_vpc_takes_what_does_not_exist_there() {
    let found = Found {
        default_network: Some(default_network()),
        ..Found::default()
    };
    let net = instance_network(
        &RestoreOptions::default(),
        &config(),
        &RestoreDefaults::default(),
        &found,
        &place(),
        "targets[0]",
    )
    .unwrap();
    assert_eq!(
        net.subnet.id, "subnet-0000000000000000b",
        "the recorded zone's letter"
    );
    assert!(net.security_group_ids.is_empty(), "the VPC's default group");
    assert_eq!(net.key_name, None);
    assert_eq!(
        net.iam_instance_profile_arn, None,
        "another account's profile"
    );
    assert_eq!(net.messages.len(), 6, "{:?}", net.messages);
}

#[test]
fn what_was_recorded_is_used_where_it_exists_and_flags_win() {
    let recorded = config();
    let found = Found {
        default_network: Some(default_network()),
        subnets: vec![Subnet {
            id: "subnet-0000000000000000a".into(),
            vpc_id: "vpc-2".into(),
            availability_zone: "eu-west-1a".into(),
        }],
        security_groups: vec![
            SecurityGroup {
                id: "sg-0000000000000000a".into(),
                name: "web".into(),
                vpc_id: Some("vpc-2".into()),
                tags: vec![],
            },
            SecurityGroup {
                id: "sg-0000000000000000b".into(),
                name: "other".into(),
                vpc_id: Some("vpc-1".into()),
                tags: vec![],
            },
        ],
        key_pairs: vec!["ops".into()],
    };
    let same_account = Place {
        account: AccountId::parse("111111111111").unwrap(),
        region: "eu-west-1".into(),
    };
    let net = instance_network(
        &RestoreOptions::default(),
        &recorded,
        &RestoreDefaults::default(),
        &found,
        &same_account,
        "source",
    )
    .unwrap();
    assert_eq!(net.subnet.id, "subnet-0000000000000000a");
    assert_eq!(net.security_group_ids, ["sg-0000000000000000a"]);
    assert_eq!(net.key_name.as_deref(), Some("ops"));
    assert!(net.iam_instance_profile_arn.is_some());

    // A group of another VPC than the subnet's is refused by name.
    let flags = RestoreOptions {
        security_groups: Some(vec!["sg-0000000000000000b".into()]),
        ..RestoreOptions::default()
    };
    let err = instance_network(
        &flags,
        &recorded,
        &RestoreDefaults::default(),
        &found,
        &same_account,
        "source",
    )
    .unwrap_err();
    assert!(
        err.contains("--security-groups: sg-0000000000000000b"),
        "{err}"
    );
    let flags = RestoreOptions {
        subnet: Some("subnet-00000000000000999".into()),
        ..RestoreOptions::default()
    };
    let err = instance_network(
        &flags,
        &recorded,
        &RestoreDefaults::default(),
        &found,
        &same_account,
        "source",
    )
    .unwrap_err();
    assert!(err.contains("--subnet subnet-00000000000000999"), "{err}");
    let (subnets, groups, keys) = candidates(&flags, Some(&recorded), &RestoreDefaults::default());
    assert_eq!(subnets.len(), 2);
    assert_eq!(groups, ["sg-0000000000000000a"]);
    assert_eq!(keys, ["ops"]);
}

#[test]
fn no_default_vpc_and_no_defaults_is_invalid_input_naming_the_setting() {
    let err = instance_network(
        &RestoreOptions::default(),
        &config(),
        &RestoreDefaults::default(),
        &Found::default(),
        &place(),
        "targets[0]",
    )
    .unwrap_err();
    assert!(err.contains("no default VPC"), "{err}");
    assert!(err.contains("targets[0].restore.subnet"), "{err}");
    let rds = RdsConfig {
        engine: "postgres".into(),
        allocated_storage_gib: Some(20),
        db: DbSetup::default(),
    };
    let err = db_network(
        &RestoreOptions::default(),
        (&rds).into(),
        &RestoreDefaults::default(),
        &Found::default(),
        None,
        None,
        &place(),
        "targets[0]",
    )
    .unwrap_err();
    assert!(err.contains("targets[0].restore.db_subnet_group"), "{err}");
    let with_default = RestoreDefaults {
        db_subnet_group: Some("dr".into()),
        ..RestoreDefaults::default()
    };
    let net = db_network(
        &RestoreOptions::default(),
        (&rds).into(),
        &with_default,
        &Found::default(),
        None,
        Some("vpc-dr"),
        &place(),
        "targets[0]",
    )
    .unwrap();
    assert_eq!(net.db_subnet_group.as_deref(), Some("dr"));
    assert_eq!(net.vpc_id.as_deref(), Some("vpc-dr"));
}

#[test]
fn db_security_groups_must_be_in_the_vpc_of_the_subnet_group() {
    // sg-…a is in the default VPC; the policy's subnet group is in vpc-dr: RDS would refuse
    // the pair, so a flag naming it is invalid input, and a recorded one is not used.
    let found = Found {
        default_network: Some(default_network()),
        security_groups: vec![SecurityGroup {
            id: "sg-0000000000000000a".into(),
            name: "db".into(),
            vpc_id: Some("vpc-1".into()),
            tags: vec![],
        }],
        ..Found::default()
    };
    let rds = RdsConfig {
        engine: "postgres".into(),
        allocated_storage_gib: Some(20),
        db: DbSetup {
            vpc_security_group_ids: vec!["sg-0000000000000000a".into()],
            ..DbSetup::default()
        },
    };
    let defaults = RestoreDefaults {
        db_subnet_group: Some("dr".into()),
        ..RestoreDefaults::default()
    };
    let flagged = RestoreOptions {
        security_groups: Some(vec!["sg-0000000000000000a".into()]),
        ..RestoreOptions::default()
    };
    let err = db_network(
        &flagged,
        (&rds).into(),
        &defaults,
        &found,
        None,
        Some("vpc-dr"),
        &place(),
        "targets[0]",
    )
    .unwrap_err();
    assert!(
        err.contains("--security-groups: sg-0000000000000000a") && err.contains("vpc-dr"),
        "{err}"
    );
    let net = db_network(
        &RestoreOptions::default(),
        (&rds).into(),
        &defaults,
        &found,
        None,
        Some("vpc-dr"),
        &place(),
        "targets[0]",
    )
    .unwrap();
    assert!(net.vpc_security_group_ids.is_empty(), "{net:?}");
    // In the default VPC's subnet group, the same group is used.
    let net = db_network(
        &RestoreOptions::default(),
        (&rds).into(),
        &RestoreDefaults::default(),
        &found,
        None,
        None,
        &place(),
        "targets[0]",
    )
    .unwrap();
    assert_eq!(net.vpc_security_group_ids, ["sg-0000000000000000a"]);
}

#[test]
fn the_image_carries_the_recorded_block_devices() {
    let tags = build::made_tags(RESTORE_TAG, "r-1", "p", "n");
    let image = build::image_request(&config(), "n", "d", &tags).unwrap();
    assert_eq!(image.root_device_name, "/dev/xvda");
    assert_eq!(image.volumes.len(), 2);
    assert_eq!(image.volumes[0].iops, None, "gp2 takes no Iops");
    assert_eq!(image.volumes[0].throughput, None);
    assert_eq!(image.volumes[1].iops, Some(3000));
    assert_eq!(image.volumes[1].throughput, Some(250));
    assert!(!image.volumes[1].delete_on_termination);
    let mut no_root = config();
    no_root.volumes.remove(0);
    assert!(build::image_request(&no_root, "n", "d", &tags).is_err());
    let mut missing = config();
    missing.volumes[1].snapshot_id = None;
    assert!(
        build::image_request(&missing, "n", "d", &tags)
            .unwrap_err()
            .contains("/dev/sdf")
    );
}

#[test]
fn volumes_are_made_as_recorded_or_as_the_snapshot_is() {
    let mut p = point(1, "t", "eu-west-1", PointStatus::Complete);
    p.point.place.snapshots[0].id = "snap-r1".into();
    let tags = build::made_tags(RESTORE_TAG, "r-1", "p", "n");
    let with = build::volume_requests(&p, Some(&config()), "eu-west-1a", &tags, "r-1");
    assert_eq!(with[0].volume_type.as_deref(), Some("gp2"));
    assert_eq!(with[0].client_token, "r-1-0");
    let without = build::volume_requests(&p, None, "eu-west-1a", &tags, "r-1");
    assert_eq!(without[0].volume_type, None);
    assert_eq!(without[0].size_gib, Some(8));
    let _ = ResourceConfig::Ec2(config());
}

#[test]
fn kinds_are_named_as_the_json_names_them() {
    for kind in [
        CreatedKind::Image,
        CreatedKind::Instance,
        CreatedKind::Volume,
        CreatedKind::DbInstance,
        CreatedKind::DbCluster,
        CreatedKind::SecurityGroup,
    ] {
        assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
    }
}
