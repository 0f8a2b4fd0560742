"""Aurora: DB clusters under a real key ARN, DB cluster snapshot sharing and copying as AWS
does them, the cluster share log, copy pacing, restores and deletions of DB clusters.

moto "encrypts" DB clusters without KmsKeyId with the literal key ``default_kms_key_id``,
shares DB cluster snapshots under the AWS managed key aws/rds and encrypted ones with "all",
cannot copy a DB cluster snapshot shared from another account (it looks only in the caller's
account), lets encrypted copies across accounts or Regions go without a new key, accepts
KmsKeyId for an unencrypted source, never consults key policies, sets no
SourceDBClusterSnapshotArn, makes every copy available at once, restores only from a
snapshot named by identifier (overwriting a cluster of the same name, in the source's
Availability Zones), and deletes a cluster without a final snapshot choice. The patches here
imitate AWS for CreateDBCluster, ModifyDBClusterSnapshotAttribute (recorded in
DB_CLUSTER_SHARE_LOG), CopyDBClusterSnapshot (paced by AURORA_COPY_PACING when a test asks),
RestoreDBClusterFromSnapshot and DeleteDBCluster. They reuse the key helpers of kms.py and
the error texts of rds.py where AWS answers clusters as it answers DB instances.
"""

from __future__ import annotations

import copy
import re
import time
from typing import Any

from moto.rds.exceptions import (
    DBClusterSnapshotAlreadyExistsError,
    DBClusterSnapshotNotFoundError,
    RDSClientError,
    SnapshotQuotaExceededFault,
)
from moto.rds.models import DBCluster, DBClusterSnapshot, RDSBackend, rds_backends
from moto.rds.responses import RDSResponse

from .common import _existing, patch
from .kms import COPY_KEY_ACTIONS, is_aws_managed, key_policy_admits, lookup_key
from .rds import (
    DB_CROSS_REGION_NEEDS_KEY,
    DB_DEFAULT_KEY_SHARE_ERROR,
    DB_FINAL_SNAPSHOT_REQUIRED,
    DB_PUBLIC_ENCRYPTED_SHARE_ERROR,
    DB_SHARED_NEEDS_KEY,
    DB_SOURCE_KEY_NOT_ACCESSIBLE,
    RdsCopyPacing,
    _db_log,
    default_rds_key,
    key_of_db_snapshot,
)

AURORA_TARGET_KEY_NOT_ACCESSIBLE = (
    "Specified KMS key [{key}] does not exist, is not enabled or you do not have permissions "
    "to access it."
)
"""KMSKeyNotAccessibleFault message of CreateDBCluster / CopyDBClusterSnapshot for a KmsKeyId
the caller cannot use. Wording as reported from real AWS for CopyDBClusterSnapshot
(github.com/awslabs/aurora-snapshot-tool issue 25: "Specified KMS key [None] does not
exist, ..."); it is also moto's own text."""

AURORA_UNENCRYPTED_WITH_KEY = (
    "InvalidParameterValue",
    "KmsKeyId can't be specified when copying an unencrypted DB cluster snapshot.",
)
"""CopyDBClusterSnapshot of an unencrypted snapshot with KmsKeyId.

Rule: "If you copy an unencrypted DB cluster snapshot and specify a value for the KmsKeyId
parameter, an error is returned."
(https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CopyDBClusterSnapshot.html).
Unlike CopyDBSnapshot, which then encrypts the copy. Code and message are best knowledge.
"""

AURORA_SHARED_CROSS_REGION_ERROR = (
    "InvalidParameterValue",
    "A DB cluster snapshot shared from another account can only be copied in its own AWS "
    "Region. Copy it within that Region first, then copy that copy to the other Region.",
)
"""CopyDBClusterSnapshot, in another Region, of a snapshot shared from another account.

The Aurora User Guide: "You can only copy DB cluster snapshots across accounts in the same AWS
Region" (https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/USER_CopyDBClusterSnapshot.CrossAccount.html)
and "You can't copy a DB cluster snapshot across Regions and accounts in a single step.
Perform one step for each of these copy actions"
(https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/USER_CopySnapshot.html); the
SDK field docs say "You can't copy an encrypted, shared DB cluster snapshot from one AWS
Region to another". (The current API model text says the opposite for the source ARN; the
User Guide is followed here, so a one-step copy is refused whether encrypted or not.) No page
or public report gives the wire error: code and message are best knowledge.
"""

