//! The simulator's `Machines` and `Databases` ports, called directly as a restore or a drill
//! would call them, on virtual time: each test is one rule AWS applies to what a restore makes.

use std::time::Duration;

use snaprelay_core::ids::{AccountId, RoleArn};
use snaprelay_core::model::Tag;
use snaprelay_core::policy::Selector;
use snaprelay_core::ports::prelude::*;
use snaprelay_core::ports::{
    Access, CloudError, DbRestoreRequest, Find, ImageRequest, ImageVolume, LaunchRequest,
    VolumeRequest,
};
use snaprelay_sim::{DbGroup, DbSpec, Encryption, Fault, InstanceSpec, SimCloud, VolumeSpec};

const SOURCE: &str = "111111111111";
const VAULT: &str = "222222222222";
const REGION: &str = "us-east-1";
const HOUR: Duration = Duration::from_secs(3600);

fn account(s: &str) -> AccountId {
    AccountId::parse(s).unwrap()
}

fn vault() -> Access {
    Access::role(RoleArn::parse(&format!(
        "arn:aws:iam::{VAULT}:role/snaprelay-target"
    )))
}

fn code(e: CloudError) -> String {
    e.code.unwrap_or_default()
}

/// An instance with an 8 GiB root and a 20 GiB data volume under a customer managed key that
/// admits the vault account, and a completed snapshot of each volume: (cloud, key, root
/// snapshot, data snapshot).
async fn snapshotted() -> (SimCloud, String, String, String) {
    let src = account(SOURCE);
    let cloud = SimCloud::new(&src);
    cloud.add_account(&account(VAULT));
    let key = cloud.create_key(&src, REGION, Some("app"), &[account(VAULT)]);
    let volume = |size_gib| VolumeSpec {
        size_gib,
        encryption: Encryption::Key(key.clone()),
    };
    let instance = cloud.add_instance(
        &src,
        REGION,
        InstanceSpec {
            name: Some("web".into()),
            volumes: vec![volume(8), volume(20)],
            ..Default::default()
        },
    );
    let made = cloud
        .create_snapshots(&Access::ambient(), REGION, &instance, "", &[])
        .await
        .unwrap();
    tokio::time::sleep(HOUR).await;
    (
        cloud,
        key,
        made[0].snapshot_id.clone(),
        made[1].snapshot_id.clone(),
    )
}

fn mapping(device: &str, snapshot_id: &str, size_gib: Option<i64>, delete: bool) -> ImageVolume {
    ImageVolume {
        device_name: device.into(),
        snapshot_id: snapshot_id.into(),
        volume_type: Some("gp3".into()),
        size_gib,
        iops: None,
        throughput: None,
        delete_on_termination: delete,
    }
}

fn image(name: &str, volumes: Vec<ImageVolume>) -> ImageRequest {
    ImageRequest {
        name: name.into(),
        description: "restored".into(),
        architecture: Some("x86_64".into()),
        virtualization_type: Some("hvm".into()),
        ena_support: Some(true),
        boot_mode: None,
        root_device_name: "/dev/xvda".into(),
        volumes,
        tags: vec![Tag::new("snaprelay:restore", "r1")],
    }
}

async fn launch(cloud: &SimCloud, access: &Access, image_id: &str, token: &str) -> LaunchRequest {
    let network = cloud
        .default_network(access, REGION)
        .await
        .unwrap()
        .unwrap();
    LaunchRequest {
        image_id: image_id.into(),
        instance_type: "t3.micro".into(),
        subnet_id: network.subnets[0].id.clone(),
        security_group_ids: vec![],
        key_name: None,
        iam_instance_profile_arn: None,
        tags: vec![
            Tag::new("Name", "web-restored"),
            Tag::new("snaprelay:restore", "r1"),
        ],
        client_token: token.into(),
    }
}

fn volume_request(snapshot_id: &str, size_gib: Option<i64>, token: &str) -> VolumeRequest {
    VolumeRequest {
        snapshot_id: snapshot_id.into(),
        availability_zone: format!("{REGION}a"),
        volume_type: None,
        size_gib,
        iops: None,
        throughput: None,
        tags: vec![Tag::new("snaprelay:restore", "r1")],
        client_token: token.into(),
    }
}

