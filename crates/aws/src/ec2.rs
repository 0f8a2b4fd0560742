//! EC2: instances and their volumes, and the EBS snapshot calls of workflows A and B.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::{
    Filter, InstanceSpecification, OperationType, ResourceType, SnapshotAttributeName,
    SnapshotState as SdkState, Tag as SdkTag, TagSpecification,
};
use snaprelay_core::config::{InstanceSetup, VolumeSetup};
use snaprelay_core::ids::AccountId;
use snaprelay_core::model::{Instance, SnapshotState, SnapshotStatus, Tag, Volume, VolumeSnapshot};
use snaprelay_core::policy::Selector;
use snaprelay_core::ports::{CloudError, CopyRequest, RegionStatus};

use crate::error::{cloud_error, malformed};

/// AWS caps a filter at 200 values.
pub(crate) const FILTER_VALUES: usize = 200;

pub(crate) fn filter(name: &str, values: impl IntoIterator<Item = impl Into<String>>) -> Filter {
    Filter::builder()
        .name(name)
        .set_values(Some(values.into_iter().map(Into::into).collect()))
        .build()
}

pub async fn regions(client: &Client, region: &str) -> Result<Vec<RegionStatus>, CloudError> {
    let out = client
        .describe_regions()
        .all_regions(true)
        .send()
        .await
        .map_err(|e| cloud_error("EC2", "DescribeRegions", region, e))?;
    Ok(out
        .regions()
        .iter()
        .filter_map(|r| {
            Some(RegionStatus {
                name: r.region_name()?.to_owned(),
                // "opt-in-not-required" | "opted-in" | "not-opted-in"
                enabled: r.opt_in_status() != Some("not-opted-in"),
            })
        })
        .collect())
}

pub async fn find_instances(
    client: &Client,
    region: &str,
    selector: &Selector,
) -> Result<Vec<Instance>, CloudError> {
    // Terminated instances have no volumes left; every other state can be snapshotted.
    let live = filter(
        "instance-state-name",
        ["pending", "running", "stopping", "stopped"],
    );
    let filter_sets: Vec<Vec<Filter>> = match selector {
        // A filter (unlike InstanceIds) does not fail the whole call for an id that is not in
        // this Region, which is what we want with several source Regions.
        Selector::Ids(ids) => ids
            .chunks(FILTER_VALUES)
            .map(|chunk| vec![filter("instance-id", chunk.iter().cloned()), live.clone()])
            .collect(),
        Selector::Tags(tags) => vec![
            tags.iter()
                .map(|(k, v)| filter(&format!("tag:{k}"), [v.clone()]))
                .chain([live.clone()])
                .collect(),
        ],
    };

    let mut instances = Vec::new();
    let mut volume_ids = Vec::new();
    for filters in filter_sets {
        let pages = client
            .describe_instances()
            .set_filters(Some(filters))
            .into_paginator()
            .send()
            .try_collect()
            .await
            .map_err(|e| cloud_error("EC2", "DescribeInstances", region, e))?;
        for reservation in pages.iter().flat_map(|p| p.reservations()) {
            for i in reservation.instances() {
                let Some(id) = i.instance_id() else { continue };
                let name = i
                    .tags()
                    .iter()
                    .find(|t| t.key() == Some("Name"))
                    .and_then(|t| t.value())
                    .map(str::to_owned);
                let volumes: Vec<Volume> = i
                    .block_device_mappings()
                    .iter()
                    .filter_map(|m| {
                        let vol = m.ebs()?.volume_id()?;
                        volume_ids.push(vol.to_owned());
                        Some(Volume {
                            id: vol.to_owned(),
                            device: m.device_name().map(str::to_owned),
                            size_gib: 0,
                            encrypted: false,
                            kms_key_id: None,
                            setup: VolumeSetup {
                                delete_on_termination: m.ebs()?.delete_on_termination(),
                                ..VolumeSetup::default()
                            },
                        })
                    })
                    .collect();
                instances.push(Instance {
                    id: id.to_owned(),
                    region: region.to_owned(),
                    name,
                    volumes,
                    setup: setup_of(i),
                });
            }
        }
    }

    // The block device mappings name the volumes; their encryption comes from DescribeVolumes.
    let mut details: HashMap<String, aws_sdk_ec2::types::Volume> = HashMap::new();
    for chunk in volume_ids.chunks(FILTER_VALUES) {
        let pages = client
            .describe_volumes()
            .filters(filter("volume-id", chunk.iter().cloned()))
            .into_paginator()
            .send()
            .try_collect()
            .await
            .map_err(|e| cloud_error("EC2", "DescribeVolumes", region, e))?;
        for v in pages
            .into_iter()
            .flat_map(|p| p.volumes.unwrap_or_default())
        {
            if let Some(id) = v.volume_id() {
                details.insert(id.to_owned(), v);
            }
        }
    }
    for instance in &mut instances {
        for volume in &mut instance.volumes {
            let Some(d) = details.get(&volume.id) else {
                return Err(malformed(
                    "EC2",
                    "DescribeVolumes",
                    region,
                    format!(
                        "volume {} of instance {} was not found (detached meanwhile?)",
                        volume.id, instance.id
                    ),
                ));
            };
            volume.size_gib = d.size().unwrap_or(0);
            volume.encrypted = d.encrypted().unwrap_or(false);
            volume.kms_key_id = d.kms_key_id().map(str::to_owned);
            volume.setup.volume_type = d.volume_type().map(|t| t.as_str().to_owned());
            volume.setup.iops = d.iops();
            volume.setup.throughput = d.throughput();
        }
    }
    Ok(instances)
}

