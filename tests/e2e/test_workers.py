"""Several `serve` workers on one PostgreSQL state (SPEC 6.7), the real binary against moto
with slow copies: a worker killed (kill -9) while its session's copies are in flight has its
session finished by another worker, with no copy made twice and no share left; a database
restarted mid-session lets the session complete once it is back. The tick-by-tick claim of a
seconds-field schedule by three workers runs in-process (crates/server/tests/workers.rs)."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from pathlib import Path

import moto_ext
from estate import Estate, snaprelay_bin, snaprelay_env
from test_ec2_replicas import B, DST, SRC, TARGET_ROLE, policy_toml
from test_postgres_state import SCRIPT, database  # noqa: F401 (the fixture)
from test_serve import TOKEN, free_port, request

TTL = "3"


def worker(estate: Estate, policies: Path, state: str, log: Path, ttl: str = TTL) -> tuple[subprocess.Popen, str]:
    """A `serve` worker on `state`; its output goes to `log` (read it after it ends)."""
    port = free_port()
    proc = subprocess.Popen(
        [str(snaprelay_bin()), "--state", state, "serve", "--policies", str(policies), "--listen", f"127.0.0.1:{port}"],
        env={**snaprelay_env(estate.endpoint), "SNAPRELAY_API_TOKEN": TOKEN, "SNAPRELAY_LEASE_TTL": ttl},
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(150):
        try:
            if request(f"{base}/readyz")[0] == 200:
                return proc, base
        except OSError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"serve did not start: {log.read_text()}")


def estate_with_policy(estate: Estate, tmp_path: Path, name: str) -> tuple[Path, list[str]]:
    source_key = estate.create_key(None, SRC, allow_accounts=[B])
    target_key = estate.create_key(B, DST)
    instance, volumes = estate.create_instance(None, SRC, [{"kms_key": source_key}] * 2)
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / f"{name}.toml").write_text(
        policy_toml(name, [instance], [{"account": B, "region": DST, "role_arn": TARGET_ROLE, "kms_key": target_key}])
    )
    return policies, volumes


def wait_for_copies(estate: Estate, count: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while len(estate.snapshots(B, DST)) < count:
        assert proc.poll() is None and time.monotonic() < deadline, "no copies in flight"
        time.sleep(0.05)


def session_status(base: str, session: str) -> str:
    code, doc = request(f"{base}/api/v1/sessions/{session}")
    return doc.get("status", "") if code == 200 else ""


def metric(base: str, name: str) -> float:
    _, text = request(f"{base}/metrics")
    found = re.findall(rf"^{re.escape(name)}(?:{{[^}}]*}})? ([0-9.e+-]+)$", text, re.M)
    return sum(float(v) for v in found)


def assert_nothing_left(estate: Estate, policy: str, volumes: list[str]) -> None:
    assert len(estate.snapshots(B, DST)) == len(volumes), "one copy per volume, none twice"
    for snap in estate.snapshots(None, SRC, tags={"snaprelay:policy": policy}):
        assert estate.snapshot_shares(None, SRC, snap["SnapshotId"]) == [], "no share left"


def test_a_killed_workers_session_is_finished_by_another_worker(estate: Estate, tmp_path: Path, database: str) -> None:  # noqa: F811
    moto_ext.COPY_PACING.pending_seconds = 6
    policies, volumes = estate_with_policy(estate, tmp_path, "e2e-takeover")
    a, a_base = worker(estate, policies, database, tmp_path / "a.log")
    b, b_base = worker(estate, policies, database, tmp_path / "b.log")
    try:
        code, started = request(f"{a_base}/api/v1/policies/e2e-takeover/run", "POST", TOKEN)
        assert code == 202, started
        session = started["session_id"]
        wait_for_copies(estate, len(volumes), a)
        # Both workers show who holds the policy's lease: worker a.
        _, listed = request(f"{b_base}/api/v1/policies")
        assert listed[0]["lease"]["holder"].startswith(f"process {a.pid} "), listed
        a.kill()  # kill -9, copies in flight
        a.wait()
        killed = time.monotonic()
        taken_over = wait_for_holder(b_base, b.pid, killed, 20)
        while session_status(b_base, session) != "Success":
            assert time.monotonic() - killed < 60, request(f"{b_base}/api/v1/sessions/{session}")
            time.sleep(0.2)
        finished = time.monotonic() - killed
        print(f"\ntakeover after kill -9: lease taken {taken_over:.1f} s, session finished {finished:.1f} s (TTL {TTL} s)")
        # Not before the holder's lease lapsed, and within the TTL plus one look (a third of it).
        assert float(TTL) - 0.5 <= taken_over <= float(TTL) + 2.5, taken_over
        assert metric(b_base, "snaprelay_worker_lease_takeovers_total") == 1
        code, doc = request(f"{b_base}/api/v1/sessions/{session}")
        assert [r["status"] for r in doc["resources"]] == ["Success"], doc
        assert_nothing_left(estate, "e2e-takeover", volumes)
        # The console says which worker runs a policy's session; none now.
        _, page = request(f"{b_base}/")
        assert "Worker" in page and "no session or drill of this policy runs" in page
    finally:
        for p in (a, b):
            p.kill()
            p.wait()
    assert "taking the session over" in (tmp_path / "b.log").read_text()


def wait_for_holder(base: str, pid: int, since: float, within: float) -> float:
    """Seconds from `since` until the policy's lease is held by the worker of `pid`."""
    while True:
        _, listed = request(f"{base}/api/v1/policies")
        lease = listed[0]["lease"]
        if lease and lease["holder"].startswith(f"process {pid} "):
            return time.monotonic() - since
        assert time.monotonic() - since < within, f"worker {pid} never took the lease: {listed}"
        time.sleep(0.1)


