"""moto, corrected where snaprelay depends on how real AWS behaves.

snaprelay's end-to-end tests run the real binary against moto (an AWS emulator).
moto 5.2.1 departs from AWS in ways that would let a wrong implementation pass (or a
right one fail): EBS snapshots carry no KMS key, snapshots shared from another account
cannot be copied, snapshots under the AWS managed key can be shared, keys behind
``alias/aws/*`` claim to be customer managed, key policies are never consulted; RDS DB
instances "encrypted" with the literal key ``default_kms_key_id``, DB snapshots shared from
another account cannot be copied, shared encrypted copies need no key. This
module applies small monkey-patches to moto's classes, each imitating one documented AWS
behaviour, and then starts moto's server.

Every departure was checked with boto3 against plain moto 5.2.1 before being patched;
``test_moto_ext.py`` proves each patch. Behaviours moto already gets right are listed in
``ALREADY_CORRECT`` (no patch).

Use from Python::

    server = moto_ext.start()          # patches, then serves on 127.0.0.1:<free port>
    server.endpoint                    # "http://127.0.0.1:PORT"
    server.stop()

or standalone: ``python3 tests/e2e/moto_ext.py [--port N]`` prints the endpoint URL on
its first stdout line and serves until SIGTERM / SIGINT.

The patches change moto's classes, not its data, so a ``POST /moto-api/reset`` keeps them;
``after_reset()`` clears the module's own records (the share and DB snapshot logs, the
copy pacing settings).
"""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import json
import logging
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from moto.core.responses import ActionResult, EmptyResult
from moto.ec2.exceptions import EC2ClientError, InvalidParameterDependency, InvalidSnapshotIdError
from moto.ec2.models import ec2_backends
from moto.ec2.models.elastic_block_store import EBSBackend, Snapshot
from moto.ec2.responses.elastic_block_store import ElasticBlockStore
from moto.ec2.utils import generic_filter, random_snapshot_id
from moto.kms.exceptions import AccessDeniedException, NotFoundException
from moto.kms.models import Key, KmsBackend, kms_backends
from moto.kms.responses import KmsResponse
from moto.rds.exceptions import (
    DBSnapshotAlreadyExistsError,
    DBSnapshotNotFoundFault,
    RDSClientError,
    SnapshotQuotaExceededFault,
)
from moto.rds.models import DBSnapshot, RDSBackend, rds_backends
from moto.server import ThreadedMotoServer

AMBIENT_ACCOUNT = "123456789012"
"""The account moto acts in for credentials it does not know (e.g. ``testing``)."""

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

COPY_KEY_ACTIONS = ("kms:DescribeKey", "kms:CreateGrant", "kms:Decrypt")
"""Key-policy actions another account needs on a source key for EBS to copy with it.

AWS lists DescribeKey, CreateGrant, GenerateDataKey, GenerateDataKeyWithoutPlaintext,
ReEncrypt and Decrypt (https://docs.aws.amazon.com/ebs/latest/userguide/share-kms-key.html);
we require the three without which EBS cannot even start to use the key.
"""

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
    "RDS error codes on the wire": (
        "moto raises DBSnapshotNotFoundFault but serializes the model's code "
        "DBSnapshotNotFound (HTTP 404), as AWS does; likewise DBSnapshotAlreadyExists (400)."
    ),
    "DescribeDBSnapshots db-snapshot-id filter": (
        "Filters=[{Name: db-snapshot-id, Values: [several]}] returns each existing one and "
        "silently leaves out ids that do not exist; DBSnapshotIdentifier=<missing> is "
        "DBSnapshotNotFound. Without SnapshotType both automated and manual snapshots are "
        "returned (moto makes an automated rds:<db>-<time> snapshot at instance creation). "
        "Status, Encrypted, KmsKeyId and DBSnapshotArn are returned; PercentProgress and "
        "SourceDBSnapshotIdentifier were not (now patched)."
    ),
    "DescribeDBSnapshots SnapshotType=shared": (
        "lists the snapshots of other accounts in the caller's Region whose restore "
        "attribute names the caller."
    ),
    "CopyDBSnapshot within one account": (
        "same Region, and across Regions with the source given by ARN, worked; Tags land on "
        "the copy, CopyTags copies the source's tags when no Tags are given, a KmsKeyId "
        "alias/id was resolved to an ARN, a KmsKeyId of another Region is "
        "KMSKeyNotAccessibleFault, a taken TargetDBSnapshotIdentifier is "
        "DBSnapshotAlreadyExists. Replaced as a whole by patch_copy_db_snapshot for the "
        "cross-account and key rules."
    ),
    "DeleteDBSnapshot / DescribeDBSnapshotAttributes": (
        "delete works (DBSnapshotNotFound when missing); DescribeDBSnapshotAttributes lists "
        "the restore attribute's values after ModifyDBSnapshotAttribute add/remove."
    ),
    "DB snapshot identifiers": (
        "CreateDBSnapshot/CopyDBSnapshot validate identifiers as AWS documents (1-255 "
        "letters, digits, hyphens; first a letter; no '--', no trailing '-') with "
        "InvalidParameterValue, and store them lowercased."
    ),
}

log = logging.getLogger("moto_ext")

SHARE_LOG: list[dict[str, Any]] = []
"""Every createVolumePermission change requested, accepted or refused, in order.

Not an AWS feature (CloudTrail would be the closest): tests use it to prove that a share was
never made, which the final snapshot state cannot show.
"""
_share_log_lock = threading.Lock()

