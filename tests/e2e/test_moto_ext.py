"""The harness itself: each moto_ext correction proven with boto3, plus the estate helpers.

Each test names the AWS behaviour it pins. Run: python3 -m pytest tests/e2e/test_moto_ext.py -q
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

import moto_ext
from estate import AMBIENT_ACCOUNT, Estate, tags_of

A = AMBIENT_ACCOUNT
B = "222222222222"
C = "333333333333"
SRC = "us-east-1"
DST = "eu-west-1"


def error_of(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    err = excinfo.value.response["Error"]
    return err.get("Code", ""), err.get("Message") or ""


@pytest.fixture
def shared_snapshot(estate: Estate) -> dict:
    """A snapshot in A/us-east-1 under a CMK admitting B, shared with B."""
    key = estate.create_key(None, SRC, allow_accounts=[B])
    _, (vol,) = estate.create_instance(None, SRC, [{"encrypted": True, "kms_key": key}])
    ec2 = estate.ec2(None, SRC)
    snap = ec2.create_snapshot(VolumeId=vol)["SnapshotId"]
    ec2.modify_snapshot_attribute(
        SnapshotId=snap, Attribute="createVolumePermission", OperationType="add", UserIds=[B]
    )
    return {"id": snap, "key": key, "volume": vol}


# ------------------------------------------------------------------ accounts


def test_assume_role_switches_account(estate: Estate) -> None:
    assert estate.clients(None, SRC).account == A
    assert estate.clients(B, DST).account == B


# ------------------------------------------------------------------ 1: KmsKeyId on snapshots


def test_snapshot_of_encrypted_volume_carries_volume_key_arn(estate: Estate) -> None:
    key = estate.create_key(None, SRC)
    _, (vol,) = estate.create_instance(None, SRC, [{"encrypted": True, "kms_key": key}])
    ec2 = estate.ec2(None, SRC)
    created = ec2.create_snapshot(VolumeId=vol)
    assert created["KmsKeyId"] == key
    described = estate.snapshot(None, SRC, created["SnapshotId"])
    assert described["Encrypted"] is True
    assert described["KmsKeyId"] == key


def test_unencrypted_snapshot_has_no_key(estate: Estate) -> None:
    _, (vol,) = estate.create_instance(None, SRC, [{"encrypted": False}])
    snap = estate.ec2(None, SRC).create_snapshot(VolumeId=vol)["SnapshotId"]
    described = estate.snapshot(None, SRC, snap)
    assert described["Encrypted"] is False
    assert "KmsKeyId" not in described


def test_create_snapshots_one_per_volume_with_keys_state_and_tags(estate: Estate) -> None:
    key = estate.create_key(None, SRC)
    instance, vols = estate.create_instance(
        None,
        SRC,
        [{"encrypted": True, "kms_key": key}, {"encrypted": True}, {"encrypted": False}],
        volume_tags={"team": "db", "x": "from-volume"},
    )
    ec2 = estate.ec2(None, SRC)
    answer = ec2.create_snapshots(
        InstanceSpecification={"InstanceId": instance},
        TagSpecifications=[{"ResourceType": "snapshot", "Tags": [{"Key": "x", "Value": "given"}]}],
        CopyTagsFromSource="volume",
    )["Snapshots"]
    assert sorted(s["VolumeId"] for s in answer) == sorted(vols)
    assert all(s["State"] == "completed" for s in answer)
    by_volume = {s["VolumeId"]: estate.snapshot(None, SRC, s["SnapshotId"]) for s in answer}
    default_key = estate.default_ebs_key(None, SRC)
    assert by_volume[vols[0]]["KmsKeyId"] == key
    assert by_volume[vols[1]]["KmsKeyId"] == default_key
    assert "KmsKeyId" not in by_volume[vols[2]]
    for snap in by_volume.values():
        # CopyTagsFromSource copied "team"; TagSpecifications wins on "x".
        assert tags_of(snap) == {"team": "db", "x": "given"}


def test_create_snapshots_without_copy_tags_has_only_given_tags(estate: Estate) -> None:
    instance, _ = estate.create_instance(None, SRC, volume_tags={"team": "db"})
    answer = estate.ec2(None, SRC).create_snapshots(
        InstanceSpecification={"InstanceId": instance},
        TagSpecifications=[{"ResourceType": "snapshot", "Tags": [{"Key": "k", "Value": "v"}]}],
    )["Snapshots"]
    assert [tags_of(estate.snapshot(None, SRC, s["SnapshotId"])) for s in answer] == [{"k": "v"}]


def test_copy_resolves_alias_to_key_arn_in_destination(estate: Estate) -> None:
    src_key = estate.create_key(None, SRC)
    dst_key = estate.create_key(None, DST, alias="replicas")
    _, (vol,) = estate.create_instance(None, SRC, [{"encrypted": True, "kms_key": src_key}])
    snap = estate.ec2(None, SRC).create_snapshot(VolumeId=vol)["SnapshotId"]
    for ref in ("alias/replicas", dst_key.split("/")[-1], dst_key):
        copy = estate.ec2(None, DST).copy_snapshot(
            SourceSnapshotId=snap, SourceRegion=SRC, Encrypted=True, KmsKeyId=ref
        )
        described = estate.snapshot(None, DST, copy["SnapshotId"])
        assert described["KmsKeyId"] == dst_key, ref
        assert described["State"] == "completed"
        assert described["OwnerId"] == A
        assert described["VolumeId"] == "vol-ffffffff"


def test_copy_without_key_uses_destination_default_ebs_key(estate: Estate) -> None:
    src_key = estate.create_key(None, SRC)
    _, (vol,) = estate.create_instance(None, SRC, [{"encrypted": True, "kms_key": src_key}])
    snap = estate.ec2(None, SRC).create_snapshot(VolumeId=vol)["SnapshotId"]
    copy = estate.ec2(None, DST).copy_snapshot(SourceSnapshotId=snap, SourceRegion=SRC)
    described = estate.snapshot(None, DST, copy["SnapshotId"])
    assert described["Encrypted"] is True
    assert described["KmsKeyId"] == estate.default_ebs_key(None, DST)
    assert ":eu-west-1:" in described["KmsKeyId"]


def test_copy_of_unencrypted_snapshot_with_key_is_encrypted(estate: Estate) -> None:
    dst_key = estate.create_key(None, DST)
    _, (vol,) = estate.create_instance(None, SRC, [{"encrypted": False}])
    snap = estate.ec2(None, SRC).create_snapshot(VolumeId=vol)["SnapshotId"]
    copy = estate.ec2(None, DST).copy_snapshot(
        SourceSnapshotId=snap, SourceRegion=SRC, Encrypted=True, KmsKeyId=dst_key
    )
    described = estate.snapshot(None, DST, copy["SnapshotId"])
    assert (described["Encrypted"], described["KmsKeyId"]) == (True, dst_key)


def test_copy_with_key_but_without_encrypted_is_rejected(estate: Estate) -> None:
    dst_key = estate.create_key(None, DST)
    _, (vol,) = estate.create_instance(None, SRC, [{"encrypted": False}])
    snap = estate.ec2(None, SRC).create_snapshot(VolumeId=vol)["SnapshotId"]
    with pytest.raises(ClientError) as excinfo:
        estate.ec2(None, DST).copy_snapshot(SourceSnapshotId=snap, SourceRegion=SRC, KmsKeyId=dst_key)
    assert error_of(excinfo)[0] == "InvalidParameterDependency"


def test_copy_with_key_of_another_region_ends_in_error(estate: Estate) -> None:
    """KmsKeyId must be a key of the destination Region; AWS checks it asynchronously."""
    wrong_region_key = estate.create_key(None, SRC)
    _, (vol,) = estate.create_instance(None, SRC, [{"encrypted": True}])
    snap = estate.ec2(None, SRC).create_snapshot(VolumeId=vol)["SnapshotId"]
    copy = estate.ec2(None, DST).copy_snapshot(
        SourceSnapshotId=snap, SourceRegion=SRC, Encrypted=True, KmsKeyId=wrong_region_key
    )
    described = estate.snapshot(None, DST, copy["SnapshotId"])
    assert described["State"] == "error"
    assert described["StateMessage"] == moto_ext.KEY_NOT_ACCESSIBLE


def test_copy_honours_tag_specifications(estate: Estate) -> None:
    _, (vol,) = estate.create_instance(None, SRC, [{"encrypted": False}])
    ec2 = estate.ec2(None, SRC)
    snap = ec2.create_snapshot(
        VolumeId=vol,
        TagSpecifications=[{"ResourceType": "snapshot", "Tags": [{"Key": "src", "Value": "1"}]}],
    )["SnapshotId"]
    copy = estate.ec2(None, DST).copy_snapshot(
        SourceSnapshotId=snap,
        SourceRegion=SRC,
        TagSpecifications=[{"ResourceType": "snapshot", "Tags": [{"Key": "k", "Value": "v"}]}],
    )
    assert tags_of(copy) == {"k": "v"}
    assert tags_of(estate.snapshot(None, DST, copy["SnapshotId"])) == {"k": "v"}


# ------------------------------------------------------------------ 2 + 3: default key


def test_encrypted_volume_without_key_uses_aws_managed_default_key(estate: Estate) -> None:
    _, (vol,) = estate.create_instance(None, SRC, [{"encrypted": True}])
    (volume,) = estate.volumes(None, SRC, [vol])
    assert volume["Encrypted"] is True
    kms = estate.kms(None, SRC)
    meta = kms.describe_key(KeyId="alias/aws/ebs")["KeyMetadata"]
    assert volume["KmsKeyId"] == meta["Arn"]
    assert meta["KeyManager"] == "AWS"
    assert meta["Arn"].startswith(f"arn:aws:kms:{SRC}:{A}:key/")
    policy = json.loads(kms.get_key_policy(KeyId=meta["KeyId"], PolicyName="default")["Policy"])
    conditions = [s.get("Condition", {}) for s in policy["Statement"]]
    assert {"StringEquals": {"kms:CallerAccount": A, "kms:ViaService": f"ec2.{SRC}.amazonaws.com"}} in conditions


def test_create_volume_api_default_key_matches_instance_default_key(estate: Estate) -> None:
    ec2 = estate.ec2(B, DST)
    vol = ec2.create_volume(AvailabilityZone=f"{DST}a", Size=8, Encrypted=True)
    assert vol["KmsKeyId"] == estate.default_ebs_key(B, DST)
    assert f":{B}:" in vol["KmsKeyId"]


def test_aws_alias_keys_report_key_manager_aws(estate: Estate) -> None:
    kms = estate.kms(None, SRC)
    for alias in ("alias/aws/ebs", "alias/aws/rds"):
        assert kms.describe_key(KeyId=alias)["KeyMetadata"]["KeyManager"] == "AWS", alias
    cmk = estate.create_key(None, SRC, alias="mine")
    assert kms.describe_key(KeyId=cmk)["KeyMetadata"]["KeyManager"] == "CUSTOMER"


def test_volume_from_encrypted_snapshot_keeps_its_key(estate: Estate) -> None:
    key = estate.create_key(None, SRC)
    _, (vol,) = estate.create_instance(None, SRC, [{"encrypted": True, "kms_key": key}])
    ec2 = estate.ec2(None, SRC)
    snap = ec2.create_snapshot(VolumeId=vol)["SnapshotId"]
    restored = ec2.create_volume(AvailabilityZone=f"{SRC}a", SnapshotId=snap)
    assert (restored["Encrypted"], restored["KmsKeyId"]) == (True, key)


# ------------------------------------------------------------------ 4 + 7: sharing


def test_flat_form_share_add_and_remove(estate: Estate, share_log: list[dict]) -> None:
    _, (vol,) = estate.create_instance(None, SRC, [{"encrypted": True, "kms_key": estate.create_key(None, SRC)}])
    ec2 = estate.ec2(None, SRC)
    snap = ec2.create_snapshot(VolumeId=vol)["SnapshotId"]
    ec2.modify_snapshot_attribute(
        SnapshotId=snap, Attribute="createVolumePermission", OperationType="add", UserIds=[B, C]
    )
    assert estate.snapshot_shares(None, SRC, snap) == [B, C]
    ec2.modify_snapshot_attribute(
        SnapshotId=snap, Attribute="createVolumePermission", OperationType="remove", UserIds=[B]
    )
    assert estate.snapshot_shares(None, SRC, snap) == [C]
    assert [(e["add_user_ids"], e["remove_user_ids"], e["accepted"]) for e in share_log] == [
        ([B, C], [], True),
        ([], [B], True),
    ]


def test_structured_form_share_add_and_remove(estate: Estate) -> None:
    _, (vol,) = estate.create_instance(None, SRC, [{"encrypted": False}])
    ec2 = estate.ec2(None, SRC)
    snap = ec2.create_snapshot(VolumeId=vol)["SnapshotId"]
    ec2.modify_snapshot_attribute(SnapshotId=snap, CreateVolumePermission={"Add": [{"UserId": B}]})
    assert estate.snapshot_shares(None, SRC, snap) == [B]
    ec2.modify_snapshot_attribute(SnapshotId=snap, CreateVolumePermission={"Remove": [{"UserId": B}]})
    assert estate.snapshot_shares(None, SRC, snap) == []


@pytest.mark.parametrize("form", ["flat", "structured"])
def test_sharing_snapshot_under_aws_managed_key_fails(estate: Estate, share_log: list[dict], form: str) -> None:
    _, (vol,) = estate.create_instance(None, SRC, [{"encrypted": True, "kms_key": None}])
    ec2 = estate.ec2(None, SRC)
    snap = ec2.create_snapshot(VolumeId=vol)["SnapshotId"]
    with pytest.raises(ClientError) as excinfo:
        if form == "flat":
            ec2.modify_snapshot_attribute(
                SnapshotId=snap, Attribute="createVolumePermission", OperationType="add", UserIds=[B]
            )
        else:
            ec2.modify_snapshot_attribute(SnapshotId=snap, CreateVolumePermission={"Add": [{"UserId": B}]})
    assert error_of(excinfo) == moto_ext.DEFAULT_KEY_SHARE_ERROR
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert estate.snapshot_shares(None, SRC, snap) == []
    assert [e["accepted"] for e in share_log] == [False]


def test_sharing_snapshot_under_aws_managed_key_given_by_alias_fails(estate: Estate) -> None:
    """The refusal follows the key, not how the volume named it."""
    ec2 = estate.ec2(None, SRC)
    vol = ec2.create_volume(AvailabilityZone=f"{SRC}a", Size=8, Encrypted=True, KmsKeyId="alias/aws/ebs")
    snap = ec2.create_snapshot(VolumeId=vol["VolumeId"])["SnapshotId"]
    with pytest.raises(ClientError) as excinfo:
        ec2.modify_snapshot_attribute(
            SnapshotId=snap, Attribute="createVolumePermission", OperationType="add", UserIds=[B]
        )
    assert error_of(excinfo)[0] == "OperationNotPermitted"


# ------------------------------------------------------------------ 5: cross-account copy


def test_cross_account_copy_of_shared_snapshot_succeeds(estate: Estate, shared_snapshot: dict) -> None:
    target_key = estate.create_key(B, DST, alias="replicas")
    ec2_b = estate.ec2(B, DST)
    copy = ec2_b.copy_snapshot(
        SourceSnapshotId=shared_snapshot["id"],
        SourceRegion=SRC,
        Encrypted=True,
        KmsKeyId=target_key,
        TagSpecifications=[{"ResourceType": "snapshot", "Tags": [{"Key": "k", "Value": "v"}]}],
    )
    described = estate.snapshot(B, DST, copy["SnapshotId"])
    assert described["OwnerId"] == B
    assert described["State"] == "completed"
    assert (described["Encrypted"], described["KmsKeyId"]) == (True, target_key)
    assert tags_of(described) == {"k": "v"}
    assert [s["SnapshotId"] for s in estate.snapshots(B, DST)] == [copy["SnapshotId"]]
    assert estate.snapshots(A, DST) == []


def test_cross_account_copy_by_target_alias_resolves_in_target_account(estate: Estate, shared_snapshot: dict) -> None:
    target_key = estate.create_key(B, DST, alias="replicas")
    estate.create_key(None, DST, alias="replicas")  # same alias in A must not be used
    copy = estate.ec2(B, DST).copy_snapshot(
        SourceSnapshotId=shared_snapshot["id"], SourceRegion=SRC, Encrypted=True, KmsKeyId="alias/replicas"
    )
    assert estate.snapshot(B, DST, copy["SnapshotId"])["KmsKeyId"] == target_key


def test_cross_account_copy_of_unshared_snapshot_fails(estate: Estate) -> None:
    key = estate.create_key(None, SRC, allow_accounts=[B])
    _, (vol,) = estate.create_instance(None, SRC, [{"encrypted": True, "kms_key": key}])
    ec2 = estate.ec2(None, SRC)
    snap = ec2.create_snapshot(VolumeId=vol)["SnapshotId"]
    ec2.modify_snapshot_attribute(
        SnapshotId=snap, Attribute="createVolumePermission", OperationType="add", UserIds=[C]
    )
    with pytest.raises(ClientError) as excinfo:
        estate.ec2(B, DST).copy_snapshot(
            SourceSnapshotId=snap, SourceRegion=SRC, Encrypted=True, KmsKeyId=estate.create_key(B, DST)
        )
    assert error_of(excinfo) == ("InvalidSnapshot.NotFound", f"The snapshot '{snap}' does not exist.")
    assert estate.snapshots(B, DST) == []


def test_cross_account_copy_after_share_removed_fails(estate: Estate, shared_snapshot: dict) -> None:
    estate.ec2(None, SRC).modify_snapshot_attribute(
        SnapshotId=shared_snapshot["id"], Attribute="createVolumePermission", OperationType="remove", UserIds=[B]
    )
    with pytest.raises(ClientError) as excinfo:
        estate.ec2(B, DST).copy_snapshot(SourceSnapshotId=shared_snapshot["id"], SourceRegion=SRC)
    assert error_of(excinfo)[0] == "InvalidSnapshot.NotFound"


def test_cross_account_copy_of_public_unencrypted_snapshot_succeeds(estate: Estate) -> None:
    _, (vol,) = estate.create_instance(None, SRC, [{"encrypted": False}])
    ec2 = estate.ec2(None, SRC)
    snap = ec2.create_snapshot(VolumeId=vol)["SnapshotId"]
    ec2.modify_snapshot_attribute(
        SnapshotId=snap, Attribute="createVolumePermission", OperationType="add", GroupNames=["all"]
    )
    copy = estate.ec2(B, DST).copy_snapshot(SourceSnapshotId=snap, SourceRegion=SRC)
    described = estate.snapshot(B, DST, copy["SnapshotId"])
    assert (described["State"], described["Encrypted"]) == ("completed", False)


def test_cross_account_copy_without_key_uses_target_default_key(estate: Estate, shared_snapshot: dict) -> None:
    copy = estate.ec2(B, DST).copy_snapshot(SourceSnapshotId=shared_snapshot["id"], SourceRegion=SRC)
    described = estate.snapshot(B, DST, copy["SnapshotId"])
    assert described["KmsKeyId"] == estate.default_ebs_key(B, DST)


# ------------------------------------------------------------------ 6: key policy


def test_cross_account_copy_with_source_key_not_admitting_target_ends_in_error(estate: Estate) -> None:
    key = estate.create_key(None, SRC, allow_accounts=[C])  # not B
    _, (vol,) = estate.create_instance(None, SRC, [{"encrypted": True, "kms_key": key}])
    ec2 = estate.ec2(None, SRC)
    snap = ec2.create_snapshot(VolumeId=vol)["SnapshotId"]
    ec2.modify_snapshot_attribute(
        SnapshotId=snap, Attribute="createVolumePermission", OperationType="add", UserIds=[B]
    )
    target_key = estate.create_key(B, DST)
    copy = estate.ec2(B, DST).copy_snapshot(
        SourceSnapshotId=snap, SourceRegion=SRC, Encrypted=True, KmsKeyId=target_key
    )  # the call itself succeeds, as in AWS
    described = estate.snapshot(B, DST, copy["SnapshotId"])
    assert described["State"] == "error"
    assert described["StateMessage"] == moto_ext.KEY_NOT_ACCESSIBLE


def test_moto_default_key_policy_admits_only_owner(estate: Estate) -> None:
    """A key created without Policy gets moto's default (owner root only): copy errors."""
    meta = estate.kms(None, SRC).create_key()["KeyMetadata"]
    _, (vol,) = estate.create_instance(None, SRC, [{"encrypted": True, "kms_key": meta["Arn"]}])
    ec2 = estate.ec2(None, SRC)
    snap = ec2.create_snapshot(VolumeId=vol)["SnapshotId"]
    ec2.modify_snapshot_attribute(
        SnapshotId=snap, Attribute="createVolumePermission", OperationType="add", UserIds=[B]
    )
    copy = estate.ec2(B, DST).copy_snapshot(SourceSnapshotId=snap, SourceRegion=SRC)
    assert estate.snapshot(B, DST, copy["SnapshotId"])["State"] == "error"


