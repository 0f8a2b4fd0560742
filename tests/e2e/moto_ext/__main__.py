"""Standalone: ``python3 tests/e2e/moto_ext [--port N] [--verbose]`` prints the endpoint URL on
its first stdout line and serves until SIGTERM / SIGINT (``server.main``). With tests/e2e on
sys.path, ``python3 -m moto_ext`` does the same.
"""

import sys
from pathlib import Path

if not __package__:
    # Run as a directory: Python put this directory first on sys.path, which would make
    # kms.py, ebs.py, ... importable as top-level modules. Import the package from its parent.
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from moto_ext.server import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
