"""EBS: snapshots that carry their volume's key, sharing, copies across accounts, copy pacing.

moto's EBS snapshots carry no KMS key, cannot be copied or even seen from another account
they are shared with, can be shared under the AWS managed key aws/ebs, and every copy
completes at once. The patches here imitate AWS for CreateSnapshot(s), CreateVolume,
ModifySnapshotAttribute (every request recorded in SHARE_LOG), CopySnapshot (paced by
COPY_PACING when a test asks) and DescribeSnapshots.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable
from typing import Any

from moto.core.responses import ActionResult, EmptyResult
from moto.ec2.exceptions import EC2ClientError, InvalidParameterDependency, InvalidSnapshotIdError
from moto.ec2.models import ec2_backends
from moto.ec2.models.elastic_block_store import EBSBackend, Snapshot
from moto.ec2.responses.elastic_block_store import ElasticBlockStore
from moto.ec2.utils import generic_filter, random_snapshot_id
from moto.kms.models import Key

from .common import _existing, patch
from .kms import COPY_KEY_ACTIONS, is_aws_managed, key_policy_admits, lookup_key, parse_kms_arn

KEY_NOT_ACCESSIBLE = "Given key ID is not accessible"
"""StateMessage of a snapshot copy whose KMS key the copying account cannot use.

The wording is what AWS reports for copies that fail on key access, as seen in the wild,
e.g. AWS Backup's "AMI snapshot copy failed with error: Given key ID is not accessible"
(github.com/aws-samples/aws-backup-automation issue 2). Exact text for a plain EBS
CopySnapshot is from best knowledge, not from an AWS page.
"""

DEFAULT_KEY_SHARE_ERROR = (
    "OperationNotPermitted",
    "Encrypted snapshots with EBS default key cannot be shared",
)
"""What ModifySnapshotAttribute answers when asked to share a snapshot under aws/ebs.

Code and message as reported from real AWS by Packer users calling ModifySnapshotAttribute
(github.com/hashicorp/packer issues 7499 and 8271, HTTP 400). The same refusal on
ModifyImageAttribute reads "InvalidParameter: Snapshots encrypted with the AWS Managed CMK
can't be shared" (packer issue 7410); that one is for AMIs, not snapshots.
"""

# EBS behaviours moto 5.2.1 already gets right (no patch); moto_ext.ALREADY_CORRECT gathers
# these and rds.ALREADY_CORRECT.
ALREADY_CORRECT = {
    "default EBS key on CreateVolume/RunInstances": (
        "moto 5.2.1 already encrypts a volume created with Encrypted=true and no KmsKeyId "
        "with a key it creates on demand under alias/aws/ebs in that account+region "
        "(EBSBackend._create_default_encryption_key); DescribeVolumes shows its ARN. "
        "patch_default_ebs_key_is_aws_managed only makes that key look AWS managed."
    ),
    "RunInstances BlockDeviceMappings encryption": (
        "Ebs.Encrypted / Ebs.KmsKeyId in RunInstances BlockDeviceMappings are honoured; "
        "with BlockDeviceMappings moto creates no extra default root volume."
    ),
    "ModifySnapshotAttribute flat form": (
        "UserIds + OperationType add/remove works and DescribeSnapshotAttribute shows it; "
        "the structured CreateVolumePermission form was a silent no-op (now patched)."
    ),
    "CopySnapshot TagSpecifications": "tags given in TagSpecifications land on the copy.",
    "CreateSnapshots": (
        "exists, takes InstanceSpecification (+ExcludeBootVolume), returns one snapshot "
        "per attached volume with its VolumeId and applies TagSpecifications; only "
        "CopyTagsFromSource was ignored (now patched)."
    ),
    "DescribeSnapshots across Regions": (
        "backends are per account+Region, so a snapshot id of another Region is "
        "InvalidSnapshot.NotFound, as in AWS."
    ),
}

SHARE_LOG: list[dict[str, Any]] = []
"""Every createVolumePermission change requested, accepted or refused, in order.

