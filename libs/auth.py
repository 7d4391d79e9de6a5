"""API keys and the principal a request acts as. Keys are shown once and stored as SHA-256 hashes.

A key reads ``osk.<key_id>.<secret>``: the key id finds the record, the secret is compared in
constant time with the stored hash. Permissions nest: admin ⊃ write ⊃ read.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Protocol

from contracts.auth import Permission
from libs.errors import OffshootError
from libs.ids import new_id

_RANK = {Permission.READ: 1, Permission.WRITE: 2, Permission.ADMIN: 3}


class AuthenticationError(OffshootError):
    """No key, a malformed key, an unknown key, a wrong secret or a revoked key (HTTP 401)."""


class PermissionDeniedError(OffshootError):
    """The key is valid but lacks the permission the call needs (HTTP 403)."""


@dataclass(frozen=True, slots=True)
class Principal:
    organization_id: str
    key_id: str
    permissions: frozenset[Permission]
    namespace_ids: frozenset[str] | None  # None: every namespace of the organization

    def can(self, needed: Permission) -> bool:
        return any(_RANK[held] >= _RANK[needed] for held in self.permissions)

    def require(self, needed: Permission) -> None:
        if not self.can(needed):
            raise PermissionDeniedError(f"this API key lacks the {needed.value!r} permission")

    def sees_namespace(self, namespace_id: str) -> bool:
        return self.namespace_ids is None or namespace_id in self.namespace_ids


@dataclass(frozen=True, slots=True)
class StoredKey:
    key_id: str
    organization_id: str
    secret_sha256: str
    permissions: frozenset[Permission]
    namespace_ids: frozenset[str] | None
    revoked: bool


class KeyDirectory(Protocol):
    """Where keys are looked up; the catalog's read model in every mode."""

    async def find_key(self, key_id: str) -> StoredKey | None: ...


def generate_key() -> tuple[str, str, str]:
    """A new ``(key_id, api_key, secret_sha256)``; only the hash may be stored."""
    key_id = new_id("key")
    secret = secrets.token_hex(24)
    return key_id, f"osk.{key_id}.{secret}", hash_secret(secret)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


async def authenticate(directory: KeyDirectory, api_key: str | None) -> Principal:
    if not api_key:
        raise AuthenticationError("missing API key: send 'Authorization: Bearer <key>'")
    parts = api_key.split(".")
    if len(parts) != 3 or parts[0] != "osk":
        raise AuthenticationError("malformed API key (expected osk.<key_id>.<secret>)")
    stored = await directory.find_key(parts[1])
    if stored is None or not hmac.compare_digest(stored.secret_sha256, hash_secret(parts[2])):
        raise AuthenticationError("invalid API key")
    if stored.revoked:
        raise AuthenticationError("this API key was revoked")
    return Principal(
        stored.organization_id, stored.key_id, stored.permissions, stored.namespace_ids
    )
