"""Organizations and API keys: the authentication boundary."""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar

from pydantic import Field

from contracts.base import Command, Event


class Permission(StrEnum):
    READ = "read"
    WRITE = "write"
    ADMIN = "admin"


class OrganizationCreated(Event):
    type_name: ClassVar[str] = "organization.created"

    organization_id: str = Field(description="short public id, e.g. org_...")
    internal_id: str = Field(pattern=r"^[0-9a-f]{24}$")
    name: str


class ApiKeyCreated(Event):
    """Only the hash of the secret is ever stored; the key itself is shown once, at creation."""

    type_name: ClassVar[str] = "api_key.created"

    key_id: str
    organization_id: str
    name: str
    secret_sha256: str
    permissions: list[Permission]
    namespace_ids: list[str] | None = Field(default=None, description="None: every namespace")


class ApiKeyRevoked(Event):
    type_name: ClassVar[str] = "api_key.revoked"

    key_id: str
    organization_id: str


class CreateApiKey(Command):
    type_name: ClassVar[str] = "api_key.create"

    name: str = Field(min_length=1, max_length=200)
    permissions: list[Permission] = Field(min_length=1)
    namespace_ids: list[str] | None = None


class RevokeApiKey(Command):
    type_name: ClassVar[str] = "api_key.revoke"

    key_id: str
