//! EC2 as a restore meets it: each Region's default VPC (one subnet per Availability Zone and
//! a `default` security group), security groups, key pairs, AMIs registered from snapshots,
//! instances launched from them and volumes created from snapshots, each with the rule AWS
//! applies.
//!
//! A Region's default VPC is not stored: its ids are derived from the account and Region, so
//! that they are the same in every run and take nothing from the sequence of other ids. Only
//! its `default` security group is stored, on first use, so that it can be found, revoked and
//! depended on like any other group.

use snaprelay_core::ids::AccountId;
use snaprelay_core::model::{SnapshotState, Tag};
use snaprelay_core::ports::{
    AttachedVolume, CloudError, Find, ImageRequest, ImageStatus, ImageVolume, LaunchRequest,
    MachineStatus, Network, SecurityGroup, Subnet, VolumeRequest, VolumeStatus,
};
use tokio::time::Instant;

use crate::faults::error;
use crate::timing::Rng;
use crate::world::{
    Launch, MadeVolume, SimImage, SimInstance, SimSecurityGroup, SimSnapshot, SimVolume, World,
    lifecycle,
};

/// The Availability Zones of every simulated Region: `<region>a`, `b`, `c`.
const ZONES: [char; 3] = ['a', 'b', 'c'];

/// The state reason of a launch whose volume key cannot be used: the instance goes from
/// `pending` to `terminated` (https://repost.aws/knowledge-center/encrypted-volumes-stops-immediately).
const CLIENT_ERROR_ON_LAUNCH: &str = "Client.InternalError: Client error on launch";

fn ec2_error(operation: &str, region: &str, code: &str, message: &str) -> CloudError {
    error("ec2", operation, region, code, message)
}

/// A Region's default VPC.
pub(crate) struct DefaultNetwork {
    pub vpc_id: String,
    pub subnets: Vec<Subnet>,
    pub security_group: String,
}

/// An id of the default VPC of `account` in `region`, the same in every run.
fn derived_id(prefix: &str, account: &AccountId, region: &str, part: &str) -> String {
    // FNV-1a over the parts, then mixed: stable across runs and platforms.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in [account.as_str(), region, part].join("/").bytes() {
        h ^= u64::from(byte);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{prefix}-0{:016x}", Rng::new(h).next_u64())
}

/// The zones of `region`, as every simulated Region has them.
pub(crate) fn zones_of(region: &str) -> Vec<String> {
    ZONES.iter().map(|zone| format!("{region}{zone}")).collect()
}

fn default_network_of(account: &AccountId, region: &str) -> DefaultNetwork {
    let vpc_id = derived_id("vpc", account, region, "default");
    let subnets = ZONES
        .iter()
        .map(|zone| {
            let availability_zone = format!("{region}{zone}");
            Subnet {
                id: derived_id("subnet", account, region, &availability_zone),
                vpc_id: vpc_id.clone(),
                availability_zone,
            }
        })
        .collect();
    DefaultNetwork {
        security_group: derived_id("sg", account, region, "default"),
        vpc_id,
        subnets,
    }
}

fn tags_of(tags: &std::collections::BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter().map(|(k, v)| Tag::new(k, v.clone())).collect()
}

/// What a `find_*` call can ask of a resource.
trait Findable {
    fn place(&self) -> (&AccountId, &str);
    fn name(&self) -> Option<&str>;
    fn has_tag(&self, key: &str) -> bool;
}

impl Findable for SimInstance {
    fn place(&self) -> (&AccountId, &str) {
        (&self.account, &self.region)
    }
    fn name(&self) -> Option<&str> {
        self.tags.get("Name").map(String::as_str)
    }
    fn has_tag(&self, key: &str) -> bool {
        self.tags.contains_key(key)
    }
}

impl Findable for SimImage {
    fn place(&self) -> (&AccountId, &str) {
        (&self.account, &self.region)
    }
    fn name(&self) -> Option<&str> {
        Some(&self.name)
    }
    fn has_tag(&self, key: &str) -> bool {
        self.tags.iter().any(|t| t.key == key)
    }
}

