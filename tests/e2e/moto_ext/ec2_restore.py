"""EC2 restores: images registered from snapshots, instances launched from them, volumes made
of snapshots, and retried creates.

moto 5.2.1's RegisterImage keeps only a name and a description: it drops the block device
mappings, the root device name, the architecture, ENA support and the image's tags, and
invents a 15 GiB /dev/sda1 mapping of a snapshot it creates on the side. An instance
launched from such an image gets moto's default 8 GiB gp2 unencrypted root volume. moto also
ignores ClientToken (every retry makes another instance or volume), accepts a second image of
a name already taken and any image name at all, and lists no security groups on an instance
whose groups were given on its network interface. The patches here imitate AWS for
RegisterImage / DescribeImages, RunInstances (volumes, security groups) and the ClientToken of
RunInstances and CreateVolume.
"""

from __future__ import annotations

import re
import threading
from typing import Any

from moto.core.responses import ActionResult
from moto.ec2.exceptions import EC2ClientError
from moto.ec2.models.amis import Ami
from moto.ec2.models.elastic_block_store import EBSBackend
from moto.ec2.models.instances import Instance, InstanceBackend
from moto.ec2.responses.amis import AmisResponse
from moto.ec2.responses.elastic_block_store import ElasticBlockStore
from moto.ec2.responses.instances import InstanceResponse
from moto.ec2.utils import random_ami_id

from .common import patch
from .ebs import default_ebs_key_arn

# EC2 restore behaviours moto 5.2.1 already gets right (no patch); moto_ext.ALREADY_CORRECT
# gathers these with those of ebs.py and rds.py.
ALREADY_CORRECT = {
    "CreateVolume from an encrypted snapshot": (
        "encrypted, with the snapshot's size when Size is not given, the given VolumeType, "
        "Iops and TagSpecifications; the snapshot's key as KmsKeyId comes from ebs.py's "
        "patch_volume_from_snapshot_keeps_key."
    ),
    "CreateSecurityGroup + RevokeSecurityGroupEgress": (
        "a new group in a VPC has the one allow-all egress rule (IpProtocol -1, 0.0.0.0/0) "
        "and the security-group TagSpecifications; revoking the IpPermissionsEgress that "
        "DescribeSecurityGroups answered leaves none."
    ),
    "DescribeKeyPairs": (
        "Filters key-name lists those that exist and leaves out missing names; KeyNames with "
        "a missing name is InvalidKeyPair.NotFound, as in AWS."
    ),
    "id filters leave missing ids out": (
        "DescribeInstances instance-id, DescribeVolumes volume-id, DescribeSecurityGroups "
        "group-id, DescribeSubnets subnet-id and DescribeImages image-id filters answer those "
        "that exist and no error for the others; tag:Name, tag-key, group-name and name "
        "filters work; terminated instances stay listed."
    ),
    "default network": (
        "every Region has a default VPC (DescribeVpcs isDefault=true), one default subnet per "
        "zone and a 'default' security group in it."
    ),
    "RunInstances NetworkInterfaces": (
        "DeviceIndex 0 with SubnetId, Groups and AssociatePublicIpAddress=false gives an "
        "instance in that subnet with no PublicIpAddress; NetworkInterfaces with an "
        "instance-level SubnetId is InvalidParameterCombination. Only the instance's own "
        "SecurityGroups were missing (now patched)."
    ),
}

IMAGE_NAME_MALFORMED = (
    "InvalidAMIName.Malformed",
    "AMI names must be between 3 and 128 characters long, and may contain letters, numbers, "
    "'(', ')', '[', ']', ' ', '.', '/', '-', \"'\", '@' and '_'",
)
"""RegisterImage with a Name AWS does not allow.

The rule is RegisterImage's Name constraint ("3-128 alphanumeric characters, parentheses (()),
square brackets ([]), spaces ( ), periods (.), slashes (/), dashes (-), single quotes ('),
at-signs (@), or underscores(_)",
https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_RegisterImage.html); the code is
from the EC2 error code list
(https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html), the wording is
best knowledge.
"""

IMAGE_NAME_DUPLICATE = "AMI name {name} is already in use by AMI {image_id}"
"""InvalidAMIName.Duplicate message: "The specified AMI name is already in use by another AMI"
(errors-overview.html); the wording with the name and id is best knowledge."""

IDEMPOTENT_MISMATCH = (
    "IdempotentParameterMismatch",
    "The request uses the same client token as a previous, but non-identical request. Do not "
    "reuse a client token with different requests, unless the requests are identical.",
)
"""Code and description from the EC2 error code list (errors-overview.html)."""

_IMAGE_NAME = re.compile(r"^[A-Za-z0-9()\[\] ./\-'@_]{3,128}$")
_client_token_lock = threading.Lock()