DB_SHARE_LOG: list[dict[str, Any]] = []
"""Every ModifyDBSnapshotAttribute request (any attribute), accepted or refused, in order.

Entries: account, region, snapshot_id, snapshot_arn, attribute, values_to_add,
values_to_remove, accepted. The RDS sibling of SHARE_LOG.
"""

DB_SNAPSHOT_LOG: list[dict[str, Any]] = []
"""Every manual CreateDBSnapshot / CopyDBSnapshot request, accepted or refused, in order.

Entries: action, account, region, identifier (the new snapshot's, lowercased), source
(CopyDBSnapshot's SourceDBSnapshotIdentifier, as given), kms_key_id (as given), result_kms_key_id
(the key ARN of the snapshot made), tags (dict), accepted, error (code or None). Lets tests prove
that a snapshot (e.g. an intermediate copy) never existed, even briefly, and which key an
intermediate copy that was since deleted had.
"""


# --------------------------------------------------------------------------- helpers


@dataclass(frozen=True)
class KmsArn:
    account: str
    region: str
    kind: str  # "key" or "alias"
    name: str  # key id, or "alias/..."


_KMS_ARN = re.compile(r"^arn:aws[\w-]*:kms:([a-z0-9-]+):(\d{12}):(key|alias)/(.+)$")


def parse_kms_arn(text: str) -> KmsArn | None:
    m = _KMS_ARN.match(text or "")
    if not m:
        return None
    region, account, kind, rest = m.groups()
    return KmsArn(account, region, kind, rest if kind == "key" else f"alias/{rest}")


def _existing(backend_dict: Any, account: str, region: str) -> Any | None:
    """The backend of account+Region if it was ever created, without creating it."""
    per_account = dict.get(backend_dict, account)
    if per_account is None or region not in dict.keys(per_account):
        return None
    return dict.__getitem__(per_account, region)


def lookup_key(account: str, region: str, key_ref: str) -> Key | None:
    """Resolve a key id, key ARN, alias name or alias ARN as `account` in `region` would.

    Bare ids and alias names resolve in the caller's own account+Region; ARNs name their
    account, and their Region must be `region` (KMS keys are regional:
    https://docs.aws.amazon.com/kms/latest/developerguide/find-cmk-id-arn.html).
    Reserved aws/* aliases are created on demand, as AWS creates managed keys on first use.
    """
    if not key_ref:
        return None
    arn = parse_kms_arn(key_ref)
    if arn is not None:
        if arn.region != region:
            return None
        account, name = arn.account, arn.name
    elif key_ref.startswith("arn:"):
        return None
    else:
        name = key_ref
    backend: KmsBackend = kms_backends[account][region]
    if name.startswith("alias/"):
        key_id = backend.get_key_id_from_alias(name)
        return backend.keys.get(key_id) if key_id else None
    return backend.keys.get(name)


def key_of_snapshot(snapshot: Snapshot) -> Key | None:
    arn = parse_kms_arn(getattr(snapshot, "kms_key_id", None) or "")
    if arn is None:
        return None
    return lookup_key(arn.account, arn.region, snapshot.kms_key_id)


def is_aws_managed(key: Key) -> bool:
    return getattr(key, "key_manager", "") == "AWS" or any(
        alias.startswith("alias/aws/") for alias in key.aliases
    )


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _principal_admits(principal: Any, account: str) -> bool:
    if principal == "*":
        return True
    if isinstance(principal, dict):
        principal = principal.get("AWS")
    for p in _as_list(principal):
        if p == "*" or p == account:
            return True
        # arn:aws:iam::B:root, arn:aws:iam::B:role/x, arn:aws:sts::B:assumed-role/x/y ...
        m = re.match(r"^arn:aws[\w-]*:(?:iam|sts)::(\d{12}):", str(p))
        if m and m.group(1) == account:
            return True
    return False


def _conditions_admit(condition: dict[str, Any] | None, account: str) -> bool:
    """Only kms:CallerAccount is evaluated (it is what AWS managed key policies use)."""
    for operator, tests in (condition or {}).items():
        for name, value in tests.items():
            if name.lower() == "kms:calleraccount" and operator.startswith("StringEquals"):
                if account not in _as_list(value):
                    return False
    return True


def _actions_cover(actions: Any, action: str) -> bool:
    return any(
        fnmatch.fnmatchcase(action.lower(), str(pattern).lower())
        for pattern in _as_list(actions)
    )


def key_policy_admits(key: Key, account: str, actions: Iterable[str]) -> bool:
    """Does `key`'s key policy let principals of `account` perform all `actions`?

    Imitates cross-account key access: another account may use a KMS key only if the key
    policy allows it (https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-modifying-external-accounts.html),
    and AWS managed keys can never be used by another account
    (https://docs.aws.amazon.com/kms/latest/developerguide/concepts.html#aws-managed-cmk).
    The owning account is admitted (its IAM policies are not modelled), a disabled key
    admits nobody. Evaluated: Effect, Principal (AWS: "*", an account id, any IAM/STS ARN
    of the account), Action wildcards, Condition kms:CallerAccount. Not evaluated: other
    conditions, NotPrincipal, NotAction.
    """
    if not key.enabled or key.key_state != "Enabled":
        return False
    if key.account_id == account:
        return True
    if is_aws_managed(key):
        return False
    try:
        statements = _as_list(json.loads(key.policy).get("Statement"))
    except (ValueError, AttributeError):
        return False
    allowed: set[str] = set()
    for st in statements:
        if not (
            _principal_admits(st.get("Principal"), account)
            and _conditions_admit(st.get("Condition"), account)
        ):
            continue
        for action in actions:
            if _actions_cover(st.get("Action"), action):
                if st.get("Effect") == "Deny":
                    return False
                if st.get("Effect") == "Allow":
                    allowed.add(action)
    return allowed >= set(actions)


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