impl Findable for SimSecurityGroup {
    fn place(&self) -> (&AccountId, &str) {
        (&self.account, &self.region)
    }
    fn name(&self) -> Option<&str> {
        Some(&self.name)
    }
    fn has_tag(&self, key: &str) -> bool {
        self.tags.iter().any(|t| t.key == key)
    }
}

/// The caller's resources of `map` in `region` that `find` asks for; unknown ids are absent.
fn select<'a, T: Findable>(
    map: &'a std::collections::BTreeMap<String, T>,
    find: &Find<'_>,
    caller: &AccountId,
    region: &str,
) -> Vec<&'a T> {
    let mine = |t: &&T| t.place() == (caller, region);
    match find {
        Find::Ids(ids) => ids
            .iter()
            .filter_map(|id| map.get(id))
            .filter(mine)
            .collect(),
        Find::Name(name) => map
            .values()
            .filter(mine)
            .filter(|t| t.name() == Some(name))
            .collect(),
        Find::TagKey(key) => map
            .values()
            .filter(mine)
            .filter(|t| t.has_tag(key))
            .collect(),
    }
}

fn machine_status(i: &SimInstance, now: Instant) -> MachineStatus {
    MachineStatus {
        id: i.id.clone(),
        state: i.state(now).to_owned(),
        volumes: i
            .volumes
            .iter()
            .map(|(volume_id, device_name)| AttachedVolume {
                device_name: device_name.clone(),
                volume_id: volume_id.clone(),
            })
            .collect(),
        // The request asks for none, and the simulator never gives one.
        public_ip: None,
        tags: tags_of(&i.tags),
    }
}

fn made_volume_status(id: &str, v: &SimVolume, made: &MadeVolume, now: Instant) -> VolumeStatus {
    let state = if now < made.ready_at {
        "creating"
    } else if made.failed {
        "error"
    } else if made.attached_to.is_some() {
        "in-use"
    } else {
        "available"
    };
    VolumeStatus {
        id: id.to_owned(),
        state: state.to_owned(),
        size_gib: i64::from(v.size_gib),
        encrypted: v.kms_key.is_some(),
        kms_key_id: v.kms_key.clone(),
        snapshot_id: Some(made.snapshot_id.clone()),
        attached_to: made.attached_to.clone(),
        tags: made.tags.clone(),
    }
}

impl World {
    /// The default VPC of `account` in `region`, unless a test removed it. Its `default`
    /// security group is stored on first use.
    pub fn network(&mut self, account: &AccountId, region: &str) -> Option<DefaultNetwork> {
        if self
            .no_default_vpc
            .contains(&(account.clone(), region.to_owned()))
        {
            return None;
        }
        let network = default_network_of(account, region);
        self.security_groups
            .entry(network.security_group.clone())
            .or_insert_with(|| SimSecurityGroup {
                id: network.security_group.clone(),
                account: account.clone(),
                region: region.to_owned(),
                vpc_id: network.vpc_id.clone(),
                name: "default".to_owned(),
                tags: Vec::new(),
                egress_rules: 1,
            });
        Some(network)
    }

    /// Makes a Region of an account one without a default VPC (AWS lets an account delete
    /// it): no default subnets, no `default` security group.
    pub fn remove_default_vpc(&mut self, account: &AccountId, region: &str) {
        let network = default_network_of(account, region);
        self.security_groups.remove(&network.security_group);
        self.no_default_vpc
            .insert((account.clone(), region.to_owned()));
    }

    pub fn default_network(&mut self, caller: &AccountId, region: &str) -> Option<Network> {
        self.network(caller, region).map(|n| Network {
            vpc_id: n.vpc_id,
            subnets: n.subnets,
            default_security_group: Some(n.security_group),
        })
    }

    /// EC2 `DescribeSubnets` of `ids`: those of the caller's default VPC there.
    pub fn subnets(&mut self, caller: &AccountId, region: &str, ids: &[String]) -> Vec<Subnet> {
        let Some(network) = self.network(caller, region) else {
            return Vec::new();
        };
        ids.iter()
            .filter_map(|id| network.subnets.iter().find(|s| &s.id == id))
            .cloned()
            .collect()
    }