/// What a restore needs of an instance (SPEC 6.1), as DescribeInstances says it.
fn setup_of(i: &aws_sdk_ec2::types::Instance) -> InstanceSetup {
    InstanceSetup {
        instance_type: i.instance_type().map(|t| t.as_str().to_owned()),
        architecture: i.architecture().map(|a| a.as_str().to_owned()),
        virtualization_type: i.virtualization_type().map(|v| v.as_str().to_owned()),
        ena_support: i.ena_support(),
        // CurrentInstanceBootMode is the mode the instance booted in; BootMode is the AMI's,
        // which may be `uefi-preferred` (either), and says less.
        boot_mode: i
            .current_instance_boot_mode()
            .map(|m| m.as_str().to_owned())
            .or_else(|| i.boot_mode().map(|m| m.as_str().to_owned())),
        root_device_name: i.root_device_name().map(str::to_owned),
        availability_zone: i
            .placement()
            .and_then(|p| p.availability_zone())
            .map(str::to_owned),
        subnet_id: i.subnet_id().map(str::to_owned),
        security_group_ids: i
            .security_groups()
            .iter()
            .filter_map(|g| g.group_id().map(str::to_owned))
            .collect(),
        iam_instance_profile_arn: i
            .iam_instance_profile()
            .and_then(|p| p.arn())
            .map(str::to_owned),
        key_name: i.key_name().map(str::to_owned),
        tags: tag_map(i.tags()),
        platform_details: i.platform_details().map(str::to_owned),
    }
}

fn tag_map(tags: &[SdkTag]) -> BTreeMap<String, String> {
    tags.iter()
        .filter_map(|t| {
            Some((
                t.key()?.to_owned(),
                t.value().unwrap_or_default().to_owned(),
            ))
        })
        .collect()
}

/// Tags as the core sees them.
pub(crate) fn tags_of(tags: &[SdkTag]) -> Vec<Tag> {
    tags.iter()
        .filter_map(|t| Some(Tag::new(t.key()?, t.value().unwrap_or_default())))
        .collect()
}

/// The tags of new snapshots, if any.
fn tag_specification(tags: &[Tag]) -> Option<Vec<TagSpecification>> {
    tags_at_creation(ResourceType::Snapshot, tags).map(|t| vec![t])
}

/// The tags of a new resource of `resource_type`, if any: EC2 refuses an empty tag
/// specification ("Tag specification must have at least one tag"), so none is sent for no
/// tags.
pub(crate) fn tags_at_creation(
    resource_type: ResourceType,
    tags: &[Tag],
) -> Option<TagSpecification> {
    if tags.is_empty() {
        return None;
    }
    Some(
        TagSpecification::builder()
            .resource_type(resource_type)
            .set_tags(Some(
                tags.iter()
                    .map(|t| SdkTag::builder().key(&t.key).value(&t.value).build())
                    .collect(),
            ))
            .build(),
    )
}

pub async fn create_snapshots(
    client: &Client,
    region: &str,
    instance_id: &str,
    description: &str,
    tags: &[Tag],
) -> Result<Vec<VolumeSnapshot>, CloudError> {
    let out = client
        .create_snapshots()
        .instance_specification(
            InstanceSpecification::builder()
                .instance_id(instance_id)
                .exclude_boot_volume(false)
                .build(),
        )
        .description(description)
        .set_tag_specifications(tag_specification(tags))
        .send()
        .await
        .map_err(|e| cloud_error("EC2", "CreateSnapshots", region, e))?;
    out.snapshots()
        .iter()
        .map(|s| match (s.snapshot_id(), s.volume_id()) {
            (Some(snapshot_id), Some(volume_id)) => Ok(VolumeSnapshot {
                snapshot_id: snapshot_id.to_owned(),
                volume_id: volume_id.to_owned(),
            }),
            _ => Err(malformed(
                "EC2",
                "CreateSnapshots",
                region,
                format!("a snapshot of {instance_id} came back without its ids"),
            )),
        })
        .collect()
}

pub async fn describe_snapshots(
    client: &Client,
    region: &str,
    ids: &[String],
) -> Result<Vec<SnapshotStatus>, CloudError> {
    let mut statuses = Vec::with_capacity(ids.len());
    // A `snapshot-id` filter rather than SnapshotIds: a snapshot not yet visible (eventual
    // consistency right after CreateSnapshots / CopySnapshot) is then missing from the answer
    // instead of failing the whole batch with InvalidSnapshot.NotFound.
    for chunk in ids.chunks(FILTER_VALUES) {
        let pages = client
            .describe_snapshots()
            .filters(filter("snapshot-id", chunk.iter().cloned()))
            .into_paginator()
            .send()
            .try_collect()
            .await
            .map_err(|e| cloud_error("EC2", "DescribeSnapshots", region, e))?;
        statuses.extend(
            pages
                .iter()
                .flat_map(|p| p.snapshots())
                .filter_map(status_of),
        );
    }
    Ok(statuses)
}

