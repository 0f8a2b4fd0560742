//! EC2 and EBS: instances with their volumes, crash-consistent snapshots, `createVolumePermission`
//! shares and cross-Region, cross-account copies, each with the rule AWS applies.

use std::collections::BTreeSet;

use snaprelay_core::config::{InstanceSetup, VolumeSetup};
use snaprelay_core::engine::Service;
use snaprelay_core::ids::AccountId;
use snaprelay_core::model::{Instance, SnapshotState, SnapshotStatus, Tag, Volume, VolumeSnapshot};
use snaprelay_core::policy::Selector;
use snaprelay_core::ports::{ChangedBlocks, CloudError, CopyRequest};
use tokio::time::Instant;

use crate::faults::error;
use crate::world::{PackedTags, SimInstance, SimSnapshot, World, lifecycle};

/// State message of a copy whose key cannot be used (AWS checks keys asynchronously: "the
/// action can appear to complete, but eventually fails", API_CopySnapshot.html). Same text as
/// the moto harness uses.
pub const KEY_NOT_ACCESSIBLE: &str = "Given key ID is not accessible";

/// The EBS direct API's block size: 512 KiB.
pub const BLOCK_SIZE: u64 = 512 * 1024;

/// The 512 KiB blocks of a volume of `size_gib`.
fn blocks_of(size_gib: u32) -> u64 {
    u64::from(size_gib) * (1 << 30) / BLOCK_SIZE
}

impl SimSnapshot {
    /// The blocks holding data: half the volume at first, one more per block written.
    fn data_blocks(&self) -> u64 {
        let total = blocks_of(self.size_gib);
        (total / 2).saturating_add(self.writes).min(total)
    }
}

/// What `ModifySnapshotAttribute` answers for a snapshot under the `aws/ebs` key.
const DEFAULT_KEY_SHARE: &str = "Encrypted snapshots with EBS default key cannot be shared";

fn snapshot_not_found(operation: &str, region: &str, id: &str) -> CloudError {
    error(
        "ec2",
        operation,
        region,
        "InvalidSnapshot.NotFound",
        &format!("The snapshot '{id}' does not exist."),
    )
}

pub(crate) fn matches(
    selector: &Selector,
    id: &str,
    tags: &std::collections::BTreeMap<String, String>,
) -> bool {
    match selector {
        Selector::Ids(ids) => ids.iter().any(|i| i.eq_ignore_ascii_case(id)),
        Selector::Tags(wanted) => wanted.iter().all(|(k, v)| tags.get(k) == Some(v)),
    }
}

impl World {
    /// EC2 `DescribeInstances` of the instances (not terminated) a policy selects, with what
    /// a restore rebuilds. A test's instance is x86_64, hvm, with ENA, in the first subnet
    /// of its Region's default VPC, and its volumes are gp3 (3,000 IOPS, 125 MiB/s) deleted
    /// on termination.
    pub fn find_instances(
        &self,
        caller: &AccountId,
        region: &str,
        selector: &Selector,
        now: Instant,
    ) -> Vec<Instance> {
        self.instances
            .values()
            .filter(|i| &i.account == caller && i.region == region && !i.is_terminated(now))
            .filter(|i| matches(selector, &i.id, &i.tags))
            .map(|i| Instance {
                id: i.id.clone(),
                region: i.region.clone(),
                name: i.tags.get("Name").cloned(),
                volumes: i
                    .volumes
                    .iter()
                    .filter_map(|(vid, device)| {
                        let v = self.volumes.get(vid)?;
                        let setup = match &v.made {
                            Some(made) => VolumeSetup {
                                volume_type: Some(made.volume_type.clone()),
                                iops: made.iops,
                                throughput: made.throughput,
                                delete_on_termination: Some(made.delete_on_termination),
                            },
                            None => VolumeSetup {
                                volume_type: Some("gp3".to_owned()),
                                iops: Some(3000),
                                throughput: Some(125),
                                delete_on_termination: Some(true),
                            },
                        };
                        Some(Volume {
                            id: vid.clone(),
                            device: Some(device.clone()),
                            size_gib: i32::try_from(v.size_gib).unwrap_or(i32::MAX),
                            encrypted: v.kms_key.is_some(),
                            kms_key_id: v.kms_key.clone(),
                            setup,
                        })
                    })
                    .collect(),
                setup: instance_setup(i),
            })
            .collect()
    }