@pytest.mark.parametrize(
    "principal, actions, admitted",
    [
        ({"AWS": f"arn:aws:iam::{B}:root"}, ["kms:*"], True),
        ({"AWS": B}, ["kms:Decrypt", "kms:CreateGrant", "kms:DescribeKey"], True),
        ({"AWS": [f"arn:aws:iam::{C}:root", f"arn:aws:iam::{B}:role/snaprelay-target"]}, "kms:*", True),
        ("*", "*", True),
        ({"AWS": f"arn:aws:iam::{B}:root"}, ["kms:Decrypt", "kms:DescribeKey"], False),  # no CreateGrant
        ({"AWS": f"arn:aws:iam::{C}:root"}, ["kms:*"], False),
    ],
)
def test_key_policy_evaluation(estate: Estate, principal, actions, admitted: bool) -> None:
    kms = estate.kms(None, SRC)
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{A}:root"}, "Action": "kms:*", "Resource": "*"},
            {"Effect": "Allow", "Principal": principal, "Action": actions, "Resource": "*"},
        ],
    }
    arn = kms.create_key(Policy=json.dumps(policy))["KeyMetadata"]["Arn"]
    key = moto_ext.lookup_key(A, SRC, arn)
    assert moto_ext.key_policy_admits(key, B, moto_ext.COPY_KEY_ACTIONS) is admitted


