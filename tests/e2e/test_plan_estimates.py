"""End-to-end: what a replica costs (SPEC 6.5), the snaprelay binary against the patched moto.

`plan --output json` gives each `tasks[].targets[]` entry its `copies` (one per EBS volume, one
per RDS copy step) with `{"bytes", "full", "basis"}`, and the top level an `estimate` with the
totals (`bytes`, `full_copies`, `monthly_storage_usd`, `transfer_usd`) from `[prices]`. `run`
reports the same figures for what it copied (`copied`) and its `phases`.

moto reports no `FullSnapshotSizeInBytes` (the basis is then the volume size) and has no EBS
direct API for EC2 snapshots (an incremental copy's size is then `unknown`, bytes null).

Source: the ambient account 123456789012, Region us-east-1; targets in eu-west-1.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from estate import AMBIENT_ACCOUNT, Estate, run_snaprelay

A = AMBIENT_ACCOUNT
B = "222222222222"
SRC = "us-east-1"
DST = "eu-west-1"
TARGET_ROLE = f"arn:aws:iam::{B}:role/snaprelay-target"
GIB = 1 << 30
BASES = {"FullSnapshotSizeInBytes", "volume size", "allocated storage", "changed blocks", "unknown"}


def toml_str(value: str) -> str:
    return json.dumps(value)


def policy_toml(
    name: str,
    ec2_ids: list[str],
    targets: list[dict[str, Any]],
    rds_ids: list[str] = (),
    extra: str = "",
) -> str:
    lines = [f"name = {toml_str(name)}", "", "[source]", f'regions = ["{SRC}"]', ""]
    if ec2_ids:
        lines += ["[[source.resources]]", 'type = "ec2"', f"ids = [{', '.join(map(toml_str, ec2_ids))}]", ""]
    if rds_ids:
        lines += ["[[source.resources]]", 'type = "rds"', f"ids = [{', '.join(map(toml_str, rds_ids))}]", ""]
    for target in targets:
        lines.append("[[targets]]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in target.items()]
        lines.append("")
    lines += [extra, ""]
    return "\n".join(lines)


def run_json(estate: Estate, policy: str, tmp_path: Path, command: str) -> tuple[int, dict[str, Any], str]:
    code, stdout, stderr = run_snaprelay(estate.endpoint, policy, tmp_path, command, "--output", "json")
    try:
        return code, json.loads(stdout), stderr
    except json.JSONDecodeError as e:
        pytest.fail(f"stdout is not one JSON document ({e}); exit {code}\nstdout:\n{stdout}\nstderr:\n{stderr}")


def run_text(estate: Estate, policy: str, tmp_path: Path, command: str) -> str:
    code, stdout, stderr = run_snaprelay(estate.endpoint, policy, tmp_path, command)
    assert code == 0, stderr
    return stdout


def entries(plan: dict[str, Any]) -> list[dict[str, Any]]:
    return [t for task in plan["tasks"] for t in task["targets"]]


def assert_consistent(plan: dict[str, Any], prices: tuple[float, float] = (0.05, 0.02)) -> None:
    """Every copy has the SPEC's fields, and the totals are the sum of the copies."""
    total = 0
    full = 0
    for task in plan["tasks"]:
        for entry in task["targets"]:
            assert isinstance(entry["copies"], list), entry
            for copy in entry["copies"]:
                assert set(copy) == {"source", "estimate"}, copy
                est = copy["estimate"]
                assert set(est) >= {"bytes", "full", "basis"}, est
                assert est["basis"] in BASES, est
                assert (est["bytes"] is None) == (est["basis"] == "unknown"), est
                total += est["bytes"] or 0
                full += est["full"]
    e = plan["estimate"]
    assert set(e) >= {"bytes", "full_copies", "monthly_storage_usd", "transfer_usd"}, e
    assert (e["bytes"], e["full_copies"]) == (total, full), e
    assert (e["prices"]["snapshot_gb_month"], e["prices"]["transfer_gb"]) == prices
    assert sum(t["bytes"] for t in e["targets"]) == e["bytes"]
    assert sum(t["full_copies"] for t in e["targets"]) == e["full_copies"]


