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
from estate import AMBIENT_ACCOUNT, Estate, key_policy, tags_of

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
    script = Path(moto_ext.__file__).parent  # the package dir: python3 runs its __main__.py
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


# ================================================================== RDS
# Each test pins an AWS behaviour moto 5.2.1 got wrong (see the patch_* docstrings in moto_ext);
# with MOTO_EXT_SKIP=all each of them fails.


def db_snapshot_of(estate: Estate, account: str | None, region: str, db: str, name: str, **kw) -> dict:
    return estate.rds(account, region).create_db_snapshot(
        DBInstanceIdentifier=db, DBSnapshotIdentifier=name, **kw
    )["DBSnapshot"]


@pytest.fixture
def shared_db_snapshot(estate: Estate) -> dict:
    """A DB snapshot in A/us-east-1 under a CMK admitting B, shared with B (restore)."""
    key = estate.create_key(None, SRC, allow_accounts=[B])
    db = estate.create_db_instance(None, SRC, "orders", kms_key=key)
    snap = db_snapshot_of(estate, None, SRC, db, "orders-snap", Tags=[{"Key": "owner", "Value": "a"}])
    estate.rds(None, SRC).modify_db_snapshot_attribute(
        DBSnapshotIdentifier="orders-snap", AttributeName="restore", ValuesToAdd=[B]
    )
    return {"id": "orders-snap", "arn": snap["DBSnapshotArn"], "key": key, "db": db}


# ------------------------------------------------------------------ R1: keys of DB instances


def test_encrypted_db_instance_without_key_uses_aws_managed_rds_key(estate: Estate) -> None:
    db = estate.create_db_instance(None, SRC, "plain-default")
    described = estate.db_instance(None, SRC, db)
    kms = estate.kms(None, SRC)
    meta = kms.describe_key(KeyId="alias/aws/rds")["KeyMetadata"]
    assert described["StorageEncrypted"] is True
    assert described["KmsKeyId"] == meta["Arn"]
    assert meta["Arn"].startswith(f"arn:aws:kms:{SRC}:{A}:key/")
    assert meta["KeyManager"] == "AWS"
    policy = json.loads(kms.get_key_policy(KeyId=meta["KeyId"], PolicyName="default")["Policy"])
    conditions = [s.get("Condition", {}) for s in policy["Statement"]]
    assert {"StringEquals": {"kms:CallerAccount": A, "kms:ViaService": f"rds.{SRC}.amazonaws.com"}} in conditions
    # Another account, another Region: its own aws/rds key.
    other = estate.create_db_instance(B, DST, "plain-default")
    assert estate.db_instance(B, DST, other)["KmsKeyId"] == estate.default_rds_key(B, DST)
    assert f":{DST}:{B}:" in estate.default_rds_key(B, DST)


@pytest.mark.parametrize("form", ["alias", "key id", "alias arn", "key arn"])
def test_db_instance_key_reported_as_full_arn(estate: Estate, form: str) -> None:
    key = estate.create_key(None, SRC, alias="orders")
    ref = {
        "alias": "alias/orders",
        "key id": key.split("/")[-1],
        "alias arn": f"arn:aws:kms:{SRC}:{A}:alias/orders",
        "key arn": key,
    }[form]
    db = estate.create_db_instance(None, SRC, "orders", kms_key=ref)
    assert estate.db_instance(None, SRC, db)["KmsKeyId"] == key


def test_db_instance_with_key_it_cannot_use_is_refused(estate: Estate) -> None:
    for ref in ("alias/nope", estate.create_key(None, DST)):  # missing; other Region
        with pytest.raises(ClientError) as excinfo:
            estate.create_db_instance(None, SRC, kms_key=ref)
        assert error_of(excinfo)[0] == "KMSKeyNotAccessibleFault", ref


def test_db_snapshot_carries_instance_key_arn_and_progress(estate: Estate) -> None:
    key = estate.create_key(None, SRC, alias="orders")
    db = estate.create_db_instance(None, SRC, "orders", kms_key="alias/orders")
    plain = estate.create_db_instance(None, SRC, "plain", encrypted=False)
    created = db_snapshot_of(estate, None, SRC, db, "orders-1")
    assert (created["Encrypted"], created["KmsKeyId"]) == (True, key)
    described = estate.db_snapshot(None, SRC, "orders-1")
    assert (described["Encrypted"], described["KmsKeyId"], described["Status"]) == (True, key, "available")
    assert described["PercentProgress"] == 100
    assert described["DBSnapshotArn"] == f"arn:aws:rds:{SRC}:{A}:snapshot:orders-1"
    assert "SourceDBSnapshotIdentifier" not in described
    db_snapshot_of(estate, None, SRC, plain, "plain-1")
    unencrypted = estate.db_snapshot(None, SRC, "plain-1")
    assert unencrypted["Encrypted"] is False and "KmsKeyId" not in unencrypted
    default_db = estate.create_db_instance(None, SRC, "default")
    assert db_snapshot_of(estate, None, SRC, default_db, "default-1")["KmsKeyId"] == estate.default_rds_key(None, SRC)


# ------------------------------------------------------------------ R2: sharing


@pytest.mark.parametrize("named", ["implicitly", "by alias"])
def test_sharing_db_snapshot_under_aws_rds_key_fails(estate: Estate, named: str) -> None:
    db = estate.create_db_instance(None, SRC, kms_key=None if named == "implicitly" else "alias/aws/rds")
    db_snapshot_of(estate, None, SRC, db, "default-key-snap")
    with pytest.raises(ClientError) as excinfo:
        estate.rds(None, SRC).modify_db_snapshot_attribute(
            DBSnapshotIdentifier="default-key-snap", AttributeName="restore", ValuesToAdd=[B]
        )
    assert error_of(excinfo) == moto_ext.DB_DEFAULT_KEY_SHARE_ERROR
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert estate.db_snapshot_shares(None, SRC, "default-key-snap") == []
    assert [(e["snapshot_id"], e["values_to_add"], e["accepted"]) for e in moto_ext.DB_SHARE_LOG] == [
        ("default-key-snap", [B], False)
    ]


def test_sharing_encrypted_db_snapshot_publicly_fails(estate: Estate) -> None:
    db = estate.create_db_instance(None, SRC, kms_key=estate.create_key(None, SRC))
    db_snapshot_of(estate, None, SRC, db, "cmk-snap")
    with pytest.raises(ClientError) as excinfo:
        estate.rds(None, SRC).modify_db_snapshot_attribute(
            DBSnapshotIdentifier="cmk-snap", AttributeName="restore", ValuesToAdd=["all"]
        )
    assert error_of(excinfo) == moto_ext.DB_PUBLIC_ENCRYPTED_SHARE_ERROR
    assert estate.db_snapshot_shares(None, SRC, "cmk-snap") == []


def test_db_share_add_remove_is_logged_and_described(estate: Estate) -> None:
    db = estate.create_db_instance(None, SRC, kms_key=estate.create_key(None, SRC, allow_accounts=[B, C]))
    snap = db_snapshot_of(estate, None, SRC, db, "cmk-snap")
    rds = estate.rds(None, SRC)
    rds.modify_db_snapshot_attribute(DBSnapshotIdentifier="cmk-snap", AttributeName="restore", ValuesToAdd=[B, C])
    assert estate.db_snapshot_shares(None, SRC, "cmk-snap") == [B, C]
    rds.modify_db_snapshot_attribute(DBSnapshotIdentifier="cmk-snap", AttributeName="restore", ValuesToRemove=[B])
    assert estate.db_snapshot_shares(None, SRC, "cmk-snap") == [C]
    assert [
        (e["account"], e["region"], e["snapshot_arn"], e["values_to_add"], e["values_to_remove"], e["accepted"])
        for e in moto_ext.DB_SHARE_LOG
    ] == [
        (A, SRC, snap["DBSnapshotArn"], [B, C], [], True),
        (A, SRC, snap["DBSnapshotArn"], [], [B], True),
    ]


# ------------------------------------------------------------------ R3: cross-account copies


def test_cross_account_db_copy_of_shared_snapshot_in_source_region(estate: Estate, shared_db_snapshot: dict) -> None:
    b_key = estate.create_key(B, SRC, alias="staging")
    estate.create_key(None, SRC, alias="staging")  # the same alias in A must not be used
    copy = estate.rds(B, SRC).copy_db_snapshot(
        SourceDBSnapshotIdentifier=shared_db_snapshot["arn"],
        TargetDBSnapshotIdentifier="orders-staging",
        KmsKeyId="alias/staging",
        Tags=[{"Key": "k", "Value": "v"}],
    )["DBSnapshot"]
    assert copy["DBSnapshotArn"] == f"arn:aws:rds:{SRC}:{B}:snapshot:orders-staging"
    described = estate.db_snapshot(B, SRC, "orders-staging")
    assert (described["Status"], described["Encrypted"], described["KmsKeyId"]) == ("available", True, b_key)
    assert described["SourceDBSnapshotIdentifier"] == shared_db_snapshot["arn"]
    assert described["SourceRegion"] == SRC
    assert described["TagList"] == [{"Key": "k", "Value": "v"}]
    assert [s["DBSnapshotIdentifier"] for s in estate.db_snapshots(A, SRC)] == ["orders-snap"]


def test_cross_account_db_copy_single_step_to_another_region(estate: Estate, shared_db_snapshot: dict) -> None:
    b_key = estate.create_key(B, DST)
    estate.rds(B, DST).copy_db_snapshot(
        SourceDBSnapshotIdentifier=shared_db_snapshot["arn"], TargetDBSnapshotIdentifier="orders", KmsKeyId=b_key
    )
    described = estate.db_snapshot(B, DST, "orders")
    assert (described["KmsKeyId"], described["SourceDBSnapshotIdentifier"]) == (b_key, shared_db_snapshot["arn"])
    assert estate.db_snapshots(B, SRC) == []


def test_cross_account_db_copy_of_encrypted_snapshot_without_key_fails(estate: Estate, shared_db_snapshot: dict) -> None:
    with pytest.raises(ClientError) as excinfo:
        estate.rds(B, SRC).copy_db_snapshot(
            SourceDBSnapshotIdentifier=shared_db_snapshot["arn"], TargetDBSnapshotIdentifier="orders"
        )
    assert error_of(excinfo) == moto_ext.DB_SHARED_NEEDS_KEY
    assert estate.db_snapshots(B, SRC) == []
    with pytest.raises(ClientError) as excinfo:
        estate.rds(B, DST).copy_db_snapshot(
            SourceDBSnapshotIdentifier=shared_db_snapshot["arn"], TargetDBSnapshotIdentifier="orders"
        )
    assert error_of(excinfo) == moto_ext.DB_CROSS_REGION_NEEDS_KEY


