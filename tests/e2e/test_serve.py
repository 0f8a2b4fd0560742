"""`snaprelay serve` (SPEC 6.6), the real binary against moto: it refuses a public address
without a token (exit 2), answers health, API and metrics, runs a session when asked, and
stops on SIGTERM with exit 0 well within 30 s. The endpoint-by-endpoint HTTP tests run on
the simulator (crates/server/tests/http.rs)."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from estate import Estate, snaprelay_bin, snaprelay_env
from test_restore import ec2_estate

TOKEN = "e2e-token-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(url: str, method: str = "GET", token: str | None = None) -> tuple[int, Any]:
    req = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            body = r.read().decode()
            return r.status, json.loads(body) if r.headers.get_content_type() == "application/json" else body
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read().decode() or "null")


def start(estate: Estate, tmp_path: Path, policy: str, *args: str) -> tuple[subprocess.Popen, str]:
    (tmp_path / "policies").mkdir(exist_ok=True)
    (tmp_path / "policies" / "restore-ec2.toml").write_text(policy)
    port = free_port()
    proc = subprocess.Popen(
        [str(snaprelay_bin()), "--state", str(tmp_path / "state.db"), "serve",
         "--policies", str(tmp_path / "policies"), "--listen", f"127.0.0.1:{port}", *args],
        env={**snaprelay_env(estate.endpoint), "SNAPRELAY_API_TOKEN": TOKEN},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            if request(f"{base}/healthz")[0] == 200:
                return proc, base
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"serve did not start: {proc.communicate()}")


def test_serve_runs_a_session_when_asked_and_stops_on_sigterm(estate: Estate, tmp_path: Path) -> None:
    _, policy, _ = ec2_estate(estate)
    proc, base = start(estate, tmp_path, policy)
    try:
        assert request(f"{base}/readyz")[0] == 200
        status, policies = request(f"{base}/api/v1/policies")
        assert status == 200 and policies[0]["name"] == "restore-ec2"
        assert request(f"{base}/api/v1/policies/restore-ec2/run", "POST")[0] == 401
        status, started = request(f"{base}/api/v1/policies/restore-ec2/run", "POST", TOKEN)
        assert status == 202, started
        session = started["session_id"]
        for _ in range(200):
            status, doc = request(f"{base}/api/v1/sessions/{session}")
            if doc.get("ended_at"):
                break
            time.sleep(0.1)
        assert doc["status"] == "Success", doc
        # The session's end is recorded in the state first and counted in the metrics just
        # after, so a scrape right after `ended_at` appears may be a moment early.
        counted = 'snaprelay_sessions_total{policy="restore-ec2",status="Success"} 1'
        for _ in range(50):
            status, metrics = request(f"{base}/metrics")
            assert status == 200
            if counted in metrics:
                break
            time.sleep(0.1)
        assert counted in metrics, metrics
        # The Prometheus text format by default; OpenMetrics when asked for, as Prometheus does.
        with urllib.request.urlopen(f"{base}/metrics", timeout=10) as r:
            assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4"), r.headers
            text = r.read().decode()
        assert "# TYPE snaprelay_sessions_total counter" in text and "# EOF" not in text, text
        asked = urllib.request.Request(f"{base}/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
        with urllib.request.urlopen(asked, timeout=10) as r:
            assert r.headers["Content-Type"].startswith("application/openmetrics-text"), r.headers
            assert r.read().decode().endswith("# EOF\n")
        assert 'snaprelay_resource_replicated{policy="restore-ec2"' in metrics
    finally:
        began = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert time.monotonic() - began < 30
    assert TOKEN not in out + err, "the token is never printed"


def test_a_short_token_is_warned_about_and_still_guards_the_posts(estate: Estate, tmp_path: Path) -> None:
    _, policy, _ = ec2_estate(estate)
    (tmp_path / "token").write_text("short-tok\n")
    proc, base = start(estate, tmp_path, policy, "--token-file", str(tmp_path / "token"))
    try:
        assert request(f"{base}/api/v1/policies/restore-ec2/run", "POST", TOKEN)[0] == 401, "the file wins"
        status, started = request(f"{base}/api/v1/policies/restore-ec2/run", "POST", "short-tok")
        assert status == 202, started
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "shorter than 16 characters" in err, err
    assert "short-tok" not in out + err, "the token is never printed"


def test_serve_refuses_a_public_address_without_a_token(estate: Estate, tmp_path: Path) -> None:
    _, policy, _ = ec2_estate(estate)
    (tmp_path / "p.toml").write_text(policy)
    env = {k: v for k, v in snaprelay_env(estate.endpoint).items() if k != "SNAPRELAY_API_TOKEN"}
    done = subprocess.run(
        [str(snaprelay_bin()), "--state", str(tmp_path / "s.db"), "serve", "--policies",
         str(tmp_path / "p.toml"), "--listen", "0.0.0.0:0"],
        env=env, capture_output=True, text=True, timeout=30,
    )
    assert done.returncode == 2, done.stderr
    assert "token" in done.stderr
    bad = subprocess.run(
        [str(snaprelay_bin()), "serve", "--policies", str(tmp_path / "missing")],
        env=env, capture_output=True, text=True, timeout=30,
    )
    assert bad.returncode == 2 and "missing" in bad.stderr, bad.stderr


def test_sigterm_during_copies_then_a_restart_finishes_the_session_without_a_second_copy(
    estate: Estate, tmp_path: Path
) -> None:
    import moto_ext

    moto_ext.COPY_PACING.pending_seconds = 3.0
    _, policy, _ = ec2_estate(estate)
    proc, base = start(estate, tmp_path, policy)
    try:
        status, started = request(f"{base}/api/v1/policies/restore-ec2/run", "POST", TOKEN)
        assert status == 202, started
        session = started["session_id"]
        # Until its copies are in flight.
        for _ in range(100):
            _, metrics = request(f"{base}/metrics")
            if 'snaprelay_copies_in_flight{service="ebs",account="222222222222",region="eu-west-1"} 2' in metrics:
                break
            time.sleep(0.1)
        else:
            raise AssertionError(f"the copies never started:\n{metrics}")
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    copies_before = len(estate.snapshots("222222222222", "eu-west-1"))
    assert copies_before == 2, "both copies were under way in AWS"

    proc, base = start(estate, tmp_path, policy)
    try:
        status, shown = request(f"{base}/api/v1/sessions/{session}")
        assert status == 200
        for _ in range(200):
            status, shown = request(f"{base}/api/v1/sessions/{session}")
            if shown.get("ended_at"):
                break
            time.sleep(0.1)
        assert shown["status"] == "Success", shown
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert len(estate.snapshots("222222222222", "eu-west-1")) == 2, "resumed, not copied again"
