"""End-to-end: `restore` and `drill` (SPEC 6.1-6.3) through the real SDK against the patched moto.

After a `run` has made replicas, `restore` rebuilds an instance (an image of the replica
snapshots with the recorded block devices, launched), volumes or an RDS DB instance in the
target account, tagged snaprelay:restore; `drill` does the same as a temporary, isolated
resource, checks it and deletes it all. Restore points show the configuration they carry
(`config`) and their last drill.

Source: the ambient account 123456789012, Region us-east-1; target account 222222222222,
Region eu-west-1 (cross-account and cross-Region).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import subprocess

from estate import AMBIENT_ACCOUNT, Estate, run_snaprelay, snaprelay_bin, snaprelay_env, tags_of, tags_of_db
from test_rds_replicas import policy_toml

A = AMBIENT_ACCOUNT
B = "222222222222"
SRC = "us-east-1"
DST = "eu-west-1"
TARGET_ROLE = f"arn:aws:iam::{B}:role/snaprelay-target"


# ------------------------------------------------------------------ helpers


def snaprelay(estate: Estate, policy: str, tmp_path: Path, *args: str) -> tuple[int, Any, str]:
    """Runs a command with --output json; (exit code, the JSON document, stderr)."""
    code, stdout, stderr = run_snaprelay(estate.endpoint, policy, tmp_path, *args, "--output", "json")
    try:
        return code, json.loads(stdout), stderr
    except json.JSONDecodeError as e:
        pytest.fail(f"stdout is not one JSON document ({e}); exit {code}\n{stdout}\n{stderr}")


def ec2_estate(estate: Estate, sizes: tuple[int, ...] = (8, 16)) -> tuple[str, str, str]:
    """An instance with volumes of `sizes` under a source key the target may use, and the
    target's key; (instance id, policy text, target key ARN)."""
    source_key = estate.create_key(None, SRC, allow_accounts=[B])
    target_key = estate.create_key(B, DST)
    instance, _ = estate.create_instance(
        None,
        SRC,
        [{"size": s, "encrypted": True, "kms_key": source_key} for s in sizes],
        tags={"Name": "web-1", "team": "dr"},
    )
    policy = policy_toml(
        "restore-ec2",
        [{"type": "ec2", "ids": [instance]}],
        [{"account": B, "region": DST, "role_arn": TARGET_ROLE, "kms_key": target_key}],
    )
    return instance, policy, target_key


def rds_estate(estate: Estate) -> tuple[str, str, str]:
    source_key = estate.create_key(None, SRC, allow_accounts=[B])
    target_key = estate.create_key(B, DST)
    db = estate.create_db_instance(None, SRC, kms_key=source_key)
    policy = policy_toml(
        "restore-rds",
        [{"type": "rds", "ids": [db]}],
        [{"account": B, "region": DST, "role_arn": TARGET_ROLE, "kms_key": target_key}],
    )
    return db, policy, target_key


def replicate(estate: Estate, policy: str, tmp_path: Path) -> dict[str, Any]:
    code, doc, stderr = snaprelay(estate, policy, tmp_path, "run")
    assert code == 0, stderr
    assert doc["status"] == "Success", doc
    return doc


