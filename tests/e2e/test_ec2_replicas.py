"""End-to-end: the snaprelay binary replicating EC2 instances, against the patched moto.

Contract (SPEC section 5): `snaprelay --policy P --state S run --output json` prints one JSON
document; exit 0 Success, 3 Warning, 1 Failed, 2 invalid input. Snapshots snaprelay makes carry
the tags snaprelay:policy / :session / :resource / :kind (source | replica).

These tests run the binary at $SNAPRELAY_BIN (default target/debug/snaprelay); until it is
built they fail with FileNotFoundError, on purpose.

Source: the ambient account 123456789012, Region us-east-1. Target Region eu-west-1.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

import moto_ext
from estate import AMBIENT_ACCOUNT, Estate, run_snaprelay, tags_of

A = AMBIENT_ACCOUNT
B = "222222222222"
SRC = "us-east-1"
DST = "eu-west-1"
TARGET_ROLE = f"arn:aws:iam::{B}:role/snaprelay-target"
EVERYWHERE = ([None, B], [SRC, DST])


# ------------------------------------------------------------------ helpers


def toml_str(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def policy_toml(
    name: str,
    instance_ids: list[str],
    targets: list[dict[str, str]],
    extra_top: str = "",
) -> str:
    """A policy in the SPEC section 5 shape. targets: dicts of account/region/role_arn/kms_key."""
    ids = ", ".join(toml_str(i) for i in instance_ids)
    lines = [f"name = {toml_str(name)}", extra_top, "", "[source]", f'regions = ["{SRC}"]', ""]
    lines += ["[[source.resources]]", 'type = "ec2"', f"ids = [{ids}]", ""]
    for target in targets:
        lines.append("[[targets]]")
        lines += [f"{k} = {toml_str(v)}" for k, v in target.items()]
        lines.append("")
    lines += ["[retention]", "replicas = { count = 7 }", "source = { count = 2 }", ""]
    return "\n".join(lines)


def run_json(estate: Estate, policy: str, tmp_path: Path, command: str = "run") -> tuple[int, dict[str, Any], str]:
    code, stdout, stderr = run_snaprelay(estate.endpoint, policy, tmp_path, command, "--output", "json")
    try:
        document = json.loads(stdout)
    except json.JSONDecodeError as e:
        pytest.fail(f"stdout is not one JSON document ({e}); exit {code}\nstdout:\n{stdout}\nstderr:\n{stderr}")
    return code, document, stderr


def resource(document: dict[str, Any], resource_id: str) -> dict[str, Any]:
    found = [r for r in document["resources"] if r["id"] == resource_id]
    assert len(found) == 1, f"resource {resource_id} in {json.dumps(document, indent=1)}"
    return found[0]


def replica_snapshots(res: dict[str, Any], account: str, region: str) -> list[dict[str, Any]]:
    return [
        snap
        for replica in res.get("replicas", [])
        if replica["account"] == account and replica["region"] == region
        for snap in replica["snapshots"]
    ]


def assert_snaprelay_tags(snap: dict[str, Any], policy: str, session: str, instance: str, kind: str) -> None:
    tags = tags_of(snap)
    expected = {
        "snaprelay:policy": policy,
        "snaprelay:session": session,
        "snaprelay:resource": instance,
        "snaprelay:kind": kind,
    }
    assert {k: tags.get(k) for k in expected} == expected, snap["SnapshotId"]


def source_snapshots(estate: Estate, instance: str) -> list[dict[str, Any]]:
    return estate.snapshots(None, SRC, tags={"snaprelay:resource": instance, "snaprelay:kind": "source"})


def accepted_shares(share_log: list[dict]) -> list[dict]:
    return [e for e in share_log if e["accepted"] and (e["add_user_ids"] or e["add_groups"])]


def messages(res: dict[str, Any]) -> str:
    return "\n".join(str(m) for m in res.get("messages", []))


def assert_replicas_of(
    estate: Estate,
    res: dict[str, Any],
    *,
    account: str,
    volumes: list[str],
    target_key: str,
    policy: str,
    session: str,
    instance: str,
) -> list[str]:
    """Every volume has exactly one completed replica in account/DST under target_key."""
    snaps = replica_snapshots(res, account, DST)
    assert len(snaps) == len(volumes), res
    source_volumes = []
    for entry in snaps:
        assert entry["kms_key_id"] == target_key
        replica = estate.snapshot(account, DST, entry["id"])
        assert replica["OwnerId"] == account
        assert replica["State"] == "completed"
        assert replica["Encrypted"] is True
        assert replica["KmsKeyId"] == target_key
        assert_snaprelay_tags(replica, policy, session, instance, "replica")
        source = estate.snapshot(None, SRC, entry["source_id"])
        assert source["OwnerId"] == A
        assert_snaprelay_tags(source, policy, session, instance, "source")
        source_volumes.append(source["VolumeId"])
    assert sorted(source_volumes) == sorted(volumes)
    return [e["id"] for e in snaps]


# ------------------------------------------------------------------ a. same account


def test_same_account_replicates_every_volume_under_target_key(estate: Estate, tmp_path: Path) -> None:
    source_key = estate.create_key(None, SRC)
    target_key = estate.create_key(None, DST)
    # The AWS managed key is fine within one account: no share is needed.
    instance, volumes = estate.create_instance(
        None, SRC, [{"encrypted": True, "kms_key": source_key}, {"encrypted": True, "kms_key": None}]
    )
    policy = policy_toml("e2e-same-account", [instance], [{"region": DST, "kms_key": target_key}])

    code, doc, stderr = run_json(estate, policy, tmp_path)

    assert code == 0, stderr
    assert (doc["status"], doc["policy"]) == ("Success", "e2e-same-account")
    res = resource(doc, instance)
    assert (res["type"], res["status"]) == ("ec2", "Success")
    replicas = assert_replicas_of(
        estate, res, account=A, volumes=volumes, target_key=target_key,
        policy="e2e-same-account", session=doc["session_id"], instance=instance,
    )
    assert sorted(s["SnapshotId"] for s in estate.snapshots(None, DST)) == sorted(replicas)


# ------------------------------------------------------------------ b. no target key


def test_same_account_encrypted_without_target_key_warns_and_copies_nothing(estate: Estate, tmp_path: Path) -> None:
    source_key = estate.create_key(None, SRC)
    instance, _ = estate.create_instance(None, SRC, [{"encrypted": True, "kms_key": source_key}])
    policy = policy_toml("e2e-no-target-key", [instance], [{"region": DST}])

    code, doc, stderr = run_json(estate, policy, tmp_path)

    assert code == 3, stderr
    assert doc["status"] == "Warning"
    res = resource(doc, instance)
    assert res["status"] == "Warning"
    assert re.search(r"kms|key", messages(res), re.I), res
    assert replica_snapshots(res, A, DST) == []
    assert estate.snapshots(None, DST) == []


# ------------------------------------------------------------------ c. cross-account


def test_cross_account_replicates_under_target_key_and_unshares(
    estate: Estate, tmp_path: Path, share_log: list[dict]
) -> None:
    source_key = estate.create_key(None, SRC, allow_accounts=[B])
    target_key = estate.create_key(B, DST)
    instance, volumes = estate.create_instance(
        None, SRC, [{"encrypted": True, "kms_key": source_key}, {"size": 16, "encrypted": True, "kms_key": source_key}]
    )
    target = {"account": B, "region": DST, "role_arn": TARGET_ROLE, "kms_key": target_key}
    policy = policy_toml("e2e-cross-account", [instance], [target])

    code, doc, stderr = run_json(estate, policy, tmp_path)

    assert code == 0, stderr
    assert doc["status"] == "Success"
    res = resource(doc, instance)
    assert res["status"] == "Success"
    replicas = assert_replicas_of(
        estate, res, account=B, volumes=volumes, target_key=target_key,
        policy="e2e-cross-account", session=doc["session_id"], instance=instance,
    )
    assert sorted(s["SnapshotId"] for s in estate.snapshots(B, DST)) == sorted(replicas)
    # Shared with the target only, and no longer shared once the copies completed.
    assert accepted_shares(share_log), "the source snapshots were never shared"
    for entry in accepted_shares(share_log):
        assert set(entry["add_user_ids"]) == {B} and entry["add_groups"] == [], entry
    sources = source_snapshots(estate, instance)
    assert len(sources) == len(volumes)
    for snap in sources:
        assert estate.snapshot_shares(None, SRC, snap["SnapshotId"]) == []


# ------------------------------------------------------------------ d. aws/ebs cross-account


def test_cross_account_with_default_key_volume_fails_without_sharing(
    estate: Estate, tmp_path: Path, share_log: list[dict]
) -> None:
    source_key = estate.create_key(None, SRC, allow_accounts=[B])
    target_key = estate.create_key(B, DST)
    instance, (good_volume, default_key_volume) = estate.create_instance(
        None, SRC, [{"encrypted": True, "kms_key": source_key}, {"encrypted": True, "kms_key": None}]
    )
    target = {"account": B, "region": DST, "role_arn": TARGET_ROLE, "kms_key": target_key}
    policy = policy_toml("e2e-default-key", [instance], [target])

    code, doc, stderr = run_json(estate, policy, tmp_path)

    assert code == 1, stderr
    assert doc["status"] == "Failed"
    res = resource(doc, instance)
    assert res["status"] == "Failed"
    text = messages(res)
    assert default_key_volume in text and "aws/ebs" in text, res
    assert accepted_shares(share_log) == [], "a snapshot was shared"
    for snap in source_snapshots(estate, instance):
        assert estate.snapshot_shares(None, SRC, snap["SnapshotId"]) == []
    assert estate.snapshots(B, DST) == [] and estate.snapshots(B, SRC) == []


def test_cross_account_with_default_key_volume_succeeds_through_a_reencrypt_key(
    estate: Estate, tmp_path: Path, share_log: list[dict]
) -> None:
    """The default-key workaround (SPEC 6.4): the aws/ebs snapshot is copied in the source
    account under the re-encrypt key, the copy is shared and copied by the target, then
    unshared and deleted. The original is never shared (moto_ext refuses and logs any attempt)."""
    source_key = estate.create_key(None, SRC, allow_accounts=[B])
    reencrypt_key = estate.create_key(None, SRC, allow_accounts=[B])
    target_key = estate.create_key(B, DST)
    instance, (good_volume, default_key_volume) = estate.create_instance(
        None, SRC, [{"encrypted": True, "kms_key": source_key}, {"encrypted": True, "kms_key": None}]
    )
    target = {"account": B, "region": DST, "role_arn": TARGET_ROLE, "kms_key": target_key}
    policy = policy_toml("e2e-reencrypt", [instance], [target]).replace(
        "[[source.resources]]", f'reencrypt_keys = {{ "{SRC}" = "{reencrypt_key}" }}\n\n[[source.resources]]', 1
    )

    code, plan, _ = run_json(estate, policy, tmp_path, "plan")
    assert code == 0, plan
    decision = plan["tasks"][0]["targets"][0]
    assert decision["action"] == "replicate", decision
    assert decision["reencrypt"] == {"kms_key_id": reencrypt_key, "volumes": [default_key_volume]}, decision
    code, doc, stderr = run_json(estate, policy, tmp_path)

    assert code == 0, stderr
    res = resource(doc, instance)
    assert res["status"] == "Success", res
    # Both volumes replicated under the target key; no extra copy and no share left.
    replicas = estate.snapshots(B, DST)
    assert len(replicas) == 2 and {r["KmsKeyId"] for r in replicas} == {target_key}, replicas
    sources = estate.snapshots(None, SRC, tags={"snaprelay:policy": "e2e-reencrypt"})
    assert {s["Tags"] and dict((t["Key"], t["Value"]) for t in s["Tags"])["snaprelay:kind"] for s in sources} == {"source"}
    assert len(sources) == 2, sources
    for snap in sources:
        assert estate.snapshot_shares(None, SRC, snap["SnapshotId"]) == []
    # The original default-key snapshot was never shared; the copy was, under the key.
    original = [s["SnapshotId"] for s in source_snapshots(estate, instance) if s["VolumeId"] == default_key_volume]
    shared = {e["snapshot_id"] for e in accepted_shares(share_log)}
    assert original and not shared & set(original), share_log
    assert all(not e["accepted"] is False for e in share_log), "no share was refused"
    assert len(shared) == 2, share_log


# ------------------------------------------------------------------ e. mixed session


def test_one_failed_instance_fails_the_session_but_not_the_other(
    estate: Estate, tmp_path: Path, share_log: list[dict]
) -> None:
    source_key = estate.create_key(None, SRC, allow_accounts=[B])
    target_key = estate.create_key(B, DST)
    good, good_volumes = estate.create_instance(None, SRC, [{"encrypted": True, "kms_key": source_key}])
    bad, _ = estate.create_instance(None, SRC, [{"encrypted": True, "kms_key": None}])
    target = {"account": B, "region": DST, "role_arn": TARGET_ROLE, "kms_key": target_key}
    policy = policy_toml("e2e-mixed", [good, bad], [target])

    code, doc, stderr = run_json(estate, policy, tmp_path)

    assert code == 1, stderr
    assert doc["status"] == "Failed"
    assert resource(doc, bad)["status"] == "Failed"
    good_res = resource(doc, good)
    assert good_res["status"] == "Success"
    replicas = assert_replicas_of(
        estate, good_res, account=B, volumes=good_volumes, target_key=target_key,
        policy="e2e-mixed", session=doc["session_id"], instance=good,
    )
    assert sorted(s["SnapshotId"] for s in estate.snapshots(B, DST)) == sorted(replicas)
    for entry in accepted_shares(share_log):
        assert set(entry["add_user_ids"]) == {B}, entry
    for instance in (good, bad):
        for snap in source_snapshots(estate, instance):
            assert estate.snapshot_shares(None, SRC, snap["SnapshotId"]) == []


# ------------------------------------------------------------------ f. invalid input


@pytest.mark.parametrize("case", ["unknown_key", "bad_account", "malformed_kms_key", "key_in_other_region"])
def test_invalid_policy_exits_2_naming_the_field_and_changes_nothing(
    estate: Estate, tmp_path: Path, share_log: list[dict], case: str
) -> None:
    source_key = estate.create_key(None, SRC, allow_accounts=[B])
    target_key = estate.create_key(B, DST)
    other_region_key = estate.create_key(B, SRC)
    instance, _ = estate.create_instance(None, SRC, [{"encrypted": True, "kms_key": source_key}])
    target = {"account": B, "region": DST, "role_arn": TARGET_ROLE, "kms_key": target_key}
    extra_top = ""
    if case == "unknown_key":
        extra_top, field, value = 'colour = "blue"', "colour", "colour"
    elif case == "bad_account":
        target["account"], field, value = "12345", "account", "12345"
    elif case == "malformed_kms_key":
        target["kms_key"] = "arn:aws:kms:eu-west-1:222222222222:not-a-key"
        field, value = "kms_key", target["kms_key"]
    else:
        target["kms_key"], field, value = other_region_key, "kms_key", other_region_key
    policy = policy_toml("e2e-invalid", [instance], [target], extra_top=extra_top)
    before = estate.all_snapshots(*EVERYWHERE)

    code, stdout, stderr = run_snaprelay(estate.endpoint, policy, tmp_path, "run", "--output", "json")

    assert code == 2, f"exit {code}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    assert field in stderr and value in stderr, stderr
    assert "panicked" not in stderr and "RUST_BACKTRACE" not in stderr, stderr
    # --output json still prints one JSON document: the error.
    doc = json.loads(stdout)
    assert doc["code"] == "invalid_input", doc
    error = doc["error"]
    assert field in error and value in error
    assert estate.all_snapshots(*EVERYWHERE) == before
    assert before == {k: [] for k in before}
    assert share_log == []


# ------------------------------------------------------------------ g. plan


def test_plan_changes_nothing(estate: Estate, tmp_path: Path, share_log: list[dict]) -> None:
    source_key = estate.create_key(None, SRC, allow_accounts=[B])
    target_key = estate.create_key(B, DST)
    instance, _ = estate.create_instance(None, SRC, [{"encrypted": True, "kms_key": source_key}])
    target = {"account": B, "region": DST, "role_arn": TARGET_ROLE, "kms_key": target_key}
    policy = policy_toml("e2e-plan", [instance], [target])

    code, doc, stderr = run_json(estate, policy, tmp_path, command="plan")

    assert code == 0, stderr
    assert instance in json.dumps(doc), doc
    assert estate.all_snapshots(*EVERYWHERE) == {
        (a, r): [] for a in EVERYWHERE[0] for r in EVERYWHERE[1]
    }
    assert share_log == []


# ------------------------------------------------------------------ h. key policy


def test_source_key_not_admitting_target_is_refused_before_anything_is_shared_or_copied(
    estate: Estate, tmp_path: Path, share_log: list[dict]
) -> None:
    """run's preflight (issue 6) reads the source key's policy: a replica the target account
    could not copy is refused up front, with the fix, instead of a copy that AWS fails (in
    AWS often hours later, as a copy in state error; that path is tested on the simulator and
    by the conformance suite)."""
    source_key = estate.create_key(None, SRC)  # key policy: owner account only
    target_key = estate.create_key(B, DST)
    instance, _ = estate.create_instance(None, SRC, [{"encrypted": True, "kms_key": source_key}])
    target = {"account": B, "region": DST, "role_arn": TARGET_ROLE, "kms_key": target_key}
    policy = policy_toml("e2e-key-policy", [instance], [target])

    code, doc, stderr = run_json(estate, policy, tmp_path)

    assert code == 1, stderr
    assert doc["status"] == "Failed"
    res = resource(doc, instance)
    assert res["status"] == "Failed"
    text = messages(res)
    assert "preflight check" in text and source_key in text, res
    assert f"arn:aws:iam::{B}:root" in text and "kms:GrantIsForAWSResource" in text, res
    assert "refused 1 replica" in stderr
    # Nothing was shared or copied; the source restore point is still taken.
    assert share_log == []
    assert estate.snapshots(B, DST) == []
    assert res["source"] is not None


# ------------------------------------------------------------------ i. several targets


def test_tag_selected_instances_replicate_to_every_target_with_one_share_per_account(
    estate: Estate, tmp_path: Path, share_log: list[dict]
) -> None:
    """One policy, three targets: same account another Region (workflow A), and another
    account in two Regions (workflow B, one share for both, removed at the end)."""
    west = "us-west-2"
    central = "eu-central-1"
    source_key = estate.create_key(None, SRC, allow_accounts=[B])
    same_account_key = estate.create_key(None, west)
    b_key_dst = estate.create_key(B, DST)
    b_key_central = estate.create_key(B, central, alias="dr-central")
    gold = [
        estate.create_instance(None, SRC, [{"kms_key": source_key}, {"encrypted": False}], tags={"tier": "gold"})
        for _ in range(2)
    ]
    estate.create_instance(None, SRC, [{"kms_key": source_key}], tags={"tier": "bronze"})
    policy = "\n".join(
        [
            'name = "e2e-multi"',
            "[source]",
            f'regions = ["{SRC}"]',
            "[[source.resources]]",
            'type = "ec2"',
            'tags = { tier = "gold" }',
            "[[targets]]",
            f'region = "{west}"',
            f'kms_key = "{same_account_key}"',
            "[[targets]]",
            f'account = "{B}"',
            f'region = "{DST}"',
            f'role_arn = "{TARGET_ROLE}"',
            f'kms_key = "{b_key_dst}"',
            "[[targets]]",
            f'region = "{central}"',
            f'role_arn = "{TARGET_ROLE}"',
            'kms_key = "alias/dr-central"',
            "",
        ]
    )

    code, doc, stderr = run_json(estate, policy, tmp_path)

    assert code == 0, (doc, stderr)
    assert sorted(r["id"] for r in doc["resources"]) == sorted(i for i, _ in gold)
    for instance, volumes in gold:
        res = resource(doc, instance)
        assert res["status"] == "Success", res
        places = sorted((r["account"], r["region"]) for r in res["replicas"])
        assert places == sorted([(A, west), (B, DST), (B, central)])
        for account, region, key in [(A, west, same_account_key), (B, DST, b_key_dst), (B, central, b_key_central)]:
            snaps = replica_snapshots(res, account, region)
            assert len(snaps) == len(volumes)
            for entry in snaps:
                replica = estate.snapshot(account, region, entry["id"])
                # The alias named in the policy is resolved to the key's ARN, and the
                # unencrypted volume is copied encrypted.
                assert (replica["Encrypted"], replica["KmsKeyId"], entry["kms_key_id"]) == (True, key, key)
        for snap in source_snapshots(estate, instance):
            assert estate.snapshot_shares(None, SRC, snap["SnapshotId"]) == []
    # Each source snapshot was shared with B exactly once, however many Regions B has.
    adds = [e for e in accepted_shares(share_log)]
    shared_ids = [e["snapshot_id"] for e in adds]
    assert len(shared_ids) == len(set(shared_ids)) == 4, adds
    assert all(e["add_user_ids"] == [B] for e in adds)


# ------------------------------------------------------------------ j. the state store


def test_restore_points_lists_each_run_per_resource_and_place(estate: Estate, tmp_path: Path) -> None:
    source_key = estate.create_key(None, SRC, allow_accounts=[B])
    target_key = estate.create_key(B, DST)
    web, _ = estate.create_instance(None, SRC, [{"kms_key": source_key, "size": 8}, {"kms_key": source_key, "size": 20}])
    other, _ = estate.create_instance(None, SRC, [{"kms_key": source_key, "size": 8}])
    policy = policy_toml(
        "e2e-points", [web, other], [{"account": B, "region": DST, "role_arn": TARGET_ROLE, "kms_key": target_key}]
    )
    sessions = []
    for _ in range(2):
        code, doc, stderr = run_json(estate, policy, tmp_path)
        assert code == 0, stderr
        sessions.append(doc["session_id"])

    code, out, stderr = run_snaprelay(
        estate.endpoint, policy, tmp_path, "restore-points", "--resource", web, "--output", "json"
    )
    assert code == 0, stderr
    points = json.loads(out)
    assert sorted((p["kind"], p["account"], p["region"], p["session_id"]) for p in points) == sorted(
        [("source", AMBIENT_ACCOUNT, SRC, s) for s in sessions] + [("replica", B, DST, s) for s in sessions]
    )
    assert all(p["resource_id"] == web and p["policy"] == "e2e-points" for p in points)
    for p in points:
        assert sorted(s["size_gib"] for s in p["snapshots"]) == [8, 20]
        assert all(s["kms_key_id"] == (source_key if p["kind"] == "source" else target_key) for s in p["snapshots"])
    # `restore-points list`, as `sessions list` lists sessions (SPEC 5: "restore-points (list)").
    code, out, stderr = run_snaprelay(
        estate.endpoint, policy, tmp_path, "restore-points", "list", "--resource", web, "--output", "json"
    )
    assert code == 0, stderr
    assert json.loads(out) == points

    code, out, stderr = run_snaprelay(estate.endpoint, policy, tmp_path, "restore-points")
    assert code == 0, stderr
    assert f"ec2 {web} (policy e2e-points)" in out and f"ec2 {other} (policy e2e-points)" in out
    assert out.count(f"replica {B}/{DST}") == 2 and "28 GiB" in out


def test_log_format_json_gives_machines_one_event_per_line(estate: Estate, tmp_path: Path) -> None:
    source_key = estate.create_key(None, SRC, allow_accounts=[B])
    target_key = estate.create_key(B, DST)
    instance, _ = estate.create_instance(None, SRC, [{"kms_key": source_key}])
    policy = policy_toml(
        "e2e-events", [instance], [{"account": B, "region": DST, "role_arn": TARGET_ROLE, "kms_key": target_key}]
    )
    code, _, stderr = run_snaprelay(estate.endpoint, policy, tmp_path, "run", "--log-format", "json")
    assert code == 0, stderr
    events = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    assert len(events) == len([l for l in stderr.splitlines() if l.strip()]), "every line is an event"
    steps = [(e["step"], e["outcome"]) for e in events if e["event"] == "step"]
    assert steps == [
        ("snapshot", "ok"),
        ("wait-snapshot", "ok"),
        ("share", "ok"),
        ("copy", "ok"),
        ("wait-copy", "ok"),
        ("unshare", "ok"),
    ]
    assert all(e["resource"] == instance for e in events if e["event"] == "progress")
    tasks = [(e["resource"], e["status"], e["ended"], e["total"]) for e in events if e["event"] == "task"]
    assert tasks == [(instance, "Success", 1, 1)]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", e["time"]) for e in events)


def test_sessions_list_and_show_read_back_the_run(estate: Estate, tmp_path: Path) -> None:
    source_key = estate.create_key(None, SRC, allow_accounts=[B])
    target_key = estate.create_key(B, DST)
    instance, _ = estate.create_instance(None, SRC, [{"kms_key": source_key}])
    policy = policy_toml(
        "e2e-sessions", [instance], [{"account": B, "region": DST, "role_arn": TARGET_ROLE, "kms_key": target_key}]
    )
    code, doc, stderr = run_json(estate, policy, tmp_path)
    assert code == 0, stderr

    code, _, stderr = run_snaprelay(estate.endpoint, policy, tmp_path, "sessions")
    assert code == 2, "a bare `sessions` is a usage error"

    code, out, stderr = run_snaprelay(estate.endpoint, policy, tmp_path, "sessions", "list", "--output", "json")
    assert code == 0, stderr
    sessions = json.loads(out)
    assert [(s["session_id"], s["policy"], s["status"]) for s in sessions] == [
        (doc["session_id"], "e2e-sessions", "Success")
    ]

    code, out, stderr = run_snaprelay(
        estate.endpoint, policy, tmp_path, "sessions", "show", doc["session_id"], "--output", "json"
    )
    assert code == 0, stderr
    shown = json.loads(out)
    # The run's own document (less what retention did after it), plus its steps: what it
    # copied and its phases are kept with it.
    assert {k: v for k, v in shown.items() if k != "steps"} == {
        k: v for k, v in doc.items() if k != "retention"
    }
    steps = [(s["step"], s["outcome"]) for s in shown["steps"]]
    assert steps == [
        ("snapshot", "ok"),
        ("wait-snapshot", "ok"),
        ("share", "ok"),
        ("copy", "ok"),
        ("wait-copy", "ok"),
        ("unshare", "ok"),
    ]

    code, out, stderr = run_snaprelay(estate.endpoint, policy, tmp_path, "sessions", "show", "no-such-session")
    assert code == 2 and "no-such-session" in stderr


# ------------------------------------------------------------------ k. plan output


def test_plan_json_names_the_workflow_and_key_of_each_target(estate: Estate, tmp_path: Path) -> None:
    source_key = estate.create_key(None, SRC, allow_accounts=[B])
    target_key = estate.create_key(B, DST)
    good, _ = estate.create_instance(None, SRC, [{"kms_key": source_key}])
    default_key, _ = estate.create_instance(None, SRC, [{"encrypted": True}])
    policy = policy_toml(
        "e2e-plan",
        [good, default_key],
        [
            {"account": B, "region": DST, "role_arn": TARGET_ROLE, "kms_key": target_key},
            {"region": "us-west-2"},
        ],
    )
    code, plan, stderr = run_json(estate, policy, tmp_path, "plan")
    assert code == 0, stderr
    assert plan["source_account"] == A
    tasks = {t["instance"]["id"]: t for t in plan["tasks"]}
    good_targets = [(t["action"], t.get("workflow"), t.get("kms_key_id")) for t in tasks[good]["targets"]]
    assert good_targets == [("replicate", "cross-account-ec2", target_key), ("skip", None, None)]
    default_targets = [t["action"] for t in tasks[default_key]["targets"]]
    assert default_targets == ["refuse", "skip"]


# ------------------------------------------------------------------ l. the copy quota


def test_copies_beyond_the_quota_queue_and_retry_instead_of_failing(estate: Estate, tmp_path: Path) -> None:
    """SPEC section 3: at most 20 EBS copies in flight per account and destination Region; a
    ResourceLimitExceeded puts the copy back in the queue, it never fails the task."""
    moto_ext.COPY_PACING.pending_seconds = 0.5
    source_key = estate.create_key(None, SRC, allow_accounts=[B])
    target_key = estate.create_key(B, DST)
    instances = [
        estate.create_instance(None, SRC, [{"kms_key": source_key}] * 3, tags={"backup": "bulk"})
        for _ in range(8)
    ]
    # 24 copies to one place: snaprelay keeps 20 in flight at most (7 restore points of 3).
    policy = policy_toml(
        "e2e-quota", [i for i, _ in instances], [{"account": B, "region": DST, "role_arn": TARGET_ROLE, "kms_key": target_key}]
    )
    code, doc, stderr = run_json(estate, policy, tmp_path)
    assert code == 0, (doc, stderr)
    assert max(moto_ext.COPY_PACING.most_in_flight.values()) <= 20
    assert len([s for s in estate.snapshots(B, DST) if s["State"] == "completed"]) == 24

    # Someone else's copies use most of the quota: AWS refuses ours, and they are retried.
    moto_ext.COPY_PACING.limit = 4
    code, doc, stderr = run_json(estate, policy, tmp_path)
    assert code == 0, (doc, stderr)
    assert moto_ext.COPY_PACING.refused > 0
    assert all(r["status"] == "Success" for r in doc["resources"])
    assert len([s for s in estate.snapshots(B, DST) if s["State"] == "completed"]) == 48


# ------------------------------------------------------------------ m. defaults and typos


def test_a_target_without_account_or_role_is_the_source_account_reached_with_the_source_role(
    estate: Estate, tmp_path: Path
) -> None:
    """SPEC section 5: a target's account defaults to the source account. With a source role,
    that is the role's account, not the account of the ambient credentials."""
    source = "333333333333"
    source_key = estate.create_key(source, SRC)
    estate.create_key(source, DST, alias="dr-local")
    ambient_key = estate.create_key(None, DST, alias="dr-local")  # same alias, wrong account
    instance, volumes = estate.create_instance(source, SRC, [{"kms_key": source_key}])
    policy = "\n".join(
        [
            'name = "e2e-source-role"',
            "[source]",
            f'role_arn = "arn:aws:iam::{source}:role/snaprelay-source"',
            f'regions = ["{SRC}"]',
            "[[source.resources]]",
            'type = "ec2"',
            f'ids = ["{instance}"]',
            "[[targets]]",
            f'region = "{DST}"',
            'kms_key = "alias/dr-local"',
            "",
        ]
    )
    code, doc, stderr = run_json(estate, policy, tmp_path)
    assert code == 0, (doc, stderr)
    [replica] = resource(doc, instance)["replicas"]
    assert (replica["account"], replica["region"]) == (source, DST)
    snaps = estate.snapshots(source, DST, tags={"snaprelay:kind": "replica"})
    assert len(snaps) == len(volumes)
    assert all(s["KmsKeyId"] != ambient_key for s in snaps)
    assert estate.snapshots(None, DST) == []


