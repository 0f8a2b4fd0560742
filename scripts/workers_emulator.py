"""Two `snaprelay serve` workers on one PostgreSQL state, and a takeover, against a local AWS
emulator: to try as a new user what `scripts/workers-emulator` shows.

Starts moto (with tests/e2e/moto_ext's corrections, copies made to take 10 s) and a private
PostgreSQL (scripts/pg-test-server) on 127.0.0.1, builds an instance with two encrypted
volumes, and starts workers `a` and `b` on the same policy and database with a lease TTL of
SNAPRELAY_LEASE_TTL seconds (default 5). It asks worker a to run the policy, kills it with
SIGKILL while its copies are in flight, and prints how long worker b took to hold the lease
and to finish the session, what b's API and metrics say, and that no copy was made twice and
no share was left. Everything it started is stopped at the end.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "e2e"))

import moto_ext  # noqa: E402
from estate import Estate, snaprelay_bin, snaprelay_env  # noqa: E402

SOURCE, TARGET_ACCOUNT, TARGET_REGION = "us-east-1", "222222222222", "eu-west-1"
TOKEN = "workers-demo-token-0123456789"
POLICY = """name = "two-workers"

[source]
regions = ["us-east-1"]

[[source.resources]]
type = "ec2"
ids = ["{instance}"]

[[targets]]
account = "222222222222"
region = "eu-west-1"
role_arn = "arn:aws:iam::222222222222:role/snaprelay-target"
kms_key = "alias/dr-vault"
"""


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode()
    except OSError as e:
        return getattr(e, "code", 0), ""


def post(url: str) -> dict:
    req = urllib.request.Request(url, method="POST", data=b"", headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read().decode())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def lease_holder(base: str) -> str | None:
    code, body = get(f"{base}/api/v1/policies")
    lease = json.loads(body)[0]["lease"] if code == 200 else None
    return lease["holder"] if lease else None


def main() -> int:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    ttl = os.environ.get("SNAPRELAY_LEASE_TTL", "5")
    server = moto_ext.start()
    moto_ext.COPY_PACING.pending_seconds = 10
    pg_dir = Path(tempfile.mkdtemp(prefix="snaprelay-workers-pg-"))
    workers: dict[str, subprocess.Popen] = {}
    try:
        database = subprocess.run(
            [str(REPO / "scripts" / "pg-test-server"), "start", str(pg_dir)],
            check=True, capture_output=True, text=True,
        ).stdout.strip()
        estate = Estate(server.endpoint)
        source_key = estate.create_key(None, SOURCE, allow_accounts=[TARGET_ACCOUNT], alias="app-data")
        estate.create_key(TARGET_ACCOUNT, TARGET_REGION, alias="dr-vault")
        instance, volumes = estate.create_instance(
            None, SOURCE, volumes=[{"size": 8, "kms_key": source_key}, {"size": 20, "kms_key": source_key}]
        )
        policies = pg_dir.parent / f"{pg_dir.name}-policies"
        policies.mkdir()
        (policies / "two-workers.toml").write_text(POLICY.format(instance=instance))
        print(f"AWS emulator on {server.endpoint}; PostgreSQL state {database}; lease TTL {ttl} s")
        bases = {}
        for name in ("a", "b"):
            port = free_port()
            workers[name] = subprocess.Popen(
                [str(snaprelay_bin()), "--state", database, "serve", "--policies", str(policies),
                 "--listen", f"127.0.0.1:{port}"],
                env={**snaprelay_env(server.endpoint), "SNAPRELAY_API_TOKEN": TOKEN, "SNAPRELAY_LEASE_TTL": ttl,
                     "SNAPRELAY_LOG": "info"},
                stdout=subprocess.DEVNULL,
                stderr=(pg_dir.parent / f"{pg_dir.name}-worker-{name}.log").open("w"),
            )
            bases[name] = f"http://127.0.0.1:{port}"
            while get(f"{bases[name]}/readyz")[0] != 200:
                time.sleep(0.1)
            print(f"worker {name}: pid {workers[name].pid}, {bases[name]}")

        session = post(f"{bases['a']}/api/v1/policies/two-workers/run")["session_id"]
        print(f"worker a runs session {session} of instance {instance} ({len(volumes)} volumes)")
        while len(estate.snapshots(TARGET_ACCOUNT, TARGET_REGION)) < len(volumes):
            time.sleep(0.1)
        print(f"copies in flight; lease held by: {lease_holder(bases['b'])}")
        workers["a"].kill()
        workers["a"].wait()
        killed = time.monotonic()
        print("worker a killed (SIGKILL)")
        while not (lease_holder(bases["b"]) or "").startswith(f"process {workers['b'].pid} "):
            time.sleep(0.1)
        took = time.monotonic() - killed
        print(f"worker b holds the lease {took:.1f} s later: {lease_holder(bases['b'])}")
        while True:
            code, body = get(f"{bases['b']}/api/v1/sessions/{session}")
            if code == 200 and json.loads(body)["status"] not in ("Running", "Interrupted"):
                break
            time.sleep(0.2)
        doc = json.loads(body)
        print(f"session {session}: {doc['status']} {time.monotonic() - killed:.1f} s after the kill")
        _, metrics = get(f"{bases['b']}/metrics")
        for line in metrics.splitlines():
            if re.match(r"snaprelay_(worker_lease_takeovers_total|sessions_total)\{", line):
                print(f"worker b metric: {line}")
        copies = estate.snapshots(TARGET_ACCOUNT, TARGET_REGION)
        shares = [
            s for snap in estate.snapshots(None, SOURCE, tags={"snaprelay:policy": "two-workers"})
            for s in estate.snapshot_shares(None, SOURCE, snap["SnapshotId"])
        ]
        print(f"replicas in {TARGET_ACCOUNT}/{TARGET_REGION}: {len(copies)} (one per volume); shares left: {len(shares)}")
        return 0 if doc["status"] == "Success" and len(copies) == len(volumes) and not shares else 1
    finally:
        for proc in workers.values():
            proc.kill()
            proc.wait()
        subprocess.run([str(REPO / "scripts" / "pg-test-server"), "stop", str(pg_dir)], check=False)
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
