"""Namespace events and commands: the tenant/environment boundary and its O(1) fork."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from contracts.base import Command, Event

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"


class CreateNamespace(Command):
    type_name: ClassVar[str] = "namespace.create"

    namespace_name: str = Field(pattern=NAME_PATTERN)
    description: str = Field(default="", max_length=2000)


class CloneNamespace(Command):
    type_name: ClassVar[str] = "namespace.clone"

    source_namespace_id: str = Field(min_length=1)
    namespace_name: str = Field(pattern=NAME_PATTERN)


class NamespaceCreated(Event):
    type_name: ClassVar[str] = "namespace.created"

    namespace_id: str
    namespace_name: str
    description: str = ""


class NamespaceForked(Event):
    """The namespace's stream is a fork: it holds the parent's events up to ``at_position``."""

    type_name: ClassVar[str] = "namespace.forked"

    namespace_id: str
    namespace_name: str
    parent_namespace_id: str
    at_position: int = Field(ge=0)


class NamespaceUpdated(Event):
    """Name and description are the only mutable fields of a namespace (PATCH)."""

    type_name: ClassVar[str] = "namespace.updated"

    namespace_id: str
    namespace_name: str | None = None
    description: str | None = None