    /// EC2 `CreateSnapshots`: one snapshot per attached volume, all started at the same instant.
    /// A volume's first snapshot is full, later ones incremental.
    pub fn create_snapshots(
        &mut self,
        caller: &AccountId,
        region: &str,
        instance_id: &str,
        tags: &[Tag],
        now: Instant,
    ) -> Result<Vec<VolumeSnapshot>, CloudError> {
        let instance = self
            .instances
            .get(instance_id)
            .filter(|i| &i.account == caller && i.region == region && !i.is_terminated(now))
            .ok_or_else(|| {
                error(
                    "ec2",
                    "CreateSnapshots",
                    region,
                    "InvalidInstanceID.NotFound",
                    &format!("The instance ID '{instance_id}' does not exist"),
                )
            })?;
        let volumes = instance.volumes.clone();
        let mut made = Vec::new();
        for (volume_id, _) in volumes {
            let Some((size_gib, kms_key)) = self
                .volumes
                .get(&volume_id)
                .map(|v| (v.size_gib, v.kms_key.clone()))
            else {
                continue;
            };
            let incremental = !self.snapshotted_volumes.insert(volume_id.clone());
            let writes = self.volume_writes.get(&volume_id).copied().unwrap_or(0);
            let t = self.timing.clone();
            let duration = t.duration(
                t.ebs_snapshot_base,
                t.ebs_snapshot_per_gib,
                size_gib,
                incremental,
                &mut self.rng,
            );
            let id = self.new_id("snap");
            self.snapshots.insert(
                id.clone(),
                Box::new(SimSnapshot {
                    id: id.clone(),
                    account: caller.clone(),
                    region: region.to_owned(),
                    volume_id: volume_id.clone(),
                    size_gib,
                    kms_key,
                    started: now,
                    duration,
                    failure: None,
                    shared_with: BTreeSet::new(),
                    tags: PackedTags::pack(tags),
                    copy_of: None,
                    chain: duration,
                    writes,
                }),
            );
            made.push(VolumeSnapshot {
                snapshot_id: id,
                volume_id,
            });
        }
        Ok(made)
    }

    /// EC2 `DescribeSnapshots` with a `snapshot-id` filter: the caller's snapshots, and those
    /// shared with it, among `ids`; an unknown id is simply absent.
    pub fn describe_snapshots(
        &self,
        caller: &AccountId,
        region: &str,
        ids: &[String],
        now: Instant,
    ) -> Vec<SnapshotStatus> {
        ids.iter()
            .filter_map(|id| self.snapshots.get(id))
            .filter(|s| s.region == region)
            .filter(|s| &s.account == caller || s.shared_with.contains(caller))
            .map(|s| {
                let (state, progress) = lifecycle(s.started, s.duration, s.failure.as_deref(), now);
                SnapshotStatus {
                    id: s.id.clone(),
                    state,
                    progress: Some(progress),
                    state_message: (state == SnapshotState::Error)
                        .then(|| s.failure.clone())
                        .flatten(),
                    volume_id: Some(s.volume_id.clone()),
                    encrypted: s.kms_key.is_some(),
                    kms_key_id: s.kms_key.clone(),
                    tags: s.tags.unpack(),
                    full_size_bytes: Some(s.data_blocks() * BLOCK_SIZE),
                    volume_size_gib: Some(i64::from(s.size_gib)),
                }
            })
            .collect()
    }

    /// EBS direct `ListChangedBlocks` between two snapshots of one volume's lineage (its
    /// snapshots and their copies), each the caller's or shared with it, in `region`. In the
    /// simulator's model of data every block written between the two changed: the count is
    /// the writes between them, at most the volume's blocks.
    pub fn changed_blocks(
        &self,
        caller: &AccountId,
        region: &str,
        first: &str,
        second: &str,
    ) -> Result<ChangedBlocks, CloudError> {
        let op = "ListChangedBlocks";
        let visible = |id: &str| {
            self.snapshots
                .get(id)
                .filter(|s| s.region == region)
                .filter(|s| &s.account == caller || s.shared_with.contains(caller))
                .ok_or_else(|| {
                    error(
                        "ebs",
                        op,
                        region,
                        "ResourceNotFoundException",
                        &format!("The snapshot '{id}' does not exist."),
                    )
                })
        };
        let (a, b) = (visible(first)?, visible(second)?);
        if a.volume_id != b.volume_id {
            // "The two snapshots must be from the same volume lineage", ListChangedBlocks:
            // https://docs.aws.amazon.com/ebs/latest/APIReference/API_ListChangedBlocks.html
            return Err(error(
                "ebs",
                op,
                region,
                "ValidationException",
                "The snapshots must be of the same volume lineage",
            ));
        }
        Ok(ChangedBlocks {
            blocks: b.writes.abs_diff(a.writes).min(blocks_of(b.size_gib)),
            block_size: BLOCK_SIZE,
        })
    }

