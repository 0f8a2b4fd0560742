"""Build and inspect an AWS estate (accounts, keys, instances, snapshots) with boto3.

Everything talks to one endpoint (the patched moto of ``moto_ext``). Account ``None`` means
the ambient credentials (``testing``, which moto maps to 123456789012); any other account is
reached by ``sts:AssumeRole`` into ``arn:aws:iam::{account}:role/snaprelay-test``, which is
how moto switches accounts.

``Estate`` binds the endpoint; its methods take (account, region) like the brief's helpers:
``create_key``, ``create_instance``, ``snapshots``, ``snapshot_shares``, and for RDS
``create_db_instance``, ``db_snapshots``, ``db_snapshot_shares``. ``run_snaprelay`` runs the
binary against the endpoint.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

AMBIENT_ACCOUNT = "123456789012"
TEST_ROLE = "snaprelay-test"
REPO = Path(__file__).resolve().parents[2]
DEFAULT_BIN = REPO / "target" / "debug" / "snaprelay"
KEY_USER_ACTIONS = [
    "kms:DescribeKey",
    "kms:CreateGrant",
    "kms:Decrypt",
    "kms:ReEncrypt*",
    "kms:GenerateDataKey*",
]
"""What a target account needs on a source key (SPEC section 3)."""

# moto keeps its default images in every Region and only warns about unknown ones. This one
# is an Amazon Linux image of moto's default set: its instances are Linux/UNIX, which restore
# can rebuild as instances (Windows images, like ami-12c6146b, cannot be).
IMAGE_ID = "ami-760aaa0f"
EXTRA_DEVICES = [f"/dev/sd{c}" for c in "fghijklmnop"]
_BOTO_CONFIG = Config(retries={"max_attempts": 1})


@dataclass
class Clients:
    account: str
    region: str
    ec2: Any
    kms: Any
    sts: Any
    rds: Any


def _credentials(endpoint: str, account: str | None) -> dict[str, str]:
    ambient = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    if account is None:
        return ambient
    sts = boto3.client("sts", region_name="us-east-1", endpoint_url=endpoint, **ambient)
    creds = sts.assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/{TEST_ROLE}", RoleSessionName="estate"
    )["Credentials"]
    return {
        "aws_access_key_id": creds["AccessKeyId"],
        "aws_secret_access_key": creds["SecretAccessKey"],
        "aws_session_token": creds["SessionToken"],
    }


def clients(endpoint: str, account: str | None = None, region: str = "us-east-1") -> Clients:
    """boto3 clients acting in `account` (None: ambient 123456789012) and `region`."""
    creds = _credentials(endpoint, account)

    def make(service: str) -> Any:
        return boto3.client(
            service, region_name=region, endpoint_url=endpoint, config=_BOTO_CONFIG, **creds
        )

    sts = make("sts")
    actual = sts.get_caller_identity()["Account"]
    if account is not None and actual != account:
        raise AssertionError(f"assumed a role in {account} but act in {actual}")
    return Clients(actual, region, make("ec2"), make("kms"), sts, make("rds"))


def key_policy(owner: str, allow_accounts: Iterable[str] = ()) -> dict[str, Any]:
    """Owner root may do anything; each of `allow_accounts` may use the key for EBS copies."""
    statements: list[dict[str, Any]] = [
        {
            "Sid": "Enable IAM User Permissions",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{owner}:root"},
            "Action": "kms:*",
            "Resource": "*",
        }
    ]
    others = [f"arn:aws:iam::{a}:root" for a in allow_accounts]
    if others:
        statements.append(
            {
                "Sid": "Allow use of the key by other accounts",
                "Effect": "Allow",
                "Principal": {"AWS": others},
                "Action": KEY_USER_ACTIONS,
                "Resource": "*",
            }
        )
    return {"Version": "2012-10-17", "Id": "snaprelay-test", "Statement": statements}


class Estate:
    def __init__(self, endpoint: str):
        self.endpoint = endpoint
        self._clients: dict[tuple[str | None, str], Clients] = {}

    def clients(self, account: str | None = None, region: str = "us-east-1") -> Clients:
        cache_key = (None if account == AMBIENT_ACCOUNT else account, region)
        if cache_key not in self._clients:
            self._clients[cache_key] = clients(self.endpoint, cache_key[0], region)
        return self._clients[cache_key]

    def ec2(self, account: str | None, region: str) -> Any:
        return self.clients(account, region).ec2

    def kms(self, account: str | None, region: str) -> Any:
        return self.clients(account, region).kms

    def rds(self, account: str | None, region: str) -> Any:
        return self.clients(account, region).rds

    # ---------------------------------------------------------------- KMS

    def create_key(
        self,
        account: str | None,
        region: str,
        allow_accounts: Iterable[str] = (),
        alias: str | None = None,
    ) -> str:
        """A customer managed key; returns its ARN."""
        c = self.clients(account, region)
        policy = key_policy(c.account, allow_accounts)
        meta = c.kms.create_key(
            Policy=json.dumps(policy), Description="snaprelay e2e key"
        )["KeyMetadata"]
        if alias:
            name = alias if alias.startswith("alias/") else f"alias/{alias}"
            c.kms.create_alias(AliasName=name, TargetKeyId=meta["KeyId"])
        return meta["Arn"]

    def default_ebs_key(self, account: str | None, region: str) -> str:
        """ARN of the account's AWS managed aws/ebs key in `region` (created on demand)."""
        return self.kms(account, region).describe_key(KeyId="alias/aws/ebs")["KeyMetadata"]["Arn"]

    def default_rds_key(self, account: str | None, region: str) -> str:
        """ARN of the account's AWS managed aws/rds key in `region` (created on demand)."""
        return self.kms(account, region).describe_key(KeyId="alias/aws/rds")["KeyMetadata"]["Arn"]

    # ---------------------------------------------------------------- EC2

    def create_instance(
        self,
        account: str | None,
        region: str,
        volumes: list[Mapping[str, Any]] | None = None,
        tags: Mapping[str, str] | None = None,
        volume_tags: Mapping[str, str] | None = None,
    ) -> tuple[str, list[str]]:
        """Run an instance; returns (instance id, volume ids in the order of `volumes`).

        volumes[0] is the root volume (RunInstances BlockDeviceMappings), the others are
        created and attached. Each: {"size": 8, "encrypted": True, "kms_key": arn_or_None};
        encrypted without kms_key means the account's default key (aws/ebs).
        """
        volumes = list(volumes or [{"size": 8, "encrypted": True, "kms_key": None}])
        ec2 = self.ec2(account, region)

        def ebs(spec: Mapping[str, Any]) -> dict[str, Any]:
            out: dict[str, Any] = {"VolumeSize": spec.get("size", 8)}
            if spec.get("encrypted", bool(spec.get("kms_key"))):
                out["Encrypted"] = True
                if spec.get("kms_key"):
                    out["KmsKeyId"] = spec["kms_key"]
            return out

        tag_specs = []
        if tags:
            tag_specs.append({"ResourceType": "instance", "Tags": _tag_list(tags)})
        if volume_tags:
            tag_specs.append({"ResourceType": "volume", "Tags": _tag_list(volume_tags)})
        root_device = "/dev/xvda"  # the root device of IMAGE_ID
        kwargs: dict[str, Any] = {
            "ImageId": IMAGE_ID,
            "MinCount": 1,
            "MaxCount": 1,
            "InstanceType": "t3.micro",
            "BlockDeviceMappings": [
                {"DeviceName": root_device, "Ebs": {**ebs(volumes[0]), "DeleteOnTermination": True}}
            ],
        }
        if tag_specs:
            kwargs["TagSpecifications"] = tag_specs
        instance = ec2.run_instances(**kwargs)["Instances"][0]
        instance_id = instance["InstanceId"]
        zone = instance["Placement"]["AvailabilityZone"]
        root = _volumes_of(ec2, instance_id)
        if len(root) != 1:
            raise AssertionError(f"expected one root volume on {instance_id}, got {root}")
        volume_ids = [root[0]["VolumeId"]]

        for device, spec in zip(EXTRA_DEVICES, volumes[1:]):
            create: dict[str, Any] = {"AvailabilityZone": zone, "Size": spec.get("size", 8)}
            e = ebs(spec)
            if e.get("Encrypted"):
                create["Encrypted"] = True
            if e.get("KmsKeyId"):
                create["KmsKeyId"] = e["KmsKeyId"]
            if volume_tags:
                create["TagSpecifications"] = [
                    {"ResourceType": "volume", "Tags": _tag_list(volume_tags)}
                ]
            volume_id = ec2.create_volume(**create)["VolumeId"]
            ec2.attach_volume(VolumeId=volume_id, InstanceId=instance_id, Device=device)
            volume_ids.append(volume_id)
        return instance_id, volume_ids

    def volumes(self, account: str | None, region: str, volume_ids: list[str]) -> list[dict[str, Any]]:
        return self.ec2(account, region).describe_volumes(VolumeIds=volume_ids)["Volumes"]

    def snapshots(
        self,
        account: str | None,
        region: str,
        tags: Mapping[str, str] | None = None,
        **filters: str | list[str],
    ) -> list[dict[str, Any]]:
        """Snapshots owned by `account` in `region` (never shared or public ones).

        tags={"k": "v"} filters on tags; other keyword filters use EC2 filter names with
        "_" for "-" (volume_id="vol-..", status="completed", encrypted="true").
        """
        c = self.clients(account, region)
        ec2_filters = [{"Name": f"tag:{k}", "Values": [v]} for k, v in (tags or {}).items()]
        for name, value in filters.items():
            values = value if isinstance(value, list) else [value]
            ec2_filters.append({"Name": name.replace("_", "-"), "Values": [str(v) for v in values]})
        kwargs: dict[str, Any] = {"OwnerIds": [c.account]}
        if ec2_filters:
            kwargs["Filters"] = ec2_filters
        found = c.ec2.describe_snapshots(**kwargs)["Snapshots"]
        # Belt and braces: the OwnerIds filter is a moto_ext patch.
        return [s for s in found if s["OwnerId"] == c.account]

    def snapshot(self, account: str | None, region: str, snapshot_id: str) -> dict[str, Any]:
        return self.ec2(account, region).describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"][0]

    def snapshot_shares(self, account: str | None, region: str, snapshot_id: str) -> list[str]:
        """Who may create volumes from the snapshot: account ids, and "all" if public."""
        perms = self.ec2(account, region).describe_snapshot_attribute(
            SnapshotId=snapshot_id, Attribute="createVolumePermission"
        )["CreateVolumePermissions"]
        return sorted(p.get("UserId") or p.get("Group") for p in perms)

    def all_snapshots(self, accounts: Iterable[str | None], regions: Iterable[str]) -> dict[tuple[str | None, str], list[str]]:
        """Snapshot ids owned per (account, region): to prove nothing was created."""
        return {
            (a, r): sorted(s["SnapshotId"] for s in self.snapshots(a, r))
            for a in accounts
            for r in regions
        }

    # ---------------------------------------------------------------- RDS

    def create_db_instance(
        self,
        account: str | None,
        region: str,
        identifier: str | None = None,
        encrypted: bool = True,
        kms_key: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> str:
        """Create a PostgreSQL DB instance; returns its identifier.

        encrypted without kms_key means the account's AWS managed aws/rds key; kms_key (ARN,
        key id or alias) implies encrypted. The identifier defaults to a fresh "db-<hex>".
        """
        identifier = identifier or f"db-{uuid.uuid4().hex[:12]}"
        kwargs: dict[str, Any] = {
            "DBInstanceIdentifier": identifier,
            "DBInstanceClass": "db.t3.micro",
            "Engine": "postgres",
            "MasterUsername": "snaprelay",
            "MasterUserPassword": "not-a-secret-1",
            "AllocatedStorage": 20,
        }
        if encrypted or kms_key:
            kwargs["StorageEncrypted"] = True
            if kms_key:
                kwargs["KmsKeyId"] = kms_key
        if tags:
            kwargs["Tags"] = _tag_list(tags)
        self.rds(account, region).create_db_instance(**kwargs)
        return identifier

    def create_db_cluster(
        self,
        account: str | None,
        region: str,
        identifier: str | None = None,
        encrypted: bool = True,
        kms_key: str | None = None,
        tags: Mapping[str, str] | None = None,
        writer: bool = True,
    ) -> str:
        """Create an Aurora PostgreSQL DB cluster (and, with `writer`, its writer DB instance
        `<identifier>-writer`); returns the cluster identifier.

        encrypted without kms_key means the account's AWS managed aws/rds key (moto_ext's
        aurora.py gives the cluster that key's ARN, as AWS does); kms_key implies encrypted.
        """
        identifier = identifier or f"cluster-{uuid.uuid4().hex[:12]}"
        kwargs: dict[str, Any] = {
            "DBClusterIdentifier": identifier,
            "Engine": "aurora-postgresql",
            "MasterUsername": "snaprelay",
            "MasterUserPassword": "not-a-secret-1",
        }
        if encrypted or kms_key:
            kwargs["StorageEncrypted"] = True
            if kms_key:
                kwargs["KmsKeyId"] = kms_key
        if tags:
            kwargs["Tags"] = _tag_list(tags)
        rds = self.rds(account, region)
        rds.create_db_cluster(**kwargs)
        if writer:
            rds.create_db_instance(
                DBInstanceIdentifier=f"{identifier}-writer",
                DBInstanceClass="db.r6g.large",
                Engine="aurora-postgresql",
                DBClusterIdentifier=identifier,
            )
        return identifier

    def db_cluster_snapshots(
        self, account: str | None, region: str, snapshot_type: str | None = "manual"
    ) -> list[dict[str, Any]]:
        """DB cluster snapshots owned by `account` in `region` (manual ones unless
        snapshot_type says otherwise), with their TagList."""
        kwargs: dict[str, Any] = {}
        if snapshot_type:
            kwargs["SnapshotType"] = snapshot_type
        return self.rds(account, region).describe_db_cluster_snapshots(**kwargs)[
            "DBClusterSnapshots"
        ]

    def db_cluster_snapshot_shares(
        self, account: str | None, region: str, snapshot_identifier: str
    ) -> list[str]:
        """The restore attribute of a DB cluster snapshot ("all": public)."""
        result = self.rds(account, region).describe_db_cluster_snapshot_attributes(
            DBClusterSnapshotIdentifier=snapshot_identifier
        )["DBClusterSnapshotAttributesResult"]
        return sorted(
            v
            for attribute in result["DBClusterSnapshotAttributes"]
            if attribute["AttributeName"] == "restore"
            for v in attribute.get("AttributeValues", [])
        )

    def db_instance(self, account: str | None, region: str, identifier: str) -> dict[str, Any]:
        return self.rds(account, region).describe_db_instances(DBInstanceIdentifier=identifier)[
            "DBInstances"
        ][0]

    def db_snapshots(
        self,
        account: str | None,
        region: str,
        tags: Mapping[str, str] | None = None,
        snapshot_type: str | None = "manual",
        **filters: str | list[str],
    ) -> list[dict[str, Any]]:
        """DB snapshots owned by `account` in `region` (manual ones unless snapshot_type says
        otherwise; None: manual and automated), with their tags (TagList).

        Keyword filters use DescribeDBSnapshots filter names with "_" for "-"
        (db_instance_id="db-1", db_snapshot_id=["a", "b"]); tags={"k": "v"} is applied here,
        as DescribeDBSnapshots has no tag filter.
        """
        rds_filters = []
        for name, value in filters.items():
            values = value if isinstance(value, list) else [value]
            rds_filters.append({"Name": name.replace("_", "-"), "Values": [str(v) for v in values]})
        kwargs: dict[str, Any] = {}
        if rds_filters:
            kwargs["Filters"] = rds_filters
        if snapshot_type:
            kwargs["SnapshotType"] = snapshot_type
        found = self.rds(account, region).describe_db_snapshots(**kwargs)["DBSnapshots"]
        wanted = dict(tags or {})
        return [s for s in found if all(tags_of_db(s).get(k) == v for k, v in wanted.items())]

    def db_snapshot(self, account: str | None, region: str, identifier: str) -> dict[str, Any]:
        return self.rds(account, region).describe_db_snapshots(DBSnapshotIdentifier=identifier)[
            "DBSnapshots"
        ][0]

    def db_snapshot_by_arn(self, arn: str) -> dict[str, Any]:
        """The DB snapshot an ARN names, described by its owner in its Region."""
        _, _, _, region, account, _, identifier = arn.split(":", 6)
        return self.db_snapshot(account, region, identifier)

    def db_snapshot_shares(self, account: str | None, region: str, snapshot_identifier: str) -> list[str]:
        """The restore attribute: account ids allowed to copy/restore the snapshot ("all": public)."""
        result = self.rds(account, region).describe_db_snapshot_attributes(
            DBSnapshotIdentifier=snapshot_identifier
        )["DBSnapshotAttributesResult"]
        values = [
            v
            for attribute in result["DBSnapshotAttributes"]
            if attribute["AttributeName"] == "restore"
            for v in attribute.get("AttributeValues", [])
        ]
        return sorted(values)

    def all_db_snapshots(
        self, accounts: Iterable[str | None], regions: Iterable[str]
    ) -> dict[tuple[str | None, str], list[str]]:
        """Manual DB snapshot identifiers owned per (account, region): to prove nothing was created."""
        return {
            (a, r): sorted(s["DBSnapshotIdentifier"] for s in self.db_snapshots(a, r))
            for a in accounts
            for r in regions
        }


def _volumes_of(ec2: Any, instance_id: str) -> list[dict[str, Any]]:
    return ec2.describe_volumes(
        Filters=[{"Name": "attachment.instance-id", "Values": [instance_id]}]
    )["Volumes"]


def _tag_list(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def tags_of(resource: Mapping[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource.get("Tags", [])}


def tags_of_db(resource: Mapping[str, Any]) -> dict[str, str]:
    """Tags of an RDS resource as described (RDS calls the list TagList)."""
    return {t["Key"]: t["Value"] for t in resource.get("TagList", [])}


# -------------------------------------------------------------------- the binary


def snaprelay_bin() -> Path:
    return Path(os.environ.get("SNAPRELAY_BIN") or DEFAULT_BIN)


def snaprelay_env(endpoint: str) -> dict[str, str]:
    """The process environment without any AWS setting of the caller, pointed at moto."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("AWS_") and k not in {"HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"}
    }
    env.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_REGION="us-east-1",
        AWS_EC2_METADATA_DISABLED="true",
        # No shared config/credentials files of the developer can leak in.
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        NO_PROXY="127.0.0.1,localhost",
        # moto completes snapshots at once: poll soon, so the suite does not sit in back-off.
        SNAPRELAY_POLL_INTERVAL="0.05",
    )
    return env


def run_snaprelay(
    endpoint: str,
    policy_toml_text: str,
    tmp_path: Path,
    *args: str,
    timeout: float = 600,
) -> tuple[int, str, str]:
    """Write the policy, run `snaprelay --policy P --state S ARGS...`; (exit code, stdout, stderr).

    The state file is tmp_path/state.db, so consecutive runs in one test share it.
    """
    binary = snaprelay_bin()
    if not binary.exists():
        raise FileNotFoundError(
            f"snaprelay binary not found at {binary}: build it (cargo build -p <cli crate>) "
            "or set SNAPRELAY_BIN"
        )
    policy = Path(tmp_path) / "policy.toml"
    policy.write_text(policy_toml_text)
    state = Path(tmp_path) / "state.db"
    proc = subprocess.run(
        [str(binary), "--policy", str(policy), "--state", str(state), *args],
        env=snaprelay_env(endpoint),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    return proc.returncode, proc.stdout, proc.stderr
