"""Prefixed resource ids, and the ids a fork gives to what it inherits.

A fork renames every inherited resource with ``derive(fork_namespace_id, old_id)``: a pure
function, so any service computes the same ``{old_id: new_id}`` mapping on its own, and the
prefix is kept so an id always says what it names.
"""

from __future__ import annotations

import hashlib
import re
import secrets

from libs.errors import InvalidInputError

PREFIXES = frozenset(
    {
        "org",
        "ns",
        "bkt",
        "obj",
        "col",
        "doc",
        "ret",
        "ali",
        "tax",
        "clu",
        "eds",
        "evl",
        "bmk",
        "tsk",
        "whk",
        "key",
        "bat",
        "dlv",
    }
)
_ID = re.compile(r"^([a-z]+)_([0-9a-f]{20})$")


def new_id(prefix: str) -> str:
    """A fresh random id such as ``ns_3f9c0a1b2c3d4e5f6a7b``."""
    if prefix not in PREFIXES:
        raise ValueError(f"unknown id prefix {prefix!r}")
    return f"{prefix}_{secrets.token_hex(10)}"


def derive(namespace_id: str, old_id: str) -> str:
    """The id ``old_id`` gets in the fork ``namespace_id``: same prefix, deterministic."""
    prefix = prefix_of(old_id)
    digest = hashlib.sha256(f"{namespace_id}\x00{old_id}".encode()).hexdigest()[:20]
    return f"{prefix}_{digest}"


def prefix_of(resource_id: str) -> str:
    match = _ID.match(resource_id)
    if match is None or match.group(1) not in PREFIXES:
        raise InvalidInputError(
            f"{resource_id!r} is not an Offshoot id (like 'ns_' + 20 hex digits)"
        )
    return match.group(1)


def is_id(value: str, prefix: str | None = None) -> bool:
    match = _ID.match(value)
    return match is not None and (prefix is None or match.group(1) == prefix)