# --------------------------------------------------------------------------- helpers


def _image_mapping(backend: EBSBackend, mapping: dict[str, Any], root_device: str) -> dict[str, Any]:
    """One RegisterImage block device mapping as DescribeImages shows it in AWS.

    VolumeSize defaults to the snapshot's size and may not be smaller (the
    InvalidBlockDeviceMapping wording is best knowledge); VolumeType defaults to gp2, as for
    CreateVolume (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateVolume.html);
    DeleteOnTermination defaults to true for the root device and false for the others ("By
    default, the DeleteOnTermination attribute is set to True for the root volume and False
    for all other volume types",
    https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/preserving-volumes-on-termination.html).
    Encrypted is the snapshot's.
    """
    device = mapping.get("DeviceName")
    ebs = dict(mapping.get("Ebs") or {})
    snapshot_id = ebs.get("SnapshotId")
    if not snapshot_id:
        raise EC2ClientError(
            "InvalidBlockDeviceMapping", f"The block device mapping for {device} names no snapshot."
        )
    snapshot = backend.get_snapshot(snapshot_id)  # InvalidSnapshot.NotFound, named (ebs.py)
    size = int(ebs.get("VolumeSize") or snapshot.volume.size)
    if size < int(snapshot.volume.size):
        raise EC2ClientError(
            "InvalidBlockDeviceMapping",
            f"Volume of size {size}GB is smaller than snapshot '{snapshot_id}', expect size >= "
            f"{snapshot.volume.size}GB",
        )
    delete = ebs.get("DeleteOnTermination")
    out: dict[str, Any] = {
        "SnapshotId": snapshot_id,
        "VolumeSize": size,
        "VolumeType": ebs.get("VolumeType") or "gp2",
        "DeleteOnTermination": (device == root_device) if delete is None else bool(delete),
        "Encrypted": bool(snapshot.encrypted),
    }
    for field in ("Iops", "Throughput"):
        if ebs.get(field) is not None:
            out[field] = int(ebs[field])
    return {"DeviceName": device, "Ebs": out}


def register_image(
    backend: Any,
    name: str,
    description: str | None,
    mappings: list[dict[str, Any]],
    root_device_name: str | None,
    architecture: str | None,
    virtualization_type: str | None,
    ena_support: bool | None,
    boot_mode: str | None,
    tags: dict[str, str],
) -> Ami:
    """RegisterImage from EBS snapshots, as AWS does it
    (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_RegisterImage.html).

    - Name follows AWS's constraint (IMAGE_NAME_MALFORMED) and is unique among the caller's
      images in the Region (InvalidAMIName.Duplicate).
    - Each mapping's snapshot is one of the caller's (InvalidSnapshot.NotFound otherwise); the
      image refers to it: no snapshot is made (moto made one on the side).
    - RootDeviceName, Architecture (default x86_64), VirtualizationType (default
      paravirtual), EnaSupport, BootMode and the image TagSpecifications are kept and
      DescribeImages shows them; RootDeviceType is ebs.
    """
    if not name or not _IMAGE_NAME.match(name):
        raise EC2ClientError(*IMAGE_NAME_MALFORMED)
    for other in backend.amis.values():
        if other.name == name and other.owner_id == backend.account_id:
            raise EC2ClientError(
                "InvalidAMIName.Duplicate", IMAGE_NAME_DUPLICATE.format(name=name, image_id=other.id)
            )
    root = root_device_name or mappings[0].get("DeviceName")
    stored = [_image_mapping(backend, m, root) for m in mappings]

    image = Ami(
        backend,
        random_ami_id(),
        name=name,
        description=description,
        virtualization_type=virtualization_type or "paravirtual",
        architecture=architecture or "x86_64",
        root_device_type="ebs",
        root_device_name=root,
        boot_mode=boot_mode,  # type: ignore[arg-type]
        tags=tags or None,
    )
    # Ami() always snapshots a scratch volume for moto's invented mapping; AWS makes none.
    backend.snapshots.pop(image.ebs_snapshot.id, None)
    image._restore_mappings = stored  # type: ignore[attr-defined]
    if ena_support is not None:
        image.ena_support = bool(ena_support)  # type: ignore[attr-defined]
    backend.amis[image.id] = image
    return image


