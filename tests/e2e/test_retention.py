"""Retention (issue 7): `[retention]` applied after every run and by `retention apply`, never
deleting the newest restore point of a place nor a snapshot whose tags do not prove it is this
policy's."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from estate import AMBIENT_ACCOUNT, Estate, run_snaprelay, tags_of

B = "222222222222"
SRC = "us-east-1"
DST = "eu-west-1"
TARGET_ROLE = f"arn:aws:iam::{B}:role/snaprelay-target"


def policy(name: str, instance: str, target_key: str, retention: str, resource_type: str = "ec2") -> str:
    return f"""name = "{name}"
[source]
regions = ["{SRC}"]
[[source.resources]]
type = "{resource_type}"
ids = ["{instance}"]
[[targets]]
account = "{B}"
region = "{DST}"
role_arn = "{TARGET_ROLE}"
kms_key = "{target_key}"
[retention]
{retention}
"""


def run(estate: Estate, text: str, tmp_path: Path, *args: str, now: str | None = None) -> tuple[int, Any, str]:
    env_now = {"SNAPRELAY_NOW": now} if now else {}
    old = {k: os.environ.get(k) for k in env_now}
    os.environ.update(env_now)
    try:
        code, out, err = run_snaprelay(estate.endpoint, text, tmp_path, *args, "--output", "json")
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return code, json.loads(out) if out.strip() else None, err


def estate_with_instance(estate: Estate) -> tuple[str, str, list[str]]:
    source_key = estate.create_key(None, SRC, allow_accounts=[B])
    target_key = estate.create_key(B, DST)
    instance, volumes = estate.create_instance(None, SRC, [{"kms_key": source_key}, {"kms_key": source_key}])
    return instance, target_key, volumes


def replicas(estate: Estate, policy_name: str) -> list[dict[str, Any]]:
    return estate.snapshots(B, DST, tags={"snaprelay:policy": policy_name, "snaprelay:kind": "replica"})


def test_three_runs_with_count_2_keep_two_replicas_per_volume_the_newest_among_them(
    estate: Estate, tmp_path: Path
) -> None:
    instance, target_key, volumes = estate_with_instance(estate)
    text = policy("e2e-count", instance, target_key, "replicas = { count = 2 }")
    newest: list[str] = []
    for n in range(3):
        code, doc, err = run(estate, text, tmp_path, "run")
        assert code == 0, err
        newest = [s["id"] for s in doc["resources"][0]["replicas"][0]["snapshots"]]
        deleted = doc["retention"]["deleted"]
        assert len(deleted) == (1 if n == 2 else 0), doc["retention"]
    left = replicas(estate, "e2e-count")
    per_volume = {v: [s for s in left if tags_of(s)["snaprelay:volume"] == v] for v in volumes}
    assert all(len(snaps) == 2 for snaps in per_volume.values()), per_volume
    assert set(newest) <= {s["SnapshotId"] for s in left}
    # No source retention in this policy: the three source restore points stay.
    assert len(estate.snapshots(None, SRC, tags={"snaprelay:policy": "e2e-count"})) == 6

    code, points, err = run(estate, text, tmp_path, "restore-points")
    assert code == 0, err
    statuses = sorted(p["status"] for p in points if p["kind"] == "replica")
    assert statuses == ["complete", "complete", "deleted"]
    code, out, err = run_snaprelay(estate.endpoint, text, tmp_path, "restore-points")
    assert code == 0 and out.count("DELETED by retention") == 1 and out.count("  complete") == 5, out


def test_days_retention_follows_the_injected_clock_and_keeps_the_newest(estate: Estate, tmp_path: Path) -> None:
    instance, target_key, _ = estate_with_instance(estate)
    text = policy("e2e-days", instance, target_key, "replicas = { days = 7 }\nsource = { days = 7 }")
    for _ in range(2):
        code, doc, err = run(estate, text, tmp_path, "run")
        assert code == 0 and doc["retention"]["deleted"] == [], err

    # A day later nothing is old enough; ten days later all but the newest of each place are.
    code, report, err = run(estate, text, tmp_path, "retention", "apply", now=later(days=1))
    assert code == 0 and report["deleted"] == [] and report["kept"] == 4, (report, err)
    code, report, err = run(estate, text, tmp_path, "retention", "apply", "--dry-run", now=later(days=10))
    assert code == 0 and report["dry_run"] and len(report["deleted"]) == 2, report
    assert len(replicas(estate, "e2e-days")) == 4, "a dry run deletes nothing"
    code, report, err = run(estate, text, tmp_path, "retention", "apply", now=later(days=10))
    assert code == 0, err
    assert sorted(d["kind"] for d in report["deleted"]) == ["replica", "source"]
    assert len(replicas(estate, "e2e-days")) == 2
    assert len(estate.snapshots(None, SRC, tags={"snaprelay:policy": "e2e-days"})) == 2


def later(days: int) -> str:
    import datetime

    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=days)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_snapshot_whose_tags_do_not_prove_it_ours_is_never_deleted(estate: Estate, tmp_path: Path) -> None:
    instance, target_key, _ = estate_with_instance(estate)
    text = policy("e2e-foreign", instance, target_key, "replicas = { count = 1 }")
    code, doc, err = run(estate, text, tmp_path, "run")
    assert code == 0, err
    first = [s["id"] for s in doc["resources"][0]["replicas"][0]["snapshots"]]
    # Someone re-tags one replica of the first run as another policy's.
    estate.ec2(B, DST).create_tags(Resources=[first[0]], Tags=[{"Key": "snaprelay:policy", "Value": "other"}])
    # And a snapshot snaprelay never made sits in the same place.
    volume = estate.ec2(B, DST).create_volume(AvailabilityZone=f"{DST}a", Size=8)
    foreign = estate.ec2(B, DST).create_snapshot(VolumeId=volume["VolumeId"])["SnapshotId"]

    code, doc, err = run(estate, text, tmp_path, "run")
    assert code == 3, f"a restore point retention had to keep is a warning: {err}"
    problems = doc["retention"]["problems"]
    assert len(problems) == 1 and first[0] in problems[0] and "other" in problems[0], problems
    left = {s["SnapshotId"] for s in estate.snapshots(B, DST)}
    assert set(first) <= left, "the restore point is kept whole"
    assert foreign in left


def test_rds_replicas_across_accounts_are_kept_by_count_too(estate: Estate, tmp_path: Path) -> None:
    source_key = estate.create_key(None, SRC, allow_accounts=[B])
    target_key = estate.create_key(B, DST)
    db = estate.create_db_instance(None, SRC, kms_key=source_key)
    text = policy("e2e-rds-count", db, target_key, "replicas = { count = 1 }\nsource = { count = 1 }", "rds")
    for _ in range(2):
        code, doc, err = run(estate, text, tmp_path, "run")
        assert code == 0, err
    newest = doc["resources"][0]["replicas"][0]["snapshots"][0]["id"]
    left = estate.db_snapshots(B, DST, tags={"snaprelay:policy": "e2e-rds-count"})
    assert [s["DBSnapshotArn"] for s in left] == [newest]
    assert estate.db_snapshots(B, SRC, tags={"snaprelay:policy": "e2e-rds-count"}) == [], "no intermediate left"
    assert len(estate.db_snapshots(None, SRC, tags={"snaprelay:policy": "e2e-rds-count"})) == 1
    assert sorted(d["kind"] for d in doc["retention"]["deleted"]) == ["replica", "source"]
    assert AMBIENT_ACCOUNT in {d["account"] for d in doc["retention"]["deleted"]}


def test_an_older_restore_point_is_kept_while_the_newer_one_is_damaged(estate: Estate, tmp_path: Path) -> None:
    instance, target_key, _ = estate_with_instance(estate)
    keep_all = policy("e2e-damaged", instance, target_key, "replicas = { count = 5 }")
    firsts = []
    for _ in range(2):
        code, doc, err = run(estate, keep_all, tmp_path, "run")
        assert code == 0, err
        firsts.append([s["id"] for s in doc["resources"][0]["replicas"][0]["snapshots"]])
    # Someone deletes a snapshot of the newest replica restore point by hand.
    estate.ec2(B, DST).delete_snapshot(SnapshotId=firsts[1][0])

    keep_one = policy("e2e-damaged", instance, target_key, "replicas = { count = 1 }")
    code, report, err = run(estate, keep_one, tmp_path, "retention", "apply")
    assert code == 1, err
    assert report["deleted"] == [] and report["kept"] == 4, report  # 2 source + 2 replica
    assert any(firsts[1][0] in p and "kept" in p for p in report["problems"]), report["problems"]
    left = {s["SnapshotId"] for s in replicas(estate, "e2e-damaged")}
    assert set(firsts[0]) <= left, "the older, whole restore point is still there"


def test_a_place_removed_from_the_policy_keeps_its_restore_points_quietly(estate: Estate, tmp_path: Path) -> None:
    instance, target_key, _ = estate_with_instance(estate)
    west_key = estate.create_key(None, "us-west-2")
    both = policy("e2e-removed", instance, target_key, "replicas = { count = 5 }") + f"""
