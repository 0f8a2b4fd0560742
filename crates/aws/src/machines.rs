//! EC2 for a restore (SPEC 6.2, 6.3): the default network, security groups, key pairs, the
//! image registered from replica snapshots, the instance launched from it, and volumes made
//! from snapshots.
//!
//! Everything made here is tagged in the call that makes it (`TagSpecifications`), so that a
//! resource never exists untagged: `gc` and the next drill find what a restore left by its
//! tags. Look-ups by id use filters, so an id that does not exist (or is not visible yet) is
//! left out of the answer instead of failing the whole call.

use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::{
    ArchitectureValues, BlockDeviceMapping, BootModeValues, EbsBlockDevice, Filter,
    IamInstanceProfileSpecification, InstanceNetworkInterfaceSpecification, InstanceType,
    ResourceType, VolumeType,
};
use snaprelay_core::model::Tag;
use snaprelay_core::ports::{
    AttachedVolume, CloudError, Find, ImageRequest, ImageStatus, LaunchRequest, MachineStatus,
    Network, SecurityGroup, Subnet, VolumeRequest, VolumeStatus,
};

use crate::ec2::{FILTER_VALUES, filter, tags_at_creation, tags_of};
use crate::error::{cloud_error, malformed};

/// The calls a [`Find`] makes, one filter each: a chunk of ids under `id_filter`, a name
/// under `name_filter`, or the `tag-key` filter. No ids, no call.
fn filters_of(find: &Find<'_>, id_filter: &str, name_filter: &str) -> Vec<Filter> {
    match find {
        Find::Ids(ids) => ids
            .chunks(FILTER_VALUES)
            .map(|chunk| filter(id_filter, chunk.iter().cloned()))
            .collect(),
        Find::Name(name) => vec![filter(name_filter, [*name])],
        Find::TagKey(key) => vec![filter("tag-key", [*key])],
    }
}

/// A size in GiB as the SDK takes it. EBS volumes stop at 64 TiB, so a larger number is a
/// mistake that AWS is left to refuse (with its own message) rather than one made smaller here.
fn gib(size: i64) -> i32 {
    i32::try_from(size).unwrap_or(i32::MAX)
}

fn nonempty<T>(items: Vec<T>) -> Option<Vec<T>> {
    (!items.is_empty()).then_some(items)
}

// ------------------------------------------------------------------------------ network

/// The names of the Region's zones the caller may use. Without `AllAvailabilityZones`, AWS
/// answers the Availability Zones and the opted-in Local and Wavelength Zones; a zone whose
/// state is `impaired` or `constrained` still takes volumes, so no state is left out here.
pub async fn availability_zones(client: &Client, region: &str) -> Result<Vec<String>, CloudError> {
    let out = client
        .describe_availability_zones()
        .send()
        .await
        .map_err(|e| cloud_error("EC2", "DescribeAvailabilityZones", region, e))?;
    Ok(out
        .availability_zones()
        .iter()
        .filter_map(|z| z.zone_name().map(str::to_owned))
        .collect())
}

pub async fn default_network(client: &Client, region: &str) -> Result<Option<Network>, CloudError> {
    let vpcs = client
        .describe_vpcs()
        .filters(filter("isDefault", ["true"]))
        .into_paginator()
        .send()
        .try_collect()
        .await
        .map_err(|e| cloud_error("EC2", "DescribeVpcs", region, e))?;
    let Some(vpc_id) = vpcs
        .iter()
        .flat_map(|p| p.vpcs())
        .find_map(|v| v.vpc_id())
        .map(str::to_owned)
    else {
        return Ok(None);
    };

    let pages = client
        .describe_subnets()
        .filters(filter("vpc-id", [vpc_id.as_str()]))
        .into_paginator()
        .send()
        .try_collect()
        .await
        .map_err(|e| cloud_error("EC2", "DescribeSubnets", region, e))?;
    let mut subnets: Vec<Subnet> = pages
        .iter()
        .flat_map(|p| p.subnets())
        .filter_map(subnet_of)
        .collect();
    // AWS lists subnets in no promised order; a restore picks by zone, the same way each time.
    subnets.sort_by(|a, b| (&a.availability_zone, &a.id).cmp(&(&b.availability_zone, &b.id)));

    let groups = client
        .describe_security_groups()
        .filters(filter("vpc-id", [vpc_id.as_str()]))
        .filters(filter("group-name", ["default"]))
        .into_paginator()
        .send()
        .try_collect()
        .await
        .map_err(|e| cloud_error("EC2", "DescribeSecurityGroups", region, e))?;
    let default_security_group = groups
        .iter()
        .flat_map(|p| p.security_groups())
        .find_map(|g| g.group_id())
        .map(str::to_owned);

    Ok(Some(Network {
        vpc_id,
        subnets,
        default_security_group,
    }))
}