    /// EC2 `ModifySnapshotAttribute` on `createVolumePermission` for one account. A snapshot
    /// under an AWS managed key cannot be shared.
    pub fn set_snapshot_share(
        &mut self,
        caller: &AccountId,
        region: &str,
        snapshot_id: &str,
        account: &AccountId,
        shared: bool,
    ) -> Result<(), CloudError> {
        let op = "ModifySnapshotAttribute";
        let snapshot = self
            .snapshots
            .get(snapshot_id)
            .filter(|s| &s.account == caller && s.region == region)
            .ok_or_else(|| snapshot_not_found(op, region, snapshot_id))?;
        if shared
            && let Some(key) = &snapshot.kms_key
            && self.key_is_aws_managed(key)
        {
            return Err(error(
                "ec2",
                op,
                region,
                "OperationNotPermitted",
                DEFAULT_KEY_SHARE,
            ));
        }
        let Some(snapshot) = self.snapshots.get_mut(snapshot_id) else {
            return Err(snapshot_not_found(op, region, snapshot_id));
        };
        if shared {
            snapshot.shared_with.insert(account.clone());
        } else {
            snapshot.shared_with.remove(account);
        }
        Ok(())
    }

    /// `DescribeSnapshotAttribute` `createVolumePermission` of one of the caller's snapshots.
    pub fn snapshot_shares(
        &self,
        caller: &AccountId,
        region: &str,
        snapshot_id: &str,
    ) -> Result<Vec<String>, CloudError> {
        self.snapshots
            .get(snapshot_id)
            .filter(|s| &s.account == caller && s.region == region)
            .map(|s| s.shared_with.iter().map(ToString::to_string).collect())
            .ok_or_else(|| snapshot_not_found("DescribeSnapshotAttribute", region, snapshot_id))
    }

    /// EC2 `CopySnapshot`, called in the destination Region by `caller`.
    pub fn copy_snapshot(
        &mut self,
        caller: &AccountId,
        region: &str,
        request: &CopyRequest,
        now: Instant,
    ) -> Result<String, CloudError> {
        let op = "CopySnapshot";
        let source_id = &request.source_snapshot_id;
        // The source must be the caller's or shared with it, in SourceRegion:
        // https://docs.aws.amazon.com/ebs/latest/userguide/ebs-copy-snapshot.html
        let source = self
            .snapshots
            .get(source_id)
            .filter(|s| s.region == request.source_region)
            .filter(|s| &s.account == caller || s.shared_with.contains(caller))
            .cloned()
            .ok_or_else(|| snapshot_not_found(op, region, source_id))?;
        let (state, _) = lifecycle(
            source.started,
            source.duration,
            source.failure.as_deref(),
            now,
        );
        if state != SnapshotState::Completed {
            return Err(error(
                "ec2",
                op,
                region,
                "IncorrectState",
                &format!("Snapshot {source_id} is in invalid state - {state:?}").to_lowercase(),
            ));
        }
        // Beyond the quota a copy is refused: "You can have up to twenty concurrent snapshot
        // copy requests per destination Region" (ebs-copy-snapshot.html).
        if !self.admit_copy(Service::Ebs, caller, region, now) {
            return Err(error(
                "ec2",
                op,
                region,
                "ResourceLimitExceeded",
                &format!(
                    "You have reached the limit of {} concurrent snapshot copies to this Region.",
                    self.quotas.ebs_copies
                ),
            ));
        }

        let mut failure = None;
        let kms_key = match &request.kms_key_arn {
            Some(key) => match self.find_key(caller, region, key) {
                Some(k) if k.usable_by(caller) => Some(k.arn.clone()),
                Some(k) => {
                    failure = Some(KEY_NOT_ACCESSIBLE.to_owned());
                    Some(k.arn.clone())
                }
                None => {
                    failure = Some(KEY_NOT_ACCESSIBLE.to_owned());
                    Some(key.clone())
                }
            },
            // Without KmsKeyId an encrypted snapshot is copied under the caller's aws/ebs key.
            None if source.kms_key.is_some() => {
                Some(self.default_key(caller, region, "alias/aws/ebs"))
            }
            None => None,
        };
        if let Some(source_key) = &source.kms_key
            && !self.key_usable(caller, source_key)
        {
            failure = Some(KEY_NOT_ACCESSIBLE.to_owned());
        }
        if let Some(message) = self.faults.on_copy() {
            failure.get_or_insert(message);
        }

        // Incremental when an earlier copy of the same volume under the same key is here
        // (simplified: AWS also needs that copy to be complete and still present).
        let incremental = failure.is_none()
            && !self.copied_volumes.insert((
                caller.clone(),
                region.to_owned(),
                source.volume_id.clone(),
                kms_key.clone(),
            ));
        let t = self.timing.clone();
        let duration = if failure.is_some() {
            t.key_failure_after
        } else {
            t.duration(
                t.ebs_copy_base,
                t.ebs_copy_per_gib,
                source.size_gib,
                incremental,
                &mut self.rng,
            )
        };
        self.start_copy(Service::Ebs, caller, region, now + duration, duration);
        let id = self.new_id("snap");
        self.snapshots.insert(
            id.clone(),
            Box::new(SimSnapshot {
                id: id.clone(),
                account: caller.clone(),
                region: region.to_owned(),
                volume_id: source.volume_id.clone(),
                size_gib: source.size_gib,
                kms_key,
                started: now,
                duration,
                failure,
                shared_with: BTreeSet::new(),
                tags: PackedTags::pack(&request.tags),
                copy_of: Some(source.id.clone()),
                chain: source.chain + duration,
                writes: source.writes,
            }),
        );
        Ok(id)
    }