#[tokio::test(start_paused = true)]
async fn a_launched_instance_runs_on_volumes_of_the_mapped_sizes_under_the_snapshot_key_and_terminates()
 {
    let (cloud, key, root, data) = snapshotted().await;
    let me = Access::ambient();
    let image_id = cloud
        .register_image(
            &me,
            REGION,
            &image(
                "web-restored",
                vec![
                    mapping("/dev/xvda", &root, Some(16), true),
                    mapping("/dev/sdf", &data, None, false),
                ],
            ),
        )
        .await
        .unwrap();
    let images = cloud
        .find_images(&me, REGION, &Find::Name("web-restored"))
        .await
        .unwrap();
    assert_eq!(images.len(), 1);
    assert_eq!(images[0].state, "available");

    let request = launch(&cloud, &me, &image_id, "launch-1").await;
    let launched = cloud.run_instance(&me, REGION, &request).await.unwrap();
    assert_eq!(launched.state, "pending");
    assert_eq!(launched.public_ip, None);
    assert_eq!(launched.volumes.len(), 2);

    tokio::time::sleep(Duration::from_secs(31)).await;
    let ids = [launched.id.clone()];
    let running = cloud
        .find_machines(&me, REGION, &Find::Ids(&ids))
        .await
        .unwrap();
    assert_eq!(running[0].state, "running");

    let volume_ids: Vec<String> = launched
        .volumes
        .iter()
        .map(|v| v.volume_id.clone())
        .collect();
    let volumes = cloud
        .find_volumes(&me, REGION, &Find::Ids(&volume_ids))
        .await
        .unwrap();
    let size_of = |id: &str| volumes.iter().find(|v| v.id == id).unwrap().size_gib;
    assert_eq!(size_of(&launched.volumes[0].volume_id), 16);
    assert_eq!(size_of(&launched.volumes[1].volume_id), 20);
    for v in &volumes {
        assert_eq!(v.kms_key_id.as_deref(), Some(key.as_str()));
        assert_eq!(v.state, "in-use");
        assert_eq!(v.attached_to.as_deref(), Some(launched.id.as_str()));
        assert!(v.tags.contains(&Tag::new("snaprelay:restore", "r1")));
    }
    let tagged = cloud
        .find_machines(&me, REGION, &Find::TagKey("snaprelay:restore"))
        .await
        .unwrap();
    assert_eq!(tagged.len(), 1);

    Machines::terminate_instance(&cloud, &me, REGION, &launched.id)
        .await
        .unwrap();
    let machines = cloud
        .find_machines(&me, REGION, &Find::Name("web-restored"))
        .await
        .unwrap();
    assert_eq!(machines[0].state, "shutting-down");
    tokio::time::sleep(Duration::from_secs(61)).await;
    let machines = cloud
        .find_machines(&me, REGION, &Find::Ids(&ids))
        .await
        .unwrap();
    assert_eq!(machines[0].state, "terminated");
    assert!(machines[0].volumes.is_empty());
    // The root volume went with the instance; the data volume (DeleteOnTermination false)
    // stays, detached.
    let left = cloud
        .find_volumes(&me, REGION, &Find::Ids(&volume_ids))
        .await
        .unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].id, launched.volumes[1].volume_id);
    assert_eq!(left[0].state, "available");
    cloud.delete_volume(&me, REGION, &left[0].id).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn an_image_name_is_unique_among_the_callers_images_until_it_is_deregistered() {
    let (cloud, _, root, _) = snapshotted().await;
    let me = Access::ambient();
    let request = image(
        "web-restored",
        vec![mapping("/dev/xvda", &root, None, true)],
    );
    let first = cloud.register_image(&me, REGION, &request).await.unwrap();
    let again = cloud
        .register_image(&me, REGION, &request)
        .await
        .unwrap_err();
    assert_eq!(code(again), "InvalidAMIName.Duplicate");
    // The snapshot behind a registered image cannot be deleted.
    let in_use = cloud.delete_snapshot(&me, REGION, &root).await.unwrap_err();
    assert_eq!(code(in_use), "InvalidSnapshot.InUse");

    cloud.deregister_image(&me, REGION, &first).await.unwrap();
    cloud.register_image(&me, REGION, &request).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_volume_smaller_than_its_snapshot_is_refused() {
    let (cloud, _, _, data) = snapshotted().await;
    let me = Access::ambient();
    let small = image("small", vec![mapping("/dev/xvda", &data, Some(10), true)]);
    let refused = cloud.register_image(&me, REGION, &small).await.unwrap_err();
    assert_eq!(code(refused), "InvalidBlockDeviceMapping");
    let refused = cloud
        .create_volume(&me, REGION, &volume_request(&data, Some(10), "v"))
        .await
        .unwrap_err();
    assert_eq!(code(refused), "InvalidParameterValue");
}

#[tokio::test(start_paused = true)]
async fn a_launch_retried_with_its_client_token_makes_no_second_instance() {
    let (cloud, _, root, _) = snapshotted().await;
    let me = Access::ambient();
    let image_id = cloud
        .register_image(
            &me,
            REGION,
            &image("web", vec![mapping("/dev/xvda", &root, None, true)]),
        )
        .await
        .unwrap();
    let request = launch(&cloud, &me, &image_id, "same-token").await;
    let first = cloud.run_instance(&me, REGION, &request).await.unwrap();
    let second = cloud.run_instance(&me, REGION, &request).await.unwrap();
    assert_eq!(first.id, second.id);
    let all = cloud
        .find_machines(&me, REGION, &Find::TagKey("snaprelay:restore"))
        .await
        .unwrap();
    assert_eq!(all.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_launch_on_a_key_the_caller_cannot_use_ends_terminated() {
    let src = account(SOURCE);
    let (cloud, _, _, _) = snapshotted().await;
    // A key whose policy does not admit the vault, on a snapshot shared with it.
    let closed = cloud.create_key(&src, REGION, Some("closed"), &[]);
    let instance = cloud.add_instance(
        &src,
        REGION,
        InstanceSpec {
            volumes: vec![VolumeSpec {
                size_gib: 8,
                encryption: Encryption::Key(closed),
            }],
            ..Default::default()
        },
    );
    let me = Access::ambient();
    let made = cloud
        .create_snapshots(&me, REGION, &instance, "", &[])
        .await
        .unwrap();
    tokio::time::sleep(HOUR).await;
    let snapshot = &made[0].snapshot_id;
    cloud
        .set_snapshot_share(&me, REGION, snapshot, &account(VAULT), true)
        .await
        .unwrap();

    let vault = vault();
    let image_id = cloud
        .register_image(
            &vault,
            REGION,
            &image("closed", vec![mapping("/dev/xvda", snapshot, None, true)]),
        )
        .await
        .unwrap();
    let request = launch(&cloud, &vault, &image_id, "t").await;
    let launched = cloud.run_instance(&vault, REGION, &request).await.unwrap();
    assert_eq!(launched.state, "pending");
    tokio::time::sleep(Duration::from_secs(31)).await;
    let ids = [launched.id.clone()];
    let machines = cloud
        .find_machines(&vault, REGION, &Find::Ids(&ids))
        .await
        .unwrap();
    assert_eq!(machines[0].state, "shutting-down");
    tokio::time::sleep(Duration::from_secs(61)).await;
    let machines = cloud
        .find_machines(&vault, REGION, &Find::Ids(&ids))
        .await
        .unwrap();
    assert_eq!(machines[0].state, "terminated");
    let volumes = cloud
        .find_volumes(&vault, REGION, &Find::TagKey("snaprelay:restore"))
        .await
        .unwrap();
    assert!(volumes.is_empty(), "{volumes:?}");
}

#[tokio::test(start_paused = true)]
async fn a_volume_is_created_from_a_snapshot_at_least_its_size_and_once_per_client_token() {
    let (cloud, key, root, _) = snapshotted().await;
    let me = Access::ambient();
    let made = cloud
        .create_volume(&me, REGION, &volume_request(&root, None, "v1"))
        .await
        .unwrap();
    assert_eq!(made.state, "creating");
    assert_eq!(made.size_gib, 8);
    assert_eq!(made.kms_key_id.as_deref(), Some(key.as_str()));
    assert_eq!(made.snapshot_id.as_deref(), Some(root.as_str()));
    let again = cloud
        .create_volume(&me, REGION, &volume_request(&root, None, "v1"))
        .await
        .unwrap();
    assert_eq!(again.id, made.id);
    let larger = cloud
        .create_volume(&me, REGION, &volume_request(&root, Some(50), "v2"))
        .await
        .unwrap();
    assert_eq!(larger.size_gib, 50);

    tokio::time::sleep(Duration::from_secs(11)).await;
    let ids = [made.id.clone()];
    let found = cloud
        .find_volumes(&me, REGION, &Find::Ids(&ids))
        .await
        .unwrap();
    assert_eq!(found[0].state, "available");
    cloud.delete_volume(&me, REGION, &made.id).await.unwrap();
    let found = cloud
        .find_volumes(&me, REGION, &Find::Ids(&ids))
        .await
        .unwrap();
    assert!(found.is_empty());
    let gone = cloud
        .delete_volume(&me, REGION, &made.id)
        .await
        .unwrap_err();
    assert_eq!(code(gone), "InvalidVolume.NotFound");
}

#[tokio::test(start_paused = true)]
async fn an_attached_volume_cannot_be_deleted() {
    let (cloud, _, root, _) = snapshotted().await;
    let me = Access::ambient();
    let image_id = cloud
        .register_image(
            &me,
            REGION,
            &image("web", vec![mapping("/dev/xvda", &root, None, true)]),
        )
        .await
        .unwrap();
    let request = launch(&cloud, &me, &image_id, "t").await;
    let launched = cloud.run_instance(&me, REGION, &request).await.unwrap();
    let refused = cloud
        .delete_volume(&me, REGION, &launched.volumes[0].volume_id)
        .await
        .unwrap_err();
    assert_eq!(code(refused), "VolumeInUse");
}

#[tokio::test(start_paused = true)]
async fn a_new_security_group_allows_all_egress_until_revoked_and_is_kept_while_an_instance_uses_it()
 {
    let (cloud, _, root, _) = snapshotted().await;
    let me = Access::ambient();
    let network = cloud.default_network(&me, REGION).await.unwrap().unwrap();
    let tags = [Tag::new("snaprelay:drill", "d1")];
    let group = cloud
        .create_security_group(&me, REGION, &network.vpc_id, "drill", "isolated", &tags)
        .await
        .unwrap();
    assert_eq!(cloud.egress_rules(&group), Some(1));
    let duplicate = cloud
        .create_security_group(&me, REGION, &network.vpc_id, "drill", "isolated", &tags)
        .await
        .unwrap_err();
    assert_eq!(code(duplicate), "InvalidGroup.Duplicate");
    cloud.revoke_all_egress(&me, REGION, &group).await.unwrap();
    assert_eq!(cloud.egress_rules(&group), Some(0));
    let found = cloud
        .find_security_groups(&me, REGION, &Find::TagKey("snaprelay:drill"))
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].vpc_id.as_deref(), Some(network.vpc_id.as_str()));

    let image_id = cloud
        .register_image(
            &me,
            REGION,
            &image("web", vec![mapping("/dev/xvda", &root, None, true)]),
        )
        .await
        .unwrap();
    let mut request = launch(&cloud, &me, &image_id, "t").await;
    request.security_group_ids = vec![group.clone()];
    let launched = cloud.run_instance(&me, REGION, &request).await.unwrap();
    let in_use = cloud
        .delete_security_group(&me, REGION, &group)
        .await
        .unwrap_err();
    assert_eq!(code(in_use), "DependencyViolation");
    Machines::terminate_instance(&cloud, &me, REGION, &launched.id)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(61)).await;
    cloud
        .delete_security_group(&me, REGION, &group)
        .await
        .unwrap();

    let default = network.default_security_group.unwrap();
    let refused = cloud
        .delete_security_group(&me, REGION, &default)
        .await
        .unwrap_err();
    assert_eq!(code(refused), "CannotDelete");
}