fn subnet_of(s: &aws_sdk_ec2::types::Subnet) -> Option<Subnet> {
    Some(Subnet {
        id: s.subnet_id()?.to_owned(),
        vpc_id: s.vpc_id().unwrap_or_default().to_owned(),
        availability_zone: s.availability_zone().unwrap_or_default().to_owned(),
    })
}

pub async fn subnets(
    client: &Client,
    region: &str,
    ids: &[String],
) -> Result<Vec<Subnet>, CloudError> {
    let mut found = Vec::new();
    for chunk in ids.chunks(FILTER_VALUES) {
        let pages = client
            .describe_subnets()
            .filters(filter("subnet-id", chunk.iter().cloned()))
            .into_paginator()
            .send()
            .try_collect()
            .await
            .map_err(|e| cloud_error("EC2", "DescribeSubnets", region, e))?;
        found.extend(pages.iter().flat_map(|p| p.subnets()).filter_map(subnet_of));
    }
    Ok(found)
}

pub async fn key_pairs(
    client: &Client,
    region: &str,
    names: &[String],
) -> Result<Vec<String>, CloudError> {
    let mut found = Vec::new();
    // A `key-name` filter: KeyNames fails the whole call (InvalidKeyPair.NotFound) for one
    // missing name. DescribeKeyPairs is not paginated.
    for chunk in names.chunks(FILTER_VALUES) {
        let out = client
            .describe_key_pairs()
            .filters(filter("key-name", chunk.iter().cloned()))
            .send()
            .await
            .map_err(|e| cloud_error("EC2", "DescribeKeyPairs", region, e))?;
        found.extend(
            out.key_pairs()
                .iter()
                .filter_map(|k| k.key_name().map(str::to_owned)),
        );
    }
    Ok(found)
}

// ------------------------------------------------------------------------------ security groups

pub async fn find_security_groups(
    client: &Client,
    region: &str,
    find: &Find<'_>,
) -> Result<Vec<SecurityGroup>, CloudError> {
    let mut found = Vec::new();
    for f in filters_of(find, "group-id", "group-name") {
        let pages = client
            .describe_security_groups()
            .filters(f)
            .into_paginator()
            .send()
            .try_collect()
            .await
            .map_err(|e| cloud_error("EC2", "DescribeSecurityGroups", region, e))?;
        found.extend(
            pages
                .iter()
                .flat_map(|p| p.security_groups())
                .filter_map(|g| {
                    Some(SecurityGroup {
                        id: g.group_id()?.to_owned(),
                        name: g.group_name().unwrap_or_default().to_owned(),
                        vpc_id: g.vpc_id().map(str::to_owned),
                        tags: tags_of(g.tags()),
                    })
                }),
        );
    }
    Ok(found)
}

pub async fn create_security_group(
    client: &Client,
    region: &str,
    vpc_id: &str,
    name: &str,
    description: &str,
    tags: &[Tag],
) -> Result<String, CloudError> {
    let out = client
        .create_security_group()
        .vpc_id(vpc_id)
        .group_name(name)
        .description(description)
        .set_tag_specifications(
            tags_at_creation(ResourceType::SecurityGroup, tags).map(|t| vec![t]),
        )
        .send()
        .await
        .map_err(|e| cloud_error("EC2", "CreateSecurityGroup", region, e))?;
    out.group_id().map(str::to_owned).ok_or_else(|| {
        malformed(
            "EC2",
            "CreateSecurityGroup",
            region,
            format!("security group {name} in {vpc_id} came back without an id"),
        )
    })
}