    pub fn key_pairs(&self, caller: &AccountId, region: &str, names: &[String]) -> Vec<String> {
        names
            .iter()
            .filter(|n| {
                self.key_pairs
                    .contains(&(caller.clone(), region.to_owned(), (*n).clone()))
            })
            .cloned()
            .collect()
    }

    pub fn find_security_groups(
        &mut self,
        caller: &AccountId,
        region: &str,
        find: &Find<'_>,
    ) -> Vec<SecurityGroup> {
        self.network(caller, region);
        select(&self.security_groups, find, caller, region)
            .into_iter()
            .map(|g| SecurityGroup {
                id: g.id.clone(),
                name: g.name.clone(),
                vpc_id: Some(g.vpc_id.clone()),
                tags: g.tags.clone(),
            })
            .collect()
    }

    /// EC2 `CreateSecurityGroup`: a group name is unique in its VPC, and a new group allows
    /// all outbound traffic (https://docs.aws.amazon.com/vpc/latest/userguide/security-group-rules.html).
    pub fn create_security_group(
        &mut self,
        caller: &AccountId,
        region: &str,
        vpc_id: &str,
        name: &str,
        description: &str,
        tags: &[Tag],
    ) -> Result<String, CloudError> {
        let op = "CreateSecurityGroup";
        if description.is_empty() {
            return Err(ec2_error(
                op,
                region,
                "MissingParameter",
                "The request must contain the parameter GroupDescription",
            ));
        }
        let network = self
            .network(caller, region)
            .filter(|n| n.vpc_id == vpc_id)
            .ok_or_else(|| {
                ec2_error(
                    op,
                    region,
                    "InvalidVpcID.NotFound",
                    &format!("The vpc ID '{vpc_id}' does not exist"),
                )
            })?;
        if self
            .security_groups
            .values()
            .any(|g| g.vpc_id == network.vpc_id && g.name == name)
        {
            return Err(ec2_error(
                op,
                region,
                "InvalidGroup.Duplicate",
                &format!("The security group '{name}' already exists for VPC '{vpc_id}'"),
            ));
        }
        let id = self.new_id("sg");
        self.security_groups.insert(
            id.clone(),
            SimSecurityGroup {
                id: id.clone(),
                account: caller.clone(),
                region: region.to_owned(),
                vpc_id: network.vpc_id,
                name: name.to_owned(),
                tags: tags.to_vec(),
                egress_rules: 1,
            },
        );
        Ok(id)
    }

    fn own_group(
        &mut self,
        operation: &str,
        caller: &AccountId,
        region: &str,
        group_id: &str,
    ) -> Result<&mut SimSecurityGroup, CloudError> {
        self.network(caller, region);
        self.security_groups
            .get_mut(group_id)
            .filter(|g| &g.account == caller && g.region == region)
            .ok_or_else(|| {
                ec2_error(
                    operation,
                    region,
                    "InvalidGroup.NotFound",
                    &format!("The security group '{group_id}' does not exist"),
                )
            })
    }

    pub fn revoke_all_egress(
        &mut self,
        caller: &AccountId,
        region: &str,
        group_id: &str,
    ) -> Result<(), CloudError> {
        self.own_group("RevokeSecurityGroupEgress", caller, region, group_id)?
            .egress_rules = 0;
        Ok(())
    }