/// The caller's own snapshots carrying `tag` (OwnerIds self: shared and public ones are not
/// the caller's to manage).
pub async fn find_snapshots(
    client: &Client,
    region: &str,
    tag: &Tag,
) -> Result<Vec<SnapshotStatus>, CloudError> {
    let pages = client
        .describe_snapshots()
        .owner_ids("self")
        .filters(filter(&format!("tag:{}", tag.key), [tag.value.clone()]))
        .into_paginator()
        .send()
        .try_collect()
        .await
        .map_err(|e| cloud_error("EC2", "DescribeSnapshots", region, e))?;
    Ok(pages
        .iter()
        .flat_map(|p| p.snapshots())
        .filter_map(status_of)
        .collect())
}

pub async fn snapshot_shares(
    client: &Client,
    region: &str,
    snapshot_id: &str,
) -> Result<Vec<String>, CloudError> {
    let out = client
        .describe_snapshot_attribute()
        .snapshot_id(snapshot_id)
        .attribute(SnapshotAttributeName::CreateVolumePermission)
        .send()
        .await
        .map_err(|e| cloud_error("EC2", "DescribeSnapshotAttribute", region, e))?;
    Ok(out
        .create_volume_permissions()
        .iter()
        .filter_map(|p| {
            p.user_id()
                .map(str::to_owned)
                .or_else(|| p.group().map(|g| g.as_str().to_owned()))
        })
        .collect())
}

/// A snapshot as DescribeSnapshots answers it; `None` without an id.
fn status_of(s: &aws_sdk_ec2::types::Snapshot) -> Option<SnapshotStatus> {
    let id = s.snapshot_id()?;
    Some(SnapshotStatus {
        id: id.to_owned(),
        state: match s.state() {
            Some(SdkState::Pending) => SnapshotState::Pending,
            Some(SdkState::Completed) => SnapshotState::Completed,
            Some(SdkState::Error) => SnapshotState::Error,
            _ => SnapshotState::Other,
        },
        progress: s
            .progress()
            .and_then(|p| p.trim_end_matches('%').parse().ok()),
        state_message: s
            .state_message()
            .filter(|m| !m.is_empty())
            .map(str::to_owned),
        volume_id: s.volume_id().map(str::to_owned),
        encrypted: s.encrypted().unwrap_or(false),
        kms_key_id: s.kms_key_id().map(str::to_owned),
        tags: tags_of(s.tags()),
        volume_size_gib: s.volume_size().map(i64::from),
        full_size_bytes: s
            .full_snapshot_size_in_bytes()
            .and_then(|b| u64::try_from(b).ok()),
    })
}

pub async fn set_snapshot_share(
    client: &Client,
    region: &str,
    snapshot_id: &str,
    account: &AccountId,
    shared: bool,
) -> Result<(), CloudError> {
    // The flat form (Attribute, OperationType, UserId.N) of ModifySnapshotAttribute:
    // https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_ModifySnapshotAttribute.html
    client
        .modify_snapshot_attribute()
        .snapshot_id(snapshot_id)
        .attribute(SnapshotAttributeName::CreateVolumePermission)
        .operation_type(if shared {
            OperationType::Add
        } else {
            OperationType::Remove
        })
        .user_ids(account.as_str())
        .send()
        .await
        .map_err(|e| cloud_error("EC2", "ModifySnapshotAttribute", region, e))?;
    Ok(())
}

pub async fn copy_snapshot(
    client: &Client,
    region: &str,
    request: &CopyRequest,
) -> Result<String, CloudError> {
    let mut call = client
        .copy_snapshot()
        .source_region(&request.source_region)
        .source_snapshot_id(&request.source_snapshot_id)
        .description(&request.description)
        .set_tag_specifications(tag_specification(&request.tags));
    if let Some(key) = &request.kms_key_arn {
        // KmsKeyId is honoured only together with Encrypted = true.
        call = call.encrypted(true).kms_key_id(key);
    }
    let out = call
        .send()
        .await
        .map_err(|e| cloud_error("EC2", "CopySnapshot", region, e))?;
    out.snapshot_id().map(str::to_owned).ok_or_else(|| {
        malformed(
            "EC2",
            "CopySnapshot",
            region,
            format!(
                "the copy of {} came back without an id",
                request.source_snapshot_id
            ),
        )
    })
}

pub async fn delete_snapshot(
    client: &Client,
    region: &str,
    snapshot_id: &str,
) -> Result<(), CloudError> {
    client
        .delete_snapshot()
        .snapshot_id(snapshot_id)
        .send()
        .await
        .map_err(|e| cloud_error("EC2", "DeleteSnapshot", region, e))?;
    Ok(())
}