/// A new security group allows all outbound traffic
/// (https://docs.aws.amazon.com/vpc/latest/userguide/security-group-rules.html); a restored
/// machine is to reach nothing until someone decides otherwise, so every egress rule goes.
pub async fn revoke_all_egress(
    client: &Client,
    region: &str,
    group_id: &str,
) -> Result<(), CloudError> {
    let out = client
        .describe_security_groups()
        .group_ids(group_id)
        .send()
        .await
        .map_err(|e| cloud_error("EC2", "DescribeSecurityGroups", region, e))?;
    let rules: Vec<_> = out
        .security_groups()
        .iter()
        .filter(|g| g.group_id() == Some(group_id))
        .flat_map(|g| g.ip_permissions_egress().iter().cloned())
        .collect();
    if rules.is_empty() {
        return Ok(());
    }
    client
        .revoke_security_group_egress()
        .group_id(group_id)
        .set_ip_permissions(Some(rules))
        .send()
        .await
        .map_err(|e| cloud_error("EC2", "RevokeSecurityGroupEgress", region, e))?;
    Ok(())
}

pub async fn delete_security_group(
    client: &Client,
    region: &str,
    group_id: &str,
) -> Result<(), CloudError> {
    client
        .delete_security_group()
        .group_id(group_id)
        .send()
        .await
        .map_err(|e| cloud_error("EC2", "DeleteSecurityGroup", region, e))?;
    Ok(())
}

// ------------------------------------------------------------------------------ images

pub async fn find_images(
    client: &Client,
    region: &str,
    find: &Find<'_>,
) -> Result<Vec<ImageStatus>, CloudError> {
    let mut found = Vec::new();
    for f in filters_of(find, "image-id", "name") {
        // Owners self: public and shared images are not the caller's to clean up.
        let pages = client
            .describe_images()
            .owners("self")
            .filters(f)
            .into_paginator()
            .send()
            .try_collect()
            .await
            .map_err(|e| cloud_error("EC2", "DescribeImages", region, e))?;
        found.extend(pages.iter().flat_map(|p| p.images()).filter_map(|i| {
            Some(ImageStatus {
                id: i.image_id()?.to_owned(),
                name: i.name().unwrap_or_default().to_owned(),
                state: i
                    .state()
                    .map(|s| s.as_str())
                    .unwrap_or("unknown")
                    .to_owned(),
                tags: tags_of(i.tags()),
            })
        }));
    }
    Ok(found)
}

/// RegisterImage from snapshots
/// (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_RegisterImage.html). No
/// `Encrypted` or `KmsKeyId` in the mappings: a volume made of an encrypted snapshot is
/// encrypted with the snapshot's key, which is the replica's key in this place.
pub async fn register_image(
    client: &Client,
    region: &str,
    request: &ImageRequest,
) -> Result<String, CloudError> {
    let mappings = request
        .volumes
        .iter()
        .map(|v| {
            BlockDeviceMapping::builder()
                .device_name(&v.device_name)
                .ebs(
                    EbsBlockDevice::builder()
                        .snapshot_id(&v.snapshot_id)
                        .set_volume_size(v.size_gib.map(gib))
                        .set_volume_type(v.volume_type.as_deref().map(VolumeType::from))
                        .set_iops(v.iops)
                        .set_throughput(v.throughput)
                        .delete_on_termination(v.delete_on_termination)
                        .build(),
                )
                .build()
        })
        .collect();
    let out = client
        .register_image()
        .name(&request.name)
        .set_description(Some(request.description.clone()).filter(|d| !d.is_empty()))
        .root_device_name(&request.root_device_name)
        .set_block_device_mappings(Some(mappings))
        .set_architecture(
            request
                .architecture
                .as_deref()
                .map(ArchitectureValues::from),
        )
        .set_virtualization_type(request.virtualization_type.clone())
        .set_ena_support(request.ena_support)
        .set_boot_mode(request.boot_mode.as_deref().map(BootModeValues::from))
        .set_tag_specifications(
            tags_at_creation(ResourceType::Image, &request.tags).map(|t| vec![t]),
        )
        .send()
        .await
        .map_err(|e| cloud_error("EC2", "RegisterImage", region, e))?;
    out.image_id().map(str::to_owned).ok_or_else(|| {
        malformed(
            "EC2",
            "RegisterImage",
            region,
            format!("image {} came back without an id", request.name),
        )
    })
}