    /// EC2 `DeleteSecurityGroup`: never a VPC's `default` group, nor one an instance that is
    /// not terminated (or a DB instance) still uses.
    pub fn delete_security_group(
        &mut self,
        caller: &AccountId,
        region: &str,
        group_id: &str,
        now: Instant,
    ) -> Result<(), CloudError> {
        let op = "DeleteSecurityGroup";
        let group = self.own_group(op, caller, region, group_id)?;
        if group.name == "default" {
            return Err(ec2_error(
                op,
                region,
                "CannotDelete",
                &format!(
                    "the specified group: \"{group_id}\" name: \"default\" cannot be deleted by a user"
                ),
            ));
        }
        let id = group_id.to_owned();
        let used_by_instance = self.instances.values().any(|i| {
            &i.account == caller && i.security_group_ids.contains(&id) && !i.is_terminated(now)
        });
        let used_by_db = self.dbs.values().any(|d| {
            &d.account == caller
                && d.vpc_security_group_ids.contains(&id)
                && d.status(now).is_some()
        });
        if used_by_instance || used_by_db {
            return Err(ec2_error(
                op,
                region,
                "DependencyViolation",
                &format!("resource {group_id} has a dependent object"),
            ));
        }
        self.security_groups.remove(group_id);
        Ok(())
    }

    pub fn find_images(
        &self,
        caller: &AccountId,
        region: &str,
        find: &Find<'_>,
    ) -> Vec<ImageStatus> {
        select(&self.images, find, caller, region)
            .into_iter()
            .map(|i| ImageStatus {
                id: i.id.clone(),
                name: i.name.clone(),
                state: "available".to_owned(),
                tags: i.tags.clone(),
            })
            .collect()
    }

    /// A completed snapshot `caller` may make a volume of in `region`: its own, or one shared
    /// with it.
    fn usable_snapshot(
        &self,
        operation: &str,
        caller: &AccountId,
        region: &str,
        snapshot_id: &str,
        now: Instant,
    ) -> Result<&SimSnapshot, CloudError> {
        let snapshot = self
            .snapshots
            .get(snapshot_id)
            .filter(|s| s.region == region)
            .filter(|s| &s.account == caller || s.shared_with.contains(caller))
            .ok_or_else(|| {
                ec2_error(
                    operation,
                    region,
                    "InvalidSnapshot.NotFound",
                    &format!("The snapshot '{snapshot_id}' does not exist."),
                )
            })?;
        let (state, _) = lifecycle(
            snapshot.started,
            snapshot.duration,
            snapshot.failure.as_deref(),
            now,
        );
        if state != SnapshotState::Completed {
            return Err(ec2_error(
                operation,
                region,
                "IncorrectState",
                &format!("Snapshot {snapshot_id} is in invalid state - {state:?}").to_lowercase(),
            ));
        }
        Ok(snapshot)
    }

    /// EC2 `RegisterImage` from snapshots of the caller's (or shared with it), completed. The
    /// name is unique among the caller's images in the Region; the image is `available` at
    /// once (an AMI made of snapshots has nothing to copy). As in AWS, an image registered
    /// without `VirtualizationType` is `paravirtual` and without `EnaSupport` has none
    /// (API_RegisterImage.html).
    pub fn register_image(
        &mut self,
        caller: &AccountId,
        region: &str,
        request: &ImageRequest,
        now: Instant,
    ) -> Result<String, CloudError> {
        let op = "RegisterImage";
        if let Some(taken) = self
            .images
            .values()
            .find(|i| &i.account == caller && i.region == region && i.name == request.name)
        {
            return Err(ec2_error(
                op,
                region,
                "InvalidAMIName.Duplicate",
                &format!(
                    "AMI name {} is already in use by AMI {}",
                    request.name, taken.id
                ),
            ));
        }
        let mut volumes = Vec::with_capacity(request.volumes.len());
        for v in &request.volumes {
            let snapshot = self.usable_snapshot(op, caller, region, &v.snapshot_id, now)?;
            let snapshot_gib = i64::from(snapshot.size_gib);
            let size_gib = match v.size_gib {
                Some(size) if size < snapshot_gib => {
                    return Err(ec2_error(
                        op,
                        region,
                        "InvalidBlockDeviceMapping",
                        &format!(
                            "Volume of size {size}GB is smaller than snapshot '{}', expect size >= {snapshot_gib}GB",
                            v.snapshot_id
                        ),
                    ));
                }
                Some(size) => size,
                None => snapshot_gib,
            };
            volumes.push(ImageVolume {
                size_gib: Some(size_gib),
                ..v.clone()
            });
        }
        let id = self.new_id("ami");
        self.images.insert(
            id.clone(),
            SimImage {
                id: id.clone(),
                account: caller.clone(),
                region: region.to_owned(),
                name: request.name.clone(),
                tags: request.tags.clone(),
                architecture: request
                    .architecture
                    .clone()
                    .unwrap_or_else(|| "x86_64".to_owned()),
                virtualization_type: request
                    .virtualization_type
                    .clone()
                    .unwrap_or_else(|| "paravirtual".to_owned()),
                ena_support: request.ena_support.unwrap_or(false),
                boot_mode: request.boot_mode.clone(),
                root_device_name: request.root_device_name.clone(),
                volumes,
            },
        );
        Ok(id)
    }