def what_is_in(estate: Estate, account: str, region: str) -> dict[str, list[str]]:
    """Every instance (not terminated), image, volume, non-default security group and DB
    instance of the account in the Region: what a drill must leave as it found it."""
    ec2 = estate.ec2(account, region)
    instances = [
        i["InstanceId"]
        for r in ec2.describe_instances()["Reservations"]
        for i in r["Instances"]
        if i["State"]["Name"] != "terminated"
    ]
    return {
        "instances": sorted(instances),
        "images": sorted(i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"]),
        "volumes": sorted(v["VolumeId"] for v in ec2.describe_volumes()["Volumes"]),
        "groups": sorted(
            g["GroupId"] for g in ec2.describe_security_groups()["SecurityGroups"] if g["GroupName"] != "default"
        ),
        "dbs": sorted(
            d["DBInstanceIdentifier"] for d in estate.rds(account, region).describe_db_instances()["DBInstances"]
        ),
        "snapshots": sorted(s["SnapshotId"] for s in estate.snapshots(account, region)),
    }


# ------------------------------------------------------------------ restore points carry config


def test_restore_points_carry_the_configuration(estate: Estate, tmp_path: Path) -> None:
    instance, policy, _ = ec2_estate(estate)
    replicate(estate, policy, tmp_path)

    code, points, stderr = snaprelay(estate, policy, tmp_path, "restore-points")

    assert code == 0, stderr
    replica = [p for p in points if p["kind"] == "replica"][0]
    config = replica["config"]
    assert config["instance_type"] == "t3.micro"
    assert config["root_device_name"] == "/dev/xvda"
    assert config["tags"]["Name"] == "web-1"
    assert config["platform_details"] in ("Linux/UNIX", None)
    sizes = sorted(v["size_gib"] for v in config["volumes"])
    assert sizes == [8, 16]
    replica_ids = {s["id"] for s in replica["snapshots"]}
    assert {v["snapshot_id"] for v in config["volumes"]} == replica_ids, "each volume's snapshot in this place"
    assert replica["last_drill"] is None


# ------------------------------------------------------------------ restore


def test_restore_an_instance_with_two_volumes_from_a_cross_account_replica(
    estate: Estate, tmp_path: Path
) -> None:
    instance, policy, target_key = ec2_estate(estate)
    replicate(estate, policy, tmp_path)
    before_source = what_is_in(estate, A, SRC)

    code, doc, stderr = snaprelay(estate, policy, tmp_path, "restore", instance)

    assert code == 0, stderr
    assert doc["status"] == "Success", doc
    assert (doc["account"], doc["region"]) == (B, DST)
    assert doc["resource"] == {"type": "ec2", "id": instance}
    kinds = [c["type"] for c in doc["created"]]
    assert kinds.count("image") == 1 and kinds.count("instance") == 1 and kinds.count("volume") == 2
    image = [c for c in doc["created"] if c["type"] == "image"][0]
    assert image["state"] == "deregistered"
    made = [c for c in doc["created"] if c["type"] == "instance"][0]
    ec2 = estate.ec2(B, DST)
    found = ec2.describe_instances(InstanceIds=[made["id"]])["Reservations"][0]["Instances"][0]
    assert found["State"]["Name"] == "running"
    assert "PublicIpAddress" not in found or not found["PublicIpAddress"]
    assert tags_of(found)["snaprelay:restore"] == doc["restore_id"]
    assert tags_of(found)["Name"] == f"snaprelay-restore-{doc['restore_id']}"
    volumes = ec2.describe_volumes(Filters=[{"Name": "attachment.instance-id", "Values": [made["id"]]}])["Volumes"]
    assert sorted(v["Size"] for v in volumes) == [8, 16]
    assert all(v["KmsKeyId"] == target_key for v in volumes), volumes
    assert ec2.describe_images(Owners=["self"])["Images"] == [], "the image is deregistered"
    # The source is only read.
    assert what_is_in(estate, A, SRC) == before_source


def test_restore_volumes(estate: Estate, tmp_path: Path) -> None:
    instance, policy, target_key = ec2_estate(estate, sizes=(8, 24))
    replicate(estate, policy, tmp_path)

    code, doc, stderr = snaprelay(
        estate, policy, tmp_path, "restore", instance, "--as", "volumes", "--name", "dr-volumes",
        "--availability-zone", f"{DST}b",
    )

    assert code == 0, stderr
    made = [c["id"] for c in doc["created"]]
    assert [c["type"] for c in doc["created"]] == ["volume", "volume"]
    volumes = estate.volumes(B, DST, made)
    assert sorted(v["Size"] for v in volumes) == [8, 24]
    assert {v["AvailabilityZone"] for v in volumes} == {f"{DST}b"}
    assert all(v["State"] == "available" and v["KmsKeyId"] == target_key for v in volumes)
    assert all(tags_of(v)["Name"] == "dr-volumes" for v in volumes)


def test_restore_an_rds_instance_cross_account_and_cross_region(estate: Estate, tmp_path: Path) -> None:
    db, policy, target_key = rds_estate(estate)
    replicate(estate, policy, tmp_path)

    code, doc, stderr = snaprelay(estate, policy, tmp_path, "restore", db, "--name", "orders-restored")

    assert code == 0, stderr
    assert doc["status"] == "Success", doc
    assert doc["created"] == [{"type": "db-instance", "id": "orders-restored", "state": "available"}]
    restored = estate.db_instance(B, DST, "orders-restored")
    assert restored["Engine"] == "postgres"
    assert restored["PubliclyAccessible"] is False
    assert tags_of_db(restored)["snaprelay:restore"] == doc["restore_id"]
    assert estate.db_instance(A, SRC, db)["DBInstanceStatus"] == "available", "the source is untouched"


def test_an_rds_point_rebuilt_from_the_tags_restores(estate: Estate, tmp_path: Path) -> None:
    """SPEC 6.7: a rebuilt RDS point has no recorded configuration (`config` null): the
    restore leaves class and storage to RDS, which takes them from the snapshot."""
    db, policy, _ = rds_estate(estate)
    replicate(estate, policy, tmp_path)
    (tmp_path / "state.db").unlink()
    code, doc, stderr = snaprelay(estate, policy, tmp_path, "state", "rebuild", "--to", str(tmp_path / "state.db"))
    assert code == 0 and doc["rebuilt"]["restore_points"] == 2, (doc, stderr)
    code, points, _ = snaprelay(estate, policy, tmp_path, "restore-points", "--resource", db)
    replica = next(p for p in points if p["kind"] == "replica")
    assert replica["config"] is None, replica

    code, doc, stderr = snaprelay(estate, policy, tmp_path, "restore", db, "--name", "orders-rebuilt")

    assert code == 0, stderr
    assert doc["status"] == "Success", doc
    restored = estate.db_instance(B, DST, "orders-rebuilt")
    assert restored["Engine"] == "postgres" and restored["PubliclyAccessible"] is False, restored


def test_a_taken_name_is_invalid_input_and_nothing_is_created(estate: Estate, tmp_path: Path) -> None:
    instance, policy, _ = ec2_estate(estate)
    replicate(estate, policy, tmp_path)
    estate.create_instance(B, DST, tags={"Name": "already-here"})
    before = what_is_in(estate, B, DST)

    code, doc, stderr = snaprelay(estate, policy, tmp_path, "restore", instance, "--name", "already-here")

    assert code == 2, stderr
    assert doc["code"] == "invalid_input"
    assert "already-here" in doc["error"] and "taken" in doc["error"]
    assert what_is_in(estate, B, DST) == before


def test_no_default_vpc_and_no_restore_defaults_is_invalid_input(estate: Estate, tmp_path: Path) -> None:
    instance, policy, _ = ec2_estate(estate)
    replicate(estate, policy, tmp_path)
    ec2 = estate.ec2(B, DST)
    for vpc in ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"]:
        for subnet in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])["Subnets"]:
            ec2.delete_subnet(SubnetId=subnet["SubnetId"])
        ec2.delete_vpc(VpcId=vpc["VpcId"])
    before = what_is_in(estate, B, DST)

    code, doc, stderr = snaprelay(estate, policy, tmp_path, "restore", instance)

    assert code == 2, stderr
    assert "no default VPC" in doc["error"] and "targets[0].restore.subnet" in doc["error"], doc
    assert what_is_in(estate, B, DST) == before


