"""`snaprelay demo`, the README's quick start: the seed's three outcomes on the built-in
simulator, with no emulator and no AWS account."""

from __future__ import annotations

import json
import os
import subprocess

from estate import snaprelay_bin


def test_demo_ends_in_success_warning_and_failed_with_exit_code_0() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    done = subprocess.run(
        [str(snaprelay_bin()), "demo", "--output", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    reports = json.loads(done.stdout)
    assert [r["status"] for r in reports] == ["Success", "Warning", "Failed", "Success", "Success"]
    failed = {r["id"]: r for r in reports[2]["resources"] if r["status"] == "Failed"}
    assert "billing" in failed
    assert any("aws/ebs" in " ".join(r["messages"]) for r in failed.values())
    # With a re-encrypt key, the same default-key resources reach the vault.
    assert {r["id"] for r in reports[3]["resources"] if r["status"] == "Success"} >= {"billing"}
    assert len(reports[3]["resources"]) == 2
    # An Aurora cluster reaches the vault through its two copies.
    assert [(r["type"], r["id"], r["status"]) for r in reports[4]["resources"]] == [("aurora", "ledger", "Success")]
