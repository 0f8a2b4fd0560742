"""`--state postgres://…` (SPEC 6.7): the same records as a SQLite file, and a lease that lapses
when its holder dies, so that the next run takes the interrupted session over. The server is
a private PostgreSQL started by scripts/pg-test-server on 127.0.0.1 and a free port."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Iterator

import pytest

import moto_ext
from estate import Estate, snaprelay_bin, snaprelay_env
from test_ec2_replicas import B, DST, SRC, TARGET_ROLE, policy_toml

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "pg-test-server"


@pytest.fixture
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory = Path("/tmp") / f"snaprelay-pg-e2e-{tmp_path_factory.getbasetemp().name}-{time.monotonic_ns()}"
    url = subprocess.run([str(SCRIPT), "start", str(directory)], check=True, capture_output=True, text=True).stdout.strip()
    try:
        yield url
    finally:
        subprocess.run([str(SCRIPT), "stop", str(directory)], check=False)


def snaprelay(estate: Estate, policy: Path, state: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(snaprelay_bin()), "--policy", str(policy), "--state", state, *args],
        env=snaprelay_env(estate.endpoint) | (env or {}),
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_run_recorded_in_postgres_is_listed_like_one_in_a_file(estate: Estate, tmp_path: Path, database: str) -> None:
    source_key = estate.create_key(None, SRC, allow_accounts=[B])
    target_key = estate.create_key(B, DST)
    instance, _ = estate.create_instance(None, SRC, [{"kms_key": source_key}])
    policy = tmp_path / "policy.toml"
    policy.write_text(
        policy_toml("e2e-pg", [instance], [{"account": B, "region": DST, "role_arn": TARGET_ROLE, "kms_key": target_key}])
    )
    done = snaprelay(estate, policy, database, "run", "--output", "json")
    assert done.returncode == 0, done.stderr
    session = json.loads(done.stdout)["session_id"]
    listed = json.loads(snaprelay(estate, policy, database, "sessions", "list", "--output", "json").stdout)
    assert [(s["session_id"], s["status"]) for s in listed] == [(session, "Success")]
    points = json.loads(snaprelay(estate, policy, database, "restore-points", "--output", "json").stdout)
    assert sorted(p["kind"] for p in points) == ["replica", "source"]
    # The URL's password is never printed, even in an error.
    bad = database.replace("snaprelay@", "snaprelay:hunter2@").replace("/postgres", "/nosuchdb")
    done = snaprelay(estate, policy, bad, "sessions", "list", "--output", "json")
    assert done.returncode == 1 and json.loads(done.stdout)["code"] == "state", done.stdout
    assert "hunter2" not in done.stdout + done.stderr


def test_a_state_url_that_does_not_read_is_invalid_input_and_nothing_is_reached(estate: Estate, tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text(policy_toml("e2e-pg-url", ["i-0123456789abcdef0"], [{"account": B, "region": DST, "role_arn": TARGET_ROLE}]))
    for url, named in [
        ("postgres://snaprelay:hunter2@127.0.0.1:5432/db?sslmode=bogus", "bogus"),
        ("postgresql://snaprelay:hunter2@127.0.0.1:notaport/db", "postgresql://snaprelay:***@"),
        ("postgres://snaprelay:hunter2@127.0.0.1:5432/db?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem", "/nonexistent/ca.pem"),
    ]:
        done = snaprelay(estate, policy, url, "sessions", "list", "--output", "json")
        doc = json.loads(done.stdout)
        assert done.returncode == 2 and doc["code"] == "invalid_input", (url, done.stdout, done.stderr)
        assert named in doc["error"], (url, doc)
        assert "hunter2" not in done.stdout + done.stderr


def test_a_killed_runs_lease_lapses_and_the_next_run_takes_its_session_over(
    estate: Estate, tmp_path: Path, database: str
) -> None:
    moto_ext.COPY_PACING.pending_seconds = 4
    source_key = estate.create_key(None, SRC, allow_accounts=[B])
    target_key = estate.create_key(B, DST)
    instance, volumes = estate.create_instance(None, SRC, [{"kms_key": source_key}] * 2)
    policy = tmp_path / "policy.toml"
    policy.write_text(
        policy_toml("e2e-pg-lease", [instance], [{"account": B, "region": DST, "role_arn": TARGET_ROLE, "kms_key": target_key}])
    )
    # Renewed every third of the TTL: at least 3.3 s are left when the run is killed, more than
    # the 2 s another run waits for a lease.
    ttl = {"SNAPRELAY_LEASE_TTL": "5"}
    first = subprocess.Popen(
        [str(snaprelay_bin()), "--policy", str(policy), "--state", database, "run"],
        env=snaprelay_env(estate.endpoint) | ttl,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while len(estate.snapshots(B, DST)) < len(volumes):
            assert first.poll() is None and time.monotonic() < deadline, "no copies in flight"
            time.sleep(0.1)
    finally:
        first.kill()  # kill -9: the lease row stays until it lapses
        first.wait()
    killed_at = time.monotonic()
    # While the lease has not lapsed, another run refuses.
    done = snaprelay(estate, policy, database, "run", "--output", "json", env=ttl)
    assert done.returncode == 1 and json.loads(done.stdout)["code"] == "conflict", done.stdout
    # After it lapses, the next run takes the interrupted session over and finishes it.
    time.sleep(max(0.0, 5.5 - (time.monotonic() - killed_at)))
    done = snaprelay(estate, policy, database, "run", "--output", "json", env=ttl)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc.get("resumed") is True and doc["status"] == "Success", doc
    assert len(estate.snapshots(B, DST)) == len(volumes), "no copy made twice"


def test_a_paused_run_whose_lease_was_taken_over_changes_nothing_more(
    estate: Estate, tmp_path: Path, database: str
) -> None:
    """A worker paused past its TTL (SIGSTOP) and resumed (SIGCONT) after another took its
    session over records and changes nothing more: its writes are fenced by the lease."""
    import signal

    moto_ext.COPY_PACING.pending_seconds = 6
    source_key = estate.create_key(None, SRC, allow_accounts=[B])
    target_key = estate.create_key(B, DST)
    instance, volumes = estate.create_instance(None, SRC, [{"kms_key": source_key}] * 2)
    policy = tmp_path / "policy.toml"
    policy.write_text(
        policy_toml("e2e-pg-fence", [instance], [{"account": B, "region": DST, "role_arn": TARGET_ROLE, "kms_key": target_key}])
    )
    ttl = {"SNAPRELAY_LEASE_TTL": "3"}
    first = subprocess.Popen(
        [str(snaprelay_bin()), "--policy", str(policy), "--state", database, "run", "--output", "json"],
        env=snaprelay_env(estate.endpoint) | ttl,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while len(estate.snapshots(B, DST)) < len(volumes):
            assert first.poll() is None and time.monotonic() < deadline, "no copies in flight"
            time.sleep(0.1)
        first.send_signal(signal.SIGSTOP)
        time.sleep(4)  # past the TTL: the lease lapses
        second = snaprelay(estate, policy, database, "run", "--output", "json", env=ttl)
        assert second.returncode == 0, second.stderr
        doc = json.loads(second.stdout)
        assert doc.get("resumed") is True and doc["status"] == "Success", doc
        first.send_signal(signal.SIGCONT)
        out, err = first.communicate(timeout=60)
    finally:
        first.kill()
    assert first.returncode == 1, err
    assert json.loads(out)["code"] in ("conflict", "state"), out
    assert "another worker" in out + err, err
    # Nothing of the first run's after the takeover: one copy per volume, no share, the
    # session as the second run finished it.
    assert len(estate.snapshots(B, DST)) == len(volumes)
    for snap in estate.snapshots(None, SRC, tags={"snaprelay:policy": "e2e-pg-fence"}):
        assert estate.snapshot_shares(None, SRC, snap["SnapshotId"]) == []
    listed = json.loads(snaprelay(estate, policy, database, "sessions", "list", "--output", "json").stdout)
    assert [s["status"] for s in listed] == ["Success"], listed
    shown = json.loads(snaprelay(estate, policy, database, "sessions", "show", listed[0]["session_id"], "--output", "json").stdout)
    assert [r["status"] for r in shown["resources"]] == ["Success"], shown


def test_state_copy_moves_a_state_between_sqlite_and_postgres_and_refuses_a_full_destination(
    estate: Estate, tmp_path: Path, database: str
) -> None:
    source_key = estate.create_key(None, SRC, allow_accounts=[B])
    target_key = estate.create_key(B, DST)
    instance, _ = estate.create_instance(None, SRC, [{"kms_key": source_key}])
    policy = tmp_path / "policy.toml"
    policy.write_text(
        policy_toml(
            "e2e-pg-copy", [instance], [{"account": B, "region": DST, "role_arn": TARGET_ROLE, "kms_key": target_key}]
        ).replace("replicas = { count = 7 }", "replicas = { count = 1 }")
    )
    file_state = str(tmp_path / "state.db")
    for _ in range(2):
        done = snaprelay(estate, policy, file_state, "run")
        assert done.returncode == 0, done.stderr

    def listing(state: str) -> tuple[list, list, list]:
        sessions = json.loads(snaprelay(estate, policy, state, "sessions", "list", "--output", "json").stdout)
        points = json.loads(snaprelay(estate, policy, state, "restore-points", "--output", "json").stdout)
        shown = [
            json.loads(snaprelay(estate, policy, state, "sessions", "show", s["session_id"], "--output", "json").stdout)
            for s in sessions
        ]
        return sessions, points, shown

    original = listing(file_state)
    assert any(p["status"] == "deleted" for p in original[1]), "retention deleted one"
    copy = subprocess.run(
        [str(snaprelay_bin()), "state", "copy", "--from", file_state, "--to", database, "--output", "json"],
        env=snaprelay_env(estate.endpoint), capture_output=True, text=True, timeout=120,
    )
    assert copy.returncode == 0, copy.stderr
    assert json.loads(copy.stdout)["copied"]["sessions"] == 2
    in_postgres = listing(database)
    assert in_postgres[0] == original[0] and in_postgres[2] == original[2]
    assert [(p["id"], p["status"], p["snapshots"]) for p in in_postgres[1]] == [
        (p["id"], p["status"], p["snapshots"]) for p in original[1]
    ], "restore points under their ids"
    # Into a state that holds something: refused, nothing copied.
    again = subprocess.run(
        [str(snaprelay_bin()), "state", "copy", "--from", file_state, "--to", database, "--output", "json"],
        env=snaprelay_env(estate.endpoint), capture_output=True, text=True, timeout=120,
    )
    assert again.returncode == 2 and json.loads(again.stdout)["code"] == "invalid_input", again.stdout
    # And back, into a new file: the same.
    back = str(tmp_path / "back.db")
    done = subprocess.run(
        [str(snaprelay_bin()), "state", "copy", "--from", database, "--to", f"sqlite://{back}"],
        env=snaprelay_env(estate.endpoint), capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert listing(back)[0] == original[0] and listing(back)[2] == original[2]
    # A run on the copy goes on where the original left off.
    done = snaprelay(estate, policy, database, "run", "--output", "json")
    assert done.returncode == 0, done.stderr
