"""KMS: key look-up as an account sees it, key policies, AWS managed keys.

moto resolves key references only in the caller's account, never consults key policies, and
gives the keys behind ``alias/aws/*`` customer-managed metadata and policies. The helpers here
(``lookup_key``, ``key_policy_admits``, ``make_aws_managed``) serve the EBS and RDS patches
too; the patches here make AWS managed keys look and act as AWS's, and let DescribeKey reach
another account's key.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from moto.ec2.models.elastic_block_store import EBSBackend
from moto.kms.exceptions import AccessDeniedException, NotFoundException
from moto.kms.models import Key, KmsBackend, kms_backends
from moto.kms.responses import KmsResponse

from .common import patch

COPY_KEY_ACTIONS = ("kms:DescribeKey", "kms:CreateGrant", "kms:Decrypt")
"""Key-policy actions another account needs on a source key for EBS to copy with it.

AWS lists DescribeKey, CreateGrant, GenerateDataKey, GenerateDataKeyWithoutPlaintext,
ReEncrypt and Decrypt (https://docs.aws.amazon.com/ebs/latest/userguide/share-kms-key.html);
we require the three without which EBS cannot even start to use the key.
"""


# --------------------------------------------------------------------------- helpers


@dataclass(frozen=True)
class KmsArn:
    account: str
    region: str
    kind: str  # "key" or "alias"
    name: str  # key id, or "alias/..."


_KMS_ARN = re.compile(r"^arn:aws[\w-]*:kms:([a-z0-9-]+):(\d{12}):(key|alias)/(.+)$")


def parse_kms_arn(text: str) -> KmsArn | None:
    m = _KMS_ARN.match(text or "")
    if not m:
        return None
    region, account, kind, rest = m.groups()
    return KmsArn(account, region, kind, rest if kind == "key" else f"alias/{rest}")


def lookup_key(account: str, region: str, key_ref: str) -> Key | None:
    """Resolve a key id, key ARN, alias name or alias ARN as `account` in `region` would.

    Bare ids and alias names resolve in the caller's own account+Region; ARNs name their
    account, and their Region must be `region` (KMS keys are regional:
    https://docs.aws.amazon.com/kms/latest/developerguide/find-cmk-id-arn.html).
    Reserved aws/* aliases are created on demand, as AWS creates managed keys on first use.
    """
    if not key_ref:
        return None
    arn = parse_kms_arn(key_ref)
    if arn is not None:
        if arn.region != region:
            return None
        account, name = arn.account, arn.name
    elif key_ref.startswith("arn:"):
        return None
    else:
        name = key_ref
    backend: KmsBackend = kms_backends[account][region]
    if name.startswith("alias/"):
        key_id = backend.get_key_id_from_alias(name)
        return backend.keys.get(key_id) if key_id else None
    return backend.keys.get(name)


def is_aws_managed(key: Key) -> bool:
    return getattr(key, "key_manager", "") == "AWS" or any(
        alias.startswith("alias/aws/") for alias in key.aliases
    )


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _principal_admits(principal: Any, account: str) -> bool:
    if principal == "*":
        return True
    if isinstance(principal, dict):
        principal = principal.get("AWS")
    for p in _as_list(principal):
        if p == "*" or p == account:
            return True
        # arn:aws:iam::B:root, arn:aws:iam::B:role/x, arn:aws:sts::B:assumed-role/x/y ...
        m = re.match(r"^arn:aws[\w-]*:(?:iam|sts)::(\d{12}):", str(p))
        if m and m.group(1) == account:
            return True
    return False


def _conditions_admit(condition: dict[str, Any] | None, account: str) -> bool:
    """Only kms:CallerAccount is evaluated (it is what AWS managed key policies use)."""
    for operator, tests in (condition or {}).items():
        for name, value in tests.items():
            if name.lower() == "kms:calleraccount" and operator.startswith("StringEquals"):
                if account not in _as_list(value):
                    return False
    return True


def _actions_cover(actions: Any, action: str) -> bool:
    return any(
        fnmatch.fnmatchcase(action.lower(), str(pattern).lower())
        for pattern in _as_list(actions)
    )


def key_policy_admits(key: Key, account: str, actions: Iterable[str]) -> bool:
    """Does `key`'s key policy let principals of `account` perform all `actions`?

    Imitates cross-account key access: another account may use a KMS key only if the key
    policy allows it (https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-modifying-external-accounts.html),
    and AWS managed keys can never be used by another account
    (https://docs.aws.amazon.com/kms/latest/developerguide/concepts.html#aws-managed-cmk).
    The owning account is admitted (its IAM policies are not modelled), a disabled key
    admits nobody. Evaluated: Effect, Principal (AWS: "*", an account id, any IAM/STS ARN
    of the account), Action wildcards, Condition kms:CallerAccount. Not evaluated: other
    conditions, NotPrincipal, NotAction.
    """
    if not key.enabled or key.key_state != "Enabled":
        return False
    if key.account_id == account:
        return True
    if is_aws_managed(key):
        return False
    try:
        statements = _as_list(json.loads(key.policy).get("Statement"))
    except (ValueError, AttributeError):
        return False
    allowed: set[str] = set()
    for st in statements:
        if not (
            _principal_admits(st.get("Principal"), account)
            and _conditions_admit(st.get("Condition"), account)
        ):
            continue
        for action in actions:
            if _actions_cover(st.get("Action"), action):
                if st.get("Effect") == "Deny":
                    return False
                if st.get("Effect") == "Allow":
                    allowed.add(action)
    return allowed >= set(actions)


def aws_managed_key_policy(account: str, region: str, service: str) -> str:
    """The fixed key policy AWS gives its managed keys (here the shape of aws/ebs's).

    https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html and
    https://docs.aws.amazon.com/ebs/latest/userguide/ebs-encryption.html: usable by any
    principal of the owning account, only through the service, never by another account.
    """
    via = {"ebs": "ec2"}.get(service, service)
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Id": f"auto-{service}-2",
            "Statement": [
                {
                    "Sid": "Allow access through the service for all principals in the "
                    "account that are authorized to use it",
                    "Effect": "Allow",
                    "Principal": {"AWS": "*"},
                    "Action": [
                        "kms:Encrypt",
                        "kms:Decrypt",
                        "kms:ReEncrypt*",
                        "kms:GenerateDataKey*",
                        "kms:CreateGrant",
                        "kms:DescribeKey",
                    ],
                    "Resource": "*",
                    "Condition": {
                        "StringEquals": {
                            "kms:CallerAccount": account,
                            "kms:ViaService": f"{via}.{region}.amazonaws.com",
                        }
                    },
                },
                {
                    "Sid": "Allow direct access to key metadata to the account",
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
                    "Action": ["kms:Describe*", "kms:Get*", "kms:List*", "kms:RevokeGrant"],
                    "Resource": "*",
                },
            ],
        }
    )


def make_aws_managed(key: Key, alias: str) -> None:
    service = alias.removeprefix("alias/aws/")
    key.key_manager = "AWS"
    key.policy = aws_managed_key_policy(key.account_id, key.region, service)
    if service == "ebs":
        key.description = (
            "Default key that protects my EBS volumes when no other key is defined"
        )
    elif service == "rds":
        key.description = (
            "Default key that protects my RDS database volumes when no other key is defined"
        )


# --------------------------------------------------------------------------- patches

@patch
def patch_default_ebs_key_is_aws_managed() -> None:
    """Departure 2: the aws/ebs key moto creates on demand is an ordinary customer key.

    moto already encrypts Encrypted=true volumes without KmsKeyId under a key it creates
    with alias alias/aws/ebs (see ALREADY_CORRECT). AWS: that default key is an *AWS
    managed* key, with a fixed key policy that only its own account can use through EC2
    (https://docs.aws.amazon.com/ebs/latest/userguide/ebs-encryption.html#ebs-encryption-key-mgmt,
    https://docs.aws.amazon.com/kms/latest/developerguide/concepts.html#aws-managed-cmk).
    Applies to keys created by EC2 and to aws/* keys KMS creates on first reference.
    """
    original_ebs = EBSBackend._create_default_encryption_key
    original_kms = KmsBackend._generate_default_keys

    def _create_default_encryption_key(self: EBSBackend) -> str:
        arn = original_ebs(self)
        key = lookup_key(self.account_id, self.region_name, arn)
        if key is not None and any(a == "alias/aws/ebs" for a in key.aliases):
            make_aws_managed(key, "alias/aws/ebs")
        return arn

    def _generate_default_keys(self: KmsBackend, alias_name: str) -> str | None:
        key_id = original_kms(self, alias_name)
        if key_id is not None:
            make_aws_managed(self.keys[key_id], alias_name)
        return key_id

    EBSBackend._create_default_encryption_key = _create_default_encryption_key
    KmsBackend._generate_default_keys = _generate_default_keys


@patch
def patch_key_manager_aws() -> None:
    """Departure 3: keys behind alias/aws/* report KeyManager CUSTOMER in moto.

    AWS: AWS managed keys (aliases aws/<service>) report KeyManager "AWS" in DescribeKey
    (https://docs.aws.amazon.com/kms/latest/APIReference/API_KeyMetadata.html#KMS-Type-KeyMetadata-KeyManager).
    """
    original = Key.to_dict

    def to_dict(self: Key) -> dict[str, Any]:
        result = original(self)
        if is_aws_managed(self):
            result["KeyMetadata"]["KeyManager"] = "AWS"
        return result

    Key.to_dict = to_dict


@patch
def patch_kms_cross_account_describe_key() -> None:
    """Departure: DescribeKey with another account's key ARN looked in the caller's account.

    AWS: "To perform this operation on a KMS key in a different AWS account, specify the
    key ARN or alias ARN" (https://docs.aws.amazon.com/kms/latest/APIReference/API_DescribeKey.html);
    it succeeds if the key policy allows the caller kms:DescribeKey, else AccessDenied.
    Lets snaprelay check, with the target role, that it can reach a source key.
    """
    original = KmsResponse.describe_key

    def describe_key(self: KmsResponse) -> str:
        key_ref = self._get_param("KeyId") or ""
        arn = parse_kms_arn(key_ref)
        if arn is None or arn.account == self.current_account:
            return original(self)
        key = lookup_key(arn.account, self.region, key_ref)
        if key is None:
            raise NotFoundException(f"Key '{key_ref}' does not exist")
        if not key_policy_admits(key, self.current_account, ["kms:DescribeKey"]):
            message = (
                f"User: arn:aws:iam::{self.current_account}:root is not authorized to "
                f"perform: kms:DescribeKey on resource: {key.arn} because no "
                "resource-based policy allows the kms:DescribeKey action"
            )
            error = AccessDeniedException(message)
            # moto's AccessDeniedException drops its message from the response body.
            error.description = json.dumps({"__type": "AccessDeniedException", "message": message})
            raise error
        return json.dumps(key.to_dict())

    KmsResponse.describe_key = describe_key
