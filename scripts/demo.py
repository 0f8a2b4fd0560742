"""The quick-start demo: snaprelay against a local AWS emulator.

Starts moto (with tests/e2e/moto_ext's corrections) on 127.0.0.1, builds a small estate in
two accounts, and runs policies that end in the seed's three outcomes:
Success (same account, target key), Warning (encrypted, target without a key) and Failed
(cross-account, a volume under the AWS managed aws/ebs key, while the other instance and an
RDS database of the same session still get their replicas, the database through workflow C's
two copies). The cross-account replicas are then put to use: `restore` rebuilds the instance
and the database in the target account, and `drill` proves each replica restores (and says
which resource has none to restore: legacy-1's, under aws/ebs, could not be made). Last, a
fourth policy names a re-encrypt key (the default-key workaround): legacy-1 then reaches the
target account through a copy under that key, and the session ends Success. A fifth replicates
an Aurora cluster to the other account and Region (two steps), restores it there with its
writer, and drills it.
"""

from __future__ import annotations

import logging
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "e2e"))

import moto_ext  # noqa: E402
from estate import AMBIENT_ACCOUNT, Estate, run_snaprelay  # noqa: E402

TARGET_ACCOUNT = "222222222222"


def banner(text: str) -> None:
    print(f"\n=== {text}", flush=True)


def main() -> int:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    server = moto_ext.start()
    try:
        estate = Estate(server.endpoint)
        source_key = estate.create_key(None, "us-east-1", allow_accounts=[TARGET_ACCOUNT], alias="app-data")
        west_key = estate.create_key(None, "us-west-2", alias="dr-west")
        eu_key = estate.create_key(TARGET_ACCOUNT, "eu-west-1", alias="dr-vault")
        # The default-key workaround's re-encrypt key: customer managed, admitting the target.
        share_key = estate.create_key(None, "us-east-1", allow_accounts=[TARGET_ACCOUNT], alias="share")
        web, _ = estate.create_instance(
            None,
            "us-east-1",
            volumes=[{"size": 8, "kms_key": source_key}, {"size": 20, "kms_key": source_key}],
            tags={"Name": "web-1", "backup": "gold"},
        )
        legacy, _ = estate.create_instance(
            None, "us-east-1", volumes=[{"size": 8, "encrypted": True}], tags={"Name": "legacy-1", "backup": "gold"}
        )
        orders = estate.create_db_instance(None, "us-east-1", "orders-db", kms_key=source_key, tags={"backup": "gold"})
        # Aurora: a cluster with its writer; across accounts its copy goes through the source
        # Region under a staging key of the target account.
        ledger = estate.create_db_cluster(None, "us-east-1", "ledger", kms_key=source_key)
        staging_key = estate.create_key(TARGET_ACCOUNT, "us-east-1", alias="dr-staging")
        banner(
            f"estate: account {AMBIENT_ACCOUNT} us-east-1: {web} (web-1, customer managed key), "
            f"{legacy} (legacy-1, aws/ebs), RDS {orders} (customer managed key), Aurora cluster "
            f"{ledger} (customer managed key); "
            f"target account {TARGET_ACCOUNT}"
        )

        header = 'name = "{name}"\n[source]\nregions = ["us-east-1"]\n[[source.resources]]\ntype = "ec2"\n{sel}\n'
        policies = {
            "dr-same-account": header.format(name="dr-same-account", sel=f'ids = ["{web}"]')
            + f'[[targets]]\nregion = "us-west-2"\nkms_key = "{west_key}"\n',
            "dr-no-target-key": header.format(name="dr-no-target-key", sel=f'ids = ["{web}"]')
            + f'[[targets]]\naccount = "{TARGET_ACCOUNT}"\nregion = "eu-central-1"\n'
            f'role_arn = "arn:aws:iam::{TARGET_ACCOUNT}:role/snaprelay-target"\n',
            "dr-cross-account": header.format(name="dr-cross-account", sel='tags = { backup = "gold" }')
            + '[[source.resources]]\ntype = "rds"\ntags = { backup = "gold" }\n'
            + f'[[targets]]\naccount = "{TARGET_ACCOUNT}"\nregion = "eu-west-1"\n'
            f'role_arn = "arn:aws:iam::{TARGET_ACCOUNT}:role/snaprelay-target"\nkms_key = "{eu_key}"\n',
            "dr-reencrypt": header.format(name="dr-reencrypt", sel=f'ids = ["{legacy}"]').replace(
                "[[source.resources]]", f'reencrypt_keys = {{ "us-east-1" = "{share_key}" }}\n[[source.resources]]', 1
            )
            + f'[[targets]]\naccount = "{TARGET_ACCOUNT}"\nregion = "eu-west-1"\n'
            f'role_arn = "arn:aws:iam::{TARGET_ACCOUNT}:role/snaprelay-target"\nkms_key = "{eu_key}"\n',
            "dr-aurora": f'name = "dr-aurora"\n[source]\nregions = ["us-east-1"]\n[[source.resources]]\n'
            f'type = "aurora"\nids = ["{ledger}"]\n'
            f'[[targets]]\naccount = "{TARGET_ACCOUNT}"\nregion = "eu-west-1"\n'
            f'role_arn = "arn:aws:iam::{TARGET_ACCOUNT}:role/snaprelay-target"\nkms_key = "{eu_key}"\n'
            f'staging_kms_key = "{staging_key}"\n',
        }
        with tempfile.TemporaryDirectory(prefix="snaprelay-demo-") as tmp:
            for name, text in policies.items():
                work = Path(tmp) / name
                work.mkdir()
                banner(f"policy {name}")
                print(text, end="")
                if name in ("dr-cross-account", "dr-reencrypt", "dr-aurora"):
                    banner(f"snaprelay plan ({name})")
                    code, out, err = run_snaprelay(server.endpoint, text, work, "plan")
                    print(out + err, end="")
                banner(f"snaprelay run ({name})")
                code, out, err = run_snaprelay(server.endpoint, text, work, "run", "--poll-interval", "0.2")
                print(out + err, end="")
                print(f"(exit code {code})")
                # The replicas in the target account, put to use: a restore, then a drill.
                uses = {
                    "dr-cross-account": (
                        ("restore-points", "--resource", web),
                        ("restore", web),
                        ("restore", orders, "--name", "orders-restored"),
                        ("drill",),
                        ("gc",),
                    ),
                    "dr-aurora": (
                        ("restore", ledger, "--name", "ledger-restored"),
                        ("drill", "--small"),
                    ),
                }
                if name in uses:
                    for args in uses[name]:
                        banner(f"snaprelay {' '.join(args)} ({name})")
                        code, out, err = run_snaprelay(server.endpoint, text, work, *args)
                        print(out + err, end="")
                        print(f"(exit code {code})")
        return 0
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
