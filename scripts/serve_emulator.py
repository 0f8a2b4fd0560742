"""`snaprelay serve --policies examples/` against a local AWS emulator, to try as a new user.

Starts moto (with tests/e2e/moto_ext's corrections) on 127.0.0.1, builds the estate the
example policies select (an EC2 instance and an RDS database tagged backup = gold in account
123456789012, us-east-1, under a key account 222222222222 may use; the key alias/dr-vault in
222222222222, eu-west-1), and runs `snaprelay serve` on the examples with their schedules
made to tick every 30 seconds (so that a scheduled session is seen soon). Open the console
at the address it prints; Ctrl-C stops serve and the emulator; run again to start afresh.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "e2e"))

import moto_ext  # noqa: E402
from estate import Estate, snaprelay_bin, snaprelay_env  # noqa: E402

TARGET_ACCOUNT = "222222222222"


def main() -> int:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    port = os.environ.get("SNAPRELAY_LISTEN", "127.0.0.1:8080")
    server = moto_ext.start()
    try:
        estate = Estate(server.endpoint)
        source_key = estate.create_key(None, "us-east-1", allow_accounts=[TARGET_ACCOUNT], alias="app-data")
        estate.create_key(TARGET_ACCOUNT, "eu-west-1", alias="dr-vault")
        estate.create_instance(
            None,
            "us-east-1",
            volumes=[{"size": 8, "kms_key": source_key}, {"size": 20, "kms_key": source_key}],
            tags={"Name": "web-1", "backup": "gold"},
        )
        estate.create_db_instance(None, "us-east-1", "orders-db", kms_key=source_key, tags={"backup": "gold"})
        with tempfile.TemporaryDirectory(prefix="snaprelay-serve-") as tmp:
            policies = Path(tmp) / "policies"
            policies.mkdir()
            for example in sorted((REPO / "examples").glob("*.toml")):
                text = re.sub(r'(?m)^schedule = ".*"$', 'schedule = "*/30 * * * * *"', example.read_text(), count=1)
                (policies / example.name).write_text(text)
            print(f"AWS emulator on {server.endpoint}; the example policies, ticking every 30 s, in {policies}")
            print(f"console: http://{port}/   metrics: http://{port}/metrics   (Ctrl-C stops)", flush=True)
            env = {**snaprelay_env(server.endpoint), "SNAPRELAY_LOG": "info"}
            proc = subprocess.Popen(
                [str(snaprelay_bin()), "--state", str(Path(tmp) / "state.sqlite"), "serve",
                 "--policies", str(policies), "--listen", port],
                env=env,
            )
            # A SIGTERM to this script stops serve too (it stops cleanly on SIGTERM).
            signal.signal(signal.SIGTERM, lambda *_: proc.send_signal(signal.SIGTERM))
            try:
                return proc.wait()
            except KeyboardInterrupt:
                proc.send_signal(signal.SIGINT)
                return proc.wait(timeout=30)
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