def aws_managed_key_policy(account: str, region: str, service: str) -> str:
    """The fixed key policy AWS gives its managed keys (here the shape of aws/ebs's).

    https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html and
    https://docs.aws.amazon.com/ebs/latest/userguide/ebs-encryption.html: usable by any
    principal of the owning account, only through the service, never by another account.
    """
    via = {"ebs": "ec2"}.get(service, service)
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Id": f"auto-{service}-2",
            "Statement": [
                {
                    "Sid": "Allow access through the service for all principals in the "
                    "account that are authorized to use it",
                    "Effect": "Allow",
                    "Principal": {"AWS": "*"},
                    "Action": [
                        "kms:Encrypt",
                        "kms:Decrypt",
                        "kms:ReEncrypt*",
                        "kms:GenerateDataKey*",
                        "kms:CreateGrant",
                        "kms:DescribeKey",
                    ],
                    "Resource": "*",
                    "Condition": {
                        "StringEquals": {
                            "kms:CallerAccount": account,
                            "kms:ViaService": f"{via}.{region}.amazonaws.com",
                        }
                    },
                },
                {
                    "Sid": "Allow direct access to key metadata to the account",
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
                    "Action": ["kms:Describe*", "kms:Get*", "kms:List*", "kms:RevokeGrant"],
                    "Resource": "*",
                },
            ],
        }
    )


def make_aws_managed(key: Key, alias: str) -> None:
    service = alias.removeprefix("alias/aws/")
    key.key_manager = "AWS"
    key.policy = aws_managed_key_policy(key.account_id, key.region, service)
    if service == "ebs":
        key.description = (
            "Default key that protects my EBS volumes when no other key is defined"
        )
    elif service == "rds":
        key.description = (
            "Default key that protects my RDS database volumes when no other key is defined"
        )


def default_ebs_key_arn(backend: EBSBackend) -> str:
    """The account's default EBS key in the backend's Region (aws/ebs unless changed)."""
    return backend.default_kms_key_id or backend._create_default_encryption_key()


# --------------------------------------------------------------------------- patches

PATCHES: list[tuple[str, Callable[[], None]]] = []
_applied = False
_apply_lock = threading.Lock()


def patch(fn: Callable[[], None]) -> Callable[[], None]:
    PATCHES.append((fn.__name__, fn))
    return fn


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
def patch_default_ebs_key_is_aws_managed() -> None:
    """Departure 2: the aws/ebs key moto creates on demand is an ordinary customer key.

    moto already encrypts Encrypted=true volumes without KmsKeyId under a key it creates
    with alias alias/aws/ebs (see ALREADY_CORRECT). AWS: that default key is an *AWS
    managed* key, with a fixed key policy that only its own account can use through EC2
    (https://docs.aws.amazon.com/ebs/latest/userguide/ebs-encryption.html#ebs-encryption-key-mgmt,
    https://docs.aws.amazon.com/kms/latest/developerguide/concepts.html#aws-managed-cmk).
    Applies to keys created by EC2 and to aws/* keys KMS creates on first reference.
    """
    original_ebs = EBSBackend._create_default_encryption_key
    original_kms = KmsBackend._generate_default_keys

    def _create_default_encryption_key(self: EBSBackend) -> str:
        arn = original_ebs(self)
        key = lookup_key(self.account_id, self.region_name, arn)
        if key is not None and any(a == "alias/aws/ebs" for a in key.aliases):
            make_aws_managed(key, "alias/aws/ebs")
        return arn

    def _generate_default_keys(self: KmsBackend, alias_name: str) -> str | None:
        key_id = original_kms(self, alias_name)
        if key_id is not None:
            make_aws_managed(self.keys[key_id], alias_name)
        return key_id

    EBSBackend._create_default_encryption_key = _create_default_encryption_key
    KmsBackend._generate_default_keys = _generate_default_keys


@patch
def patch_key_manager_aws() -> None:
    """Departure 3: keys behind alias/aws/* report KeyManager CUSTOMER in moto.

    AWS: AWS managed keys (aliases aws/<service>) report KeyManager "AWS" in DescribeKey
    (https://docs.aws.amazon.com/kms/latest/APIReference/API_KeyMetadata.html#KMS-Type-KeyMetadata-KeyManager).
    """
    original = Key.to_dict

    def to_dict(self: Key) -> dict[str, Any]:
        result = original(self)
        if is_aws_managed(self):
            result["KeyMetadata"]["KeyManager"] = "AWS"
        return result

    Key.to_dict = to_dict


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


@patch
def patch_kms_cross_account_describe_key() -> None:
    """Departure: DescribeKey with another account's key ARN looked in the caller's account.

    AWS: "To perform this operation on a KMS key in a different AWS account, specify the
    key ARN or alias ARN" (https://docs.aws.amazon.com/kms/latest/APIReference/API_DescribeKey.html);
    it succeeds if the key policy allows the caller kms:DescribeKey, else AccessDenied.
    Lets snaprelay check, with the target role, that it can reach a source key.
    """
    original = KmsResponse.describe_key

    def describe_key(self: KmsResponse) -> str:
        key_ref = self._get_param("KeyId") or ""
        arn = parse_kms_arn(key_ref)
        if arn is None or arn.account == self.current_account:
            return original(self)
        key = lookup_key(arn.account, self.region, key_ref)
        if key is None:
            raise NotFoundException(f"Key '{key_ref}' does not exist")
        if not key_policy_admits(key, self.current_account, ["kms:DescribeKey"]):
            message = (
                f"User: arn:aws:iam::{self.current_account}:root is not authorized to "
                f"perform: kms:DescribeKey on resource: {key.arn} because no "
                "resource-based policy allows the kms:DescribeKey action"
            )
            error = AccessDeniedException(message)
            # moto's AccessDeniedException drops its message from the response body.
            error.description = json.dumps({"__type": "AccessDeniedException", "message": message})
            raise error
        return json.dumps(key.to_dict())

    KmsResponse.describe_key = describe_key


