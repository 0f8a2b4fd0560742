"""Crash and resume (issue 5), on the SDK path against moto: a run aborted right after its Nth
change to AWS (SNAPRELAY_ABORT_AFTER_SIDE_EFFECT, which aborts like kill -9) is resumed, by the
next `run` or by `sessions resume ID`, and ends as an uninterrupted run does: one session,
every restore point recorded and whole, no duplicate snapshot, no orphan, no share left.

The simulator's crash suite (crates/sim/tests/crash.rs) tries every N of a larger policy; here,
every N of a cross-account EC2 session and a sample of N of an EC2 + RDS policy with a
same-account and a cross-account (two-step RDS) target."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

import moto_ext
from estate import AMBIENT_ACCOUNT, Estate, run_snaprelay, snaprelay_bin, snaprelay_env, tags_of
from test_retention import B, DST, SRC, TARGET_ROLE, policy

# CreateSnapshots, two shares, two copies, two unshares.
EC2_SIDE_EFFECTS = 7


def aborted_run(estate: Estate, text: str, tmp_path: Path, n: int) -> str:
    """Runs the policy, aborted after change n; returns the id of the session it left."""
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
    code, out, err = run_snaprelay(estate.endpoint, text, tmp_path, "sessions", "list", "--output", "json")
    [session] = json.loads(out)
    assert session["status"] == "Interrupted" and session["ended_at"] is None, session
    return session["session_id"]


def assert_like_an_uninterrupted_run(estate: Estate, text: str, tmp_path: Path, doc: dict[str, Any], session: str) -> None:
    """The resumed session is the interrupted one, it succeeded, and AWS and the state file
    hold exactly what an uninterrupted run leaves."""
    assert doc["session_id"] == session and doc["status"] == "Success" and doc.get("resumed") is True, doc
    code, out, _ = run_snaprelay(estate.endpoint, text, tmp_path, "sessions", "list", "--output", "json")
    assert [(s["session_id"], s["status"]) for s in json.loads(out)] == [(session, "Success")]
    code, out, _ = run_snaprelay(estate.endpoint, text, tmp_path, "restore-points", "--output", "json")
    points = json.loads(out)
    # One restore point per resource and place, each whole.
    places = [(p["resource_id"], p["kind"], p["account"], p["region"]) for p in points]
    assert len(places) == len(set(places)), places
    expected = {(r["id"], "source") for r in doc["resources"]} | {
        (r["id"], "replica", p["account"], p["region"]) for r in doc["resources"] for p in r["replicas"]
    }
    assert {(p[0], p[1]) if p[1] == "source" else p for p in places} == expected
    recorded = {s["id"] for p in points for s in p["snapshots"]}
    # Every snapshot of the policy in AWS is recorded, and every recorded one is in AWS.
    in_aws: set[str] = set()
    for account, region in {(None, SRC), (B, SRC), (None, DST), (B, DST)}:
        for s in estate.snapshots(account, region, tags={"snaprelay:policy": json_name(text)}):
            in_aws.add(s["SnapshotId"])
            assert s["State"] == "completed", s
            if account is None:
                assert estate.snapshot_shares(None, region, s["SnapshotId"]) == [], "no share left"
        for s in estate.db_snapshots(account, region):
            in_aws.add(s["DBSnapshotArn"])
            if account is None:
                assert estate.db_snapshot_shares(None, region, s["DBSnapshotIdentifier"]) == [], "no share left"
    assert in_aws == recorded, "no duplicate, no orphan, no intermediate left"
    code, out, _ = run_snaprelay(estate.endpoint, text, tmp_path, "gc", "--output", "json")
    assert code == 0 and json.loads(out)["found"] == []


def json_name(text: str) -> str:
    return text.split('"')[1]


@pytest.mark.parametrize("n", range(1, EC2_SIDE_EFFECTS + 1))
def test_a_run_killed_after_any_change_is_resumed_by_the_next_run(estate: Estate, tmp_path: Path, n: int) -> None:
    source_key = estate.create_key(None, SRC, allow_accounts=[B])
    target_key = estate.create_key(B, DST)
    instance, _ = estate.create_instance(None, SRC, [{"kms_key": source_key}, {"kms_key": source_key}])
    text = policy("e2e-crash", instance, target_key, "replicas = { count = 7 }")
    session = aborted_run(estate, text, tmp_path, n)

    code, out, err = run_snaprelay(estate.endpoint, text, tmp_path, "run", "--output", "json")
    assert code == 0, err
    assert f"resuming session {session}" in err
    doc = json.loads(out)
    assert_like_an_uninterrupted_run(estate, text, tmp_path, doc, session)
    [resource] = doc["resources"]
    assert len(resource["source"]["snapshots"]) == 2 and len(resource["replicas"][0]["snapshots"]) == 2
    # Its steps mark where the resume began.
    code, out, _ = run_snaprelay(estate.endpoint, text, tmp_path, "sessions", "show", session, "--output", "json")
    assert [s["step"] for s in json.loads(out)["steps"]].count("resume") == 1
    # The run after that is a new session.
    code, out, err = run_snaprelay(estate.endpoint, text, tmp_path, "run", "--output", "json")
    assert code == 0 and json.loads(out)["session_id"] != session and "resuming" not in err


def ec2_and_rds_policy(estate: Estate) -> str:
    source_key = estate.create_key(None, SRC, allow_accounts=[B])
    west_key = estate.create_key(None, DST)
    vault_key = estate.create_key(B, DST)
    instance, _ = estate.create_instance(None, SRC, [{"kms_key": source_key}, {"kms_key": source_key}])
    db = estate.create_db_instance(None, SRC, "orders", kms_key=source_key)
    return f"""name = "e2e-crash-mixed"