def test_plan_counts_full_copies_before_the_first_run_and_incremental_ones_after(
    estate: Estate, tmp_path: Path
) -> None:
    source_key = estate.create_key(None, SRC, allow_accounts=[B])
    same_account_key = estate.create_key(None, DST)
    vault_key = estate.create_key(B, DST)
    instance, volumes = estate.create_instance(
        None, SRC, [{"size": 8, "kms_key": source_key}, {"size": 16, "kms_key": source_key}]
    )
    policy = policy_toml(
        "e2e-estimates",
        [instance],
        [
            {"region": DST, "kms_key": same_account_key},
            {"account": B, "region": DST, "role_arn": TARGET_ROLE, "kms_key": vault_key},
        ],
    )

    # Before the first run: every copy is full, at the volume size (moto reports no
    # FullSnapshotSizeInBytes, and there is no snapshot yet anyway).
    code, before, stderr = run_json(estate, policy, tmp_path, "plan")
    assert code == 0, stderr
    assert_consistent(before)
    for entry in entries(before):
        assert entry["copies"] == [
            {"source": volumes[0], "estimate": {"bytes": 8 * GIB, "full": True, "basis": "volume size"}},
            {"source": volumes[1], "estimate": {"bytes": 16 * GIB, "full": True, "basis": "volume size"}},
        ], entry
    est = before["estimate"]
    assert (est["bytes"], est["full_copies"]) == (48 * GIB, 4)
    # Both targets are in another Region: all 48 GiB are stored and transferred.
    assert est["monthly_storage_usd"] == pytest.approx(48 * 0.05)
    assert est["transfer_usd"] == pytest.approx(48 * 0.02)
    assert [(t["target"], t["account"], t["region"], t["bytes"]) for t in est["targets"]] == [
        (0, A, DST, 24 * GIB),
        (1, B, DST, 24 * GIB),
    ]
    text = run_text(estate, policy, tmp_path, "plan")
    assert f"copy of {volumes[0]}: full, 8.00 GiB" in text, text
    assert "Estimate: 48.00 GiB" in text and "4 full copies" in text and "$2.40/month" in text, text

    # A run copies in full, and says so.
    code, run, stderr = run_json(estate, policy, tmp_path, "run")
    assert code == 0, stderr
    assert run["status"] == "Success"
    copied = run["copied"]
    assert (copied["bytes"], copied["full_copies"]) == (48 * GIB, 4), copied
    assert sorted((r["account"], r["region"]) for r in copied["replicas"]) == sorted([(A, DST), (B, DST)])
    for r in copied["replicas"]:
        assert (r["type"], r["id"]) == ("ec2", instance)
        assert [c["estimate"]["basis"] for c in r["copies"]] == ["volume size", "volume size"], r
    assert set(run["phases"]) == {"snapshot_seconds", "share_seconds", "copy_seconds", "cleanup_seconds"}
    assert all(isinstance(v, int) and v >= 0 for v in run["phases"].values()), run["phases"]
    # Kept with the session: `sessions show` says it later, as the run did.
    code, stdout, stderr = run_snaprelay(
        estate.endpoint, policy, tmp_path, "sessions", "show", run["session_id"], "--output", "json"
    )
    assert code == 0, stderr
    shown = json.loads(stdout)
    assert (shown["copied"], shown["phases"]) == (copied, run["phases"]), shown
    code, stdout, stderr = run_snaprelay(estate.endpoint, policy, tmp_path, "sessions", "show", run["session_id"])
    assert code == 0 and "Copied: 48.00 GiB" in stdout and "4 full copies" in stdout, stdout

    # After it: the copies are incremental (the previous replica is there under the same key);
    # moto cannot say how much changed, so their size is unknown rather than guessed.
    code, after, stderr = run_json(estate, policy, tmp_path, "plan")
    assert code == 0, stderr
    assert_consistent(after)
    for entry in entries(after):
        assert [c["source"] for c in entry["copies"]] == volumes
        for c in entry["copies"]:
            assert c["estimate"] == {"bytes": None, "full": False, "basis": "unknown"}, entry
    est = after["estimate"]
    assert (est["bytes"], est["full_copies"], est["unknown_copies"]) == (0, 0, 4)
    assert est["bytes"] < before["estimate"]["bytes"]
    assert est["monthly_storage_usd"] == 0 and est["transfer_usd"] == 0
    text = run_text(estate, policy, tmp_path, "plan")
    assert f"copy of {volumes[0]}: incremental, size unknown" in text, text
    assert "4 copies of unknown size" in text, text

    # A second run copies incrementally. Its exact size would come from ListChangedBlocks,
    # which moto answers for EC2 snapshots with an error: unknown, and the run succeeds.
    code, second, stderr = run_json(estate, policy, tmp_path, "run")
    assert code == 0, stderr
    assert second["status"] == "Success"
    unknown = {"bytes": None, "full": False, "basis": "unknown"}
    for r in second["copied"]["replicas"]:
        assert [c["estimate"] for c in r["copies"]] == [unknown, unknown], r
    assert (second["copied"]["full_copies"], second["copied"]["unknown_copies"]) == (0, 4)
    # Now there are two source snapshots to predict from; moto still cannot compare them.
    code, third, stderr = run_json(estate, policy, tmp_path, "plan")
    assert code == 0, stderr
    assert_consistent(third)
    assert all(c["estimate"] == unknown for e in entries(third) for c in e["copies"])