#[tokio::test(start_paused = true)]
async fn each_region_has_a_default_vpc_with_a_subnet_per_zone_unless_removed() {
    let src = account(SOURCE);
    let cloud = SimCloud::new(&src);
    let me = Access::ambient();
    let network = cloud.default_network(&me, REGION).await.unwrap().unwrap();
    let zones: Vec<&str> = network
        .subnets
        .iter()
        .map(|s| s.availability_zone.as_str())
        .collect();
    assert_eq!(zones, ["us-east-1a", "us-east-1b", "us-east-1c"]);
    assert_eq!(
        cloud.availability_zones(&me, REGION).await.unwrap(),
        zones,
        "DescribeAvailabilityZones names the zones the subnets are in"
    );
    let groups = cloud
        .find_security_groups(&me, REGION, &Find::Name("default"))
        .await
        .unwrap();
    assert_eq!(groups.len(), 1);
    assert_eq!(Some(&groups[0].id), network.default_security_group.as_ref());
    let asked = [network.subnets[1].id.clone(), "subnet-0nope".to_owned()];
    let subnets = cloud.subnets(&me, REGION, &asked).await.unwrap();
    assert_eq!(subnets, vec![network.subnets[1].clone()]);
    // The same ids in every run, and another Region's are others.
    let west = cloud
        .default_network(&me, "us-west-2")
        .await
        .unwrap()
        .unwrap();
    assert_ne!(west.vpc_id, network.vpc_id);

    cloud.add_key_pair(&src, REGION, "ops");
    let names = ["ops".to_owned(), "nope".to_owned()];
    assert_eq!(cloud.key_pairs(&me, REGION, &names).await.unwrap(), ["ops"]);

    cloud.remove_default_vpc(&src, "eu-west-1");
    assert_eq!(cloud.default_network(&me, "eu-west-1").await.unwrap(), None);
    assert_eq!(
        cloud
            .db_subnet_group_vpc(&me, "eu-west-1", "default")
            .await
            .unwrap(),
        None
    );
    assert!(
        cloud
            .db_subnet_group_vpc(&me, REGION, "default")
            .await
            .unwrap()
            .is_some()
    );
}

