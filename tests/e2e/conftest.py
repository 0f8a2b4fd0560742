"""Fixtures: one patched moto server per test session, reset before every test; the
share/snapshot logs of moto_ext (share_log, db_share_log, db_snapshot_log)."""

from __future__ import annotations

import logging
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import moto_ext  # noqa: E402
from estate import Estate  # noqa: E402


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """URL of a moto server with moto_ext's corrections, in a thread of this process."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = moto_ext.start()
    try:
        yield server.endpoint
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def _fresh_moto(moto_endpoint: str) -> Iterator[None]:
    """Every test starts from an empty AWS: moto's reset, then moto_ext's own records."""
    request = urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST", data=b"")
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
    moto_ext.after_reset()
    yield


@pytest.fixture
def estate(moto_endpoint: str) -> Estate:
    return Estate(moto_endpoint)


@pytest.fixture
def share_log() -> list[dict]:
    """Every createVolumePermission change requested during the test (moto_ext.SHARE_LOG)."""
    return moto_ext.SHARE_LOG


@pytest.fixture
def db_share_log() -> list[dict]:
    """Every ModifyDBSnapshotAttribute request during the test (moto_ext.DB_SHARE_LOG)."""
    return moto_ext.DB_SHARE_LOG


@pytest.fixture
def db_snapshot_log() -> list[dict]:
    """Every manual CreateDBSnapshot / CopyDBSnapshot request during the test
    (moto_ext.DB_SNAPSHOT_LOG)."""
    return moto_ext.DB_SNAPSHOT_LOG