# --------------------------------------------------------------------------- RDS

DB_DEFAULT_KEY_SHARE_ERROR = (
    "InvalidParameterValue",
    "The DB snapshot is encrypted with the default AWS KMS key (aws/rds) of its account "
    "and can't be shared. Copy it with a customer managed key and share the copy.",
)
"""What ModifyDBSnapshotAttribute answers here when asked to share a snapshot under aws/rds.

AWS documents the rule ("You can't share a snapshot that has been encrypted using the default
KMS key of the AWS account that shared the snapshot",
https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/share-encrypted-snapshot.html) but no
page or public report found gives the wire error: code and message are best knowledge
(InvalidParameterValue, HTTP 400). Note: two 2019 reports (github.com/awslabs/rds-snapshot-tool
issue 34, github.com/awslabs/aurora-snapshot-tool issue 26) describe the share call succeeding
and the copy in the other account then failing on the key; the copy side is imitated too
(patch_copy_db_snapshot), so a tool that relies on the share being refused is caught either way.
"""

DB_PUBLIC_ENCRYPTED_SHARE_ERROR = (
    "InvalidParameterValue",
    "Encrypted DB snapshots can't be shared publicly: list the account ids to share with.",
)
"""ModifyDBSnapshotAttribute restore ValuesToAdd=["all"] on an encrypted snapshot.

"If the manual DB snapshot is encrypted, it can be shared, but only by specifying a list of
authorized AWS account IDs for the ValuesToAdd parameter. You can't use all as a value"
(https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_ModifyDBSnapshotAttribute.html).
Code and message are best knowledge.
"""

DB_TARGET_KEY_NOT_ACCESSIBLE = (
    "The target KMS key [{key}] does not exist, is not enabled or you do not have "
    "permissions to access it."
)
"""KMSKeyNotAccessibleFault message of CopyDBSnapshot for an unusable KmsKeyId.

Wording as reported from real AWS for CopyDBSnapshot (github.com/awslabs/rds-snapshot-tool
issue 70: "The target KMS key [None] does not exist, ..." for a KmsKeyId of "None").
"""

DB_SOURCE_KEY_NOT_ACCESSIBLE = (
    "The source snapshot KMS key [{key}] does not exist, is not enabled or you do not have "
    "permissions to access it."
)
"""KMSKeyNotAccessibleFault message of a copy whose source key the caller cannot use.

Reported from real AWS, synchronously from the Copy call (not as a failed copy):
github.com/awslabs/aurora-snapshot-tool issues 26 and 29 (CopyDBClusterSnapshot, with the key
ARN in brackets) and github.com/pbudzon/aws-maintenance issue 13 (CopyDBSnapshot).
"""

DB_CROSS_REGION_NEEDS_KEY = (
    "InvalidParameterValue",
    "Must specify new KMS key for cross region encrypted snapshot copy.",
)
"""CopyDBSnapshot of an encrypted snapshot from another Region without KmsKeyId.

As reported from real AWS (github.com/1Strategy/rds-oracle-cross-account-cross-region-dr
issue 1); rule: https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CopyDBSnapshot.html
("If you copy an encrypted snapshot to a different AWS Region, then you must specify an AWS
KMS key identifier for the destination AWS Region").
"""

DB_SHARED_NEEDS_KEY = (
    "InvalidParameterValue",
    "Must specify new KMS key for cross account encrypted snapshot copy.",
)
"""CopyDBSnapshot of an encrypted snapshot shared from another account without KmsKeyId.

Rule: "If you copy an encrypted DB snapshot that is shared from another AWS account, then you
must specify a value for this parameter" (API_CopyDBSnapshot.html). Code and message are best
knowledge, modelled on DB_CROSS_REGION_NEEDS_KEY.
"""

DB_COPY_QUOTA_MESSAGE = "Cannot copy more than {limit} snapshots across regions"
"""SnapshotQuotaExceeded message of a CopyDBSnapshot beyond the copies-in-progress quota.

As reported from real AWS when the quota was 5 (github.com/pbudzon/aws-maintenance issue 19:
"SnapshotQuotaExceeded ... CopyDBSnapshot operation: Cannot copy more than 5 snapshots across
regions"); today "You can have up to 20 snapshot copy requests in progress to a single
destination Region per account"
(https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_CopySnapshot.html).
"""

DB_SNAPSHOT_NOT_AVAILABLE = "DB snapshot {id} is not in the available state."
"""InvalidDBSnapshotState message when a snapshot still being created is copied, shared or
deleted (only reachable with RDS_COPY_PACING). The code is from the RDS API model; the wording
is best knowledge."""

_db_log_lock = threading.Lock()
_RDS_SNAPSHOT_ARN = re.compile(r"^arn:aws[\w-]*:rds:([a-z0-9-]+):(\d{12}):snapshot:(.+)$")


def _rds_error(code: str, message: str) -> RDSClientError:
    return RDSClientError(code, message)


def _db_log(entry: dict[str, Any], log_list: list[dict[str, Any]]) -> None:
    with _db_log_lock:
        log_list.append(entry)


