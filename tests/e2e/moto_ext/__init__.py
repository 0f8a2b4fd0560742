"""moto, corrected where snaprelay depends on how real AWS behaves.

snaprelay's end-to-end tests run the real binary against moto (an AWS emulator).
moto 5.2.1 departs from AWS in ways that would let a wrong implementation pass (or a
right one fail): EBS snapshots carry no KMS key, snapshots shared from another account
cannot be copied, snapshots under the AWS managed key can be shared, keys behind
``alias/aws/*`` claim to be customer managed, key policies are never consulted; RDS DB
instances "encrypted" with the literal key ``default_kms_key_id``, DB snapshots shared from
another account cannot be copied, shared encrypted copies need no key, restored DB
instances keep the source's MultiAZ / PubliclyAccessible / DeletionProtection; Aurora DB
clusters likewise under ``default_kms_key_id``, their snapshots shared under aws/rds and not
copyable from another account, restores only by snapshot name and over an existing cluster; images
registered from snapshots lose their block device mappings (an instance launched from one gets
a default 8 GiB unencrypted volume), and ClientToken is ignored. This package applies small
monkey-patches to moto's classes, each imitating one documented AWS behaviour, and then starts
moto's server.

Every departure was checked with boto3 against plain moto 5.2.1 before being patched;
``test_moto_ext.py`` proves each patch. Behaviours moto already gets right are listed in
``ALREADY_CORRECT`` (no patch).

One module per concern; each patch's docstring names the AWS behaviour it imitates:

- ``kms.py``: key look-up, key policies, AWS managed keys (helpers the others use too);
- ``ebs.py``: EBS snapshots, sharing (``SHARE_LOG``), copies (``COPY_PACING``);
- ``rds.py``: DB instance keys, DB snapshot sharing and copies (``DB_SHARE_LOG``,
  ``DB_SNAPSHOT_LOG``, ``RDS_COPY_PACING``), restored DB instances' settings,
  DeleteDBInstance's final snapshot choice;
- ``aurora.py``: DB cluster keys, DB cluster snapshot sharing (``DB_CLUSTER_SHARE_LOG``) and
  copies (``AURORA_COPY_PACING``), RestoreDBClusterFromSnapshot, DeleteDBCluster's final
  snapshot choice;
- ``ebs_direct.py``: the EBS direct APIs moto lacks, answered as AWS answers a role that may
  not call them (``AccessDeniedException``) rather than with a retried 500;
- ``ec2_restore.py``: what a restore makes in EC2: RegisterImage from snapshots, RunInstances
  of such an image, security groups given on the network interface, ClientToken;
- ``server.py``: ``apply_patches`` (MOTO_EXT_SKIP), ``after_reset``, ``Server``, ``start``,
  ``main``;
- ``common.py``: the patch registry (``PATCHES``, ``@patch``), the logger, backend look-up;
- ``__main__.py``: the standalone entry point.

This file re-exports the public names of all of them: use ``moto_ext.X``.

Use from Python::

    server = moto_ext.start()          # patches, then serves on 127.0.0.1:<free port>
    server.endpoint                    # "http://127.0.0.1:PORT"
    server.stop()

or standalone: ``python3 tests/e2e/moto_ext [--port N]`` prints the endpoint URL on
its first stdout line and serves until SIGTERM / SIGINT.

The patches change moto's classes, not its data, so a ``POST /moto-api/reset`` keeps them;
``after_reset()`` clears the package's own records (the share, DB snapshot and DB cluster
share logs, the copy pacing settings).
"""

from __future__ import annotations