pub async fn deregister_image(
    client: &Client,
    region: &str,
    image_id: &str,
) -> Result<(), CloudError> {
    client
        .deregister_image()
        .image_id(image_id)
        .send()
        .await
        .map_err(|e| cloud_error("EC2", "DeregisterImage", region, e))?;
    Ok(())
}

// ------------------------------------------------------------------------------ instances

fn machine_of(i: &aws_sdk_ec2::types::Instance) -> Option<MachineStatus> {
    Some(MachineStatus {
        id: i.instance_id()?.to_owned(),
        state: i
            .state()
            .and_then(|s| s.name())
            .map(|n| n.as_str())
            .unwrap_or("unknown")
            .to_owned(),
        volumes: i
            .block_device_mappings()
            .iter()
            .filter_map(|m| {
                Some(AttachedVolume {
                    device_name: m.device_name()?.to_owned(),
                    volume_id: m.ebs()?.volume_id()?.to_owned(),
                })
            })
            .collect(),
        public_ip: i.public_ip_address().map(str::to_owned),
        tags: tags_of(i.tags()),
    })
}

pub async fn find_machines(
    client: &Client,
    region: &str,
    find: &Find<'_>,
) -> Result<Vec<MachineStatus>, CloudError> {
    let mut found = Vec::new();
    // No state filter: a terminated instance is still listed for about an hour, and the
    // caller needs to see that what it launched is gone.
    for f in filters_of(find, "instance-id", "tag:Name") {
        let pages = client
            .describe_instances()
            .filters(f)
            .into_paginator()
            .send()
            .try_collect()
            .await
            .map_err(|e| cloud_error("EC2", "DescribeInstances", region, e))?;
        found.extend(
            pages
                .iter()
                .flat_map(|p| p.reservations())
                .flat_map(|r| r.instances())
                .filter_map(machine_of),
        );
    }
    Ok(found)
}

/// RunInstances of one instance with no public IP
/// (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_RunInstances.html). The
/// subnet and security groups go on the network interface: AWS refuses them at the top level
/// together with `NetworkInterfaces`, and only an interface can say
/// `AssociatePublicIpAddress=false` whatever the subnet's default.
pub async fn run_instance(
    client: &Client,
    region: &str,
    request: &LaunchRequest,
) -> Result<MachineStatus, CloudError> {
    // DeleteOnTermination said, not left to a default: an interface left behind would keep the
    // restore's security group in use, and deleting the group would then fail
    // (DependencyViolation).
    let interface = InstanceNetworkInterfaceSpecification::builder()
        .device_index(0)
        .associate_public_ip_address(false)
        .subnet_id(&request.subnet_id)
        .set_groups(nonempty(request.security_group_ids.clone()))
        .delete_on_termination(true)
        .build();
    let tag_specifications = [ResourceType::Instance, ResourceType::Volume]
        .into_iter()
        .filter_map(|r| tags_at_creation(r, &request.tags))
        .collect();
    let out = client
        .run_instances()
        .image_id(&request.image_id)
        .instance_type(InstanceType::from(request.instance_type.as_str()))
        .min_count(1)
        .max_count(1)
        .network_interfaces(interface)
        .set_key_name(request.key_name.clone())
        .set_iam_instance_profile(
            request
                .iam_instance_profile_arn
                .as_ref()
                .map(|arn| IamInstanceProfileSpecification::builder().arn(arn).build()),
        )
        .set_tag_specifications(nonempty(tag_specifications))
        .client_token(&request.client_token)
        .send()
        .await
        .map_err(|e| cloud_error("EC2", "RunInstances", region, e))?;
    out.instances().iter().find_map(machine_of).ok_or_else(|| {
        malformed(
            "EC2",
            "RunInstances",
            region,
            format!("no instance in the answer for image {}", request.image_id),
        )
    })
}