    /// EC2 `DeregisterImage` of one of the caller's images. AWS lists a deregistered image
    /// for a short while; the simulator forgets it at once (its name is free again either
    /// way).
    pub fn deregister_image(
        &mut self,
        caller: &AccountId,
        region: &str,
        image_id: &str,
    ) -> Result<(), CloudError> {
        let owned = self
            .images
            .get(image_id)
            .is_some_and(|i| &i.account == caller && i.region == region);
        if !owned {
            return Err(image_not_found("DeregisterImage", region, image_id));
        }
        self.images.remove(image_id);
        Ok(())
    }

    /// The image a registered snapshot belongs to: AWS refuses to delete such a snapshot.
    pub fn image_using(&self, snapshot_id: &str) -> Option<&str> {
        self.images
            .values()
            .find(|i| i.volumes.iter().any(|v| v.snapshot_id == snapshot_id))
            .map(|i| i.id.as_str())
    }

    pub fn find_machines(
        &self,
        caller: &AccountId,
        region: &str,
        find: &Find<'_>,
        now: Instant,
    ) -> Vec<MachineStatus> {
        select(&self.instances, find, caller, region)
            .into_iter()
            .map(|i| machine_status(i, now))
            .collect()
    }

    /// EC2 `RunInstances` of one instance from one of the caller's images, in a subnet of its
    /// default VPC, without a public IP. One volume per mapping of the image, made from its
    /// snapshot under the snapshot's key. A key the caller cannot use does not fail the call:
    /// as in AWS, the instance leaves `pending` for `shutting-down` and `terminated`, with the
    /// state reason [`CLIENT_ERROR_ON_LAUNCH`].
    pub fn run_instance(
        &mut self,
        caller: &AccountId,
        region: &str,
        request: &LaunchRequest,
        now: Instant,
    ) -> Result<MachineStatus, CloudError> {
        let op = "RunInstances";
        let token = (
            op,
            caller.clone(),
            region.to_owned(),
            request.client_token.clone(),
        );
        if !request.client_token.is_empty()
            && let Some(earlier) = self
                .client_tokens
                .get(&token)
                .and_then(|id| self.instances.get(id))
        {
            // https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-idempotency.html
            if earlier
                .launch
                .as_ref()
                .is_none_or(|l| l.image_id != request.image_id)
            {
                return Err(idempotent_mismatch(op, region));
            }
            return Ok(machine_status(earlier, now));
        }
        let image = self
            .images
            .get(&request.image_id)
            .filter(|i| &i.account == caller && i.region == region)
            .cloned()
            .ok_or_else(|| image_not_found(op, region, &request.image_id))?;
        let network = self.network(caller, region);
        let subnet = network
            .as_ref()
            .and_then(|n| n.subnets.iter().find(|s| s.id == request.subnet_id))
            .cloned()
            .ok_or_else(|| {
                ec2_error(
                    op,
                    region,
                    "InvalidSubnetID.NotFound",
                    &format!("The subnet ID '{}' does not exist", request.subnet_id),
                )
            })?;
        // Without groups, an instance gets its VPC's default group.
        let security_group_ids = match (&request.security_group_ids[..], &network) {
            ([], Some(n)) => vec![n.security_group.clone()],
            (ids, _) => ids.to_vec(),
        };
        for group_id in &security_group_ids {
            let group = self
                .security_groups
                .get(group_id)
                .filter(|g| &g.account == caller && g.region == region)
                .ok_or_else(|| {
                    ec2_error(
                        op,
                        region,
                        "InvalidGroup.NotFound",
                        &format!("The security group '{group_id}' does not exist"),
                    )
                })?;
            if group.vpc_id != subnet.vpc_id {
                return Err(ec2_error(
                    op,
                    region,
                    "InvalidParameter",
                    &format!(
                        "Security group {group_id} and subnet {} belong to different networks.",
                        subnet.id
                    ),
                ));
            }
        }
        if let Some(name) = &request.key_name
            && !self
                .key_pairs
                .contains(&(caller.clone(), region.to_owned(), name.clone()))
        {
            return Err(ec2_error(
                op,
                region,
                "InvalidKeyPair.NotFound",
                &format!("The key pair '{name}' does not exist"),
            ));
        }
        let mut sources = Vec::with_capacity(image.volumes.len());
        for v in &image.volumes {
            let snapshot = self.snapshots.get(&v.snapshot_id).ok_or_else(|| {
                ec2_error(
                    op,
                    region,
                    "InvalidSnapshot.NotFound",
                    &format!("The snapshot '{}' does not exist.", v.snapshot_id),
                )
            })?;
            sources.push(snapshot.kms_key.clone());
        }
        let key_unusable = sources
            .iter()
            .flatten()
            .any(|key| !self.key_usable(caller, key));

        let (stays_pending, stops_itself) = self.faults.on_launch();
        let t = self.timing.clone();
        let leaves_pending = now + t.instance_start;
        let id = self.new_id("i");
        let mut attached = Vec::with_capacity(image.volumes.len());
        for (v, kms_key) in image.volumes.iter().zip(sources) {
            let volume_id = self.new_id("vol");
            self.volumes.insert(
                volume_id.clone(),
                SimVolume {
                    size_gib: v
                        .size_gib
                        .map_or(0, |s| u32::try_from(s).unwrap_or(u32::MAX)),
                    kms_key,
                    made: Some(Box::new(MadeVolume {
                        account: caller.clone(),
                        region: region.to_owned(),
                        volume_type: v.volume_type.clone().unwrap_or_else(|| "gp2".to_owned()),
                        iops: v.iops,
                        throughput: v.throughput,
                        delete_on_termination: v.delete_on_termination,
                        snapshot_id: v.snapshot_id.clone(),
                        attached_to: Some(id.clone()),
                        tags: request.tags.clone(),
                        ready_at: if key_unusable { leaves_pending } else { now },
                        failed: key_unusable,
                    })),
                },
            );
            attached.push((volume_id, v.device_name.clone()));
        }
        let instance = SimInstance {
            id: id.clone(),
            account: caller.clone(),
            region: region.to_owned(),
            tags: request
                .tags
                .iter()
                .map(|t| (t.key.clone(), t.value.clone()))
                .collect(),
            terminated: false,
            volumes: attached,
            instance_type: request.instance_type.clone().into(),
            platform: "Linux/UNIX".into(),
            availability_zone: subnet.availability_zone.clone(),
            subnet_id: Some(subnet.id.clone()),
            security_group_ids,
            key_name: request.key_name.clone(),
            iam_instance_profile_arn: request.iam_instance_profile_arn.clone(),
            launch: Some(Box::new(Launch {
                image_id: image.id.clone(),
                running_from: (!stays_pending && !key_unusable && !stops_itself)
                    .then_some(leaves_pending),
                failure: key_unusable.then_some(CLIENT_ERROR_ON_LAUNCH),
                stopped_from: (stops_itself && !key_unusable).then_some(leaves_pending),
                architecture: image.architecture.clone(),
                virtualization_type: image.virtualization_type.clone(),
                ena_support: image.ena_support,
                boot_mode: image.boot_mode.clone(),
                root_device_name: image.root_device_name.clone(),
            })),
            shutting_down: key_unusable
                .then_some((leaves_pending, leaves_pending + t.instance_stop)),
        };
        if key_unusable {
            self.ending_instances.push(id.clone());
        }
        let status = machine_status(&instance, now);
        self.instances.insert(id.clone(), instance);
        if !request.client_token.is_empty() {
            self.client_tokens.insert(token, id);
        }
        Ok(status)
    }