# Importing kms, ebs, ec2_restore, rds and then aurora registers their patches in PATCHES (in
# that order).
from . import ebs, ebs_direct, ec2_restore, rds
from . import aurora  # noqa: I001 (after rds)
from .aurora import (
    AURORA_CLUSTER_EXISTS,
    AURORA_COPY_PACING,
    AURORA_SERVERLESS_V2_NEEDS_SCALING,
    AURORA_SHARED_CROSS_REGION_ERROR,
    AURORA_SNAPSHOT_NOT_AVAILABLE,
    AURORA_TARGET_KEY_NOT_ACCESSIBLE,
    AURORA_UNENCRYPTED_WITH_KEY,
    DB_CLUSTER_SHARE_LOG,
    AuroraCopyPacing,
    copy_db_cluster_snapshot,
    find_db_cluster_snapshot,
    patch_copy_db_cluster_snapshot,
    patch_db_cluster_key_arn,
    patch_db_cluster_snapshot_copy_progress,
    patch_delete_db_cluster_final_snapshot_choice,
    patch_modify_db_cluster_snapshot_attribute,
    patch_restore_db_cluster_from_snapshot,
    patch_serverless_v2_instance_needs_scaling,
)
from .common import AMBIENT_ACCOUNT, PATCHES, log, patch
from .ebs import (
    COPY_PACING,
    DEFAULT_KEY_SHARE_ERROR,
    KEY_NOT_ACCESSIBLE,
    SHARE_LOG,
    CopiedVolume,
    CopyPacing,
    ForeignSnapshotView,
    copy_snapshot,
    default_ebs_key_arn,
    find_visible_snapshot,
    key_of_snapshot,
    patch_copy_snapshot,
    patch_create_snapshots_copy_tags,
    patch_describe_snapshots,
    patch_modify_snapshot_attribute,
    patch_snapshot_carries_volume_key,
    patch_snapshot_not_found_message,
    patch_snapshot_state_fields,
    patch_volume_from_snapshot_keeps_key,
)
from .ebs_direct import EBS_DIRECT_DENIED, patch_ebs_direct_api_denied
from .ec2_restore import (
    IDEMPOTENT_MISMATCH,
    IMAGE_NAME_DUPLICATE,
    IMAGE_NAME_MALFORMED,
    patch_client_token_idempotency,
    patch_instance_groups_from_interface,
    patch_register_image_from_snapshots,
    patch_run_instances_from_image_mappings,
    register_image,
)
from .kms import (
    COPY_KEY_ACTIONS,
    KmsArn,
    aws_managed_key_policy,
    is_aws_managed,
    key_policy_admits,
    lookup_key,
    make_aws_managed,
    parse_kms_arn,
    patch_default_ebs_key_is_aws_managed,
    patch_key_manager_aws,
    patch_kms_cross_account_describe_key,
)
from .rds import (
    DB_COPY_QUOTA_MESSAGE,
    DB_CROSS_REGION_NEEDS_KEY,
    DB_DEFAULT_KEY_SHARE_ERROR,
    DB_FINAL_SNAPSHOT_REQUIRED,
    DB_MEMBER_FINAL_SNAPSHOT,
    DB_PUBLIC_ENCRYPTED_SHARE_ERROR,
    DB_SHARE_LOG,
    DB_SHARED_NEEDS_KEY,
    DB_SNAPSHOT_LOG,
    DB_SNAPSHOT_NOT_AVAILABLE,
    DB_SOURCE_KEY_NOT_ACCESSIBLE,
    DB_TARGET_KEY_NOT_ACCESSIBLE,
    RDS_COPY_PACING,
    RdsCopyPacing,
    copy_db_snapshot,
    default_rds_key,
    find_copyable_db_snapshot,
    key_of_db_snapshot,
    patch_copy_db_snapshot,
    patch_create_db_snapshot_log_and_pacing,
    patch_db_instance_key_arn,
    patch_db_snapshot_progress_fields,
    patch_delete_db_instance_final_snapshot_choice,
    patch_delete_db_snapshot_in_progress,
    patch_modify_db_snapshot_attribute,
    patch_restore_db_instance_settings,
)
from .server import Server, after_reset, apply_patches, main, start

ALREADY_CORRECT = {
    **ebs.ALREADY_CORRECT,
    **rds.ALREADY_CORRECT,
    **aurora.ALREADY_CORRECT,
    **ec2_restore.ALREADY_CORRECT,
}
"""Behaviours moto 5.2.1 already gets right, so no patch: EBS's, RDS's, Aurora's, then EC2
restores' (KMS has none)."""

