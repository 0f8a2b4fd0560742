"""A run aborted right after its Nth change to AWS (SNAPRELAY_ABORT_AFTER_SIDE_EFFECT, which
aborts like kill -9), for every N of a cross-account EC2 session: `gc --yes` then removes what
no record accounts for, and the next run ends with the restore points an uninterrupted run
makes (plus the one the aborted session had finished, if it got that far): no share left, no
orphan, every snapshot left in a whole, recorded restore point.

(Resuming the interrupted session itself, instead of cleaning up after it, is issue 5.)"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from estate import Estate, run_snaprelay, snaprelay_bin, snaprelay_env
from test_retention import B, DST, SRC, policy

# CreateSnapshots, two shares, two copies, two unshares.
SIDE_EFFECTS = 7


@pytest.mark.parametrize("n", range(1, SIDE_EFFECTS + 1))
def test_after_a_run_aborted_at_any_side_effect_gc_and_a_rerun_give_the_uninterrupted_result(
    estate: Estate, tmp_path: Path, n: int
) -> None:
    source_key = estate.create_key(None, SRC, allow_accounts=[B])
    target_key = estate.create_key(B, DST)
    instance, _ = estate.create_instance(None, SRC, [{"kms_key": source_key}, {"kms_key": source_key}])
    text = policy("e2e-crash", instance, target_key, "replicas = { count = 7 }")
    (tmp_path / "policy.toml").write_text(text)

    env = {**snaprelay_env(estate.endpoint), "SNAPRELAY_ABORT_AFTER_SIDE_EFFECT": str(n)}
    aborted = subprocess.run(
        [str(snaprelay_bin()), "--policy", str(tmp_path / "policy.toml"), "--state", str(tmp_path / "state.db"), "run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert aborted.returncode < 0 or aborted.returncode == 134, (aborted.returncode, aborted.stderr)
    assert "aborting after" in aborted.stderr

    code, out, err = run_snaprelay(estate.endpoint, text, tmp_path, "gc", "--yes", "--output", "json")
    assert code == 0 and json.loads(out)["problems"] == [], (out, err)
    code, out, err = run_snaprelay(estate.endpoint, text, tmp_path, "run", "--output", "json")
    assert code == 0, err
    rerun = json.loads(out)

    replicas = {s["SnapshotId"] for s in estate.snapshots(B, DST, tags={"snaprelay:policy": "e2e-crash"})}
    assert {s["id"] for s in rerun["resources"][0]["replicas"][0]["snapshots"]} <= replicas
    sources = estate.snapshots(None, SRC, tags={"snaprelay:policy": "e2e-crash"})
    assert all(estate.snapshot_shares(None, SRC, s["SnapshotId"]) == [] for s in sources), "no share left"
    code, out, err = run_snaprelay(estate.endpoint, text, tmp_path, "restore-points", "--output", "json")
    points = json.loads(out)
    recorded = {s["id"] for p in points for s in p["snapshots"]}
    assert {s["SnapshotId"] for s in sources} | replicas <= recorded, "every snapshot left is in a recorded restore point"
    # ... and every recorded restore point is whole: none lost a snapshot to the crash or to gc.
    present = {s["SnapshotId"] for s in sources} | replicas
    assert all(s["id"] in present for p in points for s in p["snapshots"])
    # Only an aborted session that got as far as recording its replica (after its copies, at
    # the unshares) leaves a second replica restore point; otherwise there is exactly one.
    replica_points = [p for p in points if p["kind"] == "replica"]
    assert len(replica_points) == (2 if n > 5 else 1), replica_points
    code, out, err = run_snaprelay(estate.endpoint, text, tmp_path, "gc", "--output", "json")
    assert json.loads(out)["found"] == []