    /// EC2 `TerminateInstances`: `shutting-down`, then `terminated`; terminating an instance
    /// that already is succeeds.
    pub fn terminate(
        &mut self,
        caller: &AccountId,
        region: &str,
        instance_id: &str,
        now: Instant,
    ) -> Result<(), CloudError> {
        let stop = self.timing.instance_stop;
        let instance = self
            .instances
            .get_mut(instance_id)
            .filter(|i| &i.account == caller && i.region == region)
            .ok_or_else(|| {
                ec2_error(
                    "TerminateInstances",
                    region,
                    "InvalidInstanceID.NotFound",
                    &format!("The instance ID '{instance_id}' does not exist"),
                )
            })?;
        if matches!(instance.state(now), "terminated" | "shutting-down") {
            return Ok(());
        }
        instance.shutting_down = Some((now, now + stop));
        self.ending_instances.push(instance_id.to_owned());
        Ok(())
    }

    /// EC2 `DescribeVolumes`: the volumes a restore made, and those of the caller's instances
    /// a test made (they carry no tags).
    pub fn find_volumes(
        &self,
        caller: &AccountId,
        region: &str,
        find: &Find<'_>,
        now: Instant,
    ) -> Vec<VolumeStatus> {
        let made = self.volumes.iter().filter_map(|(id, v)| {
            let made = v.made.as_ref()?;
            (&made.account == caller && made.region == region)
                .then(|| made_volume_status(id, v, made, now))
        });
        let of_tests = self
            .instances
            .values()
            .filter(|i| &i.account == caller && i.region == region && i.launch.is_none())
            .filter(|i| !i.is_terminated(now))
            .flat_map(|i| {
                i.volumes.iter().filter_map(|(id, _)| {
                    let v = self.volumes.get(id).filter(|v| v.made.is_none())?;
                    Some(VolumeStatus {
                        id: id.clone(),
                        state: "in-use".to_owned(),
                        size_gib: i64::from(v.size_gib),
                        encrypted: v.kms_key.is_some(),
                        kms_key_id: v.kms_key.clone(),
                        snapshot_id: None,
                        attached_to: Some(i.id.clone()),
                        tags: Vec::new(),
                    })
                })
            });
        let mut found: Vec<VolumeStatus> = made
            .chain(of_tests)
            .filter(|v| match find {
                Find::Ids(ids) => ids.contains(&v.id),
                Find::Name(name) => v.tags.iter().any(|t| t.key == "Name" && t.value == *name),
                Find::TagKey(key) => v.tags.iter().any(|t| t.key == *key),
            })
            .collect();
        found.sort_by(|a, b| a.id.cmp(&b.id));
        found
    }