@pytest.mark.parametrize("field", ["source.regions[0]", "targets[0].region"])
def test_a_region_aws_does_not_know_is_invalid_input_naming_the_field(
    estate: Estate, tmp_path: Path, field: str
) -> None:
    instance, _ = estate.create_instance(None, SRC, [{"encrypted": False}])
    source_region, target_region = ("us-wset-2", DST) if field.startswith("source") else (SRC, "eu-westt-1")
    policy = "\n".join(
        [
            'name = "e2e-typo"',
            "[source]",
            f'regions = ["{source_region}"]',
            "[[source.resources]]",
            'type = "ec2"',
            f'ids = ["{instance}"]',
            "[[targets]]",
            f'account = "{B}"',
            f'role_arn = "{TARGET_ROLE}"',
            f'region = "{target_region}"',
            "",
        ]
    )
    before = estate.all_snapshots(*EVERYWHERE)
    code, stdout, stderr = run_snaprelay(estate.endpoint, policy, tmp_path, "run")
    assert code == 2, stderr
    assert field in stderr and "not a Region AWS knows" in stderr, stderr
    assert estate.all_snapshots(*EVERYWHERE) == before


def test_unencrypted_volumes_without_a_target_key_replicate_with_a_warning_and_their_devices(
    estate: Estate, tmp_path: Path
) -> None:
    instance, volumes = estate.create_instance(None, SRC, [{"encrypted": False}, {"encrypted": False}])
    policy = policy_toml("e2e-plain", [instance], [{"region": DST}])
    code, doc, stderr = run_json(estate, policy, tmp_path)
    assert code == 3, (doc, stderr)
    res = resource(doc, instance)
    assert res["status"] == "Warning"
    assert "left unencrypted" in messages(res)
    snaps = replica_snapshots(res, A, DST)
    assert len(snaps) == len(volumes)
    devices = sorted(s["device"] for s in snaps)
    assert devices == ["/dev/sdf", "/dev/xvda"]
    for entry in snaps:
        replica = estate.snapshot(None, DST, entry["id"])
        assert replica["Encrypted"] is False and entry["kms_key_id"] is None
        assert tags_of(replica)["snaprelay:device"] == entry["device"]


