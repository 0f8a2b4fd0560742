"""End-to-end: the snaprelay binary replicating Aurora DB clusters, against the patched moto.

SPEC 2 "Beyond the seed" and 6.4: `type = "aurora"` selects DB clusters (ids or tags) and the
three workflows run with DB cluster snapshots: CreateDBClusterSnapshot; in the same account a
CopyDBClusterSnapshot by ARN into the target Region under the target key; across accounts a
share (ModifyDBClusterSnapshotAttribute `restore`), a copy in the target account within the
source Region under the staging key, a copy of that copy to the target Region, the
intermediate deleted and the share removed. AWS copies a shared cluster snapshot only within
its Region (Aurora User Guide, USER_CopySnapshot.html), and moto_ext/aurora.py refuses a
one-step copy, so a Success proves the two steps. A cluster under `aws/rds` cannot be shared:
without a re-encrypt key the task fails and no share is ever asked for
(moto_ext.DB_CLUSTER_SHARE_LOG); with one, a copy under that key is shared instead.

Source: the ambient account 123456789012, Region us-east-1. Target account 222222222222.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

import moto_ext
from estate import AMBIENT_ACCOUNT, Estate, run_snaprelay, snaprelay_bin, snaprelay_env, tags_of_db
from test_ec2_replicas import messages, replica_snapshots, resource, run_json, toml_str
from test_restore import snaprelay

A = AMBIENT_ACCOUNT
B = "222222222222"
SRC = "us-east-1"
DST = "eu-west-1"
TARGET_ROLE = f"arn:aws:iam::{B}:role/snaprelay-target"


@pytest.fixture
def cluster_share_log() -> list[dict]:
    """Every ModifyDBClusterSnapshotAttribute request during the test."""
    return moto_ext.DB_CLUSTER_SHARE_LOG


def aurora_policy(
    name: str,
    cluster: str,
    target: dict[str, str],
    reencrypt_key: str | None = None,
) -> str:
    lines = [f"name = {toml_str(name)}", "", "[source]", f'regions = ["{SRC}"]']
    if reencrypt_key:
        lines.append(f"reencrypt_keys = {{ {toml_str(SRC)} = {toml_str(reencrypt_key)} }}")
    lines += ["", "[[source.resources]]", 'type = "aurora"', f"ids = [{toml_str(cluster)}]", ""]
    lines.append("[[targets]]")
    lines += [f"{k} = {toml_str(v)}" for k, v in target.items()]
    return "\n".join(lines) + "\n"


def cluster_snapshot_arn(account: str, region: str, identifier: str) -> str:
    return f"arn:aws:rds:{region}:{account}:cluster-snapshot:{identifier}"


def the_one(snapshots: list[dict[str, Any]]) -> dict[str, Any]:
    assert len(snapshots) == 1, snapshots
    return snapshots[0]


def kind_of(snapshot: dict[str, Any]) -> str | None:
    return tags_of_db(snapshot).get("snaprelay:kind")


def test_same_account_cross_region_replicates_the_cluster_under_the_target_key(
    estate: Estate, tmp_path: Path, cluster_share_log: list[dict]
) -> None:
    source_key = estate.create_key(None, SRC)
    target_key = estate.create_key(None, DST)
    cluster = estate.create_db_cluster(None, SRC, "orders", kms_key=source_key)
    policy = aurora_policy("e2e-aurora-same", cluster, {"region": DST, "kms_key": target_key})

    code, doc, stderr = run_json(estate, policy, tmp_path)

    assert code == 0, (doc, stderr)
    res = resource(doc, cluster)
    assert (res["type"], res["status"]) == ("aurora", "Success"), res
    [entry] = replica_snapshots(res, A, DST)
    replica = the_one(estate.db_cluster_snapshots(None, DST))
    assert entry["id"] == replica["DBClusterSnapshotArn"]
    assert entry["kms_key_id"] == target_key == replica["KmsKeyId"]
    assert (replica["Status"], replica["StorageEncrypted"]) == ("available", True)
    assert kind_of(replica) == "replica"
    source = the_one(estate.db_cluster_snapshots(None, SRC))
    assert entry["source_id"] == source["DBClusterSnapshotArn"]
    assert source["DBClusterIdentifier"] == cluster
    assert kind_of(source) == "source"
    assert len(source["DBClusterSnapshotIdentifier"]) <= 63
    assert cluster_share_log == [], "nothing is shared within one account"

    # Each restore point carries the cluster's configuration (SPEC 6.1, Aurora shape).
    code, points, stderr = run_json(estate, policy, tmp_path, "restore-points")
    assert code == 0 and len(points) == 2, (points, stderr)
    for point in points:
        config = point["config"]
        assert (config["engine"], config["members"]) == (
            "aurora-postgresql",
            [{"db_instance_class": "db.r6g.large", "writer": True}],
        ), config
        for key in ["engine_version", "engine_mode", "port", "db_subnet_group",
                    "db_cluster_parameter_group", "vpc_security_group_ids", "storage_type",
                    "serverless_v2_scaling", "tags"]:
            assert key in config, (key, config)


def test_cross_account_cross_region_copies_in_two_steps_and_leaves_no_intermediate_or_share(
    estate: Estate, tmp_path: Path, cluster_share_log: list[dict]
) -> None:
    source_key = estate.create_key(None, SRC, allow_accounts=[B])
    target_key = estate.create_key(B, DST)
    staging_key = estate.create_key(B, SRC)
    cluster = estate.create_db_cluster(None, SRC, "orders", kms_key=source_key)
    target = {
        "account": B,
        "region": DST,
        "role_arn": TARGET_ROLE,
        "kms_key": target_key,
        "staging_kms_key": staging_key,
    }
    policy = aurora_policy("e2e-aurora-xacct", cluster, target)

    code, plan, stderr = run_json(estate, policy, tmp_path, "plan")
    assert code == 0, (plan, stderr)
    notes = "\n".join(str(n) for t in plan["tasks"] for p in t["targets"] for n in p.get("notes", []))
    assert re.search(r"two steps", notes), plan

    code, doc, stderr = run_json(estate, policy, tmp_path)

    assert code == 0, (doc, stderr)
    res = resource(doc, cluster)
    assert (res["type"], res["status"]) == ("aurora", "Success"), res
    [entry] = replica_snapshots(res, B, DST)
    replica = the_one(estate.db_cluster_snapshots(B, DST))
    assert entry["id"] == replica["DBClusterSnapshotArn"]
    assert replica["KmsKeyId"] == target_key
    assert kind_of(replica) == "replica"
    # The intermediate copy in the source Region is gone; the source is shared with nobody.
    assert estate.db_cluster_snapshots(B, SRC) == []
    source = the_one(estate.db_cluster_snapshots(None, SRC))
    assert entry["source_id"] == source["DBClusterSnapshotArn"]
    assert estate.db_cluster_snapshot_shares(None, SRC, source["DBClusterSnapshotIdentifier"]) == []
    added = [e for e in cluster_share_log if e["accepted"] and e["values_to_add"]]
    removed = [e for e in cluster_share_log if e["accepted"] and e["values_to_remove"]]
    assert [e["values_to_add"] for e in added] == [[B]], cluster_share_log
    assert [e["values_to_remove"] for e in removed] == [[B]], cluster_share_log


def test_cluster_under_aws_rds_fails_across_accounts_and_is_never_shared(
    estate: Estate, tmp_path: Path, cluster_share_log: list[dict]
) -> None:
    target_key = estate.create_key(B, DST)
    staging_key = estate.create_key(B, SRC)
    cluster = estate.create_db_cluster(None, SRC, "orders")  # aws/rds
    target = {
        "account": B,
        "region": DST,
        "role_arn": TARGET_ROLE,
        "kms_key": target_key,
        "staging_kms_key": staging_key,
    }
    policy = aurora_policy("e2e-aurora-default-key", cluster, target)

    code, doc, stderr = run_json(estate, policy, tmp_path)

    assert code == 1, (doc, stderr)
    res = resource(doc, cluster)
    assert (res["type"], res["status"]) == ("aurora", "Failed"), res
    text = messages(res)
    assert "aws/rds" in text and "reencrypt_keys" in text, text
    assert cluster_share_log == [], "no share was ever asked for"
    assert estate.db_cluster_snapshots(B, DST) == [] and estate.db_cluster_snapshots(B, SRC) == []


def test_cluster_under_aws_rds_reaches_another_account_through_a_copy_under_the_reencrypt_key(
    estate: Estate, tmp_path: Path, cluster_share_log: list[dict]
) -> None:
    reencrypt_key = estate.create_key(None, SRC, allow_accounts=[B])
    target_key = estate.create_key(B, DST)
    staging_key = estate.create_key(B, SRC)
    cluster = estate.create_db_cluster(None, SRC, "orders")  # aws/rds
    target = {
        "account": B,
        "region": DST,
        "role_arn": TARGET_ROLE,
        "kms_key": target_key,
        "staging_kms_key": staging_key,
    }
    policy = aurora_policy("e2e-aurora-reencrypt", cluster, target, reencrypt_key=reencrypt_key)

    code, doc, stderr = run_json(estate, policy, tmp_path)

    assert code == 0, (doc, stderr)
    res = resource(doc, cluster)
    assert (res["type"], res["status"]) == ("aurora", "Success"), res
    replica = the_one(estate.db_cluster_snapshots(B, DST))
    assert replica["KmsKeyId"] == target_key
    assert estate.db_cluster_snapshots(B, SRC) == []
    # Only the original is left in the source place, under aws/rds, never shared; the extra
    # copy under the re-encrypt key was shared, then unshared and deleted.
    source = the_one(estate.db_cluster_snapshots(None, SRC))
    assert kind_of(source) == "source"
    assert source["KmsKeyId"] == estate.default_rds_key(None, SRC)
    shared = {e["snapshot_id"] for e in cluster_share_log if e["values_to_add"]}
    assert shared and source["DBClusterSnapshotIdentifier"] not in shared, cluster_share_log
    assert all(s.endswith("-reencrypt") for s in shared), shared
    assert all(e["accepted"] for e in cluster_share_log), cluster_share_log


def test_retention_deletes_older_cluster_snapshots_with_delete_db_cluster_snapshot(
    estate: Estate, tmp_path: Path
) -> None:
    source_key = estate.create_key(None, SRC)
    target_key = estate.create_key(None, DST)
    cluster = estate.create_db_cluster(None, SRC, "orders", kms_key=source_key)
    policy = aurora_policy("e2e-aurora-retention", cluster, {"region": DST, "kms_key": target_key})
    policy += "\n[retention]\nreplicas = { count = 1 }\nsource = { count = 1 }\n"

    first_code, first, stderr = run_json(estate, policy, tmp_path)
    assert first_code == 0, (first, stderr)
    second_code, second, stderr = run_json(estate, policy, tmp_path)
    assert second_code == 0, (second, stderr)

    # Only the second session's snapshots are left, in both places.
    for account, region in [(None, SRC), (None, DST)]:
        left = estate.db_cluster_snapshots(account, region)
        sessions = {tags_of_db(s).get("snaprelay:session") for s in left}
        assert sessions == {second["session_id"]}, (region, left)


def test_a_lost_state_is_rebuilt_with_the_cluster_restore_points_and_the_cluster_restores(
    estate: Estate, tmp_path: Path
) -> None:
    source_key = estate.create_key(None, SRC)
    target_key = estate.create_key(None, DST)
    cluster = estate.create_db_cluster(None, SRC, "orders", kms_key=source_key)
    policy = aurora_policy("e2e-aurora-rebuild", cluster, {"region": DST, "kms_key": target_key})
    code, doc, stderr = run_json(estate, policy, tmp_path)
    assert code == 0, (doc, stderr)
    code, before, stderr = run_json(estate, policy, tmp_path, "restore-points")
    assert code == 0 and len(before) == 2, (before, stderr)
    (tmp_path / "state.db").unlink()

    code, stdout, stderr = run_snaprelay(
        estate.endpoint, policy, tmp_path, "state", "rebuild", "--to", str(tmp_path / "state.db"),
        "--output", "json",
    )
    assert code == 0, (stdout, stderr)
    code, after, stderr = run_json(estate, policy, tmp_path, "restore-points")

    def shape(points: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        return sorted(
            (p["resource_id"], p["kind"], p["account"], p["region"],
             tuple(sorted(s["id"] for s in p["snapshots"])))
            for p in points
        )

    assert shape(after) == shape(before), (before, after)

    # The snapshots' tags keep what a cluster restore needs: the engine and version, the
    # writer's class.
    for point in after:
        config = point["config"]
        assert (config["engine"], config["members"]) == (
            "aurora-postgresql",
            [{"db_instance_class": "db.r6g.large", "writer": True}],
        ), point
    code, doc, stderr = snaprelay(estate, policy, tmp_path, "restore", cluster, "--name", "orders-back")
    assert code == 0 and doc["status"] == "Success", (doc, stderr)
    writer = estate.rds(None, DST).describe_db_instances(DBInstanceIdentifier="orders-back")
    assert writer["DBInstances"][0]["DBInstanceClass"] == "db.r6g.large"


# CreateDBClusterSnapshot, the copy under the re-encrypt key, share, the intermediate copy,
# unshare, the copy to the target Region, delete the intermediate, delete the re-encrypt copy.
AURORA_WORKAROUND_SIDE_EFFECTS = 8


@pytest.mark.parametrize("n", range(1, AURORA_WORKAROUND_SIDE_EFFECTS + 1))
def test_a_cluster_workaround_run_killed_after_any_change_is_resumed_to_the_same_end(
    estate: Estate, tmp_path: Path, cluster_share_log: list[dict], n: int
) -> None:
    from test_crash import aborted_run

    reencrypt_key = estate.create_key(None, SRC, allow_accounts=[B])
    target_key = estate.create_key(B, DST)
    staging_key = estate.create_key(B, SRC)
    cluster = estate.create_db_cluster(None, SRC, "orders")  # aws/rds
    target = {
        "account": B,
        "region": DST,
        "role_arn": TARGET_ROLE,
        "kms_key": target_key,
        "staging_kms_key": staging_key,
    }
    policy = aurora_policy("e2e-aurora-crash", cluster, target, reencrypt_key=reencrypt_key)
    session = aborted_run(estate, policy, tmp_path, n)

    code, doc, stderr = run_json(estate, policy, tmp_path)

    assert code == 0, (doc, stderr)
    assert (doc["session_id"], doc["status"]) == (session, "Success"), doc
    code, points, _ = run_json(estate, policy, tmp_path, "restore-points")
    recorded = {s["id"] for p in points for s in p["snapshots"]}
    in_aws = {
        s["DBClusterSnapshotArn"]
        for account, region in [(None, SRC), (B, SRC), (None, DST), (B, DST)]
        for s in estate.db_cluster_snapshots(account, region)
    }
    assert in_aws == recorded, "no duplicate, no intermediate, no re-encrypt copy left"
    assert len(recorded) == 2, points
    [source] = estate.db_cluster_snapshots(None, SRC)
    assert estate.db_cluster_snapshot_shares(None, SRC, source["DBClusterSnapshotIdentifier"]) == []
    shared = {e["snapshot_id"] for e in cluster_share_log if e["values_to_add"]}
    assert all(s.endswith("-reencrypt") for s in shared), "the original is never shared"
    code, gc, _ = run_json(estate, policy, tmp_path, "gc")
    assert code == 0 and gc["found"] == [], gc


# ------------------------------------------------------------------ restore and drill


def replicated_cross_account(estate: Estate, tmp_path: Path, name: str) -> tuple[str, str]:
    """A cluster with its writer (db.r6g.large), replicated to account B in DST; (cluster
    identifier, policy text)."""
    source_key = estate.create_key(None, SRC, allow_accounts=[B])
    target_key = estate.create_key(B, DST)
    staging_key = estate.create_key(B, SRC)
    cluster = estate.create_db_cluster(None, SRC, "orders", kms_key=source_key)
    target = {
        "account": B,
        "region": DST,
        "role_arn": TARGET_ROLE,
        "kms_key": target_key,
        "staging_kms_key": staging_key,
    }
    policy = aurora_policy(name, cluster, target)
    code, doc, stderr = run_json(estate, policy, tmp_path)
    assert code == 0 and doc["status"] == "Success", (doc, stderr)
    return cluster, policy


def clusters_and_dbs(estate: Estate, account: str, region: str) -> tuple[list[str], list[str]]:
    rds = estate.rds(account, region)
    return (
        sorted(c["DBClusterIdentifier"] for c in rds.describe_db_clusters()["DBClusters"]),
        sorted(d["DBInstanceIdentifier"] for d in rds.describe_db_instances()["DBInstances"]),
    )


def test_restore_a_cluster_from_a_cross_account_replica_adds_a_writer_of_the_recorded_class(
    estate: Estate, tmp_path: Path
) -> None:
    cluster, policy = replicated_cross_account(estate, tmp_path, "e2e-aurora-restore")
    replica = the_one(estate.db_cluster_snapshots(B, DST))

    code, doc, stderr = snaprelay(estate, policy, tmp_path, "restore", cluster, "--name", "orders-dr")

    assert code == 0, (doc, stderr)
    assert doc["status"] == "Success", doc
    assert doc["resource"] == {"type": "aurora", "id": cluster}
    assert (doc["account"], doc["region"]) == (B, DST)
    assert doc["created"] == [
        {"type": "db-cluster", "id": "orders-dr", "state": "available"},
        {"type": "db-instance", "id": "orders-dr", "state": "available"},
    ], doc
    rds = estate.rds(B, DST)
    [restored] = rds.describe_db_clusters(DBClusterIdentifier="orders-dr")["DBClusters"]
    assert restored["Engine"] == "aurora-postgresql"
    assert restored["KmsKeyId"] == replica["KmsKeyId"], "the replica's key, not the source's"
    assert [m["DBInstanceIdentifier"] for m in restored["DBClusterMembers"]] == ["orders-dr"]
    assert tags_of_db(restored)["snaprelay:restore"] == doc["restore_id"]
    writer = rds.describe_db_instances(DBInstanceIdentifier="orders-dr")["DBInstances"][0]
    assert (writer["DBInstanceClass"], writer["PubliclyAccessible"]) == ("db.r6g.large", False)
    assert tags_of_db(writer)["snaprelay:restore"] == doc["restore_id"]
    # The source cluster and the replica are untouched.
    assert estate.rds(None, SRC).describe_db_clusters(DBClusterIdentifier=cluster)["DBClusters"]
    assert the_one(estate.db_cluster_snapshots(B, DST))["DBClusterSnapshotIdentifier"] == replica[
        "DBClusterSnapshotIdentifier"
    ]

    # The name is taken now: exit 2, nothing more made.
    code, stdout, stderr = run_snaprelay(
        estate.endpoint, policy, tmp_path, "restore", cluster, "--name", "orders-dr", "--output", "json"
    )
    assert code == 2, (stdout, stderr)
    assert "DB cluster orders-dr exists" in stdout, stdout
    assert clusters_and_dbs(estate, B, DST) == (["orders-dr"], ["orders-dr"])

    # A finished restore is no leftover: gc leaves it alone.
    code, gc_doc, stderr = snaprelay(estate, policy, tmp_path, "gc", "--yes")
    assert code == 0, (gc_doc, stderr)
    assert clusters_and_dbs(estate, B, DST) == (["orders-dr"], ["orders-dr"])


def test_a_cluster_drill_passes_and_deletes_the_writer_then_the_cluster(
    estate: Estate, tmp_path: Path
) -> None:
    cluster, policy = replicated_cross_account(estate, tmp_path, "e2e-aurora-drill")
    before = clusters_and_dbs(estate, B, DST)
    groups_before = sorted(
        g["GroupId"] for g in estate.ec2(B, DST).describe_security_groups()["SecurityGroups"]
    )

    code, doc, stderr = snaprelay(estate, policy, tmp_path, "drill", "--small")

    assert code == 0, (doc, stderr)
    (result,) = doc["results"]
    assert result["resource"] == {"type": "aurora", "id": cluster}
    assert [(c["name"], c["ok"]) for c in result["checks"]] == [
        ("db_available", True),
        ("engine_version", True),
    ], result
    assert (result["status"], result["cleaned_up"]) == ("Passed", True), result
    assert result["rto_seconds"] is not None
    assert [c["type"] for c in result["created"]] == ["security-group", "db-cluster", "db-instance"]
    # Both DB identifiers are the drill's (SPEC 6.3).
    for made in result["created"][1:]:
        assert re.fullmatch(r"snaprelay-drill-d-[0-9a-z-]+-1", made["id"]) and "--" not in made["id"], made
    assert clusters_and_dbs(estate, B, DST) == before == ([], [])
    assert sorted(
        g["GroupId"] for g in estate.ec2(B, DST).describe_security_groups()["SecurityGroups"]
    ) == groups_before
    code, points, stderr = snaprelay(estate, policy, tmp_path, "restore-points")
    [replica] = [p for p in points if p["account"] == B]
    assert replica["last_drill"]["status"] == "Passed"


def test_a_kept_cluster_drill_is_listed_and_deleted_by_gc(estate: Estate, tmp_path: Path) -> None:
    cluster, policy = replicated_cross_account(estate, tmp_path, "e2e-aurora-keep")

    code, doc, stderr = snaprelay(estate, policy, tmp_path, "drill", "--keep")
    assert code == 0 and doc["status"] == "Passed", (doc, stderr)
    (result,) = doc["results"]
    writer = result["created"][2]["id"]
    assert clusters_and_dbs(estate, B, DST) == ([result["created"][1]["id"]], [writer])

    code, listed, stderr = snaprelay(estate, policy, tmp_path, "gc")
    assert code == 0, (listed, stderr)
    kinds = sorted(r["type"] for r in listed["restores_and_drills"])
    assert kinds == ["db-cluster", "db-instance", "security-group"], listed
    code, gc_doc, stderr = snaprelay(estate, policy, tmp_path, "gc", "--yes")
    assert code == 0, (gc_doc, stderr)
    assert clusters_and_dbs(estate, B, DST) == ([], [])


# The security group, its egress, RestoreDBClusterFromSnapshot, CreateDBInstance, then the
# cleanup: DeleteDBInstance, DeleteDBCluster, DeleteSecurityGroup.
AURORA_DRILL_SIDE_EFFECTS = 7


def test_a_cluster_drill_killed_after_each_side_effect_leaves_nothing_after_gc(
    estate: Estate, tmp_path: Path
) -> None:
    cluster, policy = replicated_cross_account(estate, tmp_path, "e2e-aurora-drill-kill")
    groups = lambda: sorted(  # noqa: E731
        g["GroupId"] for g in estate.ec2(B, DST).describe_security_groups()["SecurityGroups"]
    )
    groups_before = groups()
    env = snaprelay_env(estate.endpoint)
    for n in range(1, AURORA_DRILL_SIDE_EFFECTS + 1):
        proc = subprocess.run(
            [str(snaprelay_bin()), "--policy", str(tmp_path / "policy.toml"),
             "--state", str(tmp_path / "state.db"), "drill"],
            env={**env, "SNAPRELAY_ABORT_AFTER_SIDE_EFFECT": str(n)},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode not in (0, 1, 2), f"not killed after side effect {n}: {proc.stderr}"
        code, gc_doc, stderr = snaprelay(estate, policy, tmp_path, "gc", "--yes")
        assert code == 0, (n, stderr, gc_doc)
        assert clusters_and_dbs(estate, B, DST) == ([], []), f"left after a kill at {n}: {gc_doc}"
        assert groups() == groups_before, f"a group left after a kill at {n}: {gc_doc}"
    # One more side effect than a drill makes: it is let finish, and passes.
    code, doc, stderr = snaprelay(estate, policy, tmp_path, "drill")
    assert code == 0 and doc["status"] == "Passed", (stderr, doc)
    assert clusters_and_dbs(estate, B, DST) == ([], [])


def test_a_serverless_v2_cluster_restores_with_its_capacity_and_a_serverless_writer(
    estate: Estate, tmp_path: Path
) -> None:
    key = estate.create_key(None, SRC)
    target_key = estate.create_key(None, DST)
    rds = estate.rds(None, SRC)
    rds.create_db_cluster(
        DBClusterIdentifier="ledger",
        Engine="aurora-postgresql",
        MasterUsername="snaprelay",
        MasterUserPassword="not-a-secret-1",
        StorageEncrypted=True,
        KmsKeyId=key,
        ServerlessV2ScalingConfiguration={"MinCapacity": 0.5, "MaxCapacity": 8},
    )
    rds.create_db_instance(
        DBInstanceIdentifier="ledger-1",
        DBInstanceClass="db.serverless",
        Engine="aurora-postgresql",
        DBClusterIdentifier="ledger",
    )
    policy = aurora_policy("e2e-aurora-v2", "ledger", {"region": DST, "kms_key": target_key})
    code, doc, stderr = run_json(estate, policy, tmp_path)
    assert code == 0 and doc["status"] == "Success", (doc, stderr)
    code, points, stderr = snaprelay(estate, policy, tmp_path, "restore-points")
    [replica] = [p for p in points if p["region"] == DST]
    assert replica["config"]["serverless_v2_scaling"] == {"min_capacity": 0.5, "max_capacity": 8.0}
    assert replica["config"]["members"] == [{"db_instance_class": "db.serverless", "writer": True}]

    code, done, stderr = snaprelay(estate, policy, tmp_path, "restore", "ledger", "--name", "ledger-dr")

    assert code == 0 and done["status"] == "Success", (done, stderr)
    target = estate.rds(None, DST)
    [cluster] = target.describe_db_clusters(DBClusterIdentifier="ledger-dr")["DBClusters"]
    assert cluster["ServerlessV2ScalingConfiguration"] == {"MinCapacity": 0.5, "MaxCapacity": 8.0}
    [writer] = target.describe_db_instances(DBInstanceIdentifier="ledger-dr")["DBInstances"]
    assert writer["DBInstanceClass"] == "db.serverless"