    /// EC2 `CreateVolume` from a completed snapshot the caller may use, under the snapshot's
    /// key, at least as large as the snapshot; `creating`, then `available` (or `error` when
    /// the caller cannot use the key: EBS asks KMS for the volume's data key as it creates
    /// it, https://repost.aws/knowledge-center/ebs-troubleshoot-kms-encrypted-snapshot).
    pub fn create_volume(
        &mut self,
        caller: &AccountId,
        region: &str,
        request: &VolumeRequest,
        now: Instant,
    ) -> Result<VolumeStatus, CloudError> {
        let op = "CreateVolume";
        let token = (
            op,
            caller.clone(),
            region.to_owned(),
            request.client_token.clone(),
        );
        if !request.client_token.is_empty()
            && let Some((id, v, made)) = self.client_tokens.get(&token).and_then(|id| {
                let v = self.volumes.get(id)?;
                Some((id, v, v.made.as_deref()?))
            })
        {
            if made.snapshot_id != request.snapshot_id {
                return Err(idempotent_mismatch(op, region));
            }
            return Ok(made_volume_status(id, v, made, now));
        }
        let snapshot = self.usable_snapshot(op, caller, region, &request.snapshot_id, now)?;
        let (snapshot_gib, kms_key) = (snapshot.size_gib, snapshot.kms_key.clone());
        if !ZONES
            .iter()
            .any(|z| request.availability_zone == format!("{region}{z}"))
        {
            return Err(ec2_error(
                op,
                region,
                "InvalidParameterValue",
                &format!("Invalid availability zone: [{}]", request.availability_zone),
            ));
        }
        let size_gib = match request.size_gib {
            Some(size) if size < i64::from(snapshot_gib) => {
                return Err(ec2_error(
                    op,
                    region,
                    "InvalidParameterValue",
                    &format!(
                        "Volume of size {size}GB is smaller than snapshot '{}', expect size >= {snapshot_gib}GB",
                        request.snapshot_id
                    ),
                ));
            }
            Some(size) => u32::try_from(size).unwrap_or(u32::MAX),
            None => snapshot_gib,
        };
        let failed = kms_key
            .as_ref()
            .is_some_and(|key| !self.key_usable(caller, key));
        let id = self.new_id("vol");
        let made = MadeVolume {
            account: caller.clone(),
            region: region.to_owned(),
            volume_type: request
                .volume_type
                .clone()
                .unwrap_or_else(|| "gp2".to_owned()),
            iops: request.iops,
            throughput: request.throughput,
            delete_on_termination: false,
            snapshot_id: request.snapshot_id.clone(),
            attached_to: None,
            tags: request.tags.clone(),
            ready_at: now + self.timing.volume_create,
            failed,
        };
        let volume = SimVolume {
            size_gib,
            kms_key,
            made: None,
        };
        let status = made_volume_status(&id, &volume, &made, now);
        self.volumes.insert(
            id.clone(),
            SimVolume {
                made: Some(Box::new(made)),
                ..volume
            },
        );
        if !request.client_token.is_empty() {
            self.client_tokens.insert(token, id);
        }
        Ok(status)
    }