# ------------------------------------------------------------------ n. interruption


def test_an_interrupted_run_removes_its_shares_and_unfinished_copies(estate: Estate, tmp_path: Path) -> None:
    """SPEC section 4: no share is left behind and no orphan copy, even when the operator
    presses Ctrl-C while copies are in flight."""
    import signal
    import subprocess
    import time

    from estate import snaprelay_bin, snaprelay_env

    moto_ext.COPY_PACING.pending_seconds = 60
    source_key = estate.create_key(None, SRC, allow_accounts=[B])
    target_key = estate.create_key(B, DST)
    instance, volumes = estate.create_instance(None, SRC, [{"kms_key": source_key}] * 2)
    policy = policy_toml(
        "e2e-interrupt", [instance], [{"account": B, "region": DST, "role_arn": TARGET_ROLE, "kms_key": target_key}]
    )
    (tmp_path / "policy.toml").write_text(policy)
    proc = subprocess.Popen(
        [str(snaprelay_bin()), "--policy", str(tmp_path / "policy.toml"), "--state", str(tmp_path / "state.db"),
         "run", "--output", "json"],
        env=snaprelay_env(estate.endpoint),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while len(estate.snapshots(B, DST)) < len(volumes):
            assert proc.poll() is None and time.monotonic() < deadline, "no copies in flight"
            time.sleep(0.1)
        assert all(s["State"] == "pending" for s in estate.snapshots(B, DST))
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        proc.kill()

    assert proc.returncode == 1, stderr
    assert "panicked" not in stderr
    doc = json.loads(stdout)
    assert doc["status"] == "Failed"
    assert any("interrupted" in m for m in doc["messages"]), doc
    assert "interrupted" in messages(resource(doc, instance))
    # What became of the copies in flight is said once, not once per copy (issue 15, item 8).
    text = messages(resource(doc, instance))
    assert "could not follow the copies" not in text, text
    assert text.count(f"the {len(volumes)} copies in flight there are deleted") == 1, text
    assert "the next `snaprelay run` copies again" in text, text
    for snap in source_snapshots(estate, instance):
        assert estate.snapshot_shares(None, SRC, snap["SnapshotId"]) == []
    assert estate.snapshots(B, DST) == [], "unfinished copies are deleted"
    code, out, _ = run_snaprelay(estate.endpoint, policy, tmp_path, "sessions", "list", "--output", "json")
    assert [s["status"] for s in json.loads(out)] == ["Failed"]