def default_rds_key(account: str, region: str) -> Key:
    """The account's AWS managed aws/rds key in `region`, created on first use as AWS does."""
    kms: KmsBackend = kms_backends[account][region]
    key = kms.keys[kms.get_key_id_from_alias("alias/aws/rds")]
    if getattr(key, "key_manager", "") != "AWS":
        make_aws_managed(key, "alias/aws/rds")
    return key


def key_of_db_snapshot(snapshot: DBSnapshot) -> Key | None:
    arn = parse_kms_arn(getattr(snapshot, "kms_key_id", None) or "")
    if arn is None:
        return None
    return lookup_key(arn.account, arn.region, snapshot.kms_key_id)


def _db_restorable_by(snapshot: DBSnapshot, account: str) -> bool:
    values = snapshot.attributes.get("restore", [])
    return account in values or "all" in values


def find_copyable_db_snapshot(caller: str, region: str, source_ref: str) -> DBSnapshot:
    """The DB snapshot `caller` may copy in `region` by identifier or ARN.

    Imitates https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_CopySnapshot.html:
    an own snapshot by identifier (this Region) or ARN (any Region); another account's snapshot
    only by ARN and only if its restore attribute names the caller (or "all"), "To copy a
    shared snapshot, SourceDBSnapshotIdentifier must be the ARN". The shared one may be in
    another Region: AWS now accepts cross-account cross-Region copies in one step (SPEC 2.C).
    Anything else is DBSnapshotNotFound.
    """
    m = _RDS_SNAPSHOT_ARN.match(source_ref or "")
    if m:
        src_region, owner, ident = m.groups()
    elif (source_ref or "").startswith("arn:"):
        raise DBSnapshotNotFoundFault(source_ref)
    else:
        src_region, owner, ident = region, caller, source_ref
    backend = _existing(rds_backends, owner, src_region)
    snapshot = backend.database_snapshots.get(ident) if backend is not None else None
    if snapshot is None or (owner != caller and not _db_restorable_by(snapshot, caller)):
        raise DBSnapshotNotFoundFault(source_ref)
    return snapshot


class RdsCopyPacing:
    """Opt-in (tests set ``RDS_COPY_PACING.pending_seconds`` / ``.limit`` / ``.create_seconds``;
    ``after_reset`` clears): DB snapshots that take time, and the copies-in-progress quota.

    moto makes every DB snapshot "available" at once and never refuses a copy. In AWS a
    CreateDBSnapshot is "creating" with a PercentProgress for minutes, a copy is "pending"
    (queued) then "creating" for minutes to hours, and an account may have 20 copies in
    progress per destination Region; one more is refused with SnapshotQuotaExceeded
    (DB_COPY_QUOTA_MESSAGE). Here a paced copy is "pending" for the first third of
    ``pending_seconds``, then "creating" with PercentProgress rising, then "available"; a paced
    CreateDBSnapshot is "creating" for ``create_seconds``. ``limit`` (None: no quota) counts
    the paced copies still in progress in the caller's account and destination Region.
    (The RDS docs also speak of a "copying" status when cancelling a copy; snaprelay should
    treat every status but available/failed as in progress.)
    """

    def __init__(self) -> None:
        self.pending_seconds = 0.0
        self.create_seconds = 0.0
        self.limit: int | None = None
        self.refused = 0
        self.most_in_flight: dict[tuple[str, str], int] = {}
        # Re-entrant: patch_copy_db_snapshot holds it across admit + create + hold, so that
        # concurrent copies cannot all pass the quota check before any of them is counted.
        self._lock = threading.RLock()

    def serialized(self) -> threading.RLock:
        return self._lock

    def clear(self) -> None:
        with self._lock:
            self.pending_seconds, self.create_seconds, self.limit, self.refused = 0.0, 0.0, None, 0
            self.most_in_flight.clear()

    @staticmethod
    def in_flight(dest: RDSBackend) -> int:
        now = time.monotonic()
        return sum(
            1
            for s in list(dest.database_snapshots.values())
            if getattr(s, "_paced_kind", None) == "copy" and s._paced_until > now
        )

    def admit(self, dest: RDSBackend) -> None:
        with self._lock:
            if self.limit is not None and self.in_flight(dest) >= self.limit:
                self.refused += 1
                raise _rds_error(
                    "SnapshotQuotaExceeded", DB_COPY_QUOTA_MESSAGE.format(limit=self.limit)
                )

    def hold(self, dest: RDSBackend, snapshot: DBSnapshot, kind: str) -> None:
        seconds = self.pending_seconds if kind == "copy" else self.create_seconds
        if seconds <= 0:
            return
        now = time.monotonic()
        snapshot._paced_kind = kind
        snapshot._paced_start = now
        snapshot._paced_until = now + seconds
        if kind == "copy":
            place = (dest.account_id, dest.region_name)
            with self._lock:
                n = self.in_flight(dest)
                self.most_in_flight[place] = max(self.most_in_flight.get(place, 0), n)


RDS_COPY_PACING = RdsCopyPacing()


def _paced_status(snapshot: DBSnapshot) -> str | None:
    """The in-progress status of a paced snapshot, or None once it is done (or unpaced)."""
    until = getattr(snapshot, "_paced_until", None)
    if until is None:
        return None
    now = time.monotonic()
    if now >= until:
        return None
    if snapshot._paced_kind == "copy" and now < snapshot._paced_start + (until - snapshot._paced_start) / 3:
        return "pending"
    return "creating"