pub async fn terminate_instance(
    client: &Client,
    region: &str,
    instance_id: &str,
) -> Result<(), CloudError> {
    client
        .terminate_instances()
        .instance_ids(instance_id)
        .send()
        .await
        .map_err(|e| cloud_error("EC2", "TerminateInstances", region, e))?;
    Ok(())
}

// ------------------------------------------------------------------------------ volumes

fn volume_of(v: &aws_sdk_ec2::types::Volume) -> Option<VolumeStatus> {
    Some(VolumeStatus {
        id: v.volume_id()?.to_owned(),
        state: v
            .state()
            .map(|s| s.as_str())
            .unwrap_or("unknown")
            .to_owned(),
        size_gib: v.size().map(i64::from).unwrap_or(0),
        encrypted: v.encrypted().unwrap_or(false),
        kms_key_id: v.kms_key_id().map(str::to_owned),
        snapshot_id: v.snapshot_id().filter(|s| !s.is_empty()).map(str::to_owned),
        attached_to: v
            .attachments()
            .iter()
            .find_map(|a| a.instance_id())
            .map(str::to_owned),
        tags: tags_of(v.tags()),
    })
}

pub async fn find_volumes(
    client: &Client,
    region: &str,
    find: &Find<'_>,
) -> Result<Vec<VolumeStatus>, CloudError> {
    let mut found = Vec::new();
    for f in filters_of(find, "volume-id", "tag:Name") {
        let pages = client
            .describe_volumes()
            .filters(f)
            .into_paginator()
            .send()
            .try_collect()
            .await
            .map_err(|e| cloud_error("EC2", "DescribeVolumes", region, e))?;
        found.extend(pages.iter().flat_map(|p| p.volumes()).filter_map(volume_of));
    }
    Ok(found)
}

/// CreateVolume from a snapshot. No `Encrypted`: a volume made of an encrypted snapshot is
/// encrypted with the snapshot's key
/// (https://docs.aws.amazon.com/ebs/latest/userguide/ebs-encryption.html).
pub async fn create_volume(
    client: &Client,
    region: &str,
    request: &VolumeRequest,
) -> Result<VolumeStatus, CloudError> {
    let out = client
        .create_volume()
        .snapshot_id(&request.snapshot_id)
        .availability_zone(&request.availability_zone)
        .set_volume_type(request.volume_type.as_deref().map(VolumeType::from))
        .set_size(request.size_gib.map(gib))
        .set_iops(request.iops)
        .set_throughput(request.throughput)
        .set_tag_specifications(
            tags_at_creation(ResourceType::Volume, &request.tags).map(|t| vec![t]),
        )
        .client_token(&request.client_token)
        .send()
        .await
        .map_err(|e| cloud_error("EC2", "CreateVolume", region, e))?;
    let Some(id) = out.volume_id() else {
        return Err(malformed(
            "EC2",
            "CreateVolume",
            region,
            format!(
                "the volume from {} came back without an id",
                request.snapshot_id
            ),
        ));
    };
    Ok(VolumeStatus {
        id: id.to_owned(),
        state: out
            .state()
            .map(|s| s.as_str())
            .unwrap_or("creating")
            .to_owned(),
        size_gib: out.size().map(i64::from).unwrap_or(0),
        encrypted: out.encrypted().unwrap_or(false),
        kms_key_id: out.kms_key_id().map(str::to_owned),
        snapshot_id: out
            .snapshot_id()
            .filter(|s| !s.is_empty())
            .map(str::to_owned),
        attached_to: out
            .attachments()
            .iter()
            .find_map(|a| a.instance_id())
            .map(str::to_owned),
        tags: tags_of(out.tags()),
    })
}

pub async fn delete_volume(
    client: &Client,
    region: &str,
    volume_id: &str,
) -> Result<(), CloudError> {
    client
        .delete_volume()
        .volume_id(volume_id)
        .send()
        .await
        .map_err(|e| cloud_error("EC2", "DeleteVolume", region, e))?;
    Ok(())
}