def _launch_plan(
    backend: Any, image: Ami, given: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The volumes RunInstances makes of an image: its mappings, where RunInstances'
    BlockDeviceMappings for the same device override VolumeSize, VolumeType, Iops and KmsKeyId
    (NoDevice drops the device), plus RunInstances' mappings for other devices
    (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/block-device-mapping-concepts.html).

    moto's parser turns a missing DeleteOnTermination into false, so an override can only
    switch it on.
    """
    overrides = {m.get("DeviceName"): m for m in given}
    plan = []
    for mapping in image._restore_mappings:  # type: ignore[attr-defined]
        device = mapping["DeviceName"]
        ebs = dict(mapping["Ebs"])
        override = overrides.pop(device, None)
        if override is not None:
            if override.get("NoDevice") == "":
                continue
            o = override.get("Ebs") or {}
            for field in ("VolumeSize", "VolumeType", "Iops", "KmsKeyId"):
                if o.get(field) is not None:
                    ebs[field] = o[field]
            if o.get("DeleteOnTermination"):
                ebs["DeleteOnTermination"] = True
        plan.append({"DeviceName": device, "Ebs": ebs})
    for device, override in overrides.items():
        if override.get("NoDevice") != "":
            plan.append({"DeviceName": device, "Ebs": dict(override.get("Ebs") or {})})
    return plan


def _make_volume(backend: Any, instance: Instance, mapping: dict[str, Any]) -> Any:
    """One volume of a launch, encrypted with its snapshot's key unless the mapping names one
    ("volumes created from an encrypted snapshot are automatically encrypted [...] with the
    same KMS key", https://docs.aws.amazon.com/ebs/latest/userguide/ebs-encryption.html)."""
    ebs = mapping["Ebs"]
    snapshot = backend.get_snapshot(ebs["SnapshotId"]) if ebs.get("SnapshotId") else None
    kms_key_id = ebs.get("KmsKeyId")
    encrypted = bool(kms_key_id) or bool(ebs.get("Encrypted"))
    if snapshot is not None and snapshot.encrypted:
        encrypted = True
        kms_key_id = kms_key_id or snapshot.kms_key_id or default_ebs_key_arn(backend)
    size = ebs.get("VolumeSize") or (snapshot.volume.size if snapshot is not None else None)
    volume = backend.create_volume(
        size=int(size) if size is not None else None,  # type: ignore[arg-type]
        zone_name=instance._placement.zone,
        snapshot_id=ebs.get("SnapshotId"),
        encrypted=encrypted,
        kms_key_id=kms_key_id,
        volume_type=ebs.get("VolumeType"),
        iops=int(ebs["Iops"]) if ebs.get("Iops") is not None else None,
        throughput=int(ebs["Throughput"]) if ebs.get("Throughput") is not None else None,
    )
    backend.attach_volume(
        volume.id, instance.id, mapping["DeviceName"], bool(ebs.get("DeleteOnTermination"))
    )
    return volume


def _idempotent(response: Any, operation: str, make: Any) -> ActionResult:
    """`make()` once per ClientToken in the caller's account and Region.

    AWS: a retried request with the same client token and the same parameters answers the
    first request's resource and makes nothing; the same token with other parameters is
    IdempotentParameterMismatch
    (https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-idempotency.html). The tokens
    live on moto's backend, so a reset forgets them.
    """
    token = response._get_param("ClientToken")
    if not token:
        return make()
    backend = response.ec2_backend
    fingerprint = sorted(
        (k, tuple(v) if isinstance(v, list) else v)
        for k, v in response.querystring.items()
        if k != "ClientToken"
    )
    with _client_token_lock:
        tokens: dict[tuple[str, str], tuple[Any, ActionResult]] = backend.__dict__.setdefault(
            "_ext_client_tokens", {}
        )
        seen = tokens.get((operation, token))
        if seen is not None:
            if seen[0] != fingerprint:
                raise EC2ClientError(*IDEMPOTENT_MISMATCH)
            response.error_on_dryrun()
            return seen[1]
        result = make()
        tokens[(operation, token)] = (fingerprint, result)
        return result


# --------------------------------------------------------------------------- patches


@patch
def patch_register_image_from_snapshots() -> None:
    """RegisterImage with BlockDeviceMappings kept only Name and Description in moto.

    See register_image() for the AWS behaviour. DescribeImages then shows the image's own
    mappings (with Encrypted from each snapshot), RootDeviceName, Architecture, EnaSupport,
    BootMode and Tags. A RegisterImage without BlockDeviceMappings (an S3 manifest) is left to
    moto.
    """
    original_response = AmisResponse.register_image
    original_mappings = Ami.block_device_mappings

    def register_image_response(self: AmisResponse) -> ActionResult:
        mappings = self._get_param("BlockDeviceMappings", []) or []
        if not mappings:
            return original_response(self)
        name = self._get_param("Name")
        description = self._get_param("Description")
        root_device_name = self._get_param("RootDeviceName")
        architecture = self._get_param("Architecture")
        virtualization_type = self._get_param("VirtualizationType")
        ena_support = self._get_param("EnaSupport")
        boot_mode = self._get_param("BootMode")
        tags = self._parse_tag_specification().get("image", {})
        self.error_on_dryrun()
        if isinstance(ena_support, str):
            ena_support = ena_support.lower() == "true"
        image = register_image(
            self.ec2_backend,
            name,
            description,
            mappings,
            root_device_name,
            architecture,
            virtualization_type,
            ena_support,
            boot_mode,
            tags,
        )
        return ActionResult({"ImageId": image.id})

    def block_device_mappings(self: Ami) -> list[dict[str, Any]]:
        own = getattr(self, "_restore_mappings", None)
        return own if own is not None else original_mappings.fget(self)  # type: ignore[attr-defined]

    AmisResponse.register_image = register_image_response
    Ami.block_device_mappings = property(block_device_mappings)  # type: ignore[assignment]


@patch
def patch_run_instances_from_image_mappings() -> None:
    """RunInstances of an image registered from snapshots gave moto's default 8 GiB gp2
    unencrypted /dev/sda1 volume.

    AWS makes one volume per block device mapping of the image (with RunInstances' own
    mappings applied on top, see _launch_plan): from the mapped snapshot, with the mapped
    size, type, IOPS and throughput, encrypted with the snapshot's key, attached at the mapped
    device, tagged with the volume TagSpecifications, and deleted at termination when its
    DeleteOnTermination says so
    (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/block-device-mapping-concepts.html).
    The instance takes the image's EnaSupport and BootMode. Images moto made itself keep
    moto's behaviour.
    """
    original = InstanceBackend.run_instances

    def run_instances(
        self: Any, image_id: str, count: int, user_data: Any, security_group_names: Any, **kwargs: Any
    ) -> Any:
        image = self.amis.get(image_id)
        if getattr(image, "_restore_mappings", None) is None:
            return original(self, image_id, count, user_data, security_group_names, **kwargs)
        plan = _launch_plan(self, image, kwargs.get("block_device_mappings") or [])
        # Checked before anything is made, as AWS refuses the whole call.
        for mapping in plan:
            if mapping["Ebs"].get("SnapshotId"):
                self.get_snapshot(mapping["Ebs"]["SnapshotId"])
        volume_tags = (kwargs.get("tags") or {}).get("volume", {})
        kwargs["block_device_mappings"] = []  # present and empty: moto adds no default volume
        reservation = original(self, image_id, count, user_data, security_group_names, **kwargs)
        for instance in reservation.instances:
            for mapping in plan:
                _make_volume(self, instance, mapping).add_tags(volume_tags)
            if hasattr(image, "ena_support"):
                instance.ena_support = image.ena_support
            if image.boot_mode:
                instance.boot_mode = image.boot_mode
        return reservation

    InstanceBackend.run_instances = run_instances


@patch
def patch_instance_groups_from_interface() -> None:
    """An instance launched with its security groups on NetworkInterfaces listed none in moto.

    AWS: an instance's SecurityGroups are those of its primary network interface
    (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_Instance.html); groups must
    be given on the interface when NetworkInterfaces is
    (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_RunInstances.html).
    """
    original = Instance.prep_nics

    def prep_nics(self: Instance, nic_spec: list[dict[str, Any]], *args: Any, **kwargs: Any) -> None:
        on_interface = any(
            nic.get("Groups") for nic in nic_spec or [] if int(nic.get("DeviceIndex", -1)) == 0
        )
        original(self, nic_spec, *args, **kwargs)
        primary = self.nics.get(0)
        if on_interface and not self.security_groups and primary is not None:
            self.security_groups = list(primary._group_set)

    Instance.prep_nics = prep_nics


@patch
def patch_client_token_idempotency() -> None:
    """RunInstances and CreateVolume ignored ClientToken in moto: a retry made a second
    instance or volume. See _idempotent() for the AWS behaviour."""
    original_run = InstanceResponse.run_instances
    original_create = ElasticBlockStore.create_volume

    def run_instances(self: InstanceResponse) -> ActionResult:
        return _idempotent(self, "RunInstances", lambda: original_run(self))

    def create_volume(self: ElasticBlockStore) -> ActionResult:
        return _idempotent(self, "CreateVolume", lambda: original_create(self))

    InstanceResponse.run_instances = run_instances
    ElasticBlockStore.create_volume = create_volume


@patch
def patch_instance_platform_details() -> None:
    """moto lists no PlatformDetails on an instance; AWS lists it on every one.

    AWS: ``PlatformDetails`` is "the platform details value for the instance" (its billing
    product: ``Linux/UNIX``, ``Windows``, ``Red Hat Enterprise Linux``, ...), given for every
    instance (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_Instance.html,
    https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/billing-info-fields.html). An instance
    of a ``windows`` image is ``Windows``; the others here are ``Linux/UNIX``.
    """

    def platform_details(self: Instance) -> str:
        return "Windows" if (getattr(self, "platform", None) or "").lower() == "windows" else "Linux/UNIX"

    Instance.platform_details = property(platform_details)