def test_cross_account_copy_into_target_key_not_admitting_caller_ends_in_error(estate: Estate, shared_snapshot: dict) -> None:
    """A target key of a third account, by ARN, whose policy does not admit B."""
    foreign_key = estate.create_key(C, DST)
    copy = estate.ec2(B, DST).copy_snapshot(
        SourceSnapshotId=shared_snapshot["id"], SourceRegion=SRC, Encrypted=True, KmsKeyId=foreign_key
    )
    assert estate.snapshot(B, DST, copy["SnapshotId"])["State"] == "error"


# ------------------------------------------------------------------ 8: DescribeSnapshots


def test_describe_shared_snapshot_by_id_in_target_account(estate: Estate, shared_snapshot: dict) -> None:
    ec2_b_src = estate.ec2(B, SRC)
    (seen,) = ec2_b_src.describe_snapshots(SnapshotIds=[shared_snapshot["id"]])["Snapshots"]
    assert seen["OwnerId"] == A
    assert seen["KmsKeyId"] == shared_snapshot["key"]
    assert seen.get("Tags", []) == []  # the owner's tags are not shared
    with pytest.raises(ClientError) as excinfo:
        estate.ec2(C, SRC).describe_snapshots(SnapshotIds=[shared_snapshot["id"]])
    assert error_of(excinfo)[0] == "InvalidSnapshot.NotFound"
    with pytest.raises(ClientError):
        estate.ec2(B, DST).describe_snapshots(SnapshotIds=[shared_snapshot["id"]])  # other Region