    /// EC2 `DeleteSnapshot` of one of the caller's snapshots. Copies still reading from it
    /// fail ("Deleting a source before its copy finishes can fail the copy", SPEC section 3).
    pub fn delete_snapshot(
        &mut self,
        caller: &AccountId,
        region: &str,
        snapshot_id: &str,
        now: Instant,
    ) -> Result<(), CloudError> {
        let owned = self
            .snapshots
            .get(snapshot_id)
            .is_some_and(|s| &s.account == caller && s.region == region);
        if !owned {
            return Err(snapshot_not_found("DeleteSnapshot", region, snapshot_id));
        }
        if let Some(image) = self.image_using(snapshot_id) {
            return Err(error(
                "ec2",
                "DeleteSnapshot",
                region,
                "InvalidSnapshot.InUse",
                &format!("The snapshot {snapshot_id} is currently in use by {image}"),
            ));
        }
        self.snapshots.remove(snapshot_id);
        for copy in self.snapshots.values_mut() {
            if copy.copy_of.as_deref() == Some(snapshot_id)
                && now < copy.started + copy.duration
                && copy.failure.is_none()
            {
                copy.failure = Some(format!("source snapshot {snapshot_id} was deleted"));
            }
        }
        Ok(())
    }
}

/// What `DescribeInstances` says of an instance that a restore rebuilds.
fn instance_setup(i: &SimInstance) -> InstanceSetup {
    let launch = i.launch.as_deref();
    InstanceSetup {
        instance_type: Some(i.instance_type.to_string()),
        architecture: Some(launch.map_or("x86_64", |l| &l.architecture).to_owned()),
        virtualization_type: Some(launch.map_or("hvm", |l| &l.virtualization_type).to_owned()),
        ena_support: Some(launch.is_none_or(|l| l.ena_support)),
        boot_mode: match launch {
            Some(l) => l.boot_mode.clone(),
            None => Some("legacy-bios".to_owned()),
        },
        root_device_name: match launch {
            Some(l) => Some(l.root_device_name.clone()),
            None => i.volumes.first().map(|(_, device)| device.clone()),
        },
        availability_zone: Some(i.availability_zone.clone()),
        subnet_id: i.subnet_id.clone(),
        security_group_ids: i.security_group_ids.clone(),
        iam_instance_profile_arn: i.iam_instance_profile_arn.clone(),
        key_name: i.key_name.clone(),
        tags: i.tags.clone(),
        platform_details: Some(i.platform.to_string()),
    }
}