fn restore_request(id: &str, snapshot: &str) -> DbRestoreRequest {
    DbRestoreRequest {
        db_instance_id: id.into(),
        snapshot_id: snapshot.into(),
        db_instance_class: None,
        port: None,
        storage_type: None,
        iops: None,
        multi_az: false,
        publicly_accessible: false,
        db_subnet_group: None,
        db_parameter_group: None,
        option_group: None,
        vpc_security_group_ids: vec![],
        tags: vec![Tag::new("snaprelay:restore", "r1")],
    }
}

/// A postgres 15.7 DB instance under a key that admits the vault, and an available DB
/// snapshot of it shared with the vault: (cloud, key, snapshot ARN).
async fn db_snapshotted() -> (SimCloud, String, String) {
    let src = account(SOURCE);
    let cloud = SimCloud::new(&src);
    cloud.add_account(&account(VAULT));
    let key = cloud.create_key(&src, REGION, Some("app"), &[account(VAULT)]);
    cloud.add_db_instance(
        &src,
        REGION,
        DbSpec {
            id: "orders".into(),
            engine: "postgres".into(),
            size_gib: 20,
            encryption: Encryption::Key(key.clone()),
            tags: vec![],
            cluster: None,
        },
    );
    cloud.set_db_engine_version(&src, REGION, "orders", "15.7");
    let me = Access::ambient();
    let snapshot = cloud
        .create_db_snapshot(&me, REGION, "orders", "orders-snap", &[])
        .await
        .unwrap();
    tokio::time::sleep(HOUR).await;
    cloud
        .set_db_snapshot_share(&me, REGION, "orders-snap", &account(VAULT), true)
        .await
        .unwrap();
    (cloud, key, snapshot.arn)
}