def test_cross_account_db_copy_of_unshared_snapshot_is_not_found(estate: Estate, shared_db_snapshot: dict) -> None:
    rds_a = estate.rds(None, SRC)
    rds_a.modify_db_snapshot_attribute(
        DBSnapshotIdentifier=shared_db_snapshot["id"], AttributeName="restore", ValuesToAdd=[C], ValuesToRemove=[B]
    )
    b_key = estate.create_key(B, SRC)
    for ref in (shared_db_snapshot["arn"], shared_db_snapshot["id"]):  # unshared; and never by bare id
        with pytest.raises(ClientError) as excinfo:
            estate.rds(B, SRC).copy_db_snapshot(SourceDBSnapshotIdentifier=ref, TargetDBSnapshotIdentifier="x", KmsKeyId=b_key)
        assert error_of(excinfo)[0] == "DBSnapshotNotFound", ref
        assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    # C, which it is shared with (and whose source key admits it), may copy it.
    estate.kms(None, SRC).put_key_policy(
        KeyId=shared_db_snapshot["key"], PolicyName="default", Policy=json.dumps(key_policy(A, [B, C]))
    )
    c_key = estate.create_key(C, SRC)
    estate.rds(C, SRC).copy_db_snapshot(
        SourceDBSnapshotIdentifier=shared_db_snapshot["arn"], TargetDBSnapshotIdentifier="x", KmsKeyId=c_key
    )
    assert [s["DBSnapshotIdentifier"] for s in estate.db_snapshots(C, SRC)] == ["x"]


