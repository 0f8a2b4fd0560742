"""`snaprelay check` (issue 6) on moto: a correct setup reports all OK; a source key whose key
policy does not admit the target account, a target key only in another Region, a disabled
target key, an `aws/ebs` volume across accounts and a target role without KMS permissions are
each reported, with a fix that, once applied, makes `check` pass. Nothing is changed in AWS."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3

from estate import Estate, _credentials, run_snaprelay
from test_retention import B, DST, SRC, TARGET_ROLE

TARGET_ACTIONS = [
    "ec2:CopySnapshot",
    "ec2:CreateTags",
    "ec2:DescribeSnapshots",
    "ec2:DeleteSnapshot",
    "rds:CopyDBSnapshot",
    "rds:AddTagsToResource",
    "rds:DescribeDBSnapshots",
    "rds:DeleteDBSnapshot",
]
KMS_ACTIONS = ["kms:DescribeKey", "kms:CreateGrant", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*"]


def iam(estate: Estate, account: str) -> Any:
    return boto3.client("iam", region_name="us-east-1", endpoint_url=estate.endpoint, **_credentials(estate.endpoint, account))


def target_role(estate: Estate, kms_actions: list[str] = KMS_ACTIONS) -> None:
    """The target role in account B, with what a target role needs (the KMS actions given)."""
    client = iam(estate, B)
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]}
    client.create_role(RoleName="snaprelay-target", AssumeRolePolicyDocument=json.dumps(trust))
    statements: list[dict[str, Any]] = [{"Effect": "Allow", "Action": TARGET_ACTIONS, "Resource": "*"}]
    if kms_actions:
        statements.append({"Effect": "Allow", "Action": kms_actions, "Resource": "*"})
    client.put_role_policy(
        RoleName="snaprelay-target",
        PolicyName="snaprelay",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}),
    )


def ec2_policy(name: str, instance: str, target_key: str, region: str = DST) -> str:
    return f"""name = "{name}"