[source]
regions = ["{SRC}"]
[[source.resources]]
type = "ec2"
ids = ["{instance}"]
[[source.resources]]
type = "rds"
ids = ["{db}"]
[[targets]]
region = "{DST}"
kms_key = "{west_key}"
[[targets]]
account = "{B}"
region = "{DST}"
role_arn = "{TARGET_ROLE}"
kms_key = "{vault_key}"
"""


# EC2: 1 CreateSnapshots, 2 same-account copies, 2 shares, 2 copies, 2 unshares. RDS: 1 snapshot,
# 1 same-account copy, 1 share, the intermediate and the final copy, 1 unshare, 1 delete.
MIXED_SIDE_EFFECTS = 16


@pytest.mark.parametrize("n", [1, 3, 6, 9, 12, MIXED_SIDE_EFFECTS])
def test_an_ec2_and_rds_session_killed_mid_way_is_finished_by_sessions_resume(
    estate: Estate, tmp_path: Path, n: int
) -> None:
    text = ec2_and_rds_policy(estate)
    session = aborted_run(estate, text, tmp_path, n)

    code, out, err = run_snaprelay(estate.endpoint, text, tmp_path, "sessions", "resume", session, "--output", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert_like_an_uninterrupted_run(estate, text, tmp_path, doc, session)
    for resource in doc["resources"]:
        assert [(p["account"], p["region"]) for p in resource["replicas"]] == [
            (AMBIENT_ACCOUNT, DST),
            (B, DST),
        ], resource
    assert estate.db_snapshots(B, SRC) == [], "the intermediate copy is gone"


def test_an_uninterrupted_mixed_run_makes_the_side_effects_the_sample_assumes(estate: Estate, tmp_path: Path) -> None:
    text = ec2_and_rds_policy(estate)
    (tmp_path / "policy.toml").write_text(text)
    env = {**snaprelay_env(estate.endpoint), "SNAPRELAY_ABORT_AFTER_SIDE_EFFECT": str(MIXED_SIDE_EFFECTS + 1)}
    done = subprocess.run(
        [str(snaprelay_bin()), "--policy", str(tmp_path / "policy.toml"), "--state", str(tmp_path / "state.db"), "run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr


def workaround_policy(estate: Estate) -> str:
    """An instance with a volume under aws/ebs and a DB under aws/rds, to another account and
    Region, with a re-encrypt key (the default-key workaround, SPEC 6.4)."""
    share_key = estate.create_key(None, SRC, allow_accounts=[B])
    vault_key = estate.create_key(B, DST)
    instance, _ = estate.create_instance(None, SRC, [{"encrypted": True, "kms_key": None}])
    db = estate.create_db_instance(None, SRC, "legacy")
    return f"""name = "e2e-crash-reencrypt"