def test_describe_snapshots_owner_and_restorable_by(estate: Estate, shared_snapshot: dict) -> None:
    ec2_b = estate.ec2(B, SRC)
    assert ec2_b.describe_snapshots(OwnerIds=["self"])["Snapshots"] == []
    mine_in_a = estate.ec2(None, SRC).describe_snapshots(OwnerIds=["self"])["Snapshots"]
    assert [s["SnapshotId"] for s in mine_in_a] == [shared_snapshot["id"]]
    restorable = ec2_b.describe_snapshots(RestorableByUserIds=["self"], OwnerIds=[A])["Snapshots"]
    assert [s["SnapshotId"] for s in restorable] == [shared_snapshot["id"]]
    assert estate.ec2(C, SRC).describe_snapshots(OwnerIds=[A])["Snapshots"] == []


def test_describe_snapshots_by_id_in_wrong_region_is_not_found(estate: Estate) -> None:
    _, (vol,) = estate.create_instance(None, SRC, [{"encrypted": False}])
    snap = estate.ec2(None, SRC).create_snapshot(VolumeId=vol)["SnapshotId"]
    with pytest.raises(ClientError) as excinfo:
        estate.ec2(None, DST).describe_snapshots(SnapshotIds=[snap])
    assert error_of(excinfo)[0] == "InvalidSnapshot.NotFound"