def test_db_security_groups_of_another_vpc_than_the_subnet_group_are_invalid_input(
    estate: Estate, tmp_path: Path
) -> None:
    """RDS refuses VPC security groups outside the DB subnet group's VPC: the restore says so
    before it makes anything."""
    db, policy, target_key = rds_estate(estate)
    ec2 = estate.ec2(B, DST)
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.9.{i}.0/24", AvailabilityZone=f"{DST}{z}")["Subnet"]["SubnetId"]
        for i, z in enumerate("ab")
    ]
    estate.rds(B, DST).create_db_subnet_group(
        DBSubnetGroupName="dr-subnets", DBSubnetGroupDescription="dr", SubnetIds=subnets
    )
    line = f'kms_key = "{target_key}"'
    assert line in policy, policy
    policy = policy.replace(line, line + '\nrestore = { db_subnet_group = "dr-subnets" }')
    replicate(estate, policy, tmp_path)
    [default_vpc] = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"]
    [elsewhere] = ec2.describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [default_vpc["VpcId"]]}, {"Name": "group-name", "Values": ["default"]}]
    )["SecurityGroups"]
    before = what_is_in(estate, B, DST)

    code, doc, stderr = snaprelay(
        estate, policy, tmp_path, "restore", db, "--security-groups", elsewhere["GroupId"]
    )

    assert code == 2, (doc, stderr)
    assert f"--security-groups: {elsewhere['GroupId']}" in doc["error"] and vpc in doc["error"], doc
    assert what_is_in(estate, B, DST) == before