@patch
def patch_db_snapshot_progress_fields() -> None:
    """Departure: DB snapshots had no PercentProgress and no SourceDBSnapshotIdentifier /
    SourceRegion; (with RDS_COPY_PACING) Status follows the pacing.

    AWS (https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DBSnapshot.html):
    PercentProgress "The percentage of the estimated data that has been transferred";
    SourceDBSnapshotIdentifier "The DB snapshot ARN that the DB snapshot was copied from. It
    only has a value in the case of a cross-account or cross-Region copy"; SourceRegion "The
    AWS Region that the DB snapshot was created in or copied from" (set here on copies).
    """

    def get_status(self: DBSnapshot) -> str:
        return _paced_status(self) or self._final_status

    def set_status(self: DBSnapshot, value: str) -> None:
        self._final_status = value

    def percent_progress(self: DBSnapshot) -> int:
        if _paced_status(self) is not None:
            span = self._paced_until - self._paced_start
            done = (time.monotonic() - self._paced_start) / span if span > 0 else 1.0
            return 0 if _paced_status(self) == "pending" else max(0, min(99, int(done * 100)))
        return 100 if self._final_status == "available" else 0

    DBSnapshot.status = property(get_status, set_status)  # type: ignore[assignment]
    DBSnapshot.percent_progress = property(percent_progress)  # type: ignore[attr-defined]
    DBSnapshot.source_db_snapshot_identifier = None  # type: ignore[attr-defined]
    DBSnapshot.source_region = None  # type: ignore[attr-defined]


@patch
def patch_db_instance_key_arn() -> None:
    """Departure: an encrypted DB instance without KmsKeyId had KmsKeyId "default_kms_key_id";
    a KmsKeyId given as key id or alias stayed as typed; unknown keys were accepted.

    AWS (https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CreateDBInstance.html):
    "If you don't specify a value for the KmsKeyId parameter, then Amazon RDS uses your default
    KMS key", the AWS managed key aws/rds of the account in that Region
    (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/Overview.Encryption.Keys.html);
    DescribeDBInstances reports KmsKeyId as the key ARN. A key that cannot be used is
    KMSKeyNotAccessibleFault. DB snapshots take the instance's key (moto copies it into
    DBSnapshot.kms_key_id), so CreateDBSnapshot then reports the ARN too.
    """
    original = RDSBackend.create_db_instance

    def create_db_instance(self: RDSBackend, db_kwargs: dict[str, Any]) -> Any:
        if db_kwargs.get("storage_encrypted"):
            ref = db_kwargs.get("kms_key_id")
            if ref:
                key = lookup_key(self.account_id, self.region_name, ref)
                if key is None or not key_policy_admits(key, self.account_id, COPY_KEY_ACTIONS):
                    raise _rds_error(
                        "KMSKeyNotAccessibleFault",
                        f"Specified KMS key [{ref}] does not exist, is not enabled or you do "
                        "not have permissions to access it.",
                    )
            else:
                key = default_rds_key(self.account_id, self.region_name)
            db_kwargs = {**db_kwargs, "kms_key_id": key.arn}
        return original(self, db_kwargs)

    RDSBackend.create_db_instance = create_db_instance


@patch
def patch_create_db_snapshot_log_and_pacing() -> None:
    """Not a departure in itself: records manual CreateDBSnapshot calls in DB_SNAPSHOT_LOG and
    lets RDS_COPY_PACING.create_seconds keep new snapshots "creating" (AWS: "creating" until
    "available", https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_CreateSnapshot.html).
    """
    original = RDSBackend.create_db_snapshot

    def create_db_snapshot(
        self: RDSBackend, db_instance_identifier: str, db_snapshot_identifier: str, *args: Any, **kwargs: Any
    ) -> DBSnapshot:
        snapshot_type = kwargs.get("snapshot_type", args[0] if args else "manual")
        entry = {
            "action": "CreateDBSnapshot",
            "account": self.account_id,
            "region": self.region_name,
            "identifier": (db_snapshot_identifier or "").lower(),
            "source": db_instance_identifier,
            "kms_key_id": None,
            "result_kms_key_id": None,
            "tags": {t["Key"]: t["Value"] for t in (kwargs.get("tags") or [])},
            "accepted": False,
            "error": None,
        }
        try:
            snapshot = original(self, db_instance_identifier, db_snapshot_identifier, *args, **kwargs)
        except RDSClientError as e:
            entry["error"] = e.code
            if snapshot_type == "manual":
                _db_log(entry, DB_SNAPSHOT_LOG)
            raise
        if snapshot_type == "manual":
            entry.update(accepted=True, result_kms_key_id=snapshot.kms_key_id)
            _db_log(entry, DB_SNAPSHOT_LOG)
            RDS_COPY_PACING.hold(self, snapshot, "create")
        return snapshot

    RDSBackend.create_db_snapshot = create_db_snapshot