AURORA_SNAPSHOT_NOT_AVAILABLE = "DB cluster snapshot {id} is not in the available state."
"""InvalidDBClusterSnapshotStateFault message when a copy still in progress is copied, shared
or restored (only reachable with AURORA_COPY_PACING). Wording is best knowledge."""

AURORA_SERVERLESS_V2_NEEDS_SCALING = (
    "InvalidDBClusterStateFault",
    "Set the Serverless v2 scaling configuration on the parent DB cluster before creating a "
    "Serverless v2 DB instance.",
)
"""CreateDBInstance of a db.serverless instance into a cluster without a
ServerlessV2ScalingConfiguration; the code and wording are AWS's as the Aurora User Guide
quotes them (aurora-serverless-v2.upgrade.html)."""

AURORA_CLUSTER_EXISTS = "DB cluster already exists"
"""DBClusterAlreadyExistsFault message (code and HTTP 400 from the RDS API model; wording is
best knowledge)."""

# Aurora behaviours moto 5.2.1 already gets right (no patch); moto_ext.ALREADY_CORRECT gathers
# these with the others.
ALREADY_CORRECT = {
    "CreateDBClusterSnapshot / DescribeDBClusterSnapshots": (
        "the snapshot takes the cluster's key, is available with PercentProgress 100, takes "
        "the given Tags (or the cluster's with CopyTagsToSnapshot), DBClusterSnapshotNotFoundFault "
        "(HTTP 404) for a missing DBClusterSnapshotIdentifier, the db-cluster-snapshot-id filter "
        "leaves missing ids out, a taken identifier is DBClusterSnapshotAlreadyExistsFault."
    ),
    "ModifyDBClusterSnapshotAttribute on an automated snapshot": (
        "InvalidDBClusterSnapshotStateFault, as AWS (only manual snapshots can be shared)."
    ),
    "DeleteDBCluster with members": (
        "InvalidDBClusterStateFault while the cluster has DB instances, as AWS documents."
    ),
}

DB_CLUSTER_SHARE_LOG: list[dict[str, Any]] = []
"""Every ModifyDBClusterSnapshotAttribute request (any attribute), accepted or refused, in
order. Entries: account, region, snapshot_id, snapshot_arn, attribute, values_to_add,
values_to_remove, accepted. The Aurora sibling of DB_SHARE_LOG (same lock)."""

_CLUSTER_SNAPSHOT_ARN = re.compile(
    r"^arn:aws[\w-]*:rds:([a-z0-9-]+):(\d{12}):cluster-snapshot:(.+)$"
)


def _rds_error(code: str, message: str) -> RDSClientError:
    return RDSClientError(code, message)


def _not_available(snapshot_id: str) -> RDSClientError:
    message = AURORA_SNAPSHOT_NOT_AVAILABLE.format(id=snapshot_id)
    return _rds_error("InvalidDBClusterSnapshotStateFault", message)


def _restorable_by(snapshot: DBClusterSnapshot, account: str) -> bool:
    """The restore attribute names `account`, or "all" (public: unencrypted snapshots only)."""
    values = snapshot.attributes.get("restore", [])
    return account in values or ("all" in values and not snapshot.storage_encrypted)