def test_bad_flags_are_named(estate: Estate, tmp_path: Path) -> None:
    instance, policy, _ = ec2_estate(estate)
    replicate(estate, policy, tmp_path)
    for args, named in [
        (["--as", "db"], "--as db"),
        (["--point", "x"], "--point"),
        (["--place", "nowhere"], "--place"),
        (["--subnet", "vpc-1"], "--subnet"),
        (["--name", "a--b"], "--name"),
        (["--place", f"{B}/us-west-2"], "not a place of the policy"),
        (["--as", "volumes", "--keep-image", "--subnet", "subnet-12345678"], "--subnet, --keep-image apply only to --as instance"),
        # A zone of the Region's name that the Region does not have (DescribeAvailabilityZones).
        (["--as", "volumes", "--availability-zone", f"{DST}z"], f"--availability-zone {DST}z: not a zone of {DST} (it has {DST}a"),
    ]:
        code, doc, stderr = snaprelay(estate, policy, tmp_path, "restore", instance, *args)
        assert code == 2, (args, stderr)
        assert named in doc["error"], (args, doc)


# ------------------------------------------------------------------ drill


def test_a_drill_passes_and_leaves_the_target_as_it_found_it(estate: Estate, tmp_path: Path) -> None:
    instance, policy, _ = ec2_estate(estate)
    replicate(estate, policy, tmp_path)
    before = what_is_in(estate, B, DST)

    code, doc, stderr = snaprelay(estate, policy, tmp_path, "drill")

    assert code == 0, stderr
    assert doc["status"] == "Passed", json.dumps(doc, indent=1)
    (result,) = doc["results"]
    assert result["resource"] == {"type": "ec2", "id": instance}
    assert result["cleaned_up"] is True
    assert {c["name"] for c in result["checks"]} >= {"instance_running", "volume_count", "volume_size", "volume_key"}
    assert all(c["ok"] for c in result["checks"]), result["checks"]
    assert result["rto_seconds"] is not None
    assert what_is_in(estate, B, DST) == before

    code, points, _ = snaprelay(estate, policy, tmp_path, "restore-points")
    replica = [p for p in points if p["kind"] == "replica"][0]
    assert replica["last_drill"]["drill_id"] == doc["drill_id"]
    assert replica["last_drill"]["status"] == "Passed"
    code, listed, _ = snaprelay(estate, policy, tmp_path, "drills", "list")
    assert [d["drill_id"] for d in listed] == [doc["drill_id"]]
    assert set(listed[0]) == {"drill_id", "policy", "status", "started_at", "ended_at"}
    code, shown, _ = snaprelay(estate, policy, tmp_path, "drills", "show", doc["drill_id"])
    assert shown["results"][0]["checks"] == result["checks"]