#[tokio::test(start_paused = true)]
async fn a_db_restored_from_a_snapshot_is_creating_then_available_and_deleting_then_gone() {
    let (cloud, key, _) = db_snapshotted().await;
    let me = Access::ambient();
    let restored = cloud
        .restore_db_instance(
            &me,
            REGION,
            &restore_request("orders-restored", "orders-snap"),
        )
        .await
        .unwrap();
    assert_eq!(restored.status, "creating");
    assert_eq!(restored.engine, "postgres");
    assert_eq!(restored.engine_version.as_deref(), Some("15.7"));
    assert_eq!(restored.kms_key_id.as_deref(), Some(key.as_str()));
    let taken = cloud
        .restore_db_instance(
            &me,
            REGION,
            &restore_request("Orders-Restored", "orders-snap"),
        )
        .await
        .unwrap_err();
    assert_eq!(code(taken), "DBInstanceAlreadyExists");

    tokio::time::sleep(Duration::from_secs(601)).await;
    let found = cloud
        .find_dbs(&me, REGION, &Find::Name("orders-restored"))
        .await
        .unwrap();
    assert_eq!(found[0].status, "available");
    let tagged = cloud
        .find_dbs(&me, REGION, &Find::TagKey("snaprelay:restore"))
        .await
        .unwrap();
    assert_eq!(tagged.len(), 1);

    cloud
        .delete_db_instance(&me, REGION, "orders-restored")
        .await
        .unwrap();
    let found = cloud
        .find_dbs(&me, REGION, &Find::Name("orders-restored"))
        .await
        .unwrap();
    assert_eq!(found[0].status, "deleting");
    tokio::time::sleep(Duration::from_secs(301)).await;
    let ids = ["orders-restored".to_owned()];
    assert!(
        cloud
            .find_dbs(&me, REGION, &Find::Ids(&ids))
            .await
            .unwrap()
            .is_empty()
    );
    // The identifier is free again.
    cloud
        .restore_db_instance(
            &me,
            REGION,
            &restore_request("orders-restored", "orders-snap"),
        )
        .await
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_shared_db_snapshot_is_restored_by_arn_only_with_a_usable_key_and_existing_groups() {
    let (cloud, key, arn) = db_snapshotted().await;
    let vault = vault();
    let mut request = restore_request("orders-dr", &arn);
    request.db_parameter_group = Some("tuned".into());
    let missing = cloud
        .restore_db_instance(&vault, REGION, &request)
        .await
        .unwrap_err();
    assert_eq!(code(missing), "DBParameterGroupNotFound");
    cloud.add_db_group(DbGroup::Parameter, &account(VAULT), REGION, "tuned");
    assert!(
        cloud
            .db_parameter_group_exists(&vault, REGION, "tuned")
            .await
            .unwrap()
    );
    assert!(
        cloud
            .db_parameter_group_exists(&vault, REGION, "default.postgres15")
            .await
            .unwrap()
    );
    assert!(
        cloud
            .option_group_exists(&vault, REGION, "default:postgres-15")
            .await
            .unwrap()
    );
    assert!(
        !cloud
            .option_group_exists(&vault, REGION, "custom")
            .await
            .unwrap()
    );
    let restored = cloud
        .restore_db_instance(&vault, REGION, &request)
        .await
        .unwrap();
    assert_eq!(restored.kms_key_id.as_deref(), Some(key.as_str()));

    cloud.set_key_admits(&key, &account(VAULT), false);
    let refused = cloud
        .restore_db_instance(&vault, REGION, &restore_request("orders-dr2", &arn))
        .await
        .unwrap_err();
    assert_eq!(code(refused), "KMSKeyNotAccessibleFault");
}

#[tokio::test(start_paused = true)]
async fn an_instance_a_fault_holds_stays_pending() {
    let (cloud, _, root, _) = snapshotted().await;
    cloud.inject(Fault::StayPending { nth: 1 });
    let me = Access::ambient();
    let image_id = cloud
        .register_image(
            &me,
            REGION,
            &image("web", vec![mapping("/dev/xvda", &root, None, true)]),
        )
        .await
        .unwrap();
    let request = launch(&cloud, &me, &image_id, "t").await;
    let launched = cloud.run_instance(&me, REGION, &request).await.unwrap();
    tokio::time::sleep(HOUR).await;
    let ids = [launched.id.clone()];
    let machines = cloud
        .find_machines(&me, REGION, &Find::Ids(&ids))
        .await
        .unwrap();
    assert_eq!(machines[0].state, "pending");
    // It can still be terminated.
    Machines::terminate_instance(&cloud, &me, REGION, &launched.id)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(61)).await;
    let machines = cloud
        .find_machines(&me, REGION, &Find::Ids(&ids))
        .await
        .unwrap();
    assert_eq!(machines[0].state, "terminated");
}