    /// EC2 `DeleteVolume`: never a volume attached to an instance (`in-use`).
    pub fn delete_volume(
        &mut self,
        caller: &AccountId,
        region: &str,
        volume_id: &str,
        now: Instant,
    ) -> Result<(), CloudError> {
        let op = "DeleteVolume";
        let attached_to = match self.volumes.get(volume_id).map(|v| v.made.as_deref()) {
            Some(Some(made)) if &made.account == caller && made.region == region => {
                made.attached_to.clone()
            }
            // A test's volume belongs to the instance it is attached to.
            Some(None) => match self.instances.values().find(|i| {
                &i.account == caller
                    && i.region == region
                    && i.volumes.iter().any(|(v, _)| v == volume_id)
            }) {
                Some(i) if i.is_terminated(now) => None,
                Some(i) => Some(i.id.clone()),
                None => return Err(volume_not_found(op, region, volume_id)),
            },
            _ => return Err(volume_not_found(op, region, volume_id)),
        };
        if let Some(instance) = attached_to {
            return Err(ec2_error(
                op,
                region,
                "VolumeInUse",
                &format!("Volume {volume_id} is currently attached to {instance}"),
            ));
        }
        self.volumes.remove(volume_id);
        Ok(())
    }
}

fn image_not_found(operation: &str, region: &str, image_id: &str) -> CloudError {
    ec2_error(
        operation,
        region,
        "InvalidAMIID.NotFound",
        &format!("The image id '[{image_id}]' does not exist"),
    )
}

fn volume_not_found(operation: &str, region: &str, volume_id: &str) -> CloudError {
    ec2_error(
        operation,
        region,
        "InvalidVolume.NotFound",
        &format!("The volume '{volume_id}' does not exist."),
    )
}

fn idempotent_mismatch(operation: &str, region: &str) -> CloudError {
    ec2_error(
        operation,
        region,
        "IdempotentParameterMismatch",
        "Arguments on this idempotent request are inconsistent with arguments used in previous \
         request(s).",
    )
}