def test_a_worker_stopped_by_sigterm_lets_another_resume_at_once(estate: Estate, tmp_path: Path, database: str) -> None:  # noqa: F811
    """A stopping worker gives its leases up: the other resumes the interrupted session at
    its next look (a third of the TTL), not after the TTL."""
    moto_ext.COPY_PACING.pending_seconds = 6
    policies, volumes = estate_with_policy(estate, tmp_path, "e2e-handover")
    ttl = "15"
    a, a_base = worker(estate, policies, database, tmp_path / "a.log", ttl)
    b, b_base = worker(estate, policies, database, tmp_path / "b.log", ttl)
    try:
        code, started = request(f"{a_base}/api/v1/policies/e2e-handover/run", "POST", TOKEN)
        assert code == 202, started
        wait_for_copies(estate, len(volumes), a)
        a.send_signal(signal.SIGTERM)
        stopped = time.monotonic()
        assert a.wait(timeout=30) == 0
        handed = wait_for_holder(b_base, b.pid, stopped, 10)
        print(f"\nhandover after SIGTERM: {handed:.1f} s (TTL {ttl} s)")
        while session_status(b_base, started["session_id"]) != "Success":
            assert time.monotonic() - stopped < 60
            time.sleep(0.2)
        assert_nothing_left(estate, "e2e-handover", volumes)
    finally:
        for p in (a, b):
            p.kill()
            p.wait()


def test_a_database_restarted_mid_session_lets_the_session_complete(estate: Estate, tmp_path: Path, database: str) -> None:  # noqa: F811
    moto_ext.COPY_PACING.pending_seconds = 8
    policies, volumes = estate_with_policy(estate, tmp_path, "e2e-db-restart")
    a, base = worker(estate, policies, database, tmp_path / "a.log")
    try:
        code, started = request(f"{base}/api/v1/policies/e2e-db-restart/run", "POST", TOKEN)
        assert code == 202, started
        session = started["session_id"]
        wait_for_copies(estate, len(volumes), a)
        server_dir = pg_directory(database)
        subprocess.run([str(SCRIPT), "down", str(server_dir)], check=True)
        down = time.monotonic()
        # While the database is away the worker says so; nothing is started blind.
        while request(f"{base}/readyz")[0] == 200 and time.monotonic() - down < 10:
            time.sleep(0.2)
        assert request(f"{base}/readyz")[0] != 200
        time.sleep(4)
        subprocess.run([str(SCRIPT), "up", str(server_dir)], check=True)
        up = time.monotonic()
        while session_status(base, session) != "Success":
            assert time.monotonic() - up < 90, (request(f"{base}/api/v1/sessions/{session}"), (tmp_path / "a.log").read_text()[-3000:])
            time.sleep(0.3)
        print(f"\ndatabase down {up - down:.1f} s; the session completed {time.monotonic() - up:.1f} s after it returned")
        assert a.poll() is None, "the worker lived through the outage"
        assert_nothing_left(estate, "e2e-db-restart", volumes)
    finally:
        a.kill()
        a.wait()


def pg_directory(url: str) -> Path:
    """The directory of the test server behind `url` (the fixture's, under /tmp)."""
    port = url.rsplit(":", 1)[1].split("/")[0]
    for candidate in Path("/tmp").glob("snaprelay-pg-e2e-*"):
        options = candidate / "options"
        if options.exists() and f"-p {port} " in options.read_text():
            return candidate
    raise AssertionError(f"no test server directory for {url}")