#[tokio::test(start_paused = true)]
async fn a_db_restore_a_fault_fails_ends_failed() {
    let (cloud, _, _) = db_snapshotted().await;
    cloud.inject(Fault::FailDbRestore { nth: 1 });
    let me = Access::ambient();
    cloud
        .restore_db_instance(
            &me,
            REGION,
            &restore_request("orders-restored", "orders-snap"),
        )
        .await
        .unwrap();
    tokio::time::sleep(HOUR).await;
    let found = cloud
        .find_dbs(&me, REGION, &Find::Name("orders-restored"))
        .await
        .unwrap();
    assert_eq!(found[0].status, "failed");
}

#[tokio::test(start_paused = true)]
async fn throttling_applies_to_the_calls_of_a_restore() {
    let cloud = SimCloud::new(&account(SOURCE));
    cloud.inject(Fault::Throttle { per_mille: 1000 });
    let me = Access::ambient();
    let e = cloud.default_network(&me, REGION).await.unwrap_err();
    assert!(e.is_throttling());
    assert_eq!(e.operation, "DescribeVpcs");
    let e = cloud
        .find_dbs(&me, REGION, &Find::TagKey("x"))
        .await
        .unwrap_err();
    assert!(e.is_throttling());
    assert_eq!(e.operation, "DescribeDBInstances");
}