__all__ = [
    "EBS_DIRECT_DENIED",
    "patch_ebs_direct_api_denied",
    # common
    "AMBIENT_ACCOUNT",
    "PATCHES",
    "log",
    "patch",
    # kms
    "COPY_KEY_ACTIONS",
    "KmsArn",
    "aws_managed_key_policy",
    "is_aws_managed",
    "key_policy_admits",
    "lookup_key",
    "make_aws_managed",
    "parse_kms_arn",
    "patch_default_ebs_key_is_aws_managed",
    "patch_key_manager_aws",
    "patch_kms_cross_account_describe_key",
    # ebs
    "COPY_PACING",
    "DEFAULT_KEY_SHARE_ERROR",
    "KEY_NOT_ACCESSIBLE",
    "SHARE_LOG",
    "CopiedVolume",
    "CopyPacing",
    "ForeignSnapshotView",
    "copy_snapshot",
    "default_ebs_key_arn",
    "find_visible_snapshot",
    "key_of_snapshot",
    "patch_copy_snapshot",
    "patch_create_snapshots_copy_tags",
    "patch_describe_snapshots",
    "patch_modify_snapshot_attribute",
    "patch_snapshot_carries_volume_key",
    "patch_snapshot_not_found_message",
    "patch_snapshot_state_fields",
    "patch_volume_from_snapshot_keeps_key",
    # ec2_restore
    "IDEMPOTENT_MISMATCH",
    "IMAGE_NAME_DUPLICATE",
    "IMAGE_NAME_MALFORMED",
    "patch_client_token_idempotency",
    "patch_instance_groups_from_interface",
    "patch_register_image_from_snapshots",
    "patch_run_instances_from_image_mappings",
    "register_image",
    # rds
    "DB_COPY_QUOTA_MESSAGE",
    "DB_CROSS_REGION_NEEDS_KEY",
    "DB_DEFAULT_KEY_SHARE_ERROR",
    "DB_FINAL_SNAPSHOT_REQUIRED",
    "DB_MEMBER_FINAL_SNAPSHOT",
    "DB_PUBLIC_ENCRYPTED_SHARE_ERROR",
    "DB_SHARE_LOG",
    "DB_SHARED_NEEDS_KEY",
    "DB_SNAPSHOT_LOG",
    "DB_SNAPSHOT_NOT_AVAILABLE",
    "DB_SOURCE_KEY_NOT_ACCESSIBLE",
    "DB_TARGET_KEY_NOT_ACCESSIBLE",
    "RDS_COPY_PACING",
    "RdsCopyPacing",
    "copy_db_snapshot",
    "default_rds_key",
    "find_copyable_db_snapshot",
    "key_of_db_snapshot",
    "patch_copy_db_snapshot",
    "patch_create_db_snapshot_log_and_pacing",
    "patch_db_instance_key_arn",
    "patch_db_snapshot_progress_fields",
    "patch_delete_db_instance_final_snapshot_choice",
    "patch_delete_db_snapshot_in_progress",
    "patch_modify_db_snapshot_attribute",
    "patch_restore_db_instance_settings",
    # aurora
    "AURORA_CLUSTER_EXISTS",
    "AURORA_COPY_PACING",
    "AURORA_SERVERLESS_V2_NEEDS_SCALING",
    "AURORA_SHARED_CROSS_REGION_ERROR",
    "AURORA_SNAPSHOT_NOT_AVAILABLE",
    "AURORA_TARGET_KEY_NOT_ACCESSIBLE",
    "AURORA_UNENCRYPTED_WITH_KEY",
    "DB_CLUSTER_SHARE_LOG",
    "AuroraCopyPacing",
    "copy_db_cluster_snapshot",
    "find_db_cluster_snapshot",
    "patch_copy_db_cluster_snapshot",
    "patch_db_cluster_key_arn",
    "patch_db_cluster_snapshot_copy_progress",
    "patch_delete_db_cluster_final_snapshot_choice",
    "patch_modify_db_cluster_snapshot_attribute",
    "patch_restore_db_cluster_from_snapshot",
    "patch_serverless_v2_instance_needs_scaling",
    # server
    "Server",
    "after_reset",
    "apply_patches",
    "main",
    "start",
    # gathered here
    "ALREADY_CORRECT",
]