def test_snapshots_helper_filters_by_tag(estate: Estate) -> None:
    _, (vol,) = estate.create_instance(None, SRC, [{"encrypted": False}])
    ec2 = estate.ec2(None, SRC)
    tagged = ec2.create_snapshot(
        VolumeId=vol, TagSpecifications=[{"ResourceType": "snapshot", "Tags": [{"Key": "snaprelay:kind", "Value": "source"}]}]
    )["SnapshotId"]
    ec2.create_snapshot(VolumeId=vol)
    assert [s["SnapshotId"] for s in estate.snapshots(None, SRC, tags={"snaprelay:kind": "source"})] == [tagged]
    assert len(estate.snapshots(None, SRC, volume_id=vol)) == 2


def test_snapshot_not_found_names_the_snapshot(estate: Estate) -> None:
    ec2 = estate.ec2(None, SRC)
    missing = "snap-0123456789abcdef0"
    for call in (
        lambda: ec2.delete_snapshot(SnapshotId=missing),
        lambda: ec2.describe_snapshot_attribute(SnapshotId=missing, Attribute="createVolumePermission"),
        lambda: ec2.describe_snapshots(SnapshotIds=[missing]),
    ):
        with pytest.raises(ClientError) as excinfo:
            call()
        assert error_of(excinfo) == ("InvalidSnapshot.NotFound", f"The snapshot '{missing}' does not exist.")


