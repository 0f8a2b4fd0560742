"""What the concern modules share: the patch registry, the logger, the ambient account, and
a look-up of moto's per-account, per-Region backends that creates none.

Each patch is a function decorated with ``@patch``; ``PATCHES`` lists them in the order their
modules are imported (kms, ebs, ..., rds, aurora), and ``server.apply_patches`` applies them
once, minus those named in MOTO_EXT_SKIP. Every patch replaces moto attributes no other patch
touches and reads the others' only when called, so the order of application does not matter.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

AMBIENT_ACCOUNT = "123456789012"
"""The account moto acts in for credentials it does not know (e.g. ``testing``)."""

log = logging.getLogger("moto_ext")

PATCHES: list[tuple[str, Callable[[], None]]] = []


def patch(fn: Callable[[], None]) -> Callable[[], None]:
    PATCHES.append((fn.__name__, fn))
    return fn


def _existing(backend_dict: Any, account: str, region: str) -> Any | None:
    """The backend of account+Region if it was ever created, without creating it."""
    per_account = dict.get(backend_dict, account)
    if per_account is None or region not in dict.keys(per_account):
        return None
    return dict.__getitem__(per_account, region)