Not an AWS feature (CloudTrail would be the closest): tests use it to prove that a share was
never made, which the final snapshot state cannot show.
"""
_share_log_lock = threading.Lock()


# --------------------------------------------------------------------------- helpers


def key_of_snapshot(snapshot: Snapshot) -> Key | None:
    arn = parse_kms_arn(getattr(snapshot, "kms_key_id", None) or "")
    if arn is None:
        return None
    return lookup_key(arn.account, arn.region, snapshot.kms_key_id)


def _not_found(snapshot_id: str) -> EC2ClientError:
    # moto answers InvalidSnapshot.NotFound with an empty message; AWS names the snapshot.
    return EC2ClientError(
        "InvalidSnapshot.NotFound", f"The snapshot '{snapshot_id}' does not exist."
    )


def _can_restore(snapshot: Snapshot, account: str) -> bool:
    return (
        snapshot.owner_id == account
        or account in snapshot.create_volume_permission_userids
        or "all" in snapshot.create_volume_permission_groups
    )


def _foreign_snapshots(account: str, region: str) -> Iterable[Snapshot]:
    """Snapshots in `region` of every other account moto knows."""
    for other in list(dict.keys(ec2_backends)):
        if other == account:
            continue
        backend = _existing(ec2_backends, other, region)
        if backend is not None:
            yield from list(backend.snapshots.values())


def find_visible_snapshot(account: str, region: str, snapshot_id: str) -> Snapshot:
    """The snapshot `account` may use by id in `region`: its own, or one shared with it.

    Imitates https://docs.aws.amazon.com/ebs/latest/userguide/view-shared-snapshot.html:
    a snapshot shared with an account (createVolumePermission UserId, or group "all") is
    visible to it by id and can be copied or restored; anything else is NotFound.
    """
    own = ec2_backends[account][region].snapshots.get(snapshot_id)
    if own is not None:
        return own
    for snapshot in _foreign_snapshots(account, region):
        if snapshot.id == snapshot_id and _can_restore(snapshot, account):
            return snapshot
    raise _not_found(snapshot_id)


class ForeignSnapshotView:
    """Another account's snapshot as seen by an account it is shared with.

    Tags belong to the account that set them; a shared snapshot shows the viewer none of
    the owner's tags (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/Using_Tags.html:
    tags are account-specific).
    """

    def __init__(self, snapshot: Snapshot):
        self._snapshot = snapshot

    def __getattr__(self, name: str) -> Any:
        return getattr(self._snapshot, name)

    @property
    def tag_set(self) -> list[dict[str, str]]:
        return []

    def get_tags(self) -> list[dict[str, str]]:
        return []

    def get_filter_value(self, filter_name: str, method_name: str | None = None) -> Any:
        if filter_name.startswith("tag"):
            return None
        return self._snapshot.get_filter_value(filter_name, method_name)


class CopiedVolume:
    """The volume a snapshot copy claims to come from.

    "Snapshots that you create by copying another snapshot have an arbitrary volume ID
    (vol-ffffffff) that should not be used for any purpose"
    (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CopySnapshot.html; moto
    showed the source volume's id, even across accounts).
    """

    id = "vol-ffffffff"

    def __init__(self, size: int):
        self.size = size


def default_ebs_key_arn(backend: EBSBackend) -> str:
    """The account's default EBS key in the backend's Region (aws/ebs unless changed)."""
    return backend.default_kms_key_id or backend._create_default_encryption_key()


# --------------------------------------------------------------------------- patches

@patch
def patch_snapshot_carries_volume_key() -> None:
    """Departure 1a: snapshots of an encrypted volume have no KmsKeyId in moto.

    AWS: "Snapshots that are created from encrypted volumes are automatically encrypted
    [...] using the same KMS key" (https://docs.aws.amazon.com/ebs/latest/userguide/ebs-encryption.html),
    and DescribeSnapshots returns that key's full ARN as KmsKeyId
    (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_Snapshot.html).
    Covers CreateSnapshot and CreateSnapshots (moto builds the latter from the former).
    """
    original = EBSBackend.create_snapshot

    def create_snapshot(self: EBSBackend, volume_id: str, description: str, *a: Any, **kw: Any) -> Snapshot:
        snapshot = original(self, volume_id, description, *a, **kw)
        volume = snapshot.volume
        if volume.encrypted:
            snapshot.kms_key_id = volume.kms_key_id or default_ebs_key_arn(self)
        return snapshot

    EBSBackend.create_snapshot = create_snapshot


@patch
def patch_volume_from_snapshot_keeps_key() -> None:
    """Departure: a volume created from an encrypted snapshot had no KmsKeyId in moto.

    AWS: volumes created from an encrypted snapshot are encrypted with the snapshot's key
    unless another key is given (https://docs.aws.amazon.com/ebs/latest/userguide/ebs-encryption.html).
    Restoring a replica depends on it.
    """
    original = EBSBackend.create_volume

    def create_volume(self: EBSBackend, *args: Any, **kwargs: Any) -> Any:
        snapshot = self.snapshots.get(kwargs.get("snapshot_id") or "")
        if snapshot is not None and snapshot.encrypted and not kwargs.get("kms_key_id"):
            kwargs["encrypted"] = True
            kwargs["kms_key_id"] = snapshot.kms_key_id
        return original(self, *args, **kwargs)

    EBSBackend.create_volume = create_volume


@patch
def patch_snapshot_state_fields() -> None:
    """Departure: CreateSnapshots answers without State; snapshots never have StateMessage.

    AWS returns State in CreateSnapshots' SnapshotInfo and StateMessage on a snapshot in
    state error (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_SnapshotInfo.html,
    https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_Snapshot.html). moto's
    serializer reads `state` / `state_message` attributes.
    """
    Snapshot.state = property(lambda self: self.status)  # type: ignore[attr-defined]
    Snapshot.state_message = None  # type: ignore[attr-defined]


@patch
def patch_modify_snapshot_attribute() -> None:
    """Departure 4 (+7): moto shares snapshots under the AWS managed key; ignores the
    structured CreateVolumePermission form.

    AWS: "You can't share snapshots that are encrypted with the default AWS managed key"
    (https://docs.aws.amazon.com/ebs/latest/userguide/ebs-modifying-snapshot-permissions.html);
    the call fails with DEFAULT_KEY_SHARE_ERROR. AWS accepts both the flat form (UserIds +
    OperationType) and CreateVolumePermission.Add/Remove
    (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_ModifySnapshotAttribute.html);
    moto answered success to the structured form and changed nothing. The flat form already
    worked (ALREADY_CORRECT). Every request is recorded in SHARE_LOG.
    """

    def modify_snapshot_attribute(self: ElasticBlockStore) -> ActionResult:
        snapshot_id = self._get_param("SnapshotId")
        operation = self._get_param("OperationType")
        add_users: list[str] = []
        add_groups: list[str] = []
        remove_users: list[str] = []
        remove_groups: list[str] = []
        flat_users = self._get_param("UserIds", []) or []
        flat_groups = self._get_param("GroupNames", []) or []
        if operation == "add":
            add_users += flat_users
            add_groups += flat_groups
        elif operation == "remove":
            remove_users += flat_users
            remove_groups += flat_groups
        structured = self._get_param("CreateVolumePermission", {}) or {}
        for item in structured.get("Add", []) or []:
            add_users += [item["UserId"]] if item.get("UserId") else []
            add_groups += [item["Group"]] if item.get("Group") else []
        for item in structured.get("Remove", []) or []:
            remove_users += [item["UserId"]] if item.get("UserId") else []
            remove_groups += [item["Group"]] if item.get("Group") else []

        self.error_on_dryrun()
        backend = self.ec2_backend
        snapshot = backend.get_snapshot(snapshot_id)
        entry = {
            "account": backend.account_id,
            "region": backend.region_name,
            "snapshot_id": snapshot_id,
            "add_user_ids": list(add_users),
            "add_groups": list(add_groups),
            "remove_user_ids": list(remove_users),
            "remove_groups": list(remove_groups),
            "accepted": True,
        }
        if (add_users or add_groups) and snapshot.encrypted:
            key = key_of_snapshot(snapshot)
            # An encrypted snapshot without a resolvable key can only be under the default.
            if key is None or is_aws_managed(key):
                entry["accepted"] = False
                with _share_log_lock:
                    SHARE_LOG.append(entry)
                raise EC2ClientError(*DEFAULT_KEY_SHARE_ERROR)
        with _share_log_lock:
            SHARE_LOG.append(entry)
        if add_users or add_groups:
            backend.add_create_volume_permission(snapshot_id, user_ids=add_users, groups=add_groups)
        if remove_users or remove_groups:
            backend.remove_create_volume_permission(
                snapshot_id, user_ids=remove_users, groups=remove_groups
            )
        return EmptyResult()

    ElasticBlockStore.modify_snapshot_attribute = modify_snapshot_attribute


def copy_snapshot(
    dest: EBSBackend,
    source_snapshot_id: str,
    source_region: str,
    description: str | None,
    encrypted: bool,
    kms_key_id: str | None,
) -> Snapshot:
    """CopySnapshot as AWS does it, called in `dest` (caller's account, destination Region).

    - The source is looked up as the caller sees it in SourceRegion: its own snapshot, or
      one shared with it (https://docs.aws.amazon.com/ebs/latest/userguide/ebs-copy-snapshot.html:
      "You can copy snapshots that are shared with you"); otherwise InvalidSnapshot.NotFound.
    - KmsKeyId needs Encrypted=true; the copy's KmsKeyId is the full key ARN, resolved in
      the caller's account and the destination Region, even if an alias or key id was given.
      Without KmsKeyId an encrypted copy uses the caller's default EBS key in the destination
      Region (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CopySnapshot.html).
    - "Amazon Web Services authenticates the KMS key asynchronously. Therefore, if you
      specify an ID, alias, or ARN that is not valid, the action can appear to complete, but
      eventually fails" (same page); likewise when the source key's policy does not admit
      the copying account. Such a copy is returned, then shows State "error" with
      StateMessage KEY_NOT_ACCESSIBLE (moto completes snapshots at once, so it is "error"
      from the start).
    """
    caller, region = dest.account_id, dest.region_name
    if kms_key_id and not encrypted:
        raise InvalidParameterDependency("KmsKeyId", "Encrypted")
    source_region = source_region or region
    source = find_visible_snapshot(caller, source_region, source_snapshot_id)

    state, state_message = "completed", None
    key_arn: str | None = None
    if source.encrypted or encrypted:
        if kms_key_id:
            key = lookup_key(caller, region, kms_key_id)
            if key is None or not key_policy_admits(key, caller, COPY_KEY_ACTIONS):
                key_arn = key.arn if key is not None else kms_key_id
                state, state_message = "error", KEY_NOT_ACCESSIBLE
            else:
                key_arn = key.arn
        else:
            key_arn = default_ebs_key_arn(dest)
        if source.encrypted:
            source_key = key_of_snapshot(source)
            if source_key is None and source.owner_id == caller:
                pass  # an own snapshot without recorded key (e.g. from before patching)
            elif source_key is None or not key_policy_admits(source_key, caller, COPY_KEY_ACTIONS):
                state, state_message = "error", KEY_NOT_ACCESSIBLE

    snapshot = Snapshot(
        dest,
        random_snapshot_id(),
        volume=CopiedVolume(source.volume.size),
        description=description or f"[Copied {source.id} from {source_region}]",
        encrypted=key_arn is not None,
        kms_key_id=key_arn,
    )
    snapshot.status = state
    snapshot.state_message = state_message
    dest.snapshots[snapshot.id] = snapshot
    return snapshot


class CopyPacing:
    """Opt-in (tests set ``COPY_PACING.pending_seconds`` / ``.limit``; ``after_reset`` clears):
    copies that take time, and the concurrent-copy quota.

    moto completes a copy at once and never refuses one. AWS copies take minutes to hours
    (State "pending" with a Progress) and allow a limited number in flight per account and
    destination Region (EBS: 20, not adjustable); one more is refused with
    ResourceLimitExceeded (https://docs.aws.amazon.com/ebs/latest/userguide/ebs-copy-snapshot.html).
    """

    def __init__(self) -> None:
        self.pending_seconds = 0.0
        self.limit: int | None = None
        self.refused = 0
        self.most_in_flight: dict[tuple[str, str], int] = {}
        self._in_flight: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self.pending_seconds, self.limit, self.refused = 0.0, None, 0
            self.most_in_flight.clear()
            self._in_flight.clear()

    def admit(self, dest: EBSBackend) -> Any:
        place = (dest.account_id, dest.region_name)
        with self._lock:
            if self.limit is not None and self._in_flight.get(place, 0) >= self.limit:
                self.refused += 1
                raise EC2ClientError(
                    "ResourceLimitExceeded",
                    f"You have reached the limit of {self.limit} concurrent snapshot copies to this Region.",
                )
        return contextlib.nullcontext()

    def hold_pending(self, dest: EBSBackend, snapshot: Snapshot) -> None:
        if self.pending_seconds <= 0 and self.limit is None:
            return
        place = (dest.account_id, dest.region_name)
        with self._lock:
            n = self._in_flight.get(place, 0) + 1
            self._in_flight[place] = n
            self.most_in_flight[place] = max(self.most_in_flight.get(place, 0), n)
        final = snapshot.status
        snapshot.status = "pending"

        def done() -> None:
            with self._lock:
                self._in_flight[place] = max(0, self._in_flight.get(place, 0) - 1)
            snapshot.status = final

        timer = threading.Timer(self.pending_seconds, done)
        timer.daemon = True
        timer.start()


COPY_PACING = CopyPacing()


@patch
def patch_copy_snapshot() -> None:
    """Departures 1b, 5, 6: CopySnapshot. See copy_snapshot() for the AWS behaviour.

    moto looked the source up in the caller's own account only (NotFound for a snapshot
    shared from another account), stored KmsKeyId verbatim (an alias stayed an alias),
    ignored Encrypted, gave a copy without KmsKeyId no key, and never consulted key policies.
    """

    def copy_snapshot_response(self: ElasticBlockStore) -> ActionResult:
        source_snapshot_id = self._get_param("SourceSnapshotId")
        source_region = self._get_param("SourceRegion")
        description = self._get_param("Description")
        encrypted = bool(self._get_bool_param("Encrypted", False))
        kms_key_id = self._get_param("KmsKeyId")
        tags = self._parse_tag_specification().get("snapshot", {})
        self.error_on_dryrun()
        with COPY_PACING.admit(self.ec2_backend):
            snapshot = copy_snapshot(
                self.ec2_backend, source_snapshot_id, source_region, description, encrypted, kms_key_id
            )
        COPY_PACING.hold_pending(self.ec2_backend, snapshot)
        snapshot.add_tags(tags)
        return ActionResult({"SnapshotId": snapshot.id, "Tags": snapshot.tag_set})

    ElasticBlockStore.copy_snapshot = copy_snapshot_response


@patch
def patch_describe_snapshots() -> None:
    """Departure 8: DescribeSnapshots ignored OwnerIds/RestorableByUserIds and could not see
    snapshots shared from another account.

    AWS (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeSnapshots.html):
    the result holds the snapshots the caller owns, those shared with it and public ones;
    OwnerIds ("self", account ids, "amazon") and RestorableByUserIds narrow it; SnapshotIds
    must each be visible to the caller, else InvalidSnapshot.NotFound. Shared snapshots
    show none of the owner's tags (ForeignSnapshotView). Pagination is not modelled.
    """

    def describe_snapshots(self: ElasticBlockStore) -> ActionResult:
        filters = self._filters_from_querystring()
        snapshot_ids = self._get_param("SnapshotIds", []) or []
        owner_ids = self._get_param("OwnerIds", []) or []
        restorable_by = self._get_param("RestorableByUserIds", []) or []
        caller, region = self.current_account, self.region
        backend = self.ec2_backend
        if snapshot_ids:
            found = [find_visible_snapshot(caller, region, i) for i in dict.fromkeys(snapshot_ids)]
        else:
            found = list(backend.snapshots.values()) + [
                s for s in _foreign_snapshots(caller, region) if _can_restore(s, caller)
            ]
        if owner_ids:
            owners = {caller if o == "self" else o for o in owner_ids}
            found = [
                s
                for s in found
                if s.owner_id in owners
                or ("amazon" in owner_ids and s.from_ami and s.owner_id != caller)
            ]
        if restorable_by:
            users = {caller if u == "self" else u for u in restorable_by}
            found = [s for s in found if any(_can_restore(s, u) for u in users)]
        views = [s if s.ec2_backend is backend else ForeignSnapshotView(s) for s in found]
        if filters:
            views = generic_filter(filters, views)
        return ActionResult({"Snapshots": views})

    ElasticBlockStore.describe_snapshots = describe_snapshots


@patch
def patch_create_snapshots_copy_tags() -> None:
    """Departure 8: CreateSnapshots ignored CopyTagsFromSource.

    AWS: CopyTagsFromSource=volume "copies the tags from the specified volume to
    corresponding snapshot" (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateSnapshots.html).
    When a TagSpecifications tag has the same key as a volume tag, the TagSpecifications
    value is kept here (AWS does not document the precedence).
    """

    def create_snapshots(self: ElasticBlockStore) -> ActionResult:
        instance_spec = self._get_param("InstanceSpecification", {})
        description = self._get_param("Description", "")
        tags = self._parse_tag_specification().get("snapshot", {})
        copy_from = self._get_param("CopyTagsFromSource")
        self.error_on_dryrun()
        snapshots = self.ec2_backend.create_snapshots(instance_spec, description, {})
        for snapshot in snapshots:
            merged: dict[str, str] = {}
            if copy_from == "volume":
                merged.update({t["key"]: t["value"] for t in snapshot.volume.get_tags()})
            merged.update(tags)
            snapshot.add_tags(merged)
        return ActionResult({"Snapshots": snapshots})

    ElasticBlockStore.create_snapshots = create_snapshots


@patch
def patch_snapshot_not_found_message() -> None:
    """Departure 9 (the one trivially fixable): InvalidSnapshot.NotFound had an empty message.

    AWS names the snapshot: "The snapshot 'snap-...' does not exist." (error codes:
    https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html). Covers
    lookups by id (DescribeSnapshotAttribute, ModifySnapshotAttribute, CreateVolume from a
    snapshot) and DeleteSnapshot; the lookups replaced above raise it themselves.
    """
    original_get = EBSBackend.get_snapshot
    original_delete = EBSBackend.delete_snapshot

    def get_snapshot(self: EBSBackend, snapshot_id: str) -> Snapshot:
        try:
            return original_get(self, snapshot_id)
        except InvalidSnapshotIdError:
            raise _not_found(snapshot_id) from None

    def delete_snapshot(self: EBSBackend, snapshot_id: str) -> Snapshot:
        try:
            return original_delete(self, snapshot_id)
        except InvalidSnapshotIdError:
            raise _not_found(snapshot_id) from None

    EBSBackend.get_snapshot = get_snapshot
    EBSBackend.delete_snapshot = delete_snapshot