[source]
regions = ["{SRC}"]
[[source.resources]]
type = "ec2"
ids = ["{instance}"]
[[targets]]
account = "{B}"
region = "{region}"
role_arn = "{TARGET_ROLE}"
kms_key = "{target_key}"
"""


def check(estate: Estate, text: str, tmp_path: Path) -> tuple[int, dict[str, Any], str]:
    code, out, err = run_snaprelay(estate.endpoint, text, tmp_path, "check", "--output", "json")
    return code, json.loads(out), err


def missing(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for f in doc["findings"] if f["status"] == "missing"]


def no_snapshot_anywhere(estate: Estate) -> None:
    for account, region in [(None, SRC), (B, DST), (B, SRC)]:
        assert estate.snapshots(account, region) == [], "check changes nothing"


def test_a_correct_cross_account_setup_reports_all_ok(estate: Estate, tmp_path: Path) -> None:
    source_key = estate.create_key(None, SRC, allow_accounts=[B])
    target_key = estate.create_key(B, DST)
    instance, _ = estate.create_instance(None, SRC, [{"kms_key": source_key}])
    target_role(estate)
    code, doc, err = check(estate, ec2_policy("e2e-check-ok", instance, target_key), tmp_path)
    assert code == 0, (doc, err)
    assert doc["ok"] is True and missing(doc) == []
    ok = {(f["check"], f["resource"]) for f in doc["findings"] if f["status"] == "ok"}
    # Both keys from both sides, the target key itself, the target role's EC2 actions.
    assert ("key policy", source_key) in ok and ("key policy", target_key) in ok
    assert ("IAM policy", source_key) in ok and ("IAM policy", target_key) in ok
    assert any(c == "target key" for c, _ in ok)
    # The ambient source credentials are a user in moto: said, not guessed.
    assert any(f["status"] == "unknown" and "not a role" in f["detail"] for f in doc["findings"])
    code, out, _ = run_snaprelay(estate.endpoint, ec2_policy("e2e-check-ok", instance, target_key), tmp_path, "check")
    assert code == 0 and "MISSING" not in out and "OK" in out
    no_snapshot_anywhere(estate)


def test_a_source_key_policy_without_the_target_account_is_found_and_the_fix_works(
    estate: Estate, tmp_path: Path
) -> None:
    source_key = estate.create_key(None, SRC)  # admits no other account
    target_key = estate.create_key(B, DST)
    instance, _ = estate.create_instance(None, SRC, [{"kms_key": source_key}])
    target_role(estate)
    text = ec2_policy("e2e-check-key-policy", instance, target_key)
    code, doc, err = check(estate, text, tmp_path)
    assert code == 1, (doc, err)
    [finding] = missing(doc)
    assert (finding["check"], finding["resource"], finding["principal"]) == (
        "key policy",
        source_key,
        f"arn:aws:iam::{B}:root",
    )
    assert set(finding["actions"]) == set(KMS_ACTIONS)
    fix = finding["fix"]
    assert "kms:GrantIsForAWSResource" in fix
    code, out, _ = run_snaprelay(estate.endpoint, text, tmp_path, "check")
    assert code == 1 and "MISSING" in out and "Fixes:" in out and fix in out
    no_snapshot_anywhere(estate)

    # The printed statements, added to the key policy, make check pass.
    statements = json.loads(fix.split(": ", 1)[1])
    kms = estate.kms(None, SRC)
    policy = json.loads(kms.get_key_policy(KeyId=source_key, PolicyName="default")["Policy"])
    policy["Statement"].extend(statements)
    kms.put_key_policy(KeyId=source_key, PolicyName="default", Policy=json.dumps(policy))
    code, doc, err = check(estate, text, tmp_path)
    assert code == 0, (missing(doc), err)


def test_a_target_role_without_kms_permissions_gets_an_iam_policy_that_works(estate: Estate, tmp_path: Path) -> None:
    source_key = estate.create_key(None, SRC, allow_accounts=[B])
    target_key = estate.create_key(B, DST)
    instance, _ = estate.create_instance(None, SRC, [{"kms_key": source_key}])
    target_role(estate, kms_actions=["kms:DescribeKey", "kms:Decrypt"])
    text = ec2_policy("e2e-check-iam", instance, target_key)
    code, doc, err = check(estate, text, tmp_path)
    assert code == 1, (doc, err)
    found = missing(doc)
    assert {f["check"] for f in found} == {"IAM policy"}
    assert {f["principal"] for f in found} == {TARGET_ROLE}
    assert all("kms:CreateGrant" in f["actions"] and "kms:Decrypt" not in f["actions"] for f in found)
    for f in found:
        document = f["fix"].split("the IAM policy ", 1)[1]
        iam(estate, B).put_role_policy(RoleName="snaprelay-target", PolicyName=f"fix-{found.index(f)}", PolicyDocument=document)
    code, doc, err = check(estate, text, tmp_path)
    assert code == 0, (missing(doc), err)


def test_a_target_key_of_another_region_is_found(estate: Estate, tmp_path: Path) -> None:
    source_key = estate.create_key(None, SRC, allow_accounts=[B])
    estate.create_key(B, SRC, alias="vault")  # the alias exists in us-east-1 only
    instance, _ = estate.create_instance(None, SRC, [{"kms_key": source_key}])
    target_role(estate)
    code, doc, err = check(estate, ec2_policy("e2e-check-region", instance, "alias/vault"), tmp_path)
    assert code == 1, (doc, err)
    [finding] = missing(doc)
    assert finding["check"] == "target key" and f"no such key in {DST}" in finding["detail"]
    assert f"aws kms create-key --region {DST}" in finding["fix"] and "replicate-key" in finding["fix"]
    # A key ARN of another Region is a mistake in the policy itself: invalid input.
    other = estate.create_key(B, SRC)
    code, _, err = run_snaprelay(estate.endpoint, ec2_policy("e2e-check-region", instance, other), tmp_path, "check")
    assert code == 2 and "targets[0].kms_key" in err and other in err, err


def test_a_disabled_target_key_is_found_and_enabling_it_fixes_it(estate: Estate, tmp_path: Path) -> None:
    source_key = estate.create_key(None, SRC, allow_accounts=[B])
    target_key = estate.create_key(B, DST)
    # moto's DisableKey and EnableKey take the key id only.
    estate.kms(B, DST).disable_key(KeyId=target_key.rsplit("/", 1)[1])
    instance, _ = estate.create_instance(None, SRC, [{"kms_key": source_key}])
    target_role(estate)
    text = ec2_policy("e2e-check-disabled", instance, target_key)
    code, doc, err = check(estate, text, tmp_path)
    assert code == 1, (doc, err)
    [finding] = missing(doc)
    assert finding["check"] == "target key" and "Disabled" in finding["detail"]
    assert finding["fix"] == f"aws kms enable-key --region {DST} --key-id {target_key}"
    estate.kms(B, DST).enable_key(KeyId=target_key.rsplit("/", 1)[1])
    code, doc, err = check(estate, text, tmp_path)
    assert code == 0, (missing(doc), err)


def test_a_volume_under_aws_ebs_cannot_go_to_another_account(estate: Estate, tmp_path: Path) -> None:
    default_key = estate.default_ebs_key(None, SRC)
    target_key = estate.create_key(B, DST)
    instance, volumes = estate.create_instance(None, SRC, [{"kms_key": default_key}])
    target_role(estate)
    code, doc, err = check(estate, ec2_policy("e2e-check-aws-ebs", instance, target_key), tmp_path)
    assert code == 1, (doc, err)
    [finding] = missing(doc)
    assert finding["check"] == "plan" and instance in finding["resource"]
    assert "aws/ebs" in finding["detail"] and volumes[0] in finding["detail"], finding
    no_snapshot_anywhere(estate)


def test_check_of_a_bad_policy_is_invalid_input(estate: Estate, tmp_path: Path) -> None:
    code, out, err = run_snaprelay(estate.endpoint, 'name = "x"\n[source]\nregions = ["us-east-1"]\nbogus = 1\n', tmp_path, "check")
    assert code == 2 and "bogus" in err


def test_rds_across_accounts_and_regions_checks_the_staging_key_too(estate: Estate, tmp_path: Path) -> None:
    source_key = estate.create_key(None, SRC, allow_accounts=[B])
    target_key = estate.create_key(B, DST)
    staging = estate.default_rds_key(B, SRC)  # the documented default staging key
    db = estate.create_db_instance(None, SRC, "orders", kms_key=source_key)
    target_role(estate)
    text = f"""name = "e2e-check-rds"