[source]
regions = ["{SRC}"]
reencrypt_keys = {{ "{SRC}" = "{share_key}" }}
[[source.resources]]
type = "ec2"
ids = ["{instance}"]
[[source.resources]]
type = "rds"
ids = ["{db}"]
[[targets]]
account = "{B}"
region = "{DST}"
role_arn = "{TARGET_ROLE}"
kms_key = "{vault_key}"
"""


# EC2: CreateSnapshots, the copy under the re-encrypt key, share, copy, unshare, delete the
# extra copy. RDS: CreateDBSnapshot, the copy under the re-encrypt key, share, the intermediate
# and the final copy, delete the intermediate, unshare, delete the extra copy.
WORKAROUND_SIDE_EFFECTS = 14


@pytest.mark.parametrize("n", range(1, WORKAROUND_SIDE_EFFECTS + 2))
def test_the_default_key_workaround_killed_after_any_change_is_resumed_to_nothing_left(
    estate: Estate, tmp_path: Path, n: int
) -> None:
    text = workaround_policy(estate)
    if n > WORKAROUND_SIDE_EFFECTS:
        # One more than it makes: the run is not aborted (the count above is right).
        code, out, err = run_snaprelay(estate.endpoint, text, tmp_path, "run", "--output", "json")
        (tmp_path / "policy.toml").write_text(text)
        env = {**snaprelay_env(estate.endpoint), "SNAPRELAY_ABORT_AFTER_SIDE_EFFECT": str(n)}
        done = subprocess.run(
            [str(snaprelay_bin()), "--policy", str(tmp_path / "policy.toml"), "--state", str(tmp_path / "again.db"), "run"],
            env=env, capture_output=True, text=True, timeout=120,
        )
        assert code == 0 and done.returncode == 0, (err, done.stderr)
        return
    session = aborted_run(estate, text, tmp_path, n)
    code, out, err = run_snaprelay(estate.endpoint, text, tmp_path, "run", "--output", "json")
    assert code == 0, (err, out)
    doc = json.loads(out)
    # No extra copy under the re-encrypt key, no intermediate, no share left; gc finds nothing.
    assert_like_an_uninterrupted_run(estate, text, tmp_path, doc, session)
    assert estate.db_snapshots(B, SRC) == []
    # The snapshot under aws/ebs was never the object of a share, neither added nor removed:
    # a resume removes the share of the extra copy it finds, not of the original.
    originals = {
        s["SnapshotId"] for s in estate.snapshots(None, SRC) if tags_of(s).get("snaprelay:kind") == "source"
    }
    assert originals, "the source restore point stays"
    touched = [e for e in moto_ext.SHARE_LOG if e["snapshot_id"] in originals]
    assert touched == [], touched


def test_resume_refuses_a_finished_session_another_policys_and_an_unknown_one(estate: Estate, tmp_path: Path) -> None:
    text = ec2_and_rds_policy(estate)
    code, out, err = run_snaprelay(estate.endpoint, text, tmp_path, "run", "--output", "json")
    assert code == 0, err
    finished = json.loads(out)["session_id"]
    code, _, err = run_snaprelay(estate.endpoint, text, tmp_path, "sessions", "resume", finished)
    assert code == 2 and "has ended (Success)" in err, err
    code, _, err = run_snaprelay(estate.endpoint, text, tmp_path, "sessions", "resume", "20990101T000000Z-0000")
    assert code == 2 and "no such session" in err, err
    other = text.replace('name = "e2e-crash-mixed"', 'name = "another"')
    session = aborted_run(estate, other, tmp_path, 1)
    code, _, err = run_snaprelay(estate.endpoint, text, tmp_path, "sessions", "resume", session)
    assert code == 2 and 'session of policy "another"' in err, err


def test_a_killed_session_whose_pid_was_reused_is_still_seen_as_interrupted(estate: Estate, tmp_path: Path) -> None:
    """pids are reused: after a reboot, and in a container where snaprelay runs as pid 1.
    Here the recorded pid is made 1, a process that always exists: the session is still
    known to be interrupted (no process holds its policy's lock), listed as such, and resumed."""
    import sqlite3

    source_key = estate.create_key(None, SRC, allow_accounts=[B])
    target_key = estate.create_key(B, DST)
    instance, _ = estate.create_instance(None, SRC, [{"kms_key": source_key}])
    text = policy("e2e-crash-pid", instance, target_key, "replicas = { count = 7 }")
    session = aborted_run(estate, text, tmp_path, 3)
    with sqlite3.connect(tmp_path / "state.db") as db:
        db.execute("UPDATE sessions SET pid = 1 WHERE id = ?", (session,))

    code, out, _ = run_snaprelay(estate.endpoint, text, tmp_path, "sessions", "show", session)
    assert code == 0 and "Interrupted" in out and f"sessions resume {session}" in out, out
    code, out, err = run_snaprelay(estate.endpoint, text, tmp_path, "gc")
    assert code == 0 and f"session {session} of policy e2e-crash-pid was interrupted" in err, err
    code, out, err = run_snaprelay(estate.endpoint, text, tmp_path, "run", "--output", "json")
    assert code == 0, err
    assert_like_an_uninterrupted_run(estate, text, tmp_path, json.loads(out), session)


def test_a_session_whose_lock_is_held_elsewhere_is_left_alone_whatever_its_pid(estate: Estate, tmp_path: Path) -> None:
    """A session running in another pid namespace (a container) or on another machine sharing
    the state file: its pid means nothing here, but it holds its policy's lock. While the lock
    is held (here by the test, as that process would), nothing touches the session; once it
    is let go, the next run resumes it."""
    import fcntl

    source_key = estate.create_key(None, SRC, allow_accounts=[B])
    target_key = estate.create_key(B, DST)
    instance, _ = estate.create_instance(None, SRC, [{"kms_key": source_key}])
    text = policy("e2e-crash-lock", instance, target_key, "replicas = { count = 7 }")
    session = aborted_run(estate, text, tmp_path, 4)  # the copies are in flight
    in_flight = {s["SnapshotId"] for s in estate.snapshots(B, DST)}
    assert in_flight

    lock_file = open(tmp_path / "state.db.locks" / "e2e-crash-lock.lock", "a")
    fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    try:
        code, _, err = run_snaprelay(estate.endpoint, text, tmp_path, "run")
        assert code == 1 and "still running" in err and session in err, err
        code, _, err = run_snaprelay(estate.endpoint, text, tmp_path, "sessions", "resume", session)
        assert code == 1 and "still running" in err, err
        code, _, err = run_snaprelay(estate.endpoint, text, tmp_path, "retention", "apply")
        assert code == 1 and "still running" in err, err
        code, out, _ = run_snaprelay(estate.endpoint, text, tmp_path, "sessions", "list", "--output", "json")
        assert [s["status"] for s in json.loads(out)] == ["Running"]
        code, out, err = run_snaprelay(estate.endpoint, text, tmp_path, "gc", "--yes", "--output", "json")
        assert code == 0 and json.loads(out)["found"] == [], out
        assert {s["SnapshotId"] for s in estate.snapshots(B, DST)} == in_flight, "gc deleted nothing"
    finally:
        fcntl.flock(lock_file, fcntl.LOCK_UN)
        lock_file.close()

    code, out, err = run_snaprelay(estate.endpoint, text, tmp_path, "run", "--output", "json")
    assert code == 0, err
    assert_like_an_uninterrupted_run(estate, text, tmp_path, json.loads(out), session)