def find_db_cluster_snapshot(caller: str, region: str, ref: str) -> DBClusterSnapshot:
    """The DB cluster snapshot `caller` may use (copy, restore) from `region`, by id or ARN.

    https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CopyDBClusterSnapshot.html:
    an own snapshot by identifier (this Region) or ARN (any Region); "To copy a DB cluster
    snapshot from a shared manual DB cluster snapshot, SourceDBClusterSnapshotIdentifier must
    be the Amazon Resource Name (ARN) of the shared DB cluster snapshot", and it is shared
    when its restore attribute names the caller (or "all", unencrypted only). Anything else
    is DBClusterSnapshotNotFoundFault. Whether the Region is acceptable is the caller's
    decision (a copy may cross Regions, a restore may not).
    """
    m = _CLUSTER_SNAPSHOT_ARN.match(ref or "")
    if m:
        src_region, owner, ident = m.groups()
    elif (ref or "").startswith("arn:"):
        raise DBClusterSnapshotNotFoundError(ref)
    else:
        src_region, owner, ident = region, caller, ref
    backend = _existing(rds_backends, owner, src_region)
    snapshots = backend.cluster_snapshots if backend is not None else {}
    snapshot = snapshots.get(ident) or snapshots.get((ident or "").lower())
    if snapshot is None or (owner != caller and not _restorable_by(snapshot, caller)):
        raise DBClusterSnapshotNotFoundError(ref)
    return snapshot


def _usable_key_arn(account: str, region: str, ref: str) -> str:
    """The ARN of the key `ref` names, if `account` may use it in `region`; else
    KMSKeyNotAccessibleFault (as rds.py's patch_db_instance_key_arn)."""
    key = lookup_key(account, region, ref)
    if key is None or not key_policy_admits(key, account, COPY_KEY_ACTIONS):
        message = AURORA_TARGET_KEY_NOT_ACCESSIBLE.format(key=ref)
        raise _rds_error("KMSKeyNotAccessibleFault", message)
    return key.arn


# --------------------------------------------------------------------------- keys


