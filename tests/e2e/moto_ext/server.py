"""Applying the patches (with MOTO_EXT_SKIP), clearing the package's records after a reset,
and moto's server in a thread: ``start()`` from Python, ``main()`` for the standalone
``python3 tests/e2e/moto_ext [--port N]`` (see __main__.py).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

from moto.server import ThreadedMotoServer

from .aurora import AURORA_COPY_PACING, DB_CLUSTER_SHARE_LOG
from .common import PATCHES, log
from .ebs import COPY_PACING, SHARE_LOG, _share_log_lock
from .rds import DB_SHARE_LOG, DB_SNAPSHOT_LOG, RDS_COPY_PACING, _db_log_lock

_applied = False
_apply_lock = threading.Lock()


def apply_patches() -> None:
    """Apply every patch once (idempotent, thread-safe).

    MOTO_EXT_SKIP=name,name (or "all") leaves patches out: to watch test_moto_ext.py fail
    against plain moto, never for real runs.
    """
    global _applied
    skip = {s.strip() for s in os.environ.get("MOTO_EXT_SKIP", "").split(",") if s.strip()}
    with _apply_lock:
        if _applied:
            return
        for name, fn in PATCHES:
            if name in skip or "all" in skip:
                log.warning("moto_ext: %s left out (MOTO_EXT_SKIP)", name)
                continue
            fn()
            log.debug("applied %s", name)
        _applied = True


def after_reset() -> None:
    """Call after POST /moto-api/reset: the patches survive it, our own records do not."""
    apply_patches()
    with _share_log_lock:
        SHARE_LOG.clear()
    with _db_log_lock:
        DB_SHARE_LOG.clear()
        DB_SNAPSHOT_LOG.clear()
        DB_CLUSTER_SHARE_LOG.clear()
    COPY_PACING.clear()
    RDS_COPY_PACING.clear()
    AURORA_COPY_PACING.clear()


# --------------------------------------------------------------------------- server


class Server:
    """A patched moto server on 127.0.0.1 in a thread of this process."""

    def __init__(self, port: int = 0):
        apply_patches()
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self._server.start()
        host, bound = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{bound}"

    def stop(self) -> None:
        self._server.stop()


def start(port: int = 0) -> Server:
    return Server(port)


def main(argv: list[str] | None = None) -> int:
    # The package docstring's first line, as when this was the single file moto_ext.py.
    summary = sys.modules[__package__].__doc__.splitlines()[0]
    parser = argparse.ArgumentParser(description=summary)
    parser.add_argument("--port", type=int, default=0, help="0 (default) picks a free port")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    if not args.verbose:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    server = start(args.port)
    print(server.endpoint, flush=True)
    try:
        while not stop.wait(1.0):
            pass
    finally:
        server.stop()
    return 0