@patch
def patch_modify_db_snapshot_attribute() -> None:
    """Departure: moto shares DB snapshots under the AWS managed key aws/rds, and encrypted DB
    snapshots with "all".

    AWS: "You can't share a snapshot that has been encrypted using the default KMS key of the
    AWS account that shared the snapshot" and "You can't share encrypted snapshots as public"
    (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/share-encrypted-snapshot.html):
    refused with DB_DEFAULT_KEY_SHARE_ERROR / DB_PUBLIC_ENCRYPTED_SHARE_ERROR (best-knowledge
    wire errors). The refusal follows the key's metadata (KeyManager AWS / alias aws/*), not how
    the DB named it. A snapshot still "creating" (RDS_COPY_PACING) is InvalidDBSnapshotState.
    Removing values is always allowed. Every request is recorded in DB_SHARE_LOG.
    """
    original = RDSBackend.modify_db_snapshot_attribute

    def modify_db_snapshot_attribute(
        self: RDSBackend,
        db_snapshot_identifier: str,
        attribute_name: str,
        values_to_add: list[str] | None = None,
        values_to_remove: list[str] | None = None,
    ) -> dict[str, list[str]]:
        add, remove = list(values_to_add or []), list(values_to_remove or [])
        entry = {
            "account": self.account_id,
            "region": self.region_name,
            "snapshot_id": (db_snapshot_identifier or "").lower(),
            "snapshot_arn": None,
            "attribute": attribute_name,
            "values_to_add": add,
            "values_to_remove": remove,
            "accepted": False,
        }
        try:
            snapshot = self.get_db_snapshot(db_snapshot_identifier)
            entry["snapshot_arn"] = snapshot.arn
            if add and attribute_name == "restore":
                if _paced_status(snapshot) is not None:
                    raise _rds_error(
                        "InvalidDBSnapshotStateFault",
                        DB_SNAPSHOT_NOT_AVAILABLE.format(id=snapshot.db_snapshot_identifier),
                    )
                if snapshot.encrypted:
                    key = key_of_db_snapshot(snapshot)
                    if key is None or is_aws_managed(key):
                        raise _rds_error(*DB_DEFAULT_KEY_SHARE_ERROR)
                    if "all" in add:
                        raise _rds_error(*DB_PUBLIC_ENCRYPTED_SHARE_ERROR)
            result = original(self, db_snapshot_identifier, attribute_name, add, remove)
        except RDSClientError:
            _db_log(entry, DB_SHARE_LOG)
            raise
        entry["accepted"] = True
        _db_log(entry, DB_SHARE_LOG)
        return result

    RDSBackend.modify_db_snapshot_attribute = modify_db_snapshot_attribute


def copy_db_snapshot(
    dest: RDSBackend,
    source_ref: str,
    target_identifier: str,
    kms_key_id: str | None,
    tags: list[dict[str, str]] | None,
    copy_tags: bool,
) -> DBSnapshot:
    """CopyDBSnapshot as AWS does it, called in `dest` (caller's account, destination Region).

    https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CopyDBSnapshot.html and
    https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_CopySnapshot.html:
    - the source: find_copyable_db_snapshot (own, or shared with the caller, by ARN);
    - it must be "available" (InvalidDBSnapshotState, reachable with RDS_COPY_PACING only);
    - TargetDBSnapshotIdentifier unique per account+Region (DBSnapshotAlreadyExists);
    - copies in progress per destination (RDS_COPY_PACING.limit, SnapshotQuotaExceeded);
    - KmsKeyId is resolved in the caller's account and the destination Region to the key ARN;
      a key that does not exist there, is disabled, or whose policy does not admit the
      caller is KMSKeyNotAccessibleFault (DB_TARGET_KEY_NOT_ACCESSIBLE). "If you specify this
      parameter when you copy an unencrypted snapshot, the copy is encrypted."
    - an encrypted source needs KmsKeyId across Regions (DB_CROSS_REGION_NEEDS_KEY) and
      across accounts (DB_SHARED_NEEDS_KEY); otherwise the copy keeps the source's key;
    - the caller must be able to use the source's key (key policy, COPY_KEY_ACTIONS; an AWS
      managed key never admits another account), else KMSKeyNotAccessibleFault
      (DB_SOURCE_KEY_NOT_ACCESSIBLE), synchronously. CreateGrant is needed: a key policy
      granting Encrypt/Decrypt/ReEncrypt*/GenerateDataKey*/DescribeKey but not CreateGrant
      fails this way (github.com/awslabs/aurora-snapshot-tool issue 29);
    - Tags land on the copy; with CopyTags and no Tags the source's tags are copied (moto's
      rule, kept); SourceDBSnapshotIdentifier is the source ARN for cross-account or
      cross-Region copies, SourceRegion the source's Region.
    """
    caller, region = dest.account_id, dest.region_name
    source = find_copyable_db_snapshot(caller, region, source_ref)
    cross_account = source.account_id != caller
    cross_region = source.region != region
    if _paced_status(source) is not None or source.status != "available":
        raise _rds_error(
            "InvalidDBSnapshotStateFault", DB_SNAPSHOT_NOT_AVAILABLE.format(id=source.arn)
        )
    if target_identifier in dest.database_snapshots:
        raise DBSnapshotAlreadyExistsError(target_identifier)
    if len(dest.database_snapshots) >= dest.SNAPSHOT_QUOTA:
        raise SnapshotQuotaExceededFault()
    RDS_COPY_PACING.admit(dest)

    key_arn: str | None = None
    if kms_key_id:
        key = lookup_key(caller, region, kms_key_id)
        if key is None or not key_policy_admits(key, caller, COPY_KEY_ACTIONS):
            raise _rds_error(
                "KMSKeyNotAccessibleFault", DB_TARGET_KEY_NOT_ACCESSIBLE.format(key=kms_key_id)
            )
        key_arn = key.arn
    if source.encrypted:
        if key_arn is None:
            if cross_region:
                raise _rds_error(*DB_CROSS_REGION_NEEDS_KEY)
            if cross_account:
                raise _rds_error(*DB_SHARED_NEEDS_KEY)
            key_arn = source.kms_key_id
        source_key = key_of_db_snapshot(source)
        if source_key is None and not cross_account:
            pass  # an own snapshot whose key is not recorded as an ARN (patch left out)
        elif source_key is None or not key_policy_admits(source_key, caller, COPY_KEY_ACTIONS):
            raise _rds_error(
                "KMSKeyNotAccessibleFault",
                DB_SOURCE_KEY_NOT_ACCESSIBLE.format(key=source.kms_key_id),
            )

    if copy_tags and not tags:
        tags = list(source.tags or [])
    snapshot = DBSnapshot(
        dest,
        source.database,
        target_identifier,
        tags=tags or [],
        kms_key_id=key_arn,
        original_created_at=source.original_snapshot_create_time,
    )
    snapshot.tags = tags or []  # not the DB instance's tags (DBSnapshot's CopyTagsToSnapshot rule)
    if key_arn is None:
        snapshot.kms_key_id, snapshot.encrypted, snapshot.storage_encrypted = None, False, False
    if cross_account or cross_region:
        snapshot.source_db_snapshot_identifier = source.arn
    snapshot.source_region = source.region
    dest.database_snapshots[target_identifier] = snapshot
    return snapshot