def test_an_rds_drill_passes(estate: Estate, tmp_path: Path) -> None:
    db, policy, _ = rds_estate(estate)
    replicate(estate, policy, tmp_path)
    before = what_is_in(estate, B, DST)

    code, doc, stderr = snaprelay(estate, policy, tmp_path, "drill")

    assert code == 0, stderr
    (result,) = doc["results"]
    assert {c["name"] for c in result["checks"]} == {"db_available", "engine_version"}
    assert result["status"] == "Passed", result
    assert what_is_in(estate, B, DST) == before


def test_a_drill_killed_after_each_side_effect_leaves_nothing_after_gc(estate: Estate, tmp_path: Path) -> None:
    instance, policy, _ = ec2_estate(estate)
    replicate(estate, policy, tmp_path)
    before = what_is_in(estate, B, DST)
    source_before = what_is_in(estate, A, SRC)
    binary_env = snaprelay_env(estate.endpoint)
    # A drill of one instance changes AWS 7 times: the security group, its egress, the image,
    # the instance, the image's deregistration, then the cleanup (the instance terminated,
    # the group deleted; its volumes go with the instance).
    for n in range(1, 8):
        policy_file = tmp_path / "policy.toml"
        proc = subprocess.run(
            [str(snaprelay_bin()), "--policy", str(policy_file), "--state", str(tmp_path / "state.db"), "drill"],
            env={**binary_env, "SNAPRELAY_ABORT_AFTER_SIDE_EFFECT": str(n)},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode not in (0, 1, 2), f"the drill was not killed after side effect {n}: {proc.stderr}"
        code, gc_doc, stderr = snaprelay(estate, policy, tmp_path, "gc", "--yes")
        assert code == 0, (n, stderr, gc_doc)
        assert what_is_in(estate, B, DST) == before, f"left after a kill at side effect {n}: {gc_doc}"
    assert what_is_in(estate, A, SRC) == source_before, "no replica or source touched"
    # And a drill that is let finish passes after all that.
    code, doc, stderr = snaprelay(estate, policy, tmp_path, "drill")
    assert code == 0 and doc["status"] == "Passed", (stderr, doc)


def test_a_restore_into_the_source_as_volumes_without_waiting(estate: Estate, tmp_path: Path) -> None:
    instance, policy, _ = ec2_estate(estate)
    replicate(estate, policy, tmp_path)

    code, doc, stderr = snaprelay(
        estate, policy, tmp_path, "restore", instance, "--place", "source", "--as", "volumes", "--no-wait"
    )

    assert code == 0, stderr
    assert (doc["account"], doc["region"]) == (A, SRC)
    volumes = estate.volumes(None, SRC, [c["id"] for c in doc["created"]])
    assert sorted(v["Size"] for v in volumes) == [8, 16]
    assert all(tags_of(v)["snaprelay:restore"] == doc["restore_id"] for v in volumes)


def test_a_killed_restore_is_listed_by_gc_and_a_finished_one_is_not(estate: Estate, tmp_path: Path) -> None:
    instance, policy, _ = ec2_estate(estate)
    replicate(estate, policy, tmp_path)
    code, done, stderr = snaprelay(estate, policy, tmp_path, "restore", instance, "--name", "kept-restore")
    assert code == 0, stderr
    proc = subprocess.run(
        [str(snaprelay_bin()), "--policy", str(tmp_path / "policy.toml"), "--state", str(tmp_path / "state.db"),
         "restore", instance, "--name", "killed-restore"],
        env={**snaprelay_env(estate.endpoint), "SNAPRELAY_ABORT_AFTER_SIDE_EFFECT": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode not in (0, 1, 2), proc.stderr

    code, gc_doc, stderr = snaprelay(estate, policy, tmp_path, "gc")

    assert code == 0, stderr
    listed = gc_doc["restores_and_drills"]
    assert [(r["type"], r["tag"]) for r in listed] == [("image", "snaprelay:restore")], listed
    assert listed[0]["made_by"] != done["restore_id"], "what a finished restore made is the user's"
    assert listed[0]["action"] == "keep" and "may still run" in listed[0]["why"]


def test_a_lost_state_is_rebuilt_from_the_tags_and_restore_goes_on(estate: Estate, tmp_path: Path) -> None:
    """SPEC 6.7: run twice, lose the state, `state rebuild`: the restore points listed equal
    the ones before (snapshots, kinds, places), and a restore works from the rebuilt state."""
    instance, policy, _ = ec2_estate(estate)
    replicate(estate, policy, tmp_path)
    replicate(estate, policy, tmp_path)
    code, before, _ = snaprelay(estate, policy, tmp_path, "restore-points")
    (tmp_path / "state.db").unlink()

    rebuilt_at = tmp_path / "rebuilt.db"
    code, doc, stderr = snaprelay(estate, policy, tmp_path, "state", "rebuild", "--to", str(rebuilt_at))

    assert code == 0, stderr
    assert doc["rebuilt"]["restore_points"] == len(before) == 4, doc
    (tmp_path / "rebuilt.db").rename(tmp_path / "state.db")
    code, after, _ = snaprelay(estate, policy, tmp_path, "restore-points")

    def shape(points: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        return sorted(
            (p["resource_id"], p["kind"], p["account"], p["region"], p["session_id"],
             tuple(sorted(s["id"] for s in p["snapshots"])))
            for p in points
        )

    assert shape(after) == shape(before)
    replica = [p for p in after if p["kind"] == "replica"][0]
    assert {v["device_name"] for v in replica["config"]["volumes"]} == {"/dev/xvda", "/dev/sdf"}
    # What the replicas' tags carry of the configuration comes back as it was recorded.
    original = next(p for p in before if p["kind"] == "replica" and p["session_id"] == replica["session_id"])

    def volumes(point: dict[str, Any]) -> list[tuple[Any, ...]]:
        return sorted((v["device_name"], v["volume_type"], v["size_gib"], v["snapshot_id"]) for v in point["config"]["volumes"])

    assert volumes(replica) == volumes(original)
    carried = ["instance_type", "architecture", "virtualization_type", "ena_support", "root_device_name", "platform_details"]
    assert {k: replica["config"][k] for k in carried} == {k: original["config"][k] for k in carried}
    assert replica["config"]["instance_type"] and replica["config"]["platform_details"] == "Linux/UNIX", replica
    # A source snapshot carries its volume's size (DescribeSnapshots VolumeSize), no tags.
    source = next(p for p in after if p["kind"] == "source")
    source_before = next(p for p in before if p["kind"] == "source" and p["session_id"] == source["session_id"])
    assert sorted(v["size_gib"] for v in source["config"]["volumes"]) == sorted(
        v["size_gib"] for v in source_before["config"]["volumes"]
    ), (source, source_before)
    assert all(s["size_gib"] for s in source["snapshots"]), source
    # Into a state that holds anything: refused, nothing written.
    code, doc, _ = snaprelay(estate, policy, tmp_path, "state", "rebuild", "--to", str(tmp_path / "state.db"))
    assert code == 2 and doc["code"] == "invalid_input", doc
    # The rebuilt state serves: a volumes restore, and an instance restore from what the tags
    # carried.
    code, restored, stderr = snaprelay(estate, policy, tmp_path, "restore", instance, "--as", "volumes")
    assert code == 0, stderr
    assert len(restored["created"]) == 2
    code, restored, stderr = snaprelay(estate, policy, tmp_path, "restore", instance, "--name", "rebuilt-restore")
    assert code == 0, (restored, stderr)
    assert [c["type"] for c in restored["created"]].count("instance") == 1, restored