def test_a_new_target_key_makes_the_next_copies_full(estate: Estate, tmp_path: Path) -> None:
    key = estate.create_key(None, DST)
    other_key = estate.create_key(None, DST)
    instance, volumes = estate.create_instance(None, SRC, [{"size": 8, "encrypted": False}])
    policy = policy_toml("e2e-estimates-rekey", [instance], [{"region": DST, "kms_key": key}])
    code, _, stderr = run_json(estate, policy, tmp_path, "run")
    assert code == 0, stderr

    rekeyed = policy_toml("e2e-estimates-rekey", [instance], [{"region": DST, "kms_key": other_key}])
    code, plan, stderr = run_json(estate, rekeyed, tmp_path, "plan")
    assert code == 0, stderr
    [entry] = entries(plan)
    assert entry["copies"] == [
        {"source": volumes[0], "estimate": {"bytes": 8 * GIB, "full": True, "basis": "volume size"}}
    ]


def test_prices_from_the_policy_price_the_estimate(estate: Estate, tmp_path: Path) -> None:
    key = estate.create_key(None, DST)
    instance, _ = estate.create_instance(None, SRC, [{"size": 10, "encrypted": False}])
    policy = policy_toml(
        "e2e-estimates-prices",
        [instance],
        [{"region": DST, "kms_key": key}],
        extra="[prices]\nsnapshot_gb_month = 0.1\ntransfer_gb = 0.5\n",
    )
    code, plan, stderr = run_json(estate, policy, tmp_path, "plan")
    assert code == 0, stderr
    assert_consistent(plan, prices=(0.1, 0.5))
    assert plan["estimate"]["monthly_storage_usd"] == pytest.approx(1.0)
    assert plan["estimate"]["transfer_usd"] == pytest.approx(5.0)


@pytest.mark.parametrize(
    ("prices", "named"),
    [
        ("snapshot_gb_month = -1", "prices.snapshot_gb_month = -1"),
        ('transfer_gb = "free"', 'prices.transfer_gb = "free"'),
        ("transfer_gb = inf", "prices.transfer_gb = inf"),
        ("storage = 1", "prices.storage"),
    ],
)
def test_a_bad_price_is_invalid_input_naming_the_field(
    estate: Estate, tmp_path: Path, prices: str, named: str
) -> None:
    policy = policy_toml("e2e-estimates-bad", ["i-0123456789abcdef0"], [{"region": DST}], extra=f"[prices]\n{prices}\n")
    code, doc, _ = run_json(estate, policy, tmp_path, "plan")
    assert code == 2
    assert doc["code"] == "invalid_input"
    assert named in doc["error"], doc


def test_a_two_step_rds_copy_is_two_full_copies_every_time(estate: Estate, tmp_path: Path) -> None:
    source_key = estate.create_key(None, SRC, allow_accounts=[B])
    target_key = estate.create_key(B, DST)
    estate.default_rds_key(B, SRC)
    db = estate.create_db_instance(None, SRC, "orders", kms_key=source_key)
    policy = policy_toml(
        "e2e-estimates-rds", [], [{"account": B, "region": DST, "role_arn": TARGET_ROLE, "kms_key": target_key}],
        rds_ids=[db],
    )
    code, plan, stderr = run_json(estate, policy, tmp_path, "plan")
    assert code == 0, stderr
    assert_consistent(plan)
    [entry] = entries(plan)
    assert entry["two_step"] is True
    full = {"bytes": 20 * GIB, "full": True, "basis": "allocated storage"}
    assert entry["copies"] == [{"source": db, "estimate": full}, {"source": "intermediate", "estimate": full}]
    est = plan["estimate"]
    assert (est["bytes"], est["full_copies"]) == (40 * GIB, 2)
    # The intermediate copy stays in the source Region and is deleted: only the second copy is
    # stored and crosses Regions.
    assert est["monthly_storage_usd"] == pytest.approx(20 * 0.05)
    assert est["transfer_usd"] == pytest.approx(20 * 0.02)
    text = run_text(estate, policy, tmp_path, "plan")
    assert "the two-step RDS copy is full every time (2 full copies)" in text, text
    assert "rds_single_step = true copies once and saves the intermediate copy (20.00 GiB" in text, text