@patch
def patch_copy_db_snapshot() -> None:
    """Departure: CopyDBSnapshot. See copy_db_snapshot() for the AWS behaviour.

    moto looked the source up in the caller's own account only (DBSnapshotNotFound for a
    snapshot shared from another account, even by ARN), let an encrypted cross-Region copy
    without KmsKeyId keep the source Region's key, never consulted key policies, and had no
    copies-in-progress quota. Every request is recorded in DB_SNAPSHOT_LOG.
    """

    def copy(self: RDSBackend, **kwargs: Any) -> DBSnapshot:
        source_ref = kwargs.get("source_db_snapshot_identifier") or ""
        target = kwargs.get("target_db_snapshot_identifier") or ""
        kms_key_id = kwargs.get("kms_key_id")
        tags = kwargs.get("tags")
        entry = {
            "action": "CopyDBSnapshot",
            "account": self.account_id,
            "region": self.region_name,
            "identifier": target.lower(),
            "source": source_ref,
            "kms_key_id": kms_key_id,
            "result_kms_key_id": None,
            "tags": {t["Key"]: t["Value"] for t in (tags or [])},
            "accepted": False,
            "error": None,
        }
        with RDS_COPY_PACING.serialized():
            try:
                snapshot = copy_db_snapshot(
                    self, source_ref, target, kms_key_id, tags, bool(kwargs.get("copy_tags"))
                )
            except RDSClientError as e:
                entry["error"] = e.code
                _db_log(entry, DB_SNAPSHOT_LOG)
                raise
            RDS_COPY_PACING.hold(self, snapshot, "copy")
        entry.update(accepted=True, result_kms_key_id=snapshot.kms_key_id)
        _db_log(entry, DB_SNAPSHOT_LOG)
        return snapshot

    RDSBackend.copy_db_snapshot = copy


@patch
def patch_delete_db_snapshot_in_progress() -> None:
    """With RDS_COPY_PACING only: deleting a DB snapshot still being created is
    InvalidDBSnapshotState, deleting a copy in progress cancels the copy.

    AWS (https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DeleteDBSnapshot.html):
    "If the snapshot is being copied, the copy operation is terminated. The DB snapshot must
    be in the available state to be deleted."
    """
    original = RDSBackend.delete_db_snapshot

    def delete_db_snapshot(self: RDSBackend, db_snapshot_identifier: str) -> DBSnapshot:
        snapshot = self.database_snapshots.get(db_snapshot_identifier or "")
        if (
            snapshot is not None
            and _paced_status(snapshot) is not None
            and getattr(snapshot, "_paced_kind", None) != "copy"
        ):
            raise _rds_error(
                "InvalidDBSnapshotStateFault",
                DB_SNAPSHOT_NOT_AVAILABLE.format(id=snapshot.db_snapshot_identifier),
            )
        deleted = original(self, db_snapshot_identifier)
        deleted._paced_until = 0.0  # a cancelled copy is no longer in flight
        return deleted

    RDSBackend.delete_db_snapshot = delete_db_snapshot


def apply_patches() -> None:
    """Apply every patch once (idempotent, thread-safe).

    MOTO_EXT_SKIP=name,name (or "all") leaves patches out: to watch test_moto_ext.py fail
    against plain moto, never for real runs.
    """
    global _applied
    skip = {s.strip() for s in os.environ.get("MOTO_EXT_SKIP", "").split(",") if s.strip()}
    with _apply_lock:
        if _applied:
            return
        for name, fn in PATCHES:
            if name in skip or "all" in skip:
                log.warning("moto_ext: %s left out (MOTO_EXT_SKIP)", name)
                continue
            fn()
            log.debug("applied %s", name)
        _applied = True


def after_reset() -> None:
    """Call after POST /moto-api/reset: the patches survive it, our own records do not."""
    apply_patches()
    with _share_log_lock:
        SHARE_LOG.clear()
    with _db_log_lock:
        DB_SHARE_LOG.clear()
        DB_SNAPSHOT_LOG.clear()
    COPY_PACING.clear()
    RDS_COPY_PACING.clear()


# --------------------------------------------------------------------------- server


class Server:
    """A patched moto server on 127.0.0.1 in a thread of this process."""

    def __init__(self, port: int = 0):
        apply_patches()
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self._server.start()
        host, bound = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{bound}"

    def stop(self) -> None:
        self._server.stop()


def start(port: int = 0) -> Server:
    return Server(port)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="0 (default) picks a free port")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    if not args.verbose:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    server = start(args.port)
    print(server.endpoint, flush=True)
    try:
        while not stop.wait(1.0):
            pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