# ------------------------------------------------------------------ KMS cross-account


def test_describe_key_across_accounts_follows_key_policy(estate: Estate) -> None:
    admitted = estate.create_key(None, SRC, allow_accounts=[B])
    refused = estate.create_key(None, SRC)
    kms_b = estate.kms(B, SRC)
    assert kms_b.describe_key(KeyId=admitted)["KeyMetadata"]["Arn"] == admitted
    with pytest.raises(ClientError) as excinfo:
        kms_b.describe_key(KeyId=refused)
    code, message = error_of(excinfo)
    assert code == "AccessDeniedException" and refused in message


# ------------------------------------------------------------------ estate helpers


def test_create_instance_root_volume_is_controllable(estate: Estate) -> None:
    key = estate.create_key(None, SRC)
    instance, vols = estate.create_instance(
        None, SRC, [{"size": 10, "encrypted": True, "kms_key": key}, {"size": 20, "encrypted": False}]
    )
    volumes = {v["VolumeId"]: v for v in estate.volumes(None, SRC, vols)}
    root, extra = volumes[vols[0]], volumes[vols[1]]
    assert (root["Size"], root["Encrypted"], root["KmsKeyId"]) == (10, True, key)
    assert (extra["Size"], extra["Encrypted"]) == (20, False)
    attached = estate.ec2(None, SRC).describe_volumes(
        Filters=[{"Name": "attachment.instance-id", "Values": [instance]}]
    )["Volumes"]
    assert sorted(v["VolumeId"] for v in attached) == sorted(vols)


def test_reset_between_tests_leaves_no_snapshot(estate: Estate, share_log: list[dict]) -> None:
    assert estate.snapshots(None, SRC) == []
    assert share_log == []


# ------------------------------------------------------------------ standalone server


def test_standalone_server_prints_endpoint_and_stops_on_sigterm() -> None:
    script = Path(moto_ext.__file__)
    proc = subprocess.Popen(
        [sys.executable, str(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
    )
    try:
        line = proc.stdout.readline().strip()
        assert line.startswith("http://127.0.0.1:"), line
        request = urllib.request.Request(f"{line}/moto-api/reset", method="POST", data=b"")
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
