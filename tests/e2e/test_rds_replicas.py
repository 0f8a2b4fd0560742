"""End-to-end: the snaprelay binary replicating RDS DB instances, against the patched moto.

SPEC workflow A for RDS (same account, another Region) and workflow C (another account: share,
copy into the target account in the source Region with a staging key, copy that to the target
Region, delete the intermediate, unshare), plus the single-step option.

Contract (SPEC section 5 with `type = "rds"`; the RDS issue):
- per-target keys `staging_kms_key` (key of workflow C's intermediate copy, in the source
  Region, in the target account; default: the target account's AWS managed `alias/aws/rds`
  key in the source Region) and `rds_single_step = true` (one CopyDBSnapshot across accounts
  and Regions; default false);
- source DB snapshot identifier `snaprelay-<policy>-<db>-<session id lowercased>` sanitized to
  RDS rules; the replica has the same identifier in the target account/Region; workflow C's
  intermediate copy has the suffix `-staging`;
- tags on every DB snapshot snaprelay creates: snaprelay:policy / :session / :resource (the DB
  instance identifier) / :kind (source | replica | staging);
- run JSON: resources[] of `type` "rds" with `id` the DB identifier; replicas[].snapshots[] with
  `id` the replica's DB snapshot ARN, `source_id` the source DB snapshot ARN (in the source
  account, also for the two-step flow), `kms_key_id` the key ARN encrypting the replica;
- exit codes 0 / 3 / 1 / 2 as for EC2; `plan --output json` tasks of `type` "rds" whose targets
  carry `action`, `workflow` (same-account | cross-account-rds), `kms_key_id`, and for a two-step
  cross-account-rds target `staging_kms_key_id` plus a warning or note that the second copy is a
  full, non-incremental copy.

moto_ext.DB_SHARE_LOG and DB_SNAPSHOT_LOG record every share request and every snapshot creation
or copy, so these tests can prove that something never happened (a share, an intermediate copy).

Source: the ambient account 123456789012, Region us-east-1. Target account 222222222222.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

import moto_ext
from estate import AMBIENT_ACCOUNT, Estate, run_snaprelay, tags_of_db
from test_ec2_replicas import messages, replica_snapshots, resource, run_json, toml_str

A = AMBIENT_ACCOUNT
B = "222222222222"
SRC = "us-east-1"
DST = "eu-west-1"
TARGET_ROLE = f"arn:aws:iam::{B}:role/snaprelay-target"
EVERYWHERE = ([None, B], [SRC, DST])
FULL_COPY = re.compile(r"full|non-incremental|not incremental", re.I)


# ------------------------------------------------------------------ helpers


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{toml_str(k)} = {toml_value(v)}" for k, v in value.items()) + " }"
    return toml_str(str(value))


def policy_toml(name: str, resources: list[dict[str, Any]], targets: list[dict[str, Any]]) -> str:
    """A policy in the SPEC section 5 shape. resources: {"type": "rds", "ids": [...]} or
    {"type": "rds", "tags": {...}}; targets: dicts of account/region/role_arn/kms_key/
    staging_kms_key/rds_single_step (values written as given: a str stays a TOML string)."""
    lines = [f"name = {toml_str(name)}", "", "[source]", f'regions = ["{SRC}"]', ""]
    for res in resources:
        lines.append("[[source.resources]]")
        lines += [f"{k} = {toml_value(v)}" for k, v in res.items()]
        lines.append("")
    for target in targets:
        lines.append("[[targets]]")
        lines += [f"{k} = {toml_value(v)}" for k, v in target.items()]
        lines.append("")
    lines += ["[retention]", "replicas = { count = 7 }", "source = { count = 2 }", ""]
    return "\n".join(lines)


def rds_policy(name: str, dbs: list[str], targets: list[dict[str, Any]]) -> str:
    return policy_toml(name, [{"type": "rds", "ids": dbs}], targets)


def rds_snapshot_id(policy: str, db: str, session: str) -> str:
    """`snaprelay-<policy>-<db>-<session lowercased>` under RDS identifier rules (letters,
    digits, hyphens; first a letter; no '--', no trailing '-'; at most 255), as RDS stores
    it (lowercase)."""
    raw = f"snaprelay-{policy}-{db}-{session.lower()}"
    ident = re.sub(r"-{2,}", "-", re.sub(r"[^A-Za-z0-9-]", "-", raw))
    return ident[:255].rstrip("-").lower()


def db_arn(account: str, region: str, identifier: str) -> str:
    return f"arn:aws:rds:{region}:{account}:snapshot:{identifier}"


def assert_db_tags(snap: dict[str, Any], policy: str, session: str, db: str, kind: str) -> None:
    tags = tags_of_db(snap)
    expected = {
        "snaprelay:policy": policy,
        "snaprelay:session": session,
        "snaprelay:resource": db,
        "snaprelay:kind": kind,
    }
    assert {k: tags.get(k) for k in expected} == expected, snap["DBSnapshotIdentifier"]


def accepted_db_shares(db_share_log: list[dict]) -> list[dict]:
    return [e for e in db_share_log if e["accepted"] and e["values_to_add"]]


def copies(db_snapshot_log: list[dict], accepted: bool = True) -> list[dict]:
    return [e for e in db_snapshot_log if e["action"] == "CopyDBSnapshot" and e["accepted"] == accepted]


def staging_ever(db_snapshot_log: list[dict]) -> list[dict]:
    """Every request that created (or tried to create) an intermediate snapshot: `-staging`,
    or `-staging-N` for the N-th staging key of one target account."""
    return [e for e in db_snapshot_log if re.search(r"-staging(-\d+)?$", e["identifier"])]


def assert_replica(
    estate: Estate,
    res: dict[str, Any],
    *,
    account: str,
    region: str,
    target_key: str,
    policy: str,
    session: str,
    db: str,
) -> dict[str, Any]:
    """The resource has exactly one replica DB snapshot in account/region, available, under
    target_key, named and tagged per the contract, copied from the tagged source in A/SRC."""
    assert res["type"] == "rds", res
    [entry] = replica_snapshots(res, account, region)
    ident = rds_snapshot_id(policy, db, session)
    assert entry["id"] == db_arn(account, region, ident), entry
    assert entry["source_id"] == db_arn(A, SRC, ident), entry
    assert entry["kms_key_id"] == target_key
    replica = estate.db_snapshot(account, region, ident)
    assert (replica["Status"], replica["Encrypted"], replica["KmsKeyId"]) == ("available", True, target_key)
    assert replica["DBSnapshotArn"] == entry["id"]
    assert_db_tags(replica, policy, session, db, "replica")
    source = estate.db_snapshot(A, SRC, ident)
    assert source["DBSnapshotArn"] == entry["source_id"]
    assert source["DBInstanceIdentifier"] == db
    assert_db_tags(source, policy, session, db, "source")
    return replica


def plan_task(plan: dict[str, Any], db: str) -> dict[str, Any]:
    found = [t for t in plan["tasks"] if t.get("type") == "rds" and t.get("id") == db]
    assert len(found) == 1, f"one rds task for {db} in {json.dumps(plan, indent=1)}"
    return found[0]


def remarks(target: dict[str, Any]) -> str:
    return "\n".join(str(x) for x in list(target.get("warnings") or []) + list(target.get("notes") or []))


# ------------------------------------------------------------------ a. workflow A


def test_same_account_cross_region_replicates_db_under_target_key(
    estate: Estate, tmp_path: Path, db_share_log: list[dict], db_snapshot_log: list[dict]
) -> None:
    source_key = estate.create_key(None, SRC)
    target_key = estate.create_key(None, DST)
    db = estate.create_db_instance(None, SRC, "orders", kms_key=source_key)
    policy = rds_policy("e2e-rds-same", [db], [{"region": DST, "kms_key": target_key}])

    code, doc, stderr = run_json(estate, policy, tmp_path)

    assert code == 0, (doc, stderr)
    assert (doc["status"], doc["policy"]) == ("Success", "e2e-rds-same")
    res = resource(doc, db)
    assert res["status"] == "Success", res
    assert [(r["account"], r["region"]) for r in res["replicas"]] == [(A, DST)]
    replica = assert_replica(
        estate, res, account=A, region=DST, target_key=target_key,
        policy="e2e-rds-same", session=doc["session_id"], db=db,
    )
    assert [s["DBSnapshotIdentifier"] for s in estate.db_snapshots(None, DST)] == [replica["DBSnapshotIdentifier"]]
    assert db_share_log == [], "nothing is shared within one account"
    assert staging_ever(db_snapshot_log) == []


def test_same_account_encrypted_db_without_target_key_warns_and_copies_nothing(
    estate: Estate, tmp_path: Path, db_snapshot_log: list[dict]
) -> None:
    db = estate.create_db_instance(None, SRC, "orders", kms_key=estate.create_key(None, SRC))
    policy = rds_policy("e2e-rds-no-key", [db], [{"region": DST}])

    code, doc, stderr = run_json(estate, policy, tmp_path)

    assert code == 3, (doc, stderr)
    assert doc["status"] == "Warning"
    res = resource(doc, db)
    assert (res["type"], res["status"]) == ("rds", "Warning")
    assert re.search(r"kms|key", messages(res), re.I), res
    assert replica_snapshots(res, A, DST) == []
    assert estate.db_snapshots(None, DST) == []
    assert copies(db_snapshot_log) == [] and copies(db_snapshot_log, accepted=False) == []


# ------------------------------------------------------------------ b. workflow C


def test_cross_account_same_region_makes_one_copy_and_unshares(
    estate: Estate, tmp_path: Path, db_share_log: list[dict], db_snapshot_log: list[dict]
) -> None:
    source_key = estate.create_key(None, SRC, allow_accounts=[B])
    target_key = estate.create_key(B, SRC)
    db = estate.create_db_instance(None, SRC, "orders", kms_key=source_key)
    target = {"account": B, "region": SRC, "role_arn": TARGET_ROLE, "kms_key": target_key}
    policy = rds_policy("e2e-rds-xacct-same-region", [db], [target])

    code, doc, stderr = run_json(estate, policy, tmp_path)

    assert code == 0, (doc, stderr)
    res = resource(doc, db)
    assert res["status"] == "Success", res
    replica = assert_replica(
        estate, res, account=B, region=SRC, target_key=target_key,
        policy="e2e-rds-xacct-same-region", session=doc["session_id"], db=db,
    )
    # One copy, straight into the target key: no intermediate.
    assert [(e["account"], e["region"], e["identifier"]) for e in copies(db_snapshot_log)] == [
        (B, SRC, replica["DBSnapshotIdentifier"])
    ]
    assert staging_ever(db_snapshot_log) == []
    assert [s["DBSnapshotIdentifier"] for s in estate.db_snapshots(B, SRC)] == [replica["DBSnapshotIdentifier"]]
    # Shared with B only, and no longer.
    shares = accepted_db_shares(db_share_log)
    assert [(e["snapshot_id"], e["values_to_add"]) for e in shares] == [(replica["DBSnapshotIdentifier"], [B])]
    assert estate.db_snapshot_shares(None, SRC, replica["DBSnapshotIdentifier"]) == []


def test_cross_account_cross_region_two_step_leaves_no_intermediate_and_no_share(
    estate: Estate, tmp_path: Path, db_share_log: list[dict], db_snapshot_log: list[dict]
) -> None:
    """Workflow C in two steps, with snapshots that take time as in AWS: the share waits for
    the source snapshot, the second copy for the first, the cleanup for the final replica."""
    moto_ext.RDS_COPY_PACING.create_seconds = 0.3
    moto_ext.RDS_COPY_PACING.pending_seconds = 0.6
    source_key = estate.create_key(None, SRC, allow_accounts=[B])
    target_key = estate.create_key(B, DST)
    default_staging = estate.default_rds_key(B, SRC)  # the documented default staging key
    db = estate.create_db_instance(None, SRC, "orders", kms_key=source_key)
    target = {"account": B, "region": DST, "role_arn": TARGET_ROLE, "kms_key": target_key}
    policy = rds_policy("e2e-rds-two-step", [db], [target])

    code, doc, stderr = run_json(estate, policy, tmp_path)

    assert code == 0, (doc, stderr)
    assert doc["status"] == "Success"
    res = resource(doc, db)
    assert res["status"] == "Success", res
    session = doc["session_id"]
    replica = assert_replica(
        estate, res, account=B, region=DST, target_key=target_key,
        policy="e2e-rds-two-step", session=session, db=db,
    )
    ident = replica["DBSnapshotIdentifier"]
    staging = f"{ident}-staging"
    # The intermediate copy existed, in B and the source Region, under the staging key, tagged...
    [staging_copy] = staging_ever(db_snapshot_log)
    assert (staging_copy["account"], staging_copy["region"], staging_copy["accepted"]) == (B, SRC, True)
    assert staging_copy["source"] == db_arn(A, SRC, ident)
    assert staging_copy["result_kms_key_id"] == default_staging
    assert staging_copy["tags"].get("snaprelay:kind") == "staging"
    assert staging_copy["tags"].get("snaprelay:session") == session
    # ... the final copy was made from it ...
    finals = [e for e in copies(db_snapshot_log) if (e["account"], e["region"]) == (B, DST)]
    assert [(e["identifier"], e["source"], e["result_kms_key_id"]) for e in finals] == [
        (ident, db_arn(B, SRC, staging), target_key)
    ]
    assert len(copies(db_snapshot_log)) == 2
    # ... and is gone; only the replica is left in B.
    assert estate.db_snapshots(B, SRC) == []
    assert [s["DBSnapshotIdentifier"] for s in estate.db_snapshots(B, DST)] == [ident]
    # The source snapshot was shared with B (once), and the share was removed afterwards.
    shares = accepted_db_shares(db_share_log)
    assert [(e["snapshot_id"], e["values_to_add"]) for e in shares] == [(ident, [B])]
    removals = [e for e in db_share_log if e["accepted"] and B in e["values_to_remove"]]
    assert len(removals) == 1 and db_share_log.index(removals[0]) > db_share_log.index(shares[0])
    assert estate.db_snapshot_shares(None, SRC, ident) == []


def test_cross_account_with_staging_kms_key_uses_it_for_the_intermediate_copy(
    estate: Estate, tmp_path: Path, db_snapshot_log: list[dict]
) -> None:
    source_key = estate.create_key(None, SRC, allow_accounts=[B])
    target_key = estate.create_key(B, DST)
    staging_key = estate.create_key(B, SRC, alias="rds-staging")
    db = estate.create_db_instance(None, SRC, "orders", kms_key=source_key)
    target = {
        "account": B, "region": DST, "role_arn": TARGET_ROLE, "kms_key": target_key,
        "staging_kms_key": "alias/rds-staging",
    }
    policy = rds_policy("e2e-rds-staging-key", [db], [target])

    code, plan, stderr = run_json(estate, policy, tmp_path, "plan")
    assert code == 0, (plan, stderr)
    [planned] = plan_task(plan, db)["targets"]
    assert (planned["action"], planned["workflow"]) == ("replicate", "cross-account-rds")
    assert (planned["kms_key_id"], planned["staging_kms_key_id"]) == (target_key, staging_key)

    code, doc, stderr = run_json(estate, policy, tmp_path)

    assert code == 0, (doc, stderr)
    assert_replica(
        estate, resource(doc, db), account=B, region=DST, target_key=target_key,
        policy="e2e-rds-staging-key", session=doc["session_id"], db=db,
    )
    [staging_copy] = staging_ever(db_snapshot_log)
    assert (staging_copy["account"], staging_copy["region"], staging_copy["result_kms_key_id"]) == (B, SRC, staging_key)
    assert estate.db_snapshots(B, SRC) == []


def test_single_step_option_copies_once_across_accounts_and_regions(
    estate: Estate, tmp_path: Path, db_share_log: list[dict], db_snapshot_log: list[dict]
) -> None:
    source_key = estate.create_key(None, SRC, allow_accounts=[B])
    target_key = estate.create_key(B, DST)
    db = estate.create_db_instance(None, SRC, "orders", kms_key=source_key)
    target = {"account": B, "region": DST, "role_arn": TARGET_ROLE, "kms_key": target_key, "rds_single_step": True}
    policy = rds_policy("e2e-rds-single-step", [db], [target])

    code, plan, stderr = run_json(estate, policy, tmp_path, "plan")
    assert code == 0, (plan, stderr)
    [planned] = plan_task(plan, db)["targets"]
    assert (planned["action"], planned["workflow"], planned["kms_key_id"]) == ("replicate", "cross-account-rds", target_key)
    assert planned.get("staging_kms_key_id") is None, planned

    code, doc, stderr = run_json(estate, policy, tmp_path)

    assert code == 0, (doc, stderr)
    replica = assert_replica(
        estate, resource(doc, db), account=B, region=DST, target_key=target_key,
        policy="e2e-rds-single-step", session=doc["session_id"], db=db,
    )
    ident = replica["DBSnapshotIdentifier"]
    assert [(e["account"], e["region"], e["identifier"], e["source"]) for e in copies(db_snapshot_log)] == [
        (B, DST, ident, db_arn(A, SRC, ident))
    ]
    assert staging_ever(db_snapshot_log) == [], "no intermediate snapshot was ever created"
    assert estate.db_snapshots(B, SRC) == []
    assert [e["values_to_add"] for e in accepted_db_shares(db_share_log)] == [[B]]
    assert estate.db_snapshot_shares(None, SRC, ident) == []


# ------------------------------------------------------------------ c. aws/rds


def test_cross_account_with_aws_rds_key_fails_without_ever_sharing(
    estate: Estate, tmp_path: Path, db_share_log: list[dict], db_snapshot_log: list[dict]
) -> None:
    target_key = estate.create_key(B, DST)
    db = estate.create_db_instance(None, SRC, "legacy")  # encrypted with aws/rds
    target = {"account": B, "region": DST, "role_arn": TARGET_ROLE, "kms_key": target_key}
    policy = rds_policy("e2e-rds-default-key", [db], [target])

    code, doc, stderr = run_json(estate, policy, tmp_path)

    assert code == 1, (doc, stderr)
    assert doc["status"] == "Failed"
    res = resource(doc, db)
    assert (res["type"], res["status"]) == ("rds", "Failed")
    text = messages(res)
    assert db in text and "aws/rds" in text, res
    assert re.search(r"customer[- ]managed|CMK", text, re.I), f"no remedy in {text!r}"
    assert db_share_log == [], "a share was attempted"
    assert copies(db_snapshot_log) == [] and copies(db_snapshot_log, accepted=False) == []
    assert estate.db_snapshots(B, SRC) == [] and estate.db_snapshots(B, DST) == []


def test_cross_account_with_aws_rds_key_succeeds_through_a_reencrypt_key(
    estate: Estate, tmp_path: Path, db_share_log: list[dict], db_snapshot_log: list[dict]
) -> None:
    """The default-key workaround (SPEC 6.4): the snapshot under aws/rds is copied in the
    source account as `<id>-reencrypt` under the re-encrypt key; that copy is shared and copied
    by workflow C, then unshared and deleted; the original is never shared."""
    reencrypt_key = estate.create_key(None, SRC, allow_accounts=[B])
    target_key = estate.create_key(B, DST)
    db = estate.create_db_instance(None, SRC, "legacy")  # encrypted with aws/rds
    target = {"account": B, "region": DST, "role_arn": TARGET_ROLE, "kms_key": target_key}
    policy = rds_policy("e2e-rds-reencrypt", [db], [target]).replace(
        "[[source.resources]]", f'reencrypt_keys = {{ "{SRC}" = "{reencrypt_key}" }}\n\n[[source.resources]]', 1
    )

    code, doc, stderr = run_json(estate, policy, tmp_path)

    assert code == 0, (doc, stderr)
    res = resource(doc, db)
    assert res["status"] == "Success", res
    ident = rds_snapshot_id("e2e-rds-reencrypt", db, doc["session_id"])
    extra = f"{ident}-reencrypt"
    # The extra copy was made in the source account and Region under the re-encrypt key ...
    [made] = [e for e in copies(db_snapshot_log) if e["identifier"] == extra]
    assert (made["account"], made["region"], made["result_kms_key_id"]) == (A, SRC, reencrypt_key)
    assert made["tags"].get("snaprelay:kind") == "reencrypted"
    # ... it alone was shared, and the share removed; the original never was ...
    shares = accepted_db_shares(db_share_log)
    assert [(e["snapshot_id"], e["values_to_add"]) for e in shares] == [(extra, [B])]
    assert all(e["snapshot_id"] != ident for e in db_share_log), db_share_log
    # ... the replica is under the target key, and only the source snapshot is left in A.
    assert [s["DBSnapshotIdentifier"] for s in estate.db_snapshots(B, DST)] == [ident]
    assert estate.db_snapshots(B, DST)[0]["KmsKeyId"] == target_key
    assert estate.db_snapshots(B, SRC) == []
    assert [s["DBSnapshotIdentifier"] for s in estate.db_snapshots(None, SRC) if s["DBSnapshotIdentifier"].startswith("snaprelay-")] == [ident]


# ------------------------------------------------------------------ d. EC2 and RDS in one policy


def test_policy_mixing_ec2_and_rds_replicates_both(
    estate: Estate, tmp_path: Path, share_log: list[dict], db_share_log: list[dict]
) -> None:
    source_key = estate.create_key(None, SRC, allow_accounts=[B])
    target_key = estate.create_key(B, DST)
    instance, volumes = estate.create_instance(None, SRC, [{"encrypted": True, "kms_key": source_key}])
    gold = estate.create_db_instance(None, SRC, "gold-db", kms_key=source_key, tags={"backup": "gold"})
    bronze = estate.create_db_instance(None, SRC, "bronze-db", kms_key=source_key, tags={"backup": "bronze"})
    target = {"account": B, "region": DST, "role_arn": TARGET_ROLE, "kms_key": target_key}
    policy = policy_toml(
        "e2e-mixed-ec2-rds",
        [{"type": "ec2", "ids": [instance]}, {"type": "rds", "tags": {"backup": "gold"}}],
        [target],
    )

    code, doc, stderr = run_json(estate, policy, tmp_path)

    assert code == 0, (doc, stderr)
    assert doc["status"] == "Success"
    assert sorted((r["type"], r["id"]) for r in doc["resources"]) == sorted([("ec2", instance), ("rds", gold)])
    ec2_res = resource(doc, instance)
    assert ec2_res["status"] == "Success"
    ec2_replicas = replica_snapshots(ec2_res, B, DST)
    assert len(ec2_replicas) == len(volumes)
    for entry in ec2_replicas:
        assert estate.snapshot(B, DST, entry["id"])["KmsKeyId"] == target_key
    assert_replica(
        estate, resource(doc, gold), account=B, region=DST, target_key=target_key,
        policy="e2e-mixed-ec2-rds", session=doc["session_id"], db=gold,
    )
    assert estate.db_snapshots(None, SRC, db_instance_id=bronze) == [], "the bronze DB is not selected"
    assert estate.db_snapshots(B, SRC) == []
    assert [e["values_to_add"] for e in accepted_db_shares(db_share_log)] == [[B]]
    assert all(e["add_user_ids"] in ([B], []) for e in share_log)


# ------------------------------------------------------------------ e. plan


def test_plan_names_workflow_keys_and_the_full_second_copy(
    estate: Estate, tmp_path: Path, db_share_log: list[dict], db_snapshot_log: list[dict]
) -> None:
    source_key = estate.create_key(None, SRC, allow_accounts=[B])
    same_account_key = estate.create_key(None, DST)
    b_key_dst = estate.create_key(B, DST)
    b_key_src = estate.create_key(B, SRC)
    default_staging = estate.default_rds_key(B, SRC)
    good = estate.create_db_instance(None, SRC, "good", kms_key=source_key)
    legacy = estate.create_db_instance(None, SRC, "legacy")  # aws/rds
    policy = rds_policy(
        "e2e-rds-plan",
        [good, legacy],
        [
            {"region": DST, "kms_key": same_account_key},
            {"account": B, "region": DST, "role_arn": TARGET_ROLE, "kms_key": b_key_dst},
            {"account": B, "region": SRC, "role_arn": TARGET_ROLE, "kms_key": b_key_src},
        ],
    )
    before = estate.all_db_snapshots(*EVERYWHERE)

    code, plan, stderr = run_json(estate, policy, tmp_path, "plan")

    assert code == 0, (plan, stderr)
    assert plan["source_account"] == A
    same, two_step, same_region = plan_task(plan, good)["targets"]
    assert (same["action"], same["workflow"], same["kms_key_id"]) == ("replicate", "same-account", same_account_key)
    assert (two_step["action"], two_step["workflow"], two_step["kms_key_id"]) == (
        "replicate", "cross-account-rds", b_key_dst
    )
    assert two_step["staging_kms_key_id"] == default_staging
    assert FULL_COPY.search(remarks(two_step)), two_step
    assert (same_region["action"], same_region["workflow"], same_region["kms_key_id"]) == (
        "replicate", "cross-account-rds", b_key_src
    )
    assert same_region.get("staging_kms_key_id") is None, "no intermediate copy in the source Region"
    legacy_targets = [t["action"] for t in plan_task(plan, legacy)["targets"]]
    assert legacy_targets == ["replicate", "refuse", "refuse"]
    # Nothing was done.
    assert estate.all_db_snapshots(*EVERYWHERE) == before
    assert db_share_log == [] and db_snapshot_log == []


# ------------------------------------------------------------------ f. invalid input


@pytest.mark.parametrize(
    "extra, field, value",
    [
        ({"staging_kms_kye": "alias/rds-staging"}, "staging_kms_kye", "staging_kms_kye"),
        ({"rds_single_step": "yes"}, "rds_single_step", "yes"),
    ],
    ids=["unknown-key", "not-a-boolean"],
)
def test_invalid_rds_target_options_exit_2_naming_the_field(
    estate: Estate, tmp_path: Path, db_share_log: list[dict], db_snapshot_log: list[dict],
    extra: dict[str, Any], field: str, value: str,
) -> None:
    source_key = estate.create_key(None, SRC, allow_accounts=[B])
    target_key = estate.create_key(B, DST)
    db = estate.create_db_instance(None, SRC, "orders", kms_key=source_key)
    target = {"account": B, "region": DST, "role_arn": TARGET_ROLE, "kms_key": target_key, **extra}
    policy = rds_policy("e2e-rds-invalid", [db], [target])
    before = estate.all_db_snapshots(*EVERYWHERE)

    code, stdout, stderr = run_snaprelay(estate.endpoint, policy, tmp_path, "run", "--output", "json")

    assert code == 2, f"exit {code}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    assert field in stderr and value in stderr, stderr
    assert "panicked" not in stderr and "RUST_BACKTRACE" not in stderr, stderr
    doc = json.loads(stdout)
    assert doc["code"] == "invalid_input", doc
    error = doc["error"]
    assert field in error
    assert estate.all_db_snapshots(*EVERYWHERE) == before == {k: [] for k in before}
    assert db_share_log == [] and db_snapshot_log == []


# ------------------------------------------------------------------ the copy quota


def test_rds_copies_beyond_the_quota_are_retried_not_failed(
    estate: Estate, tmp_path: Path, db_snapshot_log: list[dict]
) -> None:
    """SPEC section 3: SnapshotQuotaExceeded puts the copy back in the queue; it never fails
    the task. Here copies by others leave room for two at a time."""
    moto_ext.RDS_COPY_PACING.pending_seconds = 0.4
    moto_ext.RDS_COPY_PACING.limit = 2
    source_key = estate.create_key(None, SRC, allow_accounts=[B])
    target_key = estate.create_key(B, DST)
    dbs = [estate.create_db_instance(None, SRC, f"orders-{i}", kms_key=source_key) for i in range(5)]
    target = {"account": B, "region": DST, "role_arn": TARGET_ROLE, "kms_key": target_key}
    policy = rds_policy("e2e-rds-quota", dbs, [target])

    code, doc, stderr = run_json(estate, policy, tmp_path)

    assert code == 0, (doc, stderr)
    assert moto_ext.RDS_COPY_PACING.refused > 0, "the quota was never reached: the test proves nothing"
    assert all(r["status"] == "Success" for r in doc["resources"]), doc
    assert len(estate.db_snapshots(B, DST)) == len(dbs)
    assert estate.db_snapshots(B, SRC) == [], "no intermediate copy is left"


# ------------------------------------------------------------------ found in a user trial


def test_the_share_is_removed_before_the_second_copy_of_the_two_step_flow(estate: Estate, tmp_path: Path) -> None:
    """SPEC section 4: no share longer than needed. Once the intermediate copy exists, nothing
    reads the shared snapshot: the share goes before the (long, full) second copy."""
    source_key = estate.create_key(None, SRC, allow_accounts=[B])
    target_key = estate.create_key(B, DST)
    db = estate.create_db_instance(None, SRC, "orders", kms_key=source_key)
    policy = rds_policy(
        "e2e-rds-unshare-early", [db], [{"account": B, "region": DST, "role_arn": TARGET_ROLE, "kms_key": target_key}]
    )
    code, doc, stderr = run_json(estate, policy, tmp_path)
    assert code == 0, (doc, stderr)
    code, out, stderr = run_snaprelay(
        estate.endpoint, policy, tmp_path, "sessions", "show", doc["session_id"], "--output", "json"
    )
    steps = [(s["step"], s["place"]) for s in json.loads(out)["steps"]]
    assert steps == [
        ("snapshot", f"{A}/{SRC}"),
        ("wait-snapshot", f"{A}/{SRC}"),
        ("share", f"{A}/{SRC}"),
        ("copy", f"{B}/{SRC}"),
        ("wait-copy", f"{B}/{SRC}"),
        ("unshare", f"{A}/{SRC}"),
        ("copy", f"{B}/{DST}"),
        ("wait-copy", f"{B}/{DST}"),
        ("discard", f"{B}/{SRC}"),
    ], steps


def test_an_unencrypted_db_across_accounts_and_regions_replicates_with_a_warning(
    estate: Estate, tmp_path: Path, db_snapshot_log: list[dict]
) -> None:
    db = estate.create_db_instance(None, SRC, "plain", encrypted=False)
    policy = rds_policy("e2e-rds-plain", [db], [{"account": B, "region": DST, "role_arn": TARGET_ROLE}])
    code, doc, stderr = run_json(estate, policy, tmp_path)
    assert code == 3, (doc, stderr)
    res = resource(doc, db)
    assert res["status"] == "Warning" and "left unencrypted" in messages(res), res
    [replica] = estate.db_snapshots(B, DST)
    assert replica["Encrypted"] is False
    [staging] = staging_ever(db_snapshot_log)
    assert staging["result_kms_key_id"] is None, "the intermediate copy stays unencrypted like the DB"
    assert estate.db_snapshots(B, SRC) == []


def test_targets_of_one_account_with_different_staging_keys_each_get_their_own_intermediate_copy(
    estate: Estate, tmp_path: Path, db_snapshot_log: list[dict]
) -> None:
    central = "eu-central-1"
    source_key = estate.create_key(None, SRC, allow_accounts=[B])
    default_staging = estate.default_rds_key(B, SRC)
    own_staging = estate.create_key(B, SRC, alias="rds-staging")
    keys = {DST: estate.create_key(B, DST), central: estate.create_key(B, central)}
    db = estate.create_db_instance(None, SRC, "orders", kms_key=source_key)
    policy = rds_policy(
        "e2e-rds-two-staging",
        [db],
        [
            {"account": B, "region": DST, "role_arn": TARGET_ROLE, "kms_key": keys[DST]},
            {"account": B, "region": central, "role_arn": TARGET_ROLE, "kms_key": keys[central],
             "staging_kms_key": "alias/rds-staging"},
        ],
    )
    code, doc, stderr = run_json(estate, policy, tmp_path)
    assert code == 0, (doc, stderr)
    staged = {e["identifier"]: e["result_kms_key_id"] for e in staging_ever(db_snapshot_log)}
    assert sorted(staged.values()) == sorted([default_staging, own_staging]), staged
    finals = {e["region"]: e["source"] for e in copies(db_snapshot_log) if e["region"] != SRC}
    by_key = {key: ident for ident, key in staged.items()}
    assert finals[DST].endswith(":" + by_key[default_staging])
    assert finals[central].endswith(":" + by_key[own_staging])
    assert estate.db_snapshots(B, SRC) == []


def test_db_identifiers_are_matched_without_regard_to_case(estate: Estate, tmp_path: Path) -> None:
    """RDS stores identifiers in lowercase; a policy naming `Orders-DB` means `orders-db`."""
    db = estate.create_db_instance(None, SRC, "Orders-DB", encrypted=False)
    policy = rds_policy("e2e-rds-case", ["Orders-DB"], [{"region": DST}])
    code, plan, stderr = run_json(estate, policy, tmp_path, "plan")
    assert code == 0, (plan, stderr)
    assert [t["id"] for t in plan["tasks"]] == [db.lower()]


@pytest.mark.parametrize("case", ["source_region_typo", "staging_key_of_the_source_account"])
def test_cross_account_rds_input_errors_are_found_before_any_change(
    estate: Estate, tmp_path: Path, db_snapshot_log: list[dict], case: str
) -> None:
    source_key = estate.create_key(None, SRC, allow_accounts=[B])
    target_key = estate.create_key(B, DST)
    foreign_staging = estate.create_key(None, SRC, allow_accounts=[B])
    db = estate.create_db_instance(None, SRC, "orders", kms_key=source_key)
    target = {"account": B, "region": DST, "role_arn": TARGET_ROLE, "kms_key": target_key}
    if case == "staging_key_of_the_source_account":
        target["staging_kms_key"] = foreign_staging
    policy = rds_policy("e2e-rds-input", [db], [target])
    if case == "source_region_typo":
        policy = policy.replace(f'regions = ["{SRC}"]', f'regions = ["{SRC}", "us-east-9"]')
    code, stdout, stderr = run_snaprelay(estate.endpoint, policy, tmp_path, "run")
    assert code == 2, stderr
    field = "source.regions[1]" if case == "source_region_typo" else "targets[0].staging_kms_key"
    assert field in stderr, stderr
    assert db_snapshot_log == []