@patch
def patch_db_cluster_key_arn() -> None:
    """Departure: an encrypted DB cluster without KmsKeyId had KmsKeyId "default_kms_key_id"
    (and so had its snapshots); a KmsKeyId given as key id or alias stayed as typed; keys the
    caller cannot use were accepted.

    AWS (https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CreateDBCluster.html):
    "If you don't specify a value for the KmsKeyId parameter, then Amazon RDS will use your
    default KMS key", the AWS managed key aws/rds of the account in that Region
    (https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/Overview.Encryption.Keys.html);
    DescribeDBClusters reports the key ARN. A key that cannot be used is
    KMSKeyNotAccessibleFault. moto's RestoreDBClusterFromSnapshot goes through here too, so a
    restore under a key the caller may not use (e.g. a shared snapshot's key whose policy does
    not admit it) is refused as in AWS. An unencrypted cluster (and its snapshots) has no
    KmsKeyId (moto gave it "default_kms_key_id" too).
    """
    original = RDSBackend.create_db_cluster
    original_init = DBCluster.__init__

    def init(self: DBCluster, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        if not self.storage_encrypted and self.kms_key_id == "default_kms_key_id":
            self.kms_key_id = None

    def create_db_cluster(self: RDSBackend, kwargs: dict[str, Any]) -> Any:
        if kwargs.get("storage_encrypted"):
            ref = kwargs.get("kms_key_id")
            if ref:
                arn = _usable_key_arn(self.account_id, self.region_name, ref)
            else:
                arn = default_rds_key(self.account_id, self.region_name).arn
            kwargs = {**kwargs, "kms_key_id": arn}
        return original(self, kwargs)

    RDSBackend.create_db_cluster = create_db_cluster
    DBCluster.__init__ = init  # type: ignore[method-assign]


# --------------------------------------------------------------------------- sharing


@patch
def patch_modify_db_cluster_snapshot_attribute() -> None:
    """Departure: moto shares DB cluster snapshots under the AWS managed key aws/rds, and
    encrypted ones with "all"; nothing records the shares.

    AWS: "You can't share a snapshot that has been encrypted using the default KMS key of the
    AWS account that shared the snapshot"
    (https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/share-encrypted-snapshot.html),
    and "If the manual DB cluster snapshot is encrypted, it can be shared, but only by
    specifying a list of authorized AWS account IDs for the ValuesToAdd parameter. You can't
    use all as a value for that parameter"
    (https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_ModifyDBClusterSnapshotAttribute.html).
    Refused with rds.py's DB_DEFAULT_KEY_SHARE_ERROR / DB_PUBLIC_ENCRYPTED_SHARE_ERROR
    (best-knowledge wire errors, as for DB snapshots). A copy still in progress
    (AURORA_COPY_PACING) is InvalidDBClusterSnapshotStateFault. Removing values is always
    allowed. Every request is recorded in DB_CLUSTER_SHARE_LOG.
    """
    original = RDSBackend.modify_db_cluster_snapshot_attribute

    def modify(
        self: RDSBackend,
        db_cluster_snapshot_identifier: str,
        attribute_name: str,
        values_to_add: list[str] | None = None,
        values_to_remove: list[str] | None = None,
    ) -> dict[str, list[str]]:
        add, remove = list(values_to_add or []), list(values_to_remove or [])
        entry = {
            "account": self.account_id,
            "region": self.region_name,
            "snapshot_id": (db_cluster_snapshot_identifier or "").lower(),
            "snapshot_arn": None,
            "attribute": attribute_name,
            "values_to_add": add,
            "values_to_remove": remove,
            "accepted": False,
        }
        try:
            snapshot = self.get_db_cluster_snapshot(db_cluster_snapshot_identifier)
            entry["snapshot_arn"] = snapshot.arn
            if add and attribute_name == "restore" and snapshot.snapshot_type == "manual":
                if _copy_status(snapshot) is not None:
                    raise _not_available(snapshot.db_cluster_snapshot_identifier)
                if snapshot.storage_encrypted:
                    key = key_of_db_snapshot(snapshot)
                    if key is None or is_aws_managed(key):
                        raise _rds_error(*DB_DEFAULT_KEY_SHARE_ERROR)
                    if "all" in add:
                        raise _rds_error(*DB_PUBLIC_ENCRYPTED_SHARE_ERROR)
            result = original(self, db_cluster_snapshot_identifier, attribute_name, add, remove)
        except RDSClientError:
            _db_log(entry, DB_CLUSTER_SHARE_LOG)
            raise
        entry["accepted"] = True
        _db_log(entry, DB_CLUSTER_SHARE_LOG)
        return result

    RDSBackend.modify_db_cluster_snapshot_attribute = modify


# --------------------------------------------------------------------------- pacing


class AuroraCopyPacing(RdsCopyPacing):
    """Opt-in (tests set ``AURORA_COPY_PACING.pending_seconds`` / ``.limit``; ``after_reset``
    clears): DB cluster snapshot copies that take time, and the copies-in-progress quota.

    moto makes every copy "available" at once and never refuses one. In AWS a
    CopyDBClusterSnapshot target is "copying" ("Valid statuses are the following: available,
    copying, creating", https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DBClusterSnapshot.html)
    with a PercentProgress, and "You can have up to five snapshot copy requests in progress to
    a single destination Region per account"
    (https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/USER_CopySnapshot.html);
    one more is SnapshotQuotaExceeded (rds.py's DB_COPY_QUOTA_MESSAGE). Here a paced copy is
    "copying" for ``pending_seconds`` with PercentProgress rising, then "available".
    ``limit`` (None: no quota; AWS: 5) counts the paced copies still in progress in the
    caller's account and destination Region, same-Region copies included (whether AWS counts
    them is not documented); ``refused`` and ``most_in_flight[(account, region)]`` record what
    happened. Deleting a copy in progress cancels it (moto deletes it; it stops counting).
    The machinery (admit, hold) is RdsCopyPacing's; only the snapshots counted differ.
    """

    @staticmethod
    def in_flight(dest: RDSBackend) -> int:
        now = time.monotonic()
        return sum(
            1
            for s in list(dest.cluster_snapshots.values())
            if getattr(s, "_paced_kind", None) == "copy" and s._paced_until > now
        )


AURORA_COPY_PACING = AuroraCopyPacing()


def _copy_status(snapshot: DBClusterSnapshot) -> str | None:
    """ "copying" while a paced copy is in progress, else None."""
    until = getattr(snapshot, "_paced_until", None)
    return "copying" if until is not None and time.monotonic() < until else None


@patch
def patch_db_cluster_snapshot_copy_progress() -> None:
    """With AURORA_COPY_PACING only: a copy in progress shows Status "copying" and a rising
    PercentProgress (AWS, API_DBClusterSnapshot.html: Status "available, copying, creating";
    PercentProgress "The percentage of the estimated data that has been transferred").
    Without pacing nothing changes (available, 100)."""

    def get_status(self: DBClusterSnapshot) -> str:
        return _copy_status(self) or self._final_status

    def set_status(self: DBClusterSnapshot, value: str) -> None:
        self._final_status = value

    def get_progress(self: DBClusterSnapshot) -> int:
        if _copy_status(self) is not None:
            span = self._paced_until - self._paced_start
            done = (time.monotonic() - self._paced_start) / span if span > 0 else 1.0
            return max(0, min(99, int(done * 100)))
        return self._final_progress

    def set_progress(self: DBClusterSnapshot, value: int) -> None:
        self._final_progress = value

    DBClusterSnapshot.status = property(get_status, set_status)  # type: ignore[assignment]
    progress = property(get_progress, set_progress)
    DBClusterSnapshot.percent_progress = progress  # type: ignore[assignment]


# --------------------------------------------------------------------------- copies


def copy_db_cluster_snapshot(
    dest: RDSBackend,
    source_ref: str,
    target_identifier: str,
    kms_key_id: str | None,
    tags: list[dict[str, str]] | None,
    copy_tags: bool,
) -> DBClusterSnapshot:
    """CopyDBClusterSnapshot as AWS does it, called in `dest` (caller's account, destination
    Region). https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CopyDBClusterSnapshot.html:

    - the source: find_db_cluster_snapshot (own by id or ARN, shared with the caller by ARN);
    - a shared source in another Region is refused (AURORA_SHARED_CROSS_REGION_ERROR): shared
      cluster snapshots are copied within their Region only (Aurora User Guide);
    - the source must be "available" (InvalidDBClusterSnapshotStateFault, reachable with
      AURORA_COPY_PACING only);
    - TargetDBClusterSnapshotIdentifier unique per account+Region
      (DBClusterSnapshotAlreadyExistsFault); copies in progress per destination
      (AURORA_COPY_PACING.limit, SnapshotQuotaExceeded);
    - KmsKeyId on an unencrypted source is an error (AURORA_UNENCRYPTED_WITH_KEY); otherwise it
      is resolved in the caller's account and the destination Region to the key ARN, and a key
      that does not exist there, is disabled or whose policy does not admit the caller is
      KMSKeyNotAccessibleFault (AURORA_TARGET_KEY_NOT_ACCESSIBLE);
    - an encrypted source needs KmsKeyId across Regions ("the key must be in the destination
      Region", DB_CROSS_REGION_NEEDS_KEY) and when shared from another account
      (DB_SHARED_NEEDS_KEY); a same-account, same-Region copy without it keeps the source key;
    - the caller must be able to use the source's key (key policy incl. CreateGrant; an AWS
      managed key never admits another account), else KMSKeyNotAccessibleFault
      (DB_SOURCE_KEY_NOT_ACCESSIBLE, as reported from AWS for this very call:
      github.com/awslabs/aurora-snapshot-tool issues 26 and 29), synchronously;
    - Tags land on the copy; CopyTags without Tags copies the source snapshot's tags; neither:
      no tags ("By default, tags are not copied"; moto gave the cluster's tags);
    - SourceDBClusterSnapshotArn is the source's ARN ("If the DB cluster snapshot was copied
      from a source DB cluster snapshot, the ARN for the source DB cluster snapshot",
      API_DBClusterSnapshot.html).
    """
    caller, region = dest.account_id, dest.region_name
    source = find_db_cluster_snapshot(caller, region, source_ref)
    cross_account = source.account_id != caller
    cross_region = source.region != region
    if cross_account and cross_region:
        raise _rds_error(*AURORA_SHARED_CROSS_REGION_ERROR)
    if _copy_status(source) is not None or source.status != "available":
        raise _not_available(source.arn)
    target = (target_identifier or "").lower()
    if target in dest.cluster_snapshots:
        raise DBClusterSnapshotAlreadyExistsError(target_identifier)
    if len(dest.cluster_snapshots) >= dest.SNAPSHOT_QUOTA:
        raise SnapshotQuotaExceededFault()
    AURORA_COPY_PACING.admit(dest)

    if not source.storage_encrypted:
        if kms_key_id:
            raise _rds_error(*AURORA_UNENCRYPTED_WITH_KEY)
        key_arn = None
    else:
        if kms_key_id:
            key_arn = _usable_key_arn(caller, region, kms_key_id)
        elif cross_region:
            raise _rds_error(*DB_CROSS_REGION_NEEDS_KEY)
        elif cross_account:
            raise _rds_error(*DB_SHARED_NEEDS_KEY)
        else:
            key_arn = source.kms_key_id
        source_key = key_of_db_snapshot(source)
        if source_key is None and not cross_account:
            pass  # an own snapshot whose key is not recorded as an ARN (patch left out)
        elif source_key is None or not key_policy_admits(source_key, caller, COPY_KEY_ACTIONS):
            message = DB_SOURCE_KEY_NOT_ACCESSIBLE.format(key=source.kms_key_id)
            raise _rds_error("KMSKeyNotAccessibleFault", message)

    if copy_tags and not tags:
        tags = list(source.tags or [])
    snapshot = DBClusterSnapshot(
        dest, source.cluster, target, tags=list(tags or []), kms_key_id=key_arn
    )
    snapshot.source_db_cluster_snapshot_arn = source.arn
    dest.cluster_snapshots[target] = snapshot
    return snapshot


@patch
def patch_copy_db_cluster_snapshot() -> None:
    """Departure: CopyDBClusterSnapshot. See copy_db_cluster_snapshot() for the AWS behaviour.

    moto looked the source up in the caller's own account only (DBClusterSnapshotNotFoundFault
    for a snapshot shared from another account, even by ARN), let an encrypted cross-Region
    copy without KmsKeyId keep the source Region's key, encrypted an unencrypted source when
    given KmsKeyId, never consulted key policies, left SourceDBClusterSnapshotArn empty and had
    no copies-in-progress quota.
    """

    def copy_snapshot(self: RDSBackend, **kwargs: Any) -> DBClusterSnapshot:
        with AURORA_COPY_PACING.serialized():  # admit + create + hold as one step
            snapshot = copy_db_cluster_snapshot(
                self,
                kwargs.get("source_db_cluster_snapshot_identifier") or "",
                kwargs.get("target_db_cluster_snapshot_identifier") or "",
                kwargs.get("kms_key_id"),
                kwargs.get("tags"),
                bool(kwargs.get("copy_tags")),
            )
            AURORA_COPY_PACING.hold(self, snapshot, "copy")
        return snapshot

    RDSBackend.copy_db_cluster_snapshot = copy_snapshot


# --------------------------------------------------------------------------- restore, delete


@patch
def patch_restore_db_cluster_from_snapshot() -> None:
    """Departure: RestoreDBClusterFromSnapshot found the snapshot by identifier only (an ARN,
    even of an own snapshot, was DBClusterSnapshotNotFoundFault), overwrote an existing
    cluster of the same identifier, and placed the cluster in the source cluster's
    Availability Zones (another Region's, for a copied snapshot); DeletionProtection was
    inherited from the source.

    AWS (https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_RestoreDBClusterFromSnapshot.html):
    SnapshotIdentifier is "the name or Amazon Resource Name (ARN)" of the snapshot, in this
    Region; a snapshot shared from another account is named by its ARN
    (https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/aurora-share-snapshot.html);
    a taken DBClusterIdentifier is DBClusterAlreadyExistsFault; AvailabilityZones are "a list
    of Availability Zones (AZs) where instances in the restored DB cluster can be created",
    i.e. this Region's; DeletionProtection is off unless asked. A copy still in progress
    (AURORA_COPY_PACING) is InvalidDBClusterSnapshotStateFault. The key rules are
    patch_db_cluster_key_arn's (a shared snapshot's key must admit the caller).
    """

    def restore(self: RDSBackend, from_snapshot_id: str, overrides: dict[str, Any]) -> Any:
        snapshot = find_db_cluster_snapshot(self.account_id, self.region_name, from_snapshot_id)
        if snapshot.region != self.region_name:
            raise DBClusterSnapshotNotFoundError(from_snapshot_id)
        if _copy_status(snapshot) is not None:
            raise _not_available(snapshot.db_cluster_snapshot_identifier)
        cluster_id = (overrides.get("db_cluster_identifier") or "").lower()
        if cluster_id in self.clusters:
            raise _rds_error("DBClusterAlreadyExistsFault", AURORA_CLUSTER_EXISTS)
        props = copy.copy(snapshot.cluster.get_cfg())  # moto's own restore, from here on
        props.pop("availability_zones", None)  # this Region's, unless the request names some
        props["deletion_protection"] = False
        for key, value in overrides.items():
            if value:
                props[key] = value
        return self.create_db_cluster(props)

    RDSBackend.restore_db_cluster_from_snapshot = restore


@patch
def patch_delete_db_cluster_final_snapshot_choice() -> None:
    """DeleteDBCluster without SkipFinalSnapshot=true or FinalDBSnapshotIdentifier deleted the
    cluster in moto; AWS refuses the call ("If you don't enable [SkipFinalSnapshot], you must
    specify the FinalDBSnapshotIdentifier parameter",
    https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DeleteDBCluster.html) with
    rds.py's DB_FINAL_SNAPSHOT_REQUIRED (as for DeleteDBInstance; best knowledge). Only the
    API call is checked."""
    original = RDSResponse.delete_db_cluster

    def delete_db_cluster(self: RDSResponse) -> Any:
        if not self.params.get("SkipFinalSnapshot") and not self.params.get(
            "FinalDBSnapshotIdentifier"
        ):
            raise _rds_error(*DB_FINAL_SNAPSHOT_REQUIRED)
        return original(self)

    RDSResponse.delete_db_cluster = delete_db_cluster


# --------------------------------------------------------------------------- Serverless v2


@patch
def patch_serverless_v2_instance_needs_scaling() -> None:
    """Departure: moto added a db.serverless DB instance to any cluster.

    AWS: "An Aurora cluster must have a ServerlessV2ScalingConfiguration attribute before you
    can add any DB instances that use the db.serverless DB instance class"
    (https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/aurora-serverless-v2.requirements.html),
    else InvalidDBClusterStateFault (AURORA_SERVERLESS_V2_NEEDS_SCALING). A restore that
    forgot the recorded capacity would fail here, as it would in AWS.
    """
    original = RDSBackend.create_db_instance  # the key patch's, from rds.py

    def create_db_instance(self: RDSBackend, db_kwargs: dict[str, Any]) -> Any:
        cluster = self.clusters.get((db_kwargs.get("db_cluster_identifier") or "").lower())
        if (
            db_kwargs.get("db_instance_class") == "db.serverless"
            and cluster is not None
            and not getattr(cluster, "serverless_v2_scaling_configuration", None)
        ):
            raise _rds_error(*AURORA_SERVERLESS_V2_NEEDS_SCALING)
        return original(self, db_kwargs)

    RDSBackend.create_db_instance = create_db_instance