@pytest.mark.parametrize(
    "policy_accounts, actions",
    [([], None), ([C], None), ([B], ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"])],
    ids=["owner-only", "other-account", "no-CreateGrant"],
)
def test_cross_account_db_copy_needs_source_key_policy_admitting_caller(
    estate: Estate, policy_accounts: list[str], actions: list[str] | None
) -> None:
    kms = estate.kms(None, SRC)
    statements = [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{A}:root"}, "Action": "kms:*", "Resource": "*"}]
    if policy_accounts:
        statements.append({
            "Effect": "Allow",
            "Principal": {"AWS": [f"arn:aws:iam::{a}:root" for a in policy_accounts]},
            "Action": actions or ["kms:*"],
            "Resource": "*",
        })
    if actions:
        statements.append({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{B}:root"}, "Action": actions, "Resource": "*"})
    key = kms.create_key(Policy=json.dumps({"Version": "2012-10-17", "Statement": statements}))["KeyMetadata"]["Arn"]
    db = estate.create_db_instance(None, SRC, kms_key=key)
    snap = db_snapshot_of(estate, None, SRC, db, "s")
    estate.rds(None, SRC).modify_db_snapshot_attribute(DBSnapshotIdentifier="s", AttributeName="restore", ValuesToAdd=[B])
    with pytest.raises(ClientError) as excinfo:
        estate.rds(B, SRC).copy_db_snapshot(
            SourceDBSnapshotIdentifier=snap["DBSnapshotArn"], TargetDBSnapshotIdentifier="s", KmsKeyId=estate.create_key(B, SRC)
        )  # refused by the call itself, not later
    assert error_of(excinfo) == ("KMSKeyNotAccessibleFault", moto_ext.DB_SOURCE_KEY_NOT_ACCESSIBLE.format(key=key))
    assert estate.db_snapshots(B, SRC) == []


@pytest.mark.parametrize("case", ["missing", "other-region", "third-account-not-admitting", "disabled"])
def test_db_copy_into_a_key_the_caller_cannot_use_fails(estate: Estate, shared_db_snapshot: dict, case: str) -> None:
    if case == "missing":
        ref = "alias/nope"
    elif case == "other-region":
        ref = estate.create_key(B, DST)
    elif case == "third-account-not-admitting":
        ref = estate.create_key(C, SRC)
    else:
        ref = estate.create_key(B, SRC)
        estate.kms(B, SRC).disable_key(KeyId=ref.split("/")[-1])  # moto: key id only
    with pytest.raises(ClientError) as excinfo:
        estate.rds(B, SRC).copy_db_snapshot(
            SourceDBSnapshotIdentifier=shared_db_snapshot["arn"], TargetDBSnapshotIdentifier="x", KmsKeyId=ref
        )
    assert error_of(excinfo) == ("KMSKeyNotAccessibleFault", moto_ext.DB_TARGET_KEY_NOT_ACCESSIBLE.format(key=ref))


def test_db_copy_into_a_third_account_key_admitting_caller_succeeds(estate: Estate, shared_db_snapshot: dict) -> None:
    third = estate.create_key(C, SRC, allow_accounts=[B])
    estate.rds(B, SRC).copy_db_snapshot(
        SourceDBSnapshotIdentifier=shared_db_snapshot["arn"], TargetDBSnapshotIdentifier="x", KmsKeyId=third
    )
    assert estate.db_snapshot(B, SRC, "x")["KmsKeyId"] == third


def test_same_account_db_copies_across_and_within_regions(estate: Estate) -> None:
    key = estate.create_key(None, SRC)
    dst_key = estate.create_key(None, DST, alias="replicas")
    db = estate.create_db_instance(None, SRC, kms_key=key)
    snap = db_snapshot_of(estate, None, SRC, db, "s")
    rds_dst = estate.rds(None, DST)
    with pytest.raises(ClientError) as excinfo:
        rds_dst.copy_db_snapshot(SourceDBSnapshotIdentifier=snap["DBSnapshotArn"], TargetDBSnapshotIdentifier="s")
    assert error_of(excinfo) == moto_ext.DB_CROSS_REGION_NEEDS_KEY
    rds_dst.copy_db_snapshot(SourceDBSnapshotIdentifier=snap["DBSnapshotArn"], TargetDBSnapshotIdentifier="s", KmsKeyId="alias/replicas")
    across = estate.db_snapshot(None, DST, "s")
    assert (across["KmsKeyId"], across["SourceDBSnapshotIdentifier"], across["SourceRegion"]) == (dst_key, snap["DBSnapshotArn"], SRC)
    # Within the Region: by identifier, keeps the source key, no SourceDBSnapshotIdentifier.
    estate.rds(None, SRC).copy_db_snapshot(SourceDBSnapshotIdentifier="s", TargetDBSnapshotIdentifier="s-copy")
    within = estate.db_snapshot(None, SRC, "s-copy")
    assert (within["KmsKeyId"], within["PercentProgress"]) == (key, 100)
    assert "SourceDBSnapshotIdentifier" not in within


def test_db_copy_of_unencrypted_snapshot_with_key_is_encrypted(estate: Estate) -> None:
    db = estate.create_db_instance(None, SRC, encrypted=False)
    snap = db_snapshot_of(estate, None, SRC, db, "plain")
    dst_key = estate.create_key(None, DST)
    estate.rds(None, DST).copy_db_snapshot(SourceDBSnapshotIdentifier=snap["DBSnapshotArn"], TargetDBSnapshotIdentifier="plain")
    assert estate.db_snapshot(None, DST, "plain")["Encrypted"] is False
    estate.rds(None, DST).copy_db_snapshot(
        SourceDBSnapshotIdentifier=snap["DBSnapshotArn"], TargetDBSnapshotIdentifier="enc", KmsKeyId=dst_key
    )
    described = estate.db_snapshot(None, DST, "enc")
    assert (described["Encrypted"], described["KmsKeyId"], described["PercentProgress"]) == (True, dst_key, 100)


def test_db_copy_target_identifier_is_unique_per_account_and_region(estate: Estate, shared_db_snapshot: dict) -> None:
    arn = shared_db_snapshot["arn"]
    for account, region in ((B, SRC), (B, DST), (None, DST)):
        key = estate.create_key(account, region, allow_accounts=[B])
        estate.rds(account, region).copy_db_snapshot(SourceDBSnapshotIdentifier=arn, TargetDBSnapshotIdentifier="same", KmsKeyId=key)
    with pytest.raises(ClientError) as excinfo:
        estate.rds(B, DST).copy_db_snapshot(
            SourceDBSnapshotIdentifier=arn, TargetDBSnapshotIdentifier="SAME", KmsKeyId=estate.create_key(B, DST)
        )
    assert error_of(excinfo)[0] == "DBSnapshotAlreadyExists"
    assert [e["error"] for e in moto_ext.DB_SNAPSHOT_LOG if e["action"] == "CopyDBSnapshot"] == [
        None, None, None, "DBSnapshotAlreadyExists"
    ]


def test_db_copy_tags_and_copy_tags(estate: Estate, shared_db_snapshot: dict) -> None:
    key = estate.create_key(B, SRC)
    rds_b = estate.rds(B, SRC)
    arn = shared_db_snapshot["arn"]
    rds_b.copy_db_snapshot(SourceDBSnapshotIdentifier=arn, TargetDBSnapshotIdentifier="given", KmsKeyId=key,
                           Tags=[{"Key": "k", "Value": "v"}], CopyTags=True)
    rds_b.copy_db_snapshot(SourceDBSnapshotIdentifier=arn, TargetDBSnapshotIdentifier="copied", KmsKeyId=key, CopyTags=True)
    rds_b.copy_db_snapshot(SourceDBSnapshotIdentifier=arn, TargetDBSnapshotIdentifier="bare", KmsKeyId=key)
    tags = {s["DBSnapshotIdentifier"]: s["TagList"] for s in estate.db_snapshots(B, SRC)}
    assert tags == {"given": [{"Key": "k", "Value": "v"}], "copied": [{"Key": "owner", "Value": "a"}], "bare": []}
    assert estate.db_snapshot(B, SRC, "bare")["SourceDBSnapshotIdentifier"] == arn


# ------------------------------------------------------------------ R4: pacing and quota


def test_db_copy_pacing_pending_then_creating_then_available(estate: Estate) -> None:
    import time

    moto_ext.RDS_COPY_PACING.pending_seconds = 3.0
    key = estate.create_key(None, SRC)
    dst_key = estate.create_key(None, DST)
    db = estate.create_db_instance(None, SRC, kms_key=key)
    arn = db_snapshot_of(estate, None, SRC, db, "s")["DBSnapshotArn"]
    copy = estate.rds(None, DST).copy_db_snapshot(SourceDBSnapshotIdentifier=arn, TargetDBSnapshotIdentifier="s", KmsKeyId=dst_key)["DBSnapshot"]
    assert (copy["Status"], copy["PercentProgress"]) == ("pending", 0)
    seen = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        snap = estate.db_snapshot(None, DST, "s")
        seen.append((snap["Status"], snap["PercentProgress"]))
        if snap["Status"] == "available":
            break
        time.sleep(0.1)
    statuses = [s for s, _ in seen]
    assert statuses[-1] == "available" and seen[-1][1] == 100
    assert "creating" in statuses
    order = {"pending": 0, "creating": 1, "available": 2}
    assert [order[s] for s in statuses] == sorted(order[s] for s in statuses), statuses
    progress = [p for s, p in seen if s == "creating"]
    assert progress == sorted(progress) and all(0 <= p < 100 for p in progress)


def test_db_copies_beyond_the_quota_are_refused(estate: Estate) -> None:
    moto_ext.RDS_COPY_PACING.pending_seconds = 60
    moto_ext.RDS_COPY_PACING.limit = 2
    key = estate.create_key(None, SRC)
    dst_key = estate.create_key(None, DST)
    db = estate.create_db_instance(None, SRC, kms_key=key)
    arn = db_snapshot_of(estate, None, SRC, db, "s")["DBSnapshotArn"]
    rds_dst = estate.rds(None, DST)
    for name in ("c1", "c2"):
        rds_dst.copy_db_snapshot(SourceDBSnapshotIdentifier=arn, TargetDBSnapshotIdentifier=name, KmsKeyId=dst_key)
    with pytest.raises(ClientError) as excinfo:
        rds_dst.copy_db_snapshot(SourceDBSnapshotIdentifier=arn, TargetDBSnapshotIdentifier="c3", KmsKeyId=dst_key)
    assert error_of(excinfo) == ("SnapshotQuotaExceeded", moto_ext.DB_COPY_QUOTA_MESSAGE.format(limit=2))
    assert moto_ext.RDS_COPY_PACING.refused == 1
    assert moto_ext.RDS_COPY_PACING.most_in_flight == {(A, DST): 2}
    # Another destination Region has its own quota; deleting a copy in progress cancels it.
    estate.rds(None, "us-west-2").copy_db_snapshot(
        SourceDBSnapshotIdentifier=arn, TargetDBSnapshotIdentifier="c3", KmsKeyId=estate.create_key(None, "us-west-2")
    )
    assert rds_dst.delete_db_snapshot(DBSnapshotIdentifier="c1")["DBSnapshot"]["DBSnapshotIdentifier"] == "c1"
    rds_dst.copy_db_snapshot(SourceDBSnapshotIdentifier=arn, TargetDBSnapshotIdentifier="c3", KmsKeyId=dst_key)
    assert sorted((s["DBSnapshotIdentifier"], s["Status"]) for s in estate.db_snapshots(None, DST)) == [
        ("c2", "pending"), ("c3", "pending")
    ]


def test_db_snapshot_being_created_cannot_be_shared_copied_or_deleted(estate: Estate) -> None:
    import time

    key = estate.create_key(None, SRC, allow_accounts=[B])
    dst_key = estate.create_key(None, DST)
    db = estate.create_db_instance(None, SRC, kms_key=key)
    rds, rds_dst = estate.rds(None, SRC), estate.rds(None, DST)
    moto_ext.RDS_COPY_PACING.create_seconds = 3.0
    created = db_snapshot_of(estate, None, SRC, db, "s")
    assert created["Status"] == "creating"
    calls = [
        lambda: rds.modify_db_snapshot_attribute(DBSnapshotIdentifier="s", AttributeName="restore", ValuesToAdd=[B]),
        lambda: rds_dst.copy_db_snapshot(
            SourceDBSnapshotIdentifier=created["DBSnapshotArn"], TargetDBSnapshotIdentifier="s", KmsKeyId=dst_key
        ),
        lambda: rds.delete_db_snapshot(DBSnapshotIdentifier="s"),
    ]
    for call in calls:
        with pytest.raises(ClientError) as excinfo:
            call()
        assert error_of(excinfo)[0] == "InvalidDBSnapshotState"
    deadline = time.monotonic() + 15
    while estate.db_snapshot(None, SRC, "s")["Status"] != "available":
        assert time.monotonic() < deadline, "never became available"
        time.sleep(0.1)
    rds.modify_db_snapshot_attribute(DBSnapshotIdentifier="s", AttributeName="restore", ValuesToAdd=[B])
    assert estate.db_snapshot_shares(None, SRC, "s") == [B]


# ------------------------------------------------------------------ R5 + R6: describe, delete, logs


def test_describe_db_snapshots_by_several_ids(estate: Estate, shared_db_snapshot: dict) -> None:
    b_key = estate.create_key(B, SRC)
    estate.rds(B, SRC).copy_db_snapshot(
        SourceDBSnapshotIdentifier=shared_db_snapshot["arn"], TargetDBSnapshotIdentifier="copy-1", KmsKeyId=b_key
    )
    estate.rds(B, SRC).copy_db_snapshot(
        SourceDBSnapshotIdentifier=shared_db_snapshot["arn"], TargetDBSnapshotIdentifier="copy-2", KmsKeyId=b_key
    )
    found = estate.rds(B, SRC).describe_db_snapshots(
        Filters=[{"Name": "db-snapshot-id", "Values": ["copy-1", "copy-2", "no-such-snapshot"]}]
    )["DBSnapshots"]
    assert sorted(
        (s["DBSnapshotIdentifier"], s["Status"], s["PercentProgress"], s["Encrypted"], s["KmsKeyId"],
         s["DBSnapshotArn"], s["SourceDBSnapshotIdentifier"])
        for s in found
    ) == [
        (name, "available", 100, True, b_key, f"arn:aws:rds:{SRC}:{B}:snapshot:{name}", shared_db_snapshot["arn"])
        for name in ("copy-1", "copy-2")
    ]
    with pytest.raises(ClientError) as excinfo:
        estate.rds(B, SRC).describe_db_snapshots(DBSnapshotIdentifier="no-such-snapshot")
    assert error_of(excinfo)[0] == "DBSnapshotNotFound"


def test_db_snapshot_log_records_creates_and_copies(estate: Estate, shared_db_snapshot: dict) -> None:
    b_key = estate.create_key(B, SRC)
    with pytest.raises(ClientError):
        estate.rds(B, SRC).copy_db_snapshot(SourceDBSnapshotIdentifier=shared_db_snapshot["arn"], TargetDBSnapshotIdentifier="Nokey")
    estate.rds(B, SRC).copy_db_snapshot(
        SourceDBSnapshotIdentifier=shared_db_snapshot["arn"], TargetDBSnapshotIdentifier="Staging", KmsKeyId=b_key,
        Tags=[{"Key": "snaprelay:kind", "Value": "staging"}],
    )
    estate.rds(B, SRC).delete_db_snapshot(DBSnapshotIdentifier="staging")
    log = [(e["action"], e["account"], e["region"], e["identifier"], e["accepted"], e["error"], e["result_kms_key_id"])
           for e in moto_ext.DB_SNAPSHOT_LOG]
    assert log == [
        ("CreateDBSnapshot", A, SRC, "orders-snap", True, None, shared_db_snapshot["key"]),
        ("CopyDBSnapshot", B, SRC, "nokey", False, "InvalidParameterValue", None),
        ("CopyDBSnapshot", B, SRC, "staging", True, None, b_key),
    ]
    assert moto_ext.DB_SNAPSHOT_LOG[-1]["tags"] == {"snaprelay:kind": "staging"}
    assert moto_ext.DB_SNAPSHOT_LOG[-1]["source"] == shared_db_snapshot["arn"]
    assert estate.db_snapshots(B, SRC) == []


def test_db_estate_helpers(estate: Estate) -> None:
    key = estate.create_key(None, SRC)
    gold = estate.create_db_instance(None, SRC, kms_key=key, tags={"backup": "gold"})
    assert gold.startswith("db-")
    described = estate.db_instance(None, SRC, gold)
    assert described["TagList"] == [{"Key": "backup", "Value": "gold"}]
    assert described["KmsKeyId"] == key
    db_snapshot_of(estate, None, SRC, gold, "tagged", Tags=[{"Key": "snaprelay:kind", "Value": "source"}])
    db_snapshot_of(estate, None, SRC, gold, "untagged")
    # Manual snapshots only (moto also keeps an automated rds:<db>-<time> one), tag filter applied here.
    assert sorted(s["DBSnapshotIdentifier"] for s in estate.db_snapshots(None, SRC)) == ["tagged", "untagged"]
    assert [s["DBSnapshotIdentifier"] for s in estate.db_snapshots(None, SRC, tags={"snaprelay:kind": "source"})] == ["tagged"]
    assert [s["DBSnapshotIdentifier"] for s in estate.db_snapshots(None, SRC, db_snapshot_id=["tagged", "nope"])] == ["tagged"]
    assert estate.db_snapshot_by_arn(f"arn:aws:rds:{SRC}:{A}:snapshot:tagged")["KmsKeyId"] == key
    assert estate.all_db_snapshots([None, B], [SRC]) == {(None, SRC): ["tagged", "untagged"], (B, SRC): []}


def test_reset_clears_db_logs_and_pacing(estate: Estate) -> None:
    assert moto_ext.DB_SHARE_LOG == [] and moto_ext.DB_SNAPSHOT_LOG == []
    pacing = moto_ext.RDS_COPY_PACING
    assert (pacing.pending_seconds, pacing.create_seconds, pacing.limit, pacing.refused, pacing.most_in_flight) == (0.0, 0.0, None, 0, {})
    assert estate.db_snapshots(None, SRC) == []


# ================================================================== restores
# EC2: images registered from snapshots, instances launched from them, volumes, retried creates
# (moto_ext/ec2_restore.py); RDS: restored DB instances and their deletion (moto_ext/rds.py).
# Tests named ..._already_correct pin what ALREADY_CORRECT claims moto gets right unpatched.


def restore_snapshots(estate: Estate, region: str = SRC) -> dict:
    """In A/region: a CMK, an 8 GiB snapshot of a volume under it (the root) and a 20 GiB one
    of an unencrypted volume (data)."""
    key = estate.create_key(None, region)
    _, (root, data) = estate.create_instance(
        None, region, [{"size": 8, "encrypted": True, "kms_key": key}, {"size": 20, "encrypted": False}]
    )
    ec2 = estate.ec2(None, region)
    return {
        "key": key,
        "root": ec2.create_snapshot(VolumeId=root)["SnapshotId"],
        "data": ec2.create_snapshot(VolumeId=data)["SnapshotId"],
    }


def register_restore_image(estate: Estate, snaps: dict, name: str = "restore-i-1 (2026-12-05)", region: str = SRC) -> str:
    return estate.ec2(None, region).register_image(
        Name=name,
        Description="snaprelay restore",
        RootDeviceName="/dev/xvda",
        Architecture="arm64",
        VirtualizationType="hvm",
        EnaSupport=True,
        BootMode="uefi",
        BlockDeviceMappings=[
            {
                "DeviceName": "/dev/xvda",
                "Ebs": {
                    "SnapshotId": snaps["root"],
                    "VolumeSize": 10,
                    "VolumeType": "gp3",
                    "Iops": 4000,
                    "Throughput": 250,
                    "DeleteOnTermination": True,
                },
            },
            # No size, type or DeleteOnTermination: the snapshot's size, gp2, kept.
            {"DeviceName": "/dev/sdf", "Ebs": {"SnapshotId": snaps["data"]}},
        ],
        TagSpecifications=[{"ResourceType": "image", "Tags": [{"Key": "snaprelay:restore", "Value": "r-1"}]}],
    )["ImageId"]


def default_network(ec2) -> tuple[str, str, str]:
    """(default VPC, its subnet in zone a, its default security group)."""
    vpc = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]
    subnet = sorted(subnets, key=lambda s: s["AvailabilityZone"])[0]["SubnetId"]
    group = ec2.describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [vpc]}, {"Name": "group-name", "Values": ["default"]}]
    )["SecurityGroups"][0]["GroupId"]
    return vpc, subnet, group


def launch(ec2, image: str, subnet: str, groups: list[str], token: str, tags: dict[str, str] | None = None) -> dict:
    """RunInstances as snaprelay's restore makes it: one instance, the subnet and groups on a
    network interface without a public IP, tagged instance and volumes, a client token."""
    tag_list = [{"Key": k, "Value": v} for k, v in (tags or {"snaprelay:restore": "r-1"}).items()]
    return ec2.run_instances(
        ImageId=image,
        InstanceType="t3.micro",
        MinCount=1,
        MaxCount=1,
        ClientToken=token,
        NetworkInterfaces=[
            {"DeviceIndex": 0, "AssociatePublicIpAddress": False, "SubnetId": subnet, "Groups": groups}
        ],
        TagSpecifications=[
            {"ResourceType": "instance", "Tags": tag_list},
            {"ResourceType": "volume", "Tags": tag_list},
        ],
    )["Instances"][0]


def test_register_image_keeps_mappings_root_device_architecture_ena_and_tags(estate: Estate) -> None:
    snaps = restore_snapshots(estate)
    ec2 = estate.ec2(None, SRC)
    before = sorted(s["SnapshotId"] for s in estate.snapshots(None, SRC))
    image_id = register_restore_image(estate, snaps)
    (image,) = ec2.describe_images(Owners=["self"], ImageIds=[image_id])["Images"]
    assert image["Name"] == "restore-i-1 (2026-12-05)"
    assert (image["RootDeviceName"], image["RootDeviceType"]) == ("/dev/xvda", "ebs")
    assert (image["Architecture"], image["VirtualizationType"], image["BootMode"]) == ("arm64", "hvm", "uefi")
    assert image["EnaSupport"] is True
    assert tags_of(image) == {"snaprelay:restore": "r-1"}
    mappings = {m["DeviceName"]: m["Ebs"] for m in image["BlockDeviceMappings"]}
    assert mappings == {
        "/dev/xvda": {
            "SnapshotId": snaps["root"],
            "VolumeSize": 10,
            "VolumeType": "gp3",
            "Iops": 4000,
            "Throughput": 250,
            "DeleteOnTermination": True,
            "Encrypted": True,
        },
        "/dev/sdf": {
            "SnapshotId": snaps["data"],
            "VolumeSize": 20,
            "VolumeType": "gp2",
            "DeleteOnTermination": False,
            "Encrypted": False,
        },
    }
    # The image refers to the given snapshots; registering made none.
    assert sorted(s["SnapshotId"] for s in estate.snapshots(None, SRC)) == before
    # Found by the filters a restore's clean-up uses.
    for f in ({"Name": "name", "Values": [image["Name"]]}, {"Name": "tag-key", "Values": ["snaprelay:restore"]}):
        assert [i["ImageId"] for i in ec2.describe_images(Owners=["self"], Filters=[f])["Images"]] == [image_id]


def test_register_image_refuses_taken_or_malformed_name_small_volume_and_missing_snapshot(estate: Estate) -> None:
    snaps = restore_snapshots(estate)
    ec2 = estate.ec2(None, SRC)
    first = register_restore_image(estate, snaps, name="taken")
    with pytest.raises(ClientError) as taken:
        register_restore_image(estate, snaps, name="taken")
    assert error_of(taken) == ("InvalidAMIName.Duplicate", f"AMI name taken is already in use by AMI {first}")
    for bad in ("snaprelay:restore", "r-1/2026-12-05T00:00", "x" * 129):
        with pytest.raises(ClientError) as malformed:
            register_restore_image(estate, snaps, name=bad)
        assert error_of(malformed)[0] == "InvalidAMIName.Malformed", bad
    root = {"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snaps["root"], "VolumeSize": 4}}
    with pytest.raises(ClientError) as small:
        ec2.register_image(Name="small", RootDeviceName="/dev/xvda", BlockDeviceMappings=[root])
    assert error_of(small)[0] == "InvalidBlockDeviceMapping"
    missing = {"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": "snap-0123456789abcdef0"}}
    with pytest.raises(ClientError) as not_found:
        ec2.register_image(Name="missing", RootDeviceName="/dev/xvda", BlockDeviceMappings=[missing])
    assert error_of(not_found) == ("InvalidSnapshot.NotFound", "The snapshot 'snap-0123456789abcdef0' does not exist.")
    # The name of a deregistered image is free again.
    ec2.deregister_image(ImageId=first)
    register_restore_image(estate, snaps, name="taken")


def test_instance_from_registered_image_gets_a_volume_per_mapping(estate: Estate) -> None:
    snaps = restore_snapshots(estate)
    image = register_restore_image(estate, snaps)
    ec2 = estate.ec2(None, SRC)
    _, subnet, group = default_network(ec2)
    instance = launch(ec2, image, subnet, [group], "restore-r-1")
    assert instance["RootDeviceName"] == "/dev/xvda"
    assert instance["Architecture"] == "arm64"
    assert instance["EnaSupport"] is True
    assert instance["SubnetId"] == subnet
    assert [g["GroupId"] for g in instance["SecurityGroups"]] == [group]
    assert "PublicIpAddress" not in instance
    devices = {m["DeviceName"]: m["Ebs"] for m in instance["BlockDeviceMappings"]}
    assert sorted(devices) == ["/dev/sdf", "/dev/xvda"]
    volumes = {v["VolumeId"]: v for v in estate.volumes(None, SRC, [d["VolumeId"] for d in devices.values()])}
    root, data = volumes[devices["/dev/xvda"]["VolumeId"]], volumes[devices["/dev/sdf"]["VolumeId"]]
    assert (root["SnapshotId"], root["Size"], root["VolumeType"], root["Iops"], root["Throughput"]) == (
        snaps["root"], 10, "gp3", 4000, 250
    )
    assert (root["Encrypted"], root["KmsKeyId"]) == (True, snaps["key"])
    assert (data["SnapshotId"], data["Size"], data["VolumeType"], data["Encrypted"]) == (snaps["data"], 20, "gp2", False)
    assert (devices["/dev/xvda"]["DeleteOnTermination"], devices["/dev/sdf"]["DeleteOnTermination"]) == (True, False)
    for v in (root, data):
        assert tags_of(v) == {"snaprelay:restore": "r-1"}
        assert v["Attachments"][0]["InstanceId"] == instance["InstanceId"]
    described = ec2.describe_instances(InstanceIds=[instance["InstanceId"]])["Reservations"][0]["Instances"][0]
    assert [g["GroupId"] for g in described["SecurityGroups"]] == [group]
    assert tags_of(described) == {"snaprelay:restore": "r-1"}


def test_terminating_deletes_the_volumes_marked_delete_on_termination(estate: Estate) -> None:
    snaps = restore_snapshots(estate)
    image = register_restore_image(estate, snaps)
    ec2 = estate.ec2(None, SRC)
    _, subnet, group = default_network(ec2)
    instance = launch(ec2, image, subnet, [group], "restore-r-1")
    devices = {m["DeviceName"]: m["Ebs"]["VolumeId"] for m in instance["BlockDeviceMappings"]}
    ec2.terminate_instances(InstanceIds=[instance["InstanceId"]])
    left = ec2.describe_volumes(Filters=[{"Name": "volume-id", "Values": list(devices.values())}])["Volumes"]
    assert [(v["VolumeId"], v["State"]) for v in left] == [(devices["/dev/sdf"], "available")]


def test_run_instances_overrides_and_no_device_apply_over_image_mappings(estate: Estate) -> None:
    snaps = restore_snapshots(estate)
    image = register_restore_image(estate, snaps)
    ec2 = estate.ec2(None, SRC)
    instance = ec2.run_instances(
        ImageId=image,
        InstanceType="t3.micro",
        MinCount=1,
        MaxCount=1,
        BlockDeviceMappings=[
            {"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 12}},
            {"DeviceName": "/dev/sdf", "NoDevice": ""},
        ],
    )["Instances"][0]
    (mapping,) = instance["BlockDeviceMappings"]
    (root,) = estate.volumes(None, SRC, [mapping["Ebs"]["VolumeId"]])
    assert (mapping["DeviceName"], root["Size"], root["VolumeType"], root["KmsKeyId"]) == (
        "/dev/xvda", 12, "gp3", snaps["key"]
    )


def test_instances_of_moto_images_keep_moto_default_root_volume(estate: Estate) -> None:
    ec2 = estate.ec2(None, SRC)
    instance = ec2.run_instances(ImageId="ami-12c6146b", InstanceType="t3.micro", MinCount=1, MaxCount=1)["Instances"][0]
    assert [m["DeviceName"] for m in instance["BlockDeviceMappings"]] == ["/dev/sda1"]


def test_run_instances_with_a_client_token_launches_once(estate: Estate) -> None:
    snaps = restore_snapshots(estate)
    image = register_restore_image(estate, snaps)
    ec2 = estate.ec2(None, SRC)
    _, subnet, group = default_network(ec2)
    first = launch(ec2, image, subnet, [group], "restore-r-1")
    again = launch(ec2, image, subnet, [group], "restore-r-1")
    assert again["InstanceId"] == first["InstanceId"]
    tagged = ec2.describe_volumes(Filters=[{"Name": "tag-key", "Values": ["snaprelay:restore"]}])["Volumes"]
    assert len(tagged) == 2
    with pytest.raises(ClientError) as mismatch:
        launch(ec2, image, subnet, [group], "restore-r-1", tags={"snaprelay:restore": "r-2"})
    assert error_of(mismatch) == moto_ext.IDEMPOTENT_MISMATCH
    other = launch(ec2, image, subnet, [group], "restore-r-2")
    assert other["InstanceId"] != first["InstanceId"]
    # Tokens are per account and Region.
    assert launch(estate.ec2(B, SRC), "ami-12c6146b", default_network(estate.ec2(B, SRC))[1], [], "restore-r-1")[
        "InstanceId"
    ] != first["InstanceId"]


def test_create_volume_with_a_client_token_creates_once(estate: Estate) -> None:
    snaps = restore_snapshots(estate)
    ec2 = estate.ec2(None, SRC)

    def create(size: int) -> dict:
        return ec2.create_volume(
            SnapshotId=snaps["root"],
            AvailabilityZone=f"{SRC}b",
            Size=size,
            VolumeType="gp3",
            ClientToken="restore-v-1",
            TagSpecifications=[{"ResourceType": "volume", "Tags": [{"Key": "snaprelay:restore", "Value": "r-1"}]}],
        )

    first = create(8)
    assert create(8)["VolumeId"] == first["VolumeId"]
    assert len(ec2.describe_volumes(Filters=[{"Name": "tag-key", "Values": ["snaprelay:restore"]}])["Volumes"]) == 1
    with pytest.raises(ClientError) as mismatch:
        create(9)
    assert error_of(mismatch)[0] == "IdempotentParameterMismatch"


def test_create_volume_from_encrypted_snapshot_already_correct(estate: Estate) -> None:
    snaps = restore_snapshots(estate)
    ec2 = estate.ec2(None, SRC)
    volume = ec2.create_volume(
        SnapshotId=snaps["root"],
        AvailabilityZone=f"{SRC}b",
        VolumeType="io2",
        Iops=5000,
        TagSpecifications=[{"ResourceType": "volume", "Tags": [{"Key": "Name", "Value": "restored"}]}],
    )
    assert (volume["Encrypted"], volume["KmsKeyId"], volume["Size"]) == (True, snaps["key"], 8)
    assert (volume["VolumeType"], volume["Iops"], volume["SnapshotId"]) == ("io2", 5000, snaps["root"])
    named = ec2.describe_volumes(Filters=[{"Name": "tag:Name", "Values": ["restored"]}])["Volumes"]
    assert [v["VolumeId"] for v in named] == [volume["VolumeId"]]
    by_id = ec2.describe_volumes(
        Filters=[{"Name": "volume-id", "Values": [volume["VolumeId"], "vol-0123456789abcdef0"]}]
    )["Volumes"]
    assert [v["VolumeId"] for v in by_id] == [volume["VolumeId"]]


def test_security_group_egress_revoke_and_look_ups_already_correct(estate: Estate) -> None:
    ec2 = estate.ec2(None, SRC)
    vpc, _, default_group = default_network(ec2)
    group = ec2.create_security_group(
        GroupName="snaprelay-restore-r-1",
        Description="restore r-1",
        VpcId=vpc,
        TagSpecifications=[{"ResourceType": "security-group", "Tags": [{"Key": "snaprelay:restore", "Value": "r-1"}]}],
    )["GroupId"]
    (described,) = ec2.describe_security_groups(GroupIds=[group])["SecurityGroups"]
    assert tags_of(described) == {"snaprelay:restore": "r-1"}
    assert [(p["IpProtocol"], p["IpRanges"]) for p in described["IpPermissionsEgress"]] == [("-1", [{"CidrIp": "0.0.0.0/0"}])]
    ec2.revoke_security_group_egress(GroupId=group, IpPermissions=described["IpPermissionsEgress"])
    assert ec2.describe_security_groups(GroupIds=[group])["SecurityGroups"][0]["IpPermissionsEgress"] == []
    for f in (
        {"Name": "group-id", "Values": [group, "sg-0123456789abcdef0"]},
        {"Name": "group-name", "Values": ["snaprelay-restore-r-1"]},
        {"Name": "tag-key", "Values": ["snaprelay:restore"]},
    ):
        assert [g["GroupId"] for g in ec2.describe_security_groups(Filters=[f])["SecurityGroups"]] == [group], f
    assert default_group != group


def test_describe_key_pairs_already_correct(estate: Estate) -> None:
    ec2 = estate.ec2(None, SRC)
    ec2.create_key_pair(KeyName="ops")
    found = ec2.describe_key_pairs(Filters=[{"Name": "key-name", "Values": ["ops", "missing"]}])["KeyPairs"]
    assert [k["KeyName"] for k in found] == ["ops"]
    with pytest.raises(ClientError) as missing:
        ec2.describe_key_pairs(KeyNames=["missing"])
    assert error_of(missing)[0] == "InvalidKeyPair.NotFound"


def test_restored_db_instance_takes_the_request_settings(estate: Estate) -> None:
    key = estate.create_key(None, SRC)
    rds = estate.rds(None, SRC)
    rds.create_db_instance(
        DBInstanceIdentifier="src",
        DBInstanceClass="db.t3.micro",
        Engine="postgres",
        MasterUsername="snaprelay",
        MasterUserPassword="not-a-secret-1",
        AllocatedStorage=20,
        StorageEncrypted=True,
        KmsKeyId=key,
        MultiAZ=True,
        PubliclyAccessible=True,
        DeletionProtection=True,
        Tags=[{"Key": "team", "Value": "db"}],
    )
    db_snapshot_of(estate, None, SRC, "src", "s1")
    dst_key = estate.create_key(None, DST)
    copy = estate.rds(None, DST).copy_db_snapshot(
        SourceDBSnapshotIdentifier=f"arn:aws:rds:{SRC}:{A}:snapshot:s1",
        TargetDBSnapshotIdentifier="replica-1",
        KmsKeyId=dst_key,
    )["DBSnapshot"]
    vpc, _, group = default_network(estate.ec2(None, DST))
    restored = estate.rds(None, DST).restore_db_instance_from_db_snapshot(
        DBInstanceIdentifier="restore-r-1",
        DBSnapshotIdentifier=copy["DBSnapshotArn"],
        DBInstanceClass="db.m5.large",
        MultiAZ=False,
        PubliclyAccessible=False,
        VpcSecurityGroupIds=[group],
        Tags=[{"Key": "snaprelay:restore", "Value": "r-1"}],
    )["DBInstance"]
    described = estate.db_instance(None, DST, "restore-r-1")
    for db in (restored, described):
        assert (db["MultiAZ"], db["PubliclyAccessible"], db["DeletionProtection"]) == (False, False, False)
        assert db["AvailabilityZone"].startswith(DST)
        assert db["DBInstanceClass"] == "db.m5.large"
        assert db["KmsKeyId"] == dst_key
        assert [g["VpcSecurityGroupId"] for g in db["VpcSecurityGroups"]] == [group]
        assert db["TagList"] == [{"Key": "snaprelay:restore", "Value": "r-1"}]
        assert db["DBInstanceArn"] == f"arn:aws:rds:{DST}:{A}:db:restore-r-1"
    # What the request says true stays true.
    again = rds.restore_db_instance_from_db_snapshot(
        DBInstanceIdentifier="restore-r-2", DBSnapshotIdentifier="s1", MultiAZ=True, DeletionProtection=True
    )["DBInstance"]
    assert (again["MultiAZ"], again["DeletionProtection"], again["AvailabilityZone"]) == (True, True, f"{SRC}a")


def test_delete_db_instance_needs_a_final_snapshot_choice(estate: Estate) -> None:
    rds = estate.rds(None, SRC)
    db = estate.create_db_instance(None, SRC)
    db_snapshot_of(estate, None, SRC, db, "manual-1")
    with pytest.raises(ClientError) as refused:
        rds.delete_db_instance(DBInstanceIdentifier=db)
    assert error_of(refused) == moto_ext.DB_FINAL_SNAPSHOT_REQUIRED
    assert estate.db_instance(None, SRC, db)["DBInstanceStatus"] == "available"
    automated = estate.db_snapshots(None, SRC, snapshot_type="automated", db_instance_id=db)
    assert automated, "moto keeps an automated snapshot of every instance"
    answer = rds.delete_db_instance(DBInstanceIdentifier=db, SkipFinalSnapshot=True, DeleteAutomatedBackups=True)
    assert answer["DBInstance"]["DBInstanceStatus"] == "deleting"
    with pytest.raises(ClientError) as gone:
        rds.describe_db_instances(DBInstanceIdentifier=db)
    assert error_of(gone)[0] == "DBInstanceNotFound"
    assert estate.db_snapshots(None, SRC, snapshot_type="automated", db_instance_id=db) == []
    assert [s["DBSnapshotIdentifier"] for s in estate.db_snapshots(None, SRC)] == ["manual-1"]


def test_db_look_ups_a_restore_makes_already_correct(estate: Estate) -> None:
    rds = estate.rds(None, SRC)
    db = estate.create_db_instance(None, SRC)
    found = rds.describe_db_instances(Filters=[{"Name": "db-instance-id", "Values": [db, "nope"]}])["DBInstances"]
    assert [d["DBInstanceIdentifier"] for d in found] == [db]
    for call, kwargs, code in (
        ("describe_db_instances", {"DBInstanceIdentifier": "nope"}, "DBInstanceNotFound"),
        ("describe_db_subnet_groups", {"DBSubnetGroupName": "nope"}, "DBSubnetGroupNotFoundFault"),
        ("describe_option_groups", {"OptionGroupName": "nope"}, "OptionGroupNotFoundFault"),
    ):
        with pytest.raises(ClientError) as missing:
            getattr(rds, call)(**kwargs)
        assert error_of(missing)[0] == code, call
    assert rds.describe_db_parameter_groups(DBParameterGroupName="nope")["DBParameterGroups"] == []


def test_instances_list_their_platform_details(estate: Estate) -> None:
    """AWS lists PlatformDetails on every instance; moto lists none."""
    ec2 = estate.ec2(None, "us-east-1")
    linux = ec2.run_instances(ImageId="ami-760aaa0f", MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    windows = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    found = {
        i["InstanceId"]: i.get("PlatformDetails")
        for r in ec2.describe_instances(InstanceIds=[linux, windows])["Reservations"]
        for i in r["Instances"]
    }
    assert found == {linux: "Linux/UNIX", windows: "Windows"}


# ------------------------------------------------------------------ EBS direct APIs


def test_ebs_direct_api_is_denied_as_for_a_role_without_it(estate: Estate) -> None:
    """moto lacks ListChangedBlocks (an HTML 500 the SDK retries); AWS answers a role that may
    not call it with a 403 AccessDeniedException, not retried."""
    import boto3

    ebs = boto3.client(
        "ebs", region_name=SRC, endpoint_url=estate.endpoint, aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    with pytest.raises(ClientError) as e:
        ebs.list_changed_blocks(FirstSnapshotId="snap-1", SecondSnapshotId="snap-2")
    assert e.value.response["Error"]["Code"] == "AccessDeniedException"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert estate.ec2(None, SRC).describe_regions()["Regions"], "other services are untouched"


# ================================================================== Aurora
# DB clusters and DB cluster snapshots (moto_ext/aurora.py). Each test pins an AWS behaviour
# moto 5.2.1 got wrong; MOTO_EXT_SKIP=<patch> makes the tests of that patch fail.


def create_cluster(
    estate: Estate,
    account: str | None,
    region: str,
    name: str,
    kms_key: str | None = None,
    encrypted: bool = True,
    **kw,
) -> dict:
    """An aurora-postgresql DB cluster (no instances); encrypted without kms_key: aws/rds."""
    kwargs = {
        "DBClusterIdentifier": name,
        "Engine": "aurora-postgresql",
        "MasterUsername": "snaprelay",
        "MasterUserPassword": "not-a-secret-1",
        **kw,
    }
    if encrypted or kms_key:
        kwargs["StorageEncrypted"] = True
        if kms_key:
            kwargs["KmsKeyId"] = kms_key
    return estate.rds(account, region).create_db_cluster(**kwargs)["DBCluster"]


def cluster_snapshot_of(estate: Estate, account: str | None, region: str, cluster: str, name: str, **kw) -> dict:
    return estate.rds(account, region).create_db_cluster_snapshot(
        DBClusterIdentifier=cluster, DBClusterSnapshotIdentifier=name, **kw
    )["DBClusterSnapshot"]


def cluster_snapshot(estate: Estate, account: str | None, region: str, identifier: str) -> dict:
    return estate.rds(account, region).describe_db_cluster_snapshots(DBClusterSnapshotIdentifier=identifier)[
        "DBClusterSnapshots"
    ][0]


def cluster_snapshot_ids(estate: Estate, account: str | None, region: str) -> list[str]:
    found = estate.rds(account, region).describe_db_cluster_snapshots(SnapshotType="manual")["DBClusterSnapshots"]
    return sorted(s["DBClusterSnapshotIdentifier"] for s in found)


def cluster_shares(estate: Estate, account: str | None, region: str, identifier: str) -> list[str]:
    result = estate.rds(account, region).describe_db_cluster_snapshot_attributes(
        DBClusterSnapshotIdentifier=identifier
    )["DBClusterSnapshotAttributesResult"]
    return sorted(v for a in result["DBClusterSnapshotAttributes"] if a["AttributeName"] == "restore" for v in a["AttributeValues"])


def share_cluster_snapshot(estate: Estate, account: str | None, region: str, identifier: str, add=(), remove=()) -> None:
    estate.rds(account, region).modify_db_cluster_snapshot_attribute(
        DBClusterSnapshotIdentifier=identifier, AttributeName="restore", ValuesToAdd=list(add), ValuesToRemove=list(remove)
    )


@pytest.fixture
def shared_cluster_snapshot(estate: Estate) -> dict:
    """A DB cluster snapshot in A/us-east-1 under a CMK admitting B, shared with B (restore)."""
    key = estate.create_key(None, SRC, allow_accounts=[B])
    create_cluster(estate, None, SRC, "orders", kms_key=key)
    snap = cluster_snapshot_of(estate, None, SRC, "orders", "orders-snap", Tags=[{"Key": "owner", "Value": "a"}])
    share_cluster_snapshot(estate, None, SRC, "orders-snap", add=[B])
    return {"id": "orders-snap", "arn": snap["DBClusterSnapshotArn"], "key": key}


# ------------------------------------------------------------------ A1: keys of DB clusters


def test_encrypted_db_cluster_without_key_uses_aws_managed_rds_key(estate: Estate) -> None:
    created = create_cluster(estate, None, SRC, "plain-default")
    default_key = estate.default_rds_key(None, SRC)
    assert (created["StorageEncrypted"], created["KmsKeyId"]) == (True, default_key)
    assert estate.kms(None, SRC).describe_key(KeyId=default_key)["KeyMetadata"]["KeyManager"] == "AWS"
    described = estate.rds(None, SRC).describe_db_clusters(DBClusterIdentifier="plain-default")["DBClusters"][0]
    assert described["KmsKeyId"] == default_key
    snap = cluster_snapshot_of(estate, None, SRC, "plain-default", "s")
    assert (snap["StorageEncrypted"], snap["KmsKeyId"]) == (True, default_key)
    # Another account, another Region: its own aws/rds key.
    assert create_cluster(estate, B, DST, "plain-default")["KmsKeyId"] == estate.default_rds_key(B, DST)
    assert f":{DST}:{B}:" in estate.default_rds_key(B, DST)


def test_db_cluster_key_reported_as_full_arn_and_unusable_keys_refused(estate: Estate) -> None:
    key = estate.create_key(None, SRC, alias="orders")
    for n, ref in enumerate(("alias/orders", key.split("/")[-1], f"arn:aws:kms:{SRC}:{A}:alias/orders")):
        assert create_cluster(estate, None, SRC, f"c{n}", kms_key=ref)["KmsKeyId"] == key, ref
    for ref in ("alias/nope", estate.create_key(None, DST), estate.create_key(C, SRC)):  # missing; other Region; not admitted
        with pytest.raises(ClientError) as excinfo:
            create_cluster(estate, None, SRC, "refused", kms_key=ref)
        assert error_of(excinfo) == ("KMSKeyNotAccessibleFault", moto_ext.AURORA_TARGET_KEY_NOT_ACCESSIBLE.format(key=ref))
    assert [c["DBClusterIdentifier"] for c in estate.rds(None, SRC).describe_db_clusters()["DBClusters"]] == ["c0", "c1", "c2"]


# ------------------------------------------------------------------ A2: sharing


@pytest.mark.parametrize("named", ["implicitly", "by alias"])
def test_sharing_cluster_snapshot_under_aws_rds_key_fails(estate: Estate, named: str) -> None:
    create_cluster(estate, None, SRC, "orders", kms_key=None if named == "implicitly" else "alias/aws/rds")
    snap = cluster_snapshot_of(estate, None, SRC, "orders", "default-key-snap")
    with pytest.raises(ClientError) as excinfo:
        share_cluster_snapshot(estate, None, SRC, "default-key-snap", add=[B])
    assert error_of(excinfo) == moto_ext.DB_DEFAULT_KEY_SHARE_ERROR
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert cluster_shares(estate, None, SRC, "default-key-snap") == []
    assert [(e["snapshot_arn"], e["values_to_add"], e["accepted"]) for e in moto_ext.DB_CLUSTER_SHARE_LOG] == [
        (snap["DBClusterSnapshotArn"], [B], False)
    ]


def test_sharing_encrypted_cluster_snapshot_publicly_fails(estate: Estate) -> None:
    create_cluster(estate, None, SRC, "cmk", kms_key=estate.create_key(None, SRC))
    cluster_snapshot_of(estate, None, SRC, "cmk", "cmk-snap")
    with pytest.raises(ClientError) as excinfo:
        share_cluster_snapshot(estate, None, SRC, "cmk-snap", add=["all"])
    assert error_of(excinfo) == moto_ext.DB_PUBLIC_ENCRYPTED_SHARE_ERROR
    assert cluster_shares(estate, None, SRC, "cmk-snap") == []
    # An unencrypted one may be public.
    create_cluster(estate, None, SRC, "plain", encrypted=False)
    cluster_snapshot_of(estate, None, SRC, "plain", "plain-snap")
    share_cluster_snapshot(estate, None, SRC, "plain-snap", add=["all"])
    assert cluster_shares(estate, None, SRC, "plain-snap") == ["all"]


def test_cluster_share_add_remove_is_logged_and_described(estate: Estate) -> None:
    create_cluster(estate, None, SRC, "orders", kms_key=estate.create_key(None, SRC, allow_accounts=[B, C]))
    snap = cluster_snapshot_of(estate, None, SRC, "orders", "cmk-snap")
    share_cluster_snapshot(estate, None, SRC, "cmk-snap", add=[B, C])
    assert cluster_shares(estate, None, SRC, "cmk-snap") == [B, C]
    share_cluster_snapshot(estate, None, SRC, "cmk-snap", remove=[B])
    assert cluster_shares(estate, None, SRC, "cmk-snap") == [C]
    assert [
        (e["account"], e["region"], e["snapshot_id"], e["snapshot_arn"], e["attribute"], e["values_to_add"],
         e["values_to_remove"], e["accepted"])
        for e in moto_ext.DB_CLUSTER_SHARE_LOG
    ] == [
        (A, SRC, "cmk-snap", snap["DBClusterSnapshotArn"], "restore", [B, C], [], True),
        (A, SRC, "cmk-snap", snap["DBClusterSnapshotArn"], "restore", [], [B], True),
    ]
    assert moto_ext.DB_SHARE_LOG == []


# ------------------------------------------------------------------ A3: copies


def test_cross_account_cluster_copy_of_shared_snapshot_in_its_region(estate: Estate, shared_cluster_snapshot: dict) -> None:
    b_key = estate.create_key(B, SRC, alias="staging")
    estate.create_key(None, SRC, alias="staging")  # the same alias in A must not be used
    copy = estate.rds(B, SRC).copy_db_cluster_snapshot(
        SourceDBClusterSnapshotIdentifier=shared_cluster_snapshot["arn"],
        TargetDBClusterSnapshotIdentifier="Orders-Staging",
        KmsKeyId="alias/staging",
        Tags=[{"Key": "k", "Value": "v"}],
    )["DBClusterSnapshot"]
    assert copy["DBClusterSnapshotArn"] == f"arn:aws:rds:{SRC}:{B}:cluster-snapshot:orders-staging"
    described = cluster_snapshot(estate, B, SRC, "orders-staging")
    assert (described["Status"], described["PercentProgress"]) == ("available", 100)
    assert (described["StorageEncrypted"], described["KmsKeyId"]) == (True, b_key)
    assert described["SourceDBClusterSnapshotArn"] == shared_cluster_snapshot["arn"]
    assert described["TagList"] == [{"Key": "k", "Value": "v"}]
    assert cluster_snapshot_ids(estate, A, SRC) == ["orders-snap"]


def test_cross_account_cluster_copy_of_encrypted_snapshot_without_key_fails(estate: Estate, shared_cluster_snapshot: dict) -> None:
    with pytest.raises(ClientError) as excinfo:
        estate.rds(B, SRC).copy_db_cluster_snapshot(
            SourceDBClusterSnapshotIdentifier=shared_cluster_snapshot["arn"], TargetDBClusterSnapshotIdentifier="orders"
        )
    assert error_of(excinfo) == moto_ext.DB_SHARED_NEEDS_KEY
    assert cluster_snapshot_ids(estate, B, SRC) == []


def test_shared_cluster_snapshot_cannot_be_copied_to_another_region_in_one_step(
    estate: Estate, shared_cluster_snapshot: dict
) -> None:
    """Aurora User Guide: shared DB cluster snapshots are copied across accounts only within
    their Region; then, as an own snapshot, across Regions (two steps)."""
    b_dst_key = estate.create_key(B, DST)
    with pytest.raises(ClientError) as excinfo:
        estate.rds(B, DST).copy_db_cluster_snapshot(
            SourceDBClusterSnapshotIdentifier=shared_cluster_snapshot["arn"],
            TargetDBClusterSnapshotIdentifier="orders",
            KmsKeyId=b_dst_key,
        )
    assert error_of(excinfo) == moto_ext.AURORA_SHARED_CROSS_REGION_ERROR
    assert cluster_snapshot_ids(estate, B, DST) == []
    # The two steps: within the source Region, then the own copy across Regions.
    staging = estate.rds(B, SRC).copy_db_cluster_snapshot(
        SourceDBClusterSnapshotIdentifier=shared_cluster_snapshot["arn"],
        TargetDBClusterSnapshotIdentifier="orders-staging",
        KmsKeyId=estate.create_key(B, SRC),
    )["DBClusterSnapshot"]
    estate.rds(B, DST).copy_db_cluster_snapshot(
        SourceDBClusterSnapshotIdentifier=staging["DBClusterSnapshotArn"],
        TargetDBClusterSnapshotIdentifier="orders",
        KmsKeyId=b_dst_key,
    )
    final = cluster_snapshot(estate, B, DST, "orders")
    assert (final["KmsKeyId"], final["SourceDBClusterSnapshotArn"]) == (b_dst_key, staging["DBClusterSnapshotArn"])


def test_cross_account_cluster_copy_of_unshared_snapshot_is_not_found(estate: Estate, shared_cluster_snapshot: dict) -> None:
    share_cluster_snapshot(estate, None, SRC, shared_cluster_snapshot["id"], add=[C], remove=[B])
    b_key = estate.create_key(B, SRC)
    for ref in (shared_cluster_snapshot["arn"], shared_cluster_snapshot["id"]):  # unshared; and never by bare id
        with pytest.raises(ClientError) as excinfo:
            estate.rds(B, SRC).copy_db_cluster_snapshot(
                SourceDBClusterSnapshotIdentifier=ref, TargetDBClusterSnapshotIdentifier="x", KmsKeyId=b_key
            )
        assert error_of(excinfo)[0] == "DBClusterSnapshotNotFoundFault", ref
        assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    # A public (unencrypted) snapshot may be copied by anyone, by ARN.
    create_cluster(estate, None, SRC, "plain", encrypted=False)
    public = cluster_snapshot_of(estate, None, SRC, "plain", "public-snap")
    share_cluster_snapshot(estate, None, SRC, "public-snap", add=["all"])
    estate.rds(B, SRC).copy_db_cluster_snapshot(
        SourceDBClusterSnapshotIdentifier=public["DBClusterSnapshotArn"], TargetDBClusterSnapshotIdentifier="public-copy"
    )
    copied = cluster_snapshot(estate, B, SRC, "public-copy")
    assert (copied["StorageEncrypted"], copied.get("KmsKeyId")) == (False, None)


@pytest.mark.parametrize(
    "policy_accounts, actions",
    [([], None), ([B], ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"])],
    ids=["owner-only", "no-CreateGrant"],
)
def test_cross_account_cluster_copy_needs_source_key_policy_admitting_caller(
    estate: Estate, policy_accounts: list[str], actions: list[str] | None
) -> None:
    statements = [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{A}:root"}, "Action": "kms:*", "Resource": "*"}]
    if policy_accounts:
        statements.append({
            "Effect": "Allow",
            "Principal": {"AWS": [f"arn:aws:iam::{a}:root" for a in policy_accounts]},
            "Action": actions or ["kms:*"],
            "Resource": "*",
        })
    key = estate.kms(None, SRC).create_key(Policy=json.dumps({"Version": "2012-10-17", "Statement": statements}))[
        "KeyMetadata"
    ]["Arn"]
    create_cluster(estate, None, SRC, "orders", kms_key=key)
    snap = cluster_snapshot_of(estate, None, SRC, "orders", "s")
    share_cluster_snapshot(estate, None, SRC, "s", add=[B])
    with pytest.raises(ClientError) as excinfo:
        estate.rds(B, SRC).copy_db_cluster_snapshot(
            SourceDBClusterSnapshotIdentifier=snap["DBClusterSnapshotArn"],
            TargetDBClusterSnapshotIdentifier="s",
            KmsKeyId=estate.create_key(B, SRC),
        )  # refused by the call itself, not later
    assert error_of(excinfo) == ("KMSKeyNotAccessibleFault", moto_ext.DB_SOURCE_KEY_NOT_ACCESSIBLE.format(key=key))
    assert cluster_snapshot_ids(estate, B, SRC) == []


@pytest.mark.parametrize("case", ["missing", "other-region", "third-account-not-admitting"])
def test_cluster_copy_into_a_key_the_caller_cannot_use_fails(estate: Estate, shared_cluster_snapshot: dict, case: str) -> None:
    ref = {
        "missing": lambda: "alias/nope",
        "other-region": lambda: estate.create_key(B, DST),
        "third-account-not-admitting": lambda: estate.create_key(C, SRC),
    }[case]()
    with pytest.raises(ClientError) as excinfo:
        estate.rds(B, SRC).copy_db_cluster_snapshot(
            SourceDBClusterSnapshotIdentifier=shared_cluster_snapshot["arn"], TargetDBClusterSnapshotIdentifier="x", KmsKeyId=ref
        )
    assert error_of(excinfo) == ("KMSKeyNotAccessibleFault", moto_ext.AURORA_TARGET_KEY_NOT_ACCESSIBLE.format(key=ref))


def test_same_account_cluster_copies_across_and_within_regions(estate: Estate) -> None:
    key = estate.create_key(None, SRC)
    dst_key = estate.create_key(None, DST, alias="replicas")
    create_cluster(estate, None, SRC, "orders", kms_key=key)
    snap = cluster_snapshot_of(estate, None, SRC, "orders", "s")
    rds_dst = estate.rds(None, DST)
    with pytest.raises(ClientError) as excinfo:  # encrypted, across Regions, no key
        rds_dst.copy_db_cluster_snapshot(SourceDBClusterSnapshotIdentifier=snap["DBClusterSnapshotArn"], TargetDBClusterSnapshotIdentifier="s")
    assert error_of(excinfo) == moto_ext.DB_CROSS_REGION_NEEDS_KEY
    with pytest.raises(ClientError) as excinfo:  # another Region's snapshot by bare id
        rds_dst.copy_db_cluster_snapshot(SourceDBClusterSnapshotIdentifier="s", TargetDBClusterSnapshotIdentifier="s", KmsKeyId=dst_key)
    assert error_of(excinfo)[0] == "DBClusterSnapshotNotFoundFault"
    rds_dst.copy_db_cluster_snapshot(
        SourceDBClusterSnapshotIdentifier=snap["DBClusterSnapshotArn"], TargetDBClusterSnapshotIdentifier="s", KmsKeyId="alias/replicas"
    )
    across = cluster_snapshot(estate, None, DST, "s")
    assert (across["KmsKeyId"], across["SourceDBClusterSnapshotArn"]) == (dst_key, snap["DBClusterSnapshotArn"])
    assert across["DBClusterSnapshotArn"] == f"arn:aws:rds:{DST}:{A}:cluster-snapshot:s"
    # Within the Region, by identifier: keeps the source key, or re-encrypts under a new one.
    rds = estate.rds(None, SRC)
    rds.copy_db_cluster_snapshot(SourceDBClusterSnapshotIdentifier="s", TargetDBClusterSnapshotIdentifier="s-copy")
    within = cluster_snapshot(estate, None, SRC, "s-copy")
    assert (within["KmsKeyId"], within["SourceDBClusterSnapshotArn"]) == (key, snap["DBClusterSnapshotArn"])
    other = estate.create_key(None, SRC)
    rds.copy_db_cluster_snapshot(SourceDBClusterSnapshotIdentifier="s", TargetDBClusterSnapshotIdentifier="s-re", KmsKeyId=other)
    assert cluster_snapshot(estate, None, SRC, "s-re")["KmsKeyId"] == other


def test_cluster_copy_of_unencrypted_snapshot_with_key_fails(estate: Estate) -> None:
    """Unlike CopyDBSnapshot, which would encrypt the copy."""
    create_cluster(estate, None, SRC, "plain", encrypted=False)
    snap = cluster_snapshot_of(estate, None, SRC, "plain", "s")
    with pytest.raises(ClientError) as excinfo:
        estate.rds(None, SRC).copy_db_cluster_snapshot(
            SourceDBClusterSnapshotIdentifier="s", TargetDBClusterSnapshotIdentifier="s-copy", KmsKeyId=estate.create_key(None, SRC)
        )
    assert error_of(excinfo) == moto_ext.AURORA_UNENCRYPTED_WITH_KEY
    estate.rds(None, DST).copy_db_cluster_snapshot(
        SourceDBClusterSnapshotIdentifier=snap["DBClusterSnapshotArn"], TargetDBClusterSnapshotIdentifier="s"
    )
    copied = cluster_snapshot(estate, None, DST, "s")
    assert (copied["StorageEncrypted"], copied.get("KmsKeyId")) == (False, None)
    assert cluster_snapshot_ids(estate, None, SRC) == ["s"]


def test_cluster_copy_tags_and_copy_tags(estate: Estate) -> None:
    create_cluster(estate, None, SRC, "orders", kms_key=estate.create_key(None, SRC), CopyTagsToSnapshot=True,
                   Tags=[{"Key": "app", "Value": "orders"}])
    cluster_snapshot_of(estate, None, SRC, "orders", "s", Tags=[{"Key": "snap", "Value": "1"}])
    rds = estate.rds(None, SRC)
    rds.copy_db_cluster_snapshot(SourceDBClusterSnapshotIdentifier="s", TargetDBClusterSnapshotIdentifier="none")
    rds.copy_db_cluster_snapshot(SourceDBClusterSnapshotIdentifier="s", TargetDBClusterSnapshotIdentifier="copied", CopyTags=True)
    rds.copy_db_cluster_snapshot(
        SourceDBClusterSnapshotIdentifier="s", TargetDBClusterSnapshotIdentifier="given", CopyTags=True, Tags=[{"Key": "k", "Value": "v"}]
    )
    assert cluster_snapshot(estate, None, SRC, "none")["TagList"] == []  # not the cluster's
    assert cluster_snapshot(estate, None, SRC, "copied")["TagList"] == [{"Key": "snap", "Value": "1"}]
    assert cluster_snapshot(estate, None, SRC, "given")["TagList"] == [{"Key": "k", "Value": "v"}]
    with pytest.raises(ClientError) as excinfo:
        rds.copy_db_cluster_snapshot(SourceDBClusterSnapshotIdentifier="s", TargetDBClusterSnapshotIdentifier="Given")
    assert error_of(excinfo)[0] == "DBClusterSnapshotAlreadyExistsFault"


# ------------------------------------------------------------------ A4: pacing and quota


def test_cluster_copy_pacing_copying_then_available(estate: Estate) -> None:
    import time

    moto_ext.AURORA_COPY_PACING.pending_seconds = 1.5
    create_cluster(estate, None, SRC, "orders", kms_key=estate.create_key(None, SRC, allow_accounts=[B]))
    arn = cluster_snapshot_of(estate, None, SRC, "orders", "s")["DBClusterSnapshotArn"]
    assert cluster_snapshot(estate, None, SRC, "s")["Status"] == "available"  # creation is not paced
    rds = estate.rds(None, SRC)
    answer = rds.copy_db_cluster_snapshot(SourceDBClusterSnapshotIdentifier=arn, TargetDBClusterSnapshotIdentifier="c")["DBClusterSnapshot"]
    assert answer["Status"] == "copying"
    for call in (
        lambda: share_cluster_snapshot(estate, None, SRC, "c", add=[B]),
        lambda: rds.copy_db_cluster_snapshot(SourceDBClusterSnapshotIdentifier="c", TargetDBClusterSnapshotIdentifier="c2"),
        lambda: rds.restore_db_cluster_from_snapshot(DBClusterIdentifier="r", SnapshotIdentifier="c", Engine="aurora-postgresql"),
    ):
        with pytest.raises(ClientError) as excinfo:
            call()
        assert error_of(excinfo)[0] == "InvalidDBClusterSnapshotStateFault"
    seen = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        snap = cluster_snapshot(estate, None, SRC, "c")
        seen.append((snap["Status"], snap["PercentProgress"]))
        if snap["Status"] == "available":
            break
        time.sleep(0.1)
    statuses = [s for s, _ in seen]
    assert statuses[-1] == "available" and seen[-1][1] == 100
    assert set(statuses) == {"copying", "available"} and statuses.index("available") == len(statuses) - 1
    progress = [p for s, p in seen if s == "copying"]
    assert progress == sorted(progress) and all(0 <= p < 100 for p in progress)
    share_cluster_snapshot(estate, None, SRC, "c", add=[B])
    assert cluster_shares(estate, None, SRC, "c") == [B]


def test_cluster_copies_beyond_the_quota_are_refused(estate: Estate) -> None:
    moto_ext.AURORA_COPY_PACING.pending_seconds = 60
    moto_ext.AURORA_COPY_PACING.limit = 2
    create_cluster(estate, None, SRC, "orders", kms_key=estate.create_key(None, SRC))
    dst_key = estate.create_key(None, DST)
    arn = cluster_snapshot_of(estate, None, SRC, "orders", "s")["DBClusterSnapshotArn"]
    rds_dst = estate.rds(None, DST)
    for name in ("c1", "c2"):
        rds_dst.copy_db_cluster_snapshot(SourceDBClusterSnapshotIdentifier=arn, TargetDBClusterSnapshotIdentifier=name, KmsKeyId=dst_key)
    with pytest.raises(ClientError) as excinfo:
        rds_dst.copy_db_cluster_snapshot(SourceDBClusterSnapshotIdentifier=arn, TargetDBClusterSnapshotIdentifier="c3", KmsKeyId=dst_key)
    assert error_of(excinfo) == ("SnapshotQuotaExceeded", moto_ext.DB_COPY_QUOTA_MESSAGE.format(limit=2))
    assert moto_ext.AURORA_COPY_PACING.refused == 1
    assert moto_ext.AURORA_COPY_PACING.most_in_flight == {(A, DST): 2}
    # Another destination Region has its own quota; DB snapshot copies are counted apart;
    # deleting a copy in progress cancels it.
    estate.rds(None, "us-west-2").copy_db_cluster_snapshot(
        SourceDBClusterSnapshotIdentifier=arn, TargetDBClusterSnapshotIdentifier="c3", KmsKeyId=estate.create_key(None, "us-west-2")
    )
    assert moto_ext.RDS_COPY_PACING.most_in_flight == {}
    assert rds_dst.delete_db_cluster_snapshot(DBClusterSnapshotIdentifier="c1")["DBClusterSnapshot"]["DBClusterSnapshotIdentifier"] == "c1"
    rds_dst.copy_db_cluster_snapshot(SourceDBClusterSnapshotIdentifier=arn, TargetDBClusterSnapshotIdentifier="c3", KmsKeyId=dst_key)
    found = rds_dst.describe_db_cluster_snapshots(SnapshotType="manual")["DBClusterSnapshots"]
    assert sorted((s["DBClusterSnapshotIdentifier"], s["Status"]) for s in found) == [("c2", "copying"), ("c3", "copying")]


# ------------------------------------------------------------------ A5 + A6: restore, delete


def test_restore_cluster_from_snapshot_arn_in_destination_region(estate: Estate) -> None:
    create_cluster(estate, None, SRC, "orders", kms_key=estate.create_key(None, SRC), DeletionProtection=True)
    snap = cluster_snapshot_of(estate, None, SRC, "orders", "s")
    dst_key = estate.create_key(None, DST)
    copy = estate.rds(None, DST).copy_db_cluster_snapshot(
        SourceDBClusterSnapshotIdentifier=snap["DBClusterSnapshotArn"], TargetDBClusterSnapshotIdentifier="replica-1", KmsKeyId=dst_key
    )["DBClusterSnapshot"]
    rds_dst = estate.rds(None, DST)
    restored = rds_dst.restore_db_cluster_from_snapshot(
        DBClusterIdentifier="restore-r-1",
        SnapshotIdentifier=copy["DBClusterSnapshotArn"],
        Engine="aurora-postgresql",
        Tags=[{"Key": "snaprelay:restore", "Value": "r-1"}],
    )["DBCluster"]
    described = rds_dst.describe_db_clusters(DBClusterIdentifier="restore-r-1")["DBClusters"][0]
    for cluster in (restored, described):
        assert cluster["AvailabilityZones"] and all(z.startswith(DST) for z in cluster["AvailabilityZones"])
        assert (cluster["StorageEncrypted"], cluster["KmsKeyId"]) == (True, dst_key)
        assert cluster["DeletionProtection"] is False
        assert cluster["DBClusterArn"] == f"arn:aws:rds:{DST}:{A}:cluster:restore-r-1"
        assert cluster["TagList"] == [{"Key": "snaprelay:restore", "Value": "r-1"}]
    with pytest.raises(ClientError) as excinfo:  # taken identifier
        rds_dst.restore_db_cluster_from_snapshot(DBClusterIdentifier="restore-r-1", SnapshotIdentifier="replica-1", Engine="aurora-postgresql")
    assert error_of(excinfo) == ("DBClusterAlreadyExistsFault", moto_ext.AURORA_CLUSTER_EXISTS)
    assert rds_dst.describe_db_clusters(DBClusterIdentifier="restore-r-1")["DBClusters"][0]["KmsKeyId"] == dst_key
    with pytest.raises(ClientError) as excinfo:  # another Region's snapshot: not found here
        rds_dst.restore_db_cluster_from_snapshot(
            DBClusterIdentifier="restore-r-2", SnapshotIdentifier=snap["DBClusterSnapshotArn"], Engine="aurora-postgresql"
        )
    assert error_of(excinfo)[0] == "DBClusterSnapshotNotFoundFault"


def test_restore_cluster_from_snapshot_shared_in_same_region(estate: Estate, shared_cluster_snapshot: dict) -> None:
    rds_b = estate.rds(B, SRC)
    restored = rds_b.restore_db_cluster_from_snapshot(
        DBClusterIdentifier="drill", SnapshotIdentifier=shared_cluster_snapshot["arn"], Engine="aurora-postgresql"
    )["DBCluster"]
    assert restored["DBClusterArn"] == f"arn:aws:rds:{SRC}:{B}:cluster:drill"
    assert restored["KmsKeyId"] == shared_cluster_snapshot["key"]  # the snapshot's key, which admits B
    b_key = estate.create_key(B, SRC)
    again = rds_b.restore_db_cluster_from_snapshot(
        DBClusterIdentifier="drill-2", SnapshotIdentifier=shared_cluster_snapshot["arn"], Engine="aurora-postgresql", KmsKeyId=b_key
    )["DBCluster"]
    assert again["KmsKeyId"] == b_key
    # Unshared: not found; shared but under a key not admitting B: KMSKeyNotAccessibleFault.
    share_cluster_snapshot(estate, None, SRC, "orders-snap", remove=[B])
    with pytest.raises(ClientError) as excinfo:
        rds_b.restore_db_cluster_from_snapshot(
            DBClusterIdentifier="drill-3", SnapshotIdentifier=shared_cluster_snapshot["arn"], Engine="aurora-postgresql"
        )
    assert error_of(excinfo)[0] == "DBClusterSnapshotNotFoundFault"
    create_cluster(estate, None, SRC, "private", kms_key=estate.create_key(None, SRC))
    private = cluster_snapshot_of(estate, None, SRC, "private", "private-snap")
    share_cluster_snapshot(estate, None, SRC, "private-snap", add=[B])
    with pytest.raises(ClientError) as excinfo:
        rds_b.restore_db_cluster_from_snapshot(
            DBClusterIdentifier="drill-3", SnapshotIdentifier=private["DBClusterSnapshotArn"], Engine="aurora-postgresql"
        )
    assert error_of(excinfo)[0] == "KMSKeyNotAccessibleFault"
    assert sorted(c["DBClusterIdentifier"] for c in rds_b.describe_db_clusters()["DBClusters"]) == ["drill", "drill-2"]


def test_delete_db_cluster_needs_a_final_snapshot_choice(estate: Estate) -> None:
    rds = estate.rds(None, SRC)
    create_cluster(estate, None, SRC, "orders")
    with pytest.raises(ClientError) as refused:
        rds.delete_db_cluster(DBClusterIdentifier="orders")
    assert error_of(refused) == moto_ext.DB_FINAL_SNAPSHOT_REQUIRED
    assert rds.describe_db_clusters(DBClusterIdentifier="orders")["DBClusters"]
    rds.delete_db_cluster(DBClusterIdentifier="orders", FinalDBSnapshotIdentifier="orders-final")
    assert cluster_snapshot_ids(estate, None, SRC) == ["orders-final"]
    create_cluster(estate, None, SRC, "other")
    rds.delete_db_cluster(DBClusterIdentifier="other", SkipFinalSnapshot=True)
    with pytest.raises(ClientError) as gone:
        rds.describe_db_clusters(DBClusterIdentifier="other")
    assert error_of(gone)[0] == "DBClusterNotFoundFault"


def test_a_cluster_instance_is_deleted_by_identifier_alone_and_takes_no_final_snapshot(
    estate: Estate,
) -> None:
    rds = estate.rds(None, SRC)
    create_cluster(estate, None, SRC, "orders")
    rds.create_db_instance(
        DBInstanceIdentifier="orders-writer",
        DBInstanceClass="db.r6g.large",
        Engine="aurora-postgresql",
        DBClusterIdentifier="orders",
    )
    with pytest.raises(ClientError) as refused:
        rds.delete_db_instance(DBInstanceIdentifier="orders-writer", FinalDBSnapshotIdentifier="final")
    assert error_of(refused) == moto_ext.DB_MEMBER_FINAL_SNAPSHOT
    with pytest.raises(ClientError) as busy:
        rds.delete_db_cluster(DBClusterIdentifier="orders", SkipFinalSnapshot=True)
    assert error_of(busy)[0] == "InvalidDBClusterStateFault"
    rds.delete_db_instance(DBInstanceIdentifier="orders-writer")
    rds.delete_db_cluster(DBClusterIdentifier="orders", SkipFinalSnapshot=True)
    assert rds.describe_db_clusters()["DBClusters"] == []
    assert estate.db_snapshots(None, SRC) == []
    # An instance of no cluster still needs the choice.
    db = estate.create_db_instance(None, SRC)
    with pytest.raises(ClientError) as plain:
        rds.delete_db_instance(DBInstanceIdentifier=db)
    assert error_of(plain) == moto_ext.DB_FINAL_SNAPSHOT_REQUIRED


def test_a_serverless_v2_instance_needs_the_clusters_scaling(estate: Estate) -> None:
    rds = estate.rds(None, SRC)
    create_cluster(estate, None, SRC, "plain")
    with pytest.raises(ClientError) as refused:
        rds.create_db_instance(
            DBInstanceIdentifier="plain-1",
            DBInstanceClass="db.serverless",
            Engine="aurora-postgresql",
            DBClusterIdentifier="plain",
        )
    assert error_of(refused) == moto_ext.AURORA_SERVERLESS_V2_NEEDS_SCALING
    create_cluster(
        estate, None, SRC, "v2", ServerlessV2ScalingConfiguration={"MinCapacity": 0.5, "MaxCapacity": 8}
    )
    rds.create_db_instance(
        DBInstanceIdentifier="v2-1",
        DBInstanceClass="db.serverless",
        Engine="aurora-postgresql",
        DBClusterIdentifier="v2",
    )
    # A provisioned class needs no scaling.
    rds.create_db_instance(
        DBInstanceIdentifier="plain-1",
        DBInstanceClass="db.r6g.large",
        Engine="aurora-postgresql",
        DBClusterIdentifier="plain",
    )


def test_reset_clears_cluster_log_and_pacing(estate: Estate) -> None:
    assert moto_ext.DB_CLUSTER_SHARE_LOG == []
    pacing = moto_ext.AURORA_COPY_PACING
    assert (pacing.pending_seconds, pacing.limit, pacing.refused, pacing.most_in_flight) == (0.0, None, 0, {})
    assert estate.rds(None, SRC).describe_db_clusters()["DBClusters"] == []