#[tokio::test(start_paused = true)]
async fn the_inventory_tells_what_a_restore_rebuilds() {
    let (cloud, _, _) = db_snapshotted().await;
    let src = account(SOURCE);
    let me = Access::ambient();
    let instance = cloud.add_instance(
        &src,
        REGION,
        InstanceSpec {
            name: Some("app".into()),
            volumes: vec![VolumeSpec {
                size_gib: 8,
                encryption: Encryption::None,
            }],
            ..Default::default()
        },
    );
    cloud.set_platform(&instance, "Windows");
    let network = cloud.default_network(&me, REGION).await.unwrap().unwrap();
    let found = cloud
        .find_instances(&me, REGION, &Selector::Ids(vec![instance.clone()]))
        .await
        .unwrap();
    let setup = &found[0].setup;
    assert_eq!(setup.instance_type.as_deref(), Some("t3.micro"));
    assert_eq!(setup.architecture.as_deref(), Some("x86_64"));
    assert_eq!(setup.virtualization_type.as_deref(), Some("hvm"));
    assert_eq!(setup.ena_support, Some(true));
    assert_eq!(setup.root_device_name.as_deref(), Some("/dev/xvda"));
    assert_eq!(setup.availability_zone.as_deref(), Some("us-east-1a"));
    assert_eq!(setup.subnet_id.as_ref(), Some(&network.subnets[0].id));
    assert_eq!(
        setup.security_group_ids,
        network
            .default_security_group
            .into_iter()
            .collect::<Vec<_>>()
    );
    assert_eq!(setup.platform_details.as_deref(), Some("Windows"));
    assert_eq!(setup.tags.get("Name").map(String::as_str), Some("app"));
    let volume = &found[0].volumes[0].setup;
    assert_eq!(volume.volume_type.as_deref(), Some("gp3"));
    assert_eq!(volume.delete_on_termination, Some(true));

    let dbs = cloud
        .find_db_instances(&me, REGION, &Selector::Ids(vec!["orders".into()]))
        .await
        .unwrap();
    let db = &dbs[0].setup;
    assert_eq!(db.engine_version.as_deref(), Some("15.7"));
    assert_eq!(db.db_instance_class.as_deref(), Some("db.t3.micro"));
    assert_eq!(db.port, Some(5432));
    assert_eq!(db.storage_type.as_deref(), Some("gp2"));
    assert_eq!(db.db_subnet_group.as_deref(), Some("default"));
    assert_eq!(db.db_parameter_group.as_deref(), Some("default.postgres15"));
    assert_eq!(db.option_group.as_deref(), Some("default:postgres-15"));
}
