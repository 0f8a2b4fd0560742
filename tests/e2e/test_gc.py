"""`snaprelay gc` (issue 7): after a run killed with SIGKILL, it lists the copy left in flight
and the share left in place, changes nothing without --yes, and with --yes removes exactly
those, never a snapshot of another policy or one snaprelay did not make."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time
from pathlib import Path

import moto_ext
from estate import Estate, run_snaprelay, snaprelay_bin, snaprelay_env
from test_retention import B, DST, SRC, policy

THIRD = "333333333333"


def gc(estate: Estate, text: str, tmp_path: Path, *args: str) -> tuple[int, dict, str]:
    code, out, err = run_snaprelay(estate.endpoint, text, tmp_path, "gc", *args, "--output", "json")
    return code, json.loads(out), err


def with_state(estate: Estate, tmp_path: Path, state: str, *args: str) -> subprocess.CompletedProcess:
    """`snaprelay --policy tmp_path/policy.toml --state tmp_path/STATE ARGS...`."""
    return subprocess.run(
        [str(snaprelay_bin()), "--policy", str(tmp_path / "policy.toml"), "--state", str(tmp_path / state), *args],
        env=snaprelay_env(estate.endpoint),
        capture_output=True,
        text=True,
        timeout=120,
    )


def run_until_copies_are_in_flight(estate: Estate, text: str, tmp_path: Path, copies: int) -> subprocess.Popen:
    """Starts `snaprelay run` and returns once `copies` copies are pending in the target."""
    (tmp_path / "policy.toml").write_text(text)
    proc = subprocess.Popen(
        [str(snaprelay_bin()), "--policy", str(tmp_path / "policy.toml"), "--state", str(tmp_path / "state.db"), "run"],
        env=snaprelay_env(estate.endpoint),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while len(estate.snapshots(B, DST)) < copies:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("no copies in flight")
        time.sleep(0.1)
    return proc


def test_gc_lists_what_a_killed_run_left_and_removes_it_only_with_yes(estate: Estate, tmp_path: Path) -> None:
    moto_ext.COPY_PACING.pending_seconds = 60
    source_key = estate.create_key(None, SRC, allow_accounts=[B])
    target_key = estate.create_key(B, DST)
    instance, volumes = estate.create_instance(None, SRC, [{"kms_key": source_key}] * 2)
    text = policy("e2e-gc", instance, target_key, "replicas = { count = 7 }")
    proc = run_until_copies_are_in_flight(estate, text, tmp_path, len(volumes))
    proc.kill()  # SIGKILL: no cleanup at all
    proc.wait()
    copies = {s["SnapshotId"] for s in estate.snapshots(B, DST)}
    sources = {s["SnapshotId"] for s in estate.snapshots(None, SRC, tags={"snaprelay:policy": "e2e-gc"})}
    assert all(estate.snapshot_shares(None, SRC, s) == [B] for s in sources)

    # A share snaprelay did not make, with an account that is no target of the policy.
    some_source = sorted(sources)[0]
    estate.ec2(None, SRC).modify_snapshot_attribute(
        SnapshotId=some_source, Attribute="createVolumePermission", OperationType="add", UserIds=[THIRD]
    )

    # Another state file (or a new one) knows none of these sessions: nothing is deleted.
    done = with_state(estate, tmp_path, "new.db", "gc", "--yes")
    assert done.returncode == 2 and "no state file" in done.stderr, done.stderr
    assert not (tmp_path / "new.db").exists(), "a reading command creates no state file"
    # A state file with a session of another policy only. (`demo` never writes a real state.)
    sqlite3.connect(tmp_path / "other.db").close()
    assert with_state(estate, tmp_path, "other.db", "sessions", "list").returncode == 0  # makes its schema
    with sqlite3.connect(tmp_path / "other.db") as db:
        db.execute(
            "INSERT INTO sessions (id, policy, started_at) VALUES ('20261201T000000Z-0001', 'another', '2026-12-01T00:00:00Z')"
        )
    done = with_state(estate, tmp_path, "other.db", "gc", "--yes", "--output", "json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["found"] == [] and any("does not know" in s for s in report["skipped"]), report
    assert {s["SnapshotId"] for s in estate.snapshots(B, DST)} == copies

    # Neighbours gc must never touch: a snapshot nobody tagged, and one of another policy.
    ec2 = estate.ec2(B, DST)
    volume = ec2.create_volume(AvailabilityZone=f"{DST}a", Size=8)["VolumeId"]
    untagged = ec2.create_snapshot(VolumeId=volume)["SnapshotId"]
    other = ec2.create_snapshot(
        VolumeId=volume,
        TagSpecifications=[{"ResourceType": "snapshot", "Tags": [{"Key": "snaprelay:policy", "Value": "other"}]}],
    )["SnapshotId"]

    code, report, err = gc(estate, text, tmp_path)
    assert code == 0, err
    assert not report["acted"]
    found = {(f["action"], f["id"]) for f in report["found"]}
    assert found == {("delete", c) for c in copies} | {("unshare", s) for s in sources}, report
    assert {s["SnapshotId"] for s in estate.snapshots(B, DST)} == copies | {untagged, other}, "a listing changes nothing"
    assert all(B in estate.snapshot_shares(None, SRC, s) for s in sources)
    assert [f["shared_with"] for f in report["found"] if f["action"] == "unshare"] == [[B]] * len(sources)
    assert any(THIRD in s and "not a target" in s for s in report["skipped"]), report["skipped"]

    code, report, err = gc(estate, text, tmp_path, "--yes")
    assert code == 0 and report["acted"] and report["problems"] == [], (report, err)
    assert {s["SnapshotId"] for s in estate.snapshots(B, DST)} == {untagged, other}
    assert {s: estate.snapshot_shares(None, SRC, s) for s in sources} == {
        s: ([THIRD] if s == some_source else []) for s in sources
    }, "only the target's shares are removed"
    assert {s["SnapshotId"] for s in estate.snapshots(None, SRC, tags={"snaprelay:policy": "e2e-gc"})} == sources, (
        "recorded source restore points are kept"
    )

    code, report, err = gc(estate, text, tmp_path)
    assert code == 0 and report["found"] == [], report


def test_gc_leaves_alone_what_a_running_session_is_making(estate: Estate, tmp_path: Path) -> None:
    moto_ext.COPY_PACING.pending_seconds = 60
    source_key = estate.create_key(None, SRC, allow_accounts=[B])
    target_key = estate.create_key(B, DST)
    instance, _ = estate.create_instance(None, SRC, [{"kms_key": source_key}])
    text = policy("e2e-gc-live", instance, target_key, "replicas = { count = 7 }")
    proc = run_until_copies_are_in_flight(estate, text, tmp_path, 1)
    try:
        code, report, err = gc(estate, text, tmp_path, "--yes")
        assert code == 0, err
        assert report["found"] == [] and len(report["skipped"]) >= 2, report
        assert all("still running" in s for s in report["skipped"])
        assert len(estate.snapshots(B, DST)) == 1, "the copy in flight is untouched"
        # A second session of the same policy would overlap the first: refused, nothing done.
        before = len(estate.snapshots(None, SRC))
        done = with_state(estate, tmp_path, "state.db", "run")
        assert done.returncode == 1 and "still running" in done.stderr, done.stderr
        assert len(estate.snapshots(None, SRC)) == before
    finally:
        proc.kill()
        proc.wait()