[[targets]]
region = "us-west-2"
kms_key = "{west_key}"
"""
    for _ in range(2):
        code, doc, err = run(estate, both, tmp_path, "run")
        assert code == 0, err
    only_vault = policy("e2e-removed", instance, target_key, "replicas = { count = 1 }")
    for _ in range(2):
        code, doc, err = run(estate, only_vault, tmp_path, "run")
        assert code == 0, err
    retention = doc["retention"]
    assert retention["problems"] == [] and any("us-west-2 is no longer a place" in s for s in retention["skipped"])
    assert len(estate.snapshots(None, "us-west-2", tags={"snaprelay:policy": "e2e-removed"})) == 4
    assert len(replicas(estate, "e2e-removed")) == 2, "count = 1 still applies to the vault"


def test_retention_apply_killed_after_each_deletion_finishes_on_the_next_apply(
    estate: Estate, tmp_path: Path
) -> None:
    """Issue 15, item 16: `retention apply` killed right after each of its deletions in turn
    (like kill -9) and run again: each snapshot is deleted once, the newest restore point is
    never touched, and the last apply finds nothing left to do."""
    instance, target_key, volumes = estate_with_instance(estate)
    keep_all = policy("e2e-ret-crash", instance, target_key, "replicas = { count = 10 }")
    for _ in range(3):
        code, _, err = run(estate, keep_all, tmp_path, "run")
        assert code == 0, err
    made = sorted(replicas(estate, "e2e-ret-crash"), key=lambda s: s["StartTime"])
    assert len(made) == 3 * len(volumes)
    newest = {s["SnapshotId"] for s in made[-len(volumes):]}
    keep_one = policy("e2e-ret-crash", instance, target_key, "replicas = { count = 1 }")
    deletions = 2 * len(volumes)

    env_var = "SNAPRELAY_ABORT_AFTER_SIDE_EFFECT"
    gone: list[str] = []
    for n in range(1, deletions + 1):
        os.environ[env_var] = "1"
        try:
            code, _, err = run(estate, keep_one, tmp_path, "retention", "apply")
        finally:
            os.environ.pop(env_var, None)
        assert code != 0 and "aborting after DeleteSnapshot" in err, (n, code, err)
        left = {s["SnapshotId"] for s in replicas(estate, "e2e-ret-crash")}
        assert newest <= left, f"after kill {n}: the newest restore point is whole"
        gone = sorted({s["SnapshotId"] for s in made} - left)
        assert len(gone) == n, f"after kill {n}: one more snapshot deleted, none twice: {gone}"

    # The last kill came after the last deletion and before it was recorded: this apply only
    # records what is already gone, deleting nothing again.
    assert {s["SnapshotId"] for s in replicas(estate, "e2e-ret-crash")} == newest
    code, doc, err = run(estate, keep_one, tmp_path, "retention", "apply")
    assert code == 0, err
    assert doc["problems"] == [], doc
    assert {s["SnapshotId"] for s in replicas(estate, "e2e-ret-crash")} == newest
    code, doc, err = run(estate, keep_one, tmp_path, "retention", "apply")
    assert code == 0 and doc["deleted"] == [], doc
    code, points, _ = run(estate, keep_one, tmp_path, "restore-points")
    statuses = sorted(p["status"] for p in points if p["kind"] == "replica")
    assert statuses == ["complete", "deleted", "deleted"], statuses