[source]
regions = ["{SRC}"]
[[source.resources]]
type = "rds"
ids = ["{db}"]
[[targets]]
account = "{B}"
region = "{DST}"
role_arn = "{TARGET_ROLE}"
kms_key = "{target_key}"
"""
    code, doc, err = check(estate, text, tmp_path)
    assert code == 0, (missing(doc), err)
    checked = {(f["check"], f["resource"]) for f in doc["findings"] if f["status"] == "ok"}
    for key in (source_key, target_key):
        assert ("key policy", key) in checked and ("IAM policy", key) in checked, (key, checked)
    # aws/rds's key policy lets any principal of its account use it through RDS: no IAM needed.
    assert ("key policy", staging) in checked
    # The target role without rds:CopyDBSnapshot: missing, with the IAM policy that fixes it.
    iam(estate, B).put_role_policy(
        RoleName="snaprelay-target",
        PolicyName="snaprelay",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["kms:*", "ec2:*"], "Resource": "*"}]}
        ),
    )
    code, doc, err = check(estate, text, tmp_path)
    assert code == 1, doc
    [finding] = missing(doc)
    assert finding["check"] == "IAM policy" and "rds:CopyDBSnapshot" in finding["actions"], finding
    document = finding["fix"].split("the IAM policy ", 1)[1]
    iam(estate, B).put_role_policy(RoleName="snaprelay-target", PolicyName="fix", PolicyDocument=document)
    code, doc, err = check(estate, text, tmp_path)
    assert code == 0, (missing(doc), err)


def put_key_policy(estate: Estate, account: str | None, region: str, key: str, statements: list[dict[str, Any]]) -> None:
    kms = estate.kms(account, region)
    owner = key.split(":")[4]
    root = {"Sid": "Owner", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{owner}:root"}, "Action": "kms:*", "Resource": "*"}
    kms.put_key_policy(
        KeyId=key, PolicyName="default", Policy=json.dumps({"Version": "2012-10-17", "Statement": [root, *statements]})
    )


def test_a_key_used_by_ec2_and_rds_is_checked_for_each_service(estate: Estate, tmp_path: Path) -> None:
    """kms:ViaService differs per service: a key policy that admits the target account only
    through EC2 does not let RDS copy the DB under the same key."""
    source_key = estate.create_key(None, SRC)
    put_key_policy(estate, None, SRC, source_key, [{
        "Sid": "EC2 only", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{B}:root"},
        "Action": KMS_ACTIONS, "Resource": "*",
        "Condition": {"StringEquals": {"kms:ViaService": f"ec2.{SRC}.amazonaws.com"}},
    }])
    target_key = estate.create_key(B, DST)
    instance, _ = estate.create_instance(None, SRC, [{"kms_key": source_key}])
    db = estate.create_db_instance(None, SRC, "orders", kms_key=source_key)
    target_role(estate)
    text = ec2_policy("e2e-check-via", instance, target_key).replace(
        '[[targets]]', f'[[source.resources]]\ntype = "rds"\nids = ["{db}"]\n[[targets]]', 1
    )
    code, doc, err = check(estate, text, tmp_path)
    assert code == 1, (doc, err)
    [finding] = missing(doc)
    assert (finding["check"], finding["resource"]) == ("key policy", source_key), finding
    # run's preflight evaluates both services too: the DB's replica is refused up front, the
    # instance's is made.
    code, out, err = run_snaprelay(estate.endpoint, text, tmp_path, "run", "--output", "json")
    statuses = {r["type"]: r["status"] for r in json.loads(out)["resources"]}
    assert code == 1 and statuses == {"ec2": "Success", "rds": "Failed"}, (out, err)


def test_fixes_for_two_accounts_on_one_key_have_distinct_sids(estate: Estate, tmp_path: Path) -> None:
    c = "333333333333"
    source_key = estate.create_key(None, SRC)
    instance, _ = estate.create_instance(None, SRC, [{"kms_key": source_key}])
    keys = {acct: estate.create_key(acct, DST) for acct in (B, c)}
    text = ec2_policy("e2e-check-sids", instance, keys[B]) + f'''[[targets]]
account = "{c}"
region = "{DST}"
role_arn = "arn:aws:iam::{c}:role/snaprelay-target"
kms_key = "{keys[c]}"
'''
    code, doc, err = check(estate, text, tmp_path)
    fixes = [f["fix"] for f in missing(doc) if f["check"] == "key policy"]
    assert code == 1 and len(fixes) == 2, doc
    sids = [st["Sid"] for fix in fixes for st in json.loads(fix.split(": ", 1)[1])]
    assert len(sids) == len(set(sids)) == 4, sids


def test_an_iam_deny_wins_even_where_the_key_policy_names_the_role(estate: Estate, tmp_path: Path) -> None:
    source_key = estate.create_key(None, SRC, allow_accounts=[B])
    target_key = estate.create_key(B, DST)
    put_key_policy(estate, B, DST, target_key, [{
        "Sid": "The role itself", "Effect": "Allow", "Principal": {"AWS": TARGET_ROLE},
        "Action": "kms:*", "Resource": "*",
    }])
    instance, _ = estate.create_instance(None, SRC, [{"kms_key": source_key}])
    target_role(estate)
    iam(estate, B).put_role_policy(
        RoleName="snaprelay-target", PolicyName="no-kms",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
            {"Sid": "NoKms", "Effect": "Deny", "Action": "kms:*", "Resource": "*"}]}),
    )
    code, doc, err = check(estate, ec2_policy("e2e-check-deny", instance, target_key), tmp_path)
    assert code == 1, (doc, err)
    found = missing(doc)
    assert {(f["check"], f["resource"]) for f in found} == {("IAM policy", source_key), ("IAM policy", target_key)}
    # The Deny is named with the policy it is in.
    assert all('Sid "NoKms" in policy no-kms of' in f["detail"] and TARGET_ROLE in f["detail"] for f in found), found


def test_a_deny_that_might_apply_in_another_attached_policy_is_unknown_not_ok(estate: Estate, tmp_path: Path) -> None:
    source_key = estate.create_key(None, SRC, allow_accounts=[B])
    target_key = estate.create_key(B, DST)
    instance, _ = estate.create_instance(None, SRC, [{"kms_key": source_key}])
    target_role(estate)
    client = iam(estate, B)
    arn = client.create_policy(PolicyName="org-only", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "Action": "kms:*", "Resource": "*",
         "Condition": {"StringNotEquals": {"aws:PrincipalOrgID": "o-abc123"}}}]}))["Policy"]["Arn"]
    client.attach_role_policy(RoleName="snaprelay-target", PolicyArn=arn)
    code, doc, err = check(estate, ec2_policy("e2e-check-org", instance, target_key), tmp_path)
    assert code == 0, (doc, err)
    unknown = [f for f in doc["findings"] if f["status"] == "unknown" and f["check"] == "IAM policy" and f["resource"] in (source_key, target_key)]
    assert len(unknown) == 2, doc["findings"]


def test_a_target_role_that_does_not_exist_is_missing(estate: Estate, tmp_path: Path) -> None:
    source_key = estate.create_key(None, SRC, allow_accounts=[B])
    target_key = estate.create_key(B, DST)
    instance, _ = estate.create_instance(None, SRC, [{"kms_key": source_key}])
    code, doc, err = check(estate, ec2_policy("e2e-check-norole", instance, target_key), tmp_path)
    assert code == 1, (doc, err)
    assert {f["check"] for f in missing(doc)} == {"IAM policy"}
    assert all("does not exist" in f["detail"] for f in missing(doc))


def test_a_policy_that_does_not_fit_aws_is_invalid_input_as_for_plan(estate: Estate, tmp_path: Path) -> None:
    source_key = estate.create_key(None, SRC, allow_accounts=[B])
    target_key = estate.create_key(B, DST)
    target_role(estate)
    code, _, err = run_snaprelay(estate.endpoint, ec2_policy("e2e-check-input", "i-0123456789abcdef0", target_key), tmp_path, "check")
    assert code == 2 and "source.resources[0].ids[0]" in err, err


def test_restore_and_drill_needs_are_reported_apart_with_a_fix_that_works(estate: Estate, tmp_path: Path) -> None:
    """A target role that can replicate but not restore: `check` still passes (a run needs
    nothing more; a restore may act with --role-arn), and lists what restore and drill need
    there, with an IAM policy that, once attached, covers it."""
    source_key = estate.create_key(None, SRC, allow_accounts=[B])
    target_key = estate.create_key(B, DST)
    instance, _ = estate.create_instance(None, SRC, [{"kms_key": source_key}])
    target_role(estate)
    text = ec2_policy("e2e-check-restore", instance, target_key)
    code, doc, err = check(estate, text, tmp_path)
    assert code == 0, (doc, err)
    (target,) = [f for f in doc["restore_and_drill"] if f["principal"] == TARGET_ROLE]
    assert target["status"] == "missing"
    for action in ["ec2:RegisterImage", "ec2:RunInstances", "ec2:CreateSecurityGroup", "ec2:DeregisterImage"]:
        assert action in target["actions"], target
    assert "iam:PassRole" not in target["actions"], "a profile of the source account is never passed there"
    document = target["fix"].split("the IAM policy ", 1)[1]
    iam(estate, B).put_role_policy(RoleName="snaprelay-target", PolicyName="restore", PolicyDocument=document)
    code, doc, err = check(estate, text, tmp_path)
    assert code == 0, (doc, err)
    (target,) = [f for f in doc["restore_and_drill"] if f["principal"] == TARGET_ROLE]
    assert target["status"] == "ok", target
    code, out, _ = run_snaprelay(estate.endpoint, text, tmp_path, "check")
    assert "For restore and drill" in out and "MISSING" not in out


def test_the_default_key_workaround_is_checked_on_the_reencrypt_keys_policy(estate: Estate, tmp_path: Path) -> None:
    """With a re-encrypt key, the target must be let use that key, not aws/ebs (which no key
    policy of another account can admit): a re-encrypt key admitting the target passes; one
    that does not is a missing key-policy finding naming it, with nothing changed in AWS."""
    target_role(estate)
    target_key = estate.create_key(B, DST)
    instance, _ = estate.create_instance(None, SRC, [{"encrypted": True, "kms_key": None}])  # aws/ebs
    admitting = estate.create_key(None, SRC, allow_accounts=[B])
    closed = estate.create_key(None, SRC)
    for key, passes in ((admitting, True), (closed, False)):
        text = ec2_policy("check-reencrypt", instance, target_key).replace(
            "[[source.resources]]", f'reencrypt_keys = {{ "{SRC}" = "{key}" }}\n[[source.resources]]', 1
        )
        code, doc, err = check(estate, text, tmp_path)
        policy_findings = [
            f for f in doc["findings"]
            if f["check"] == "key policy" and B in f["principal"] and f["resource"].startswith(f"arn:aws:kms:{SRC}:")
        ]
        assert {f["resource"] for f in policy_findings} == {key}, json.dumps(doc, indent=1)
        if passes:
            assert code == 0 and missing(doc) == [], json.dumps(missing(doc), indent=1)
            # What plan's sizing of incremental EBS copies needs, said apart (not failing check).
            [sizing] = doc["estimates"]
            assert (sizing["check"], sizing["actions"]) == ("plan estimates", ["ebs:ListChangedBlocks"]), sizing
        else:
            assert code != 0 and [f["resource"] for f in missing(doc)] == [key], json.dumps(missing(doc), indent=1)
    no_snapshot_anywhere(estate)
