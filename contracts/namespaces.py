"""Namespace events and commands: the tenant/environment boundary and its O(1) fork."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from contracts.base import Command, Event

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"


class IncludeResources(BaseModel):
    """Which resource kinds a namespace clone brings along (buckets and objects always come)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    collections: bool = True
    retrievers: bool = True
    taxonomies: bool = False


class CreateNamespace(Command):
    type_name: ClassVar[str] = "namespace.create"

    namespace_name: str = Field(pattern=NAME_PATTERN)
    description: str = Field(default="", max_length=2000)


class UpdateNamespace(Command):
    """PATCH: name and description are the only mutable fields."""

    type_name: ClassVar[str] = "namespace.update"

    namespace_id: str
    namespace_name: str | None = Field(default=None, pattern=NAME_PATTERN)
    description: str | None = Field(default=None, max_length=2000)


class DeleteNamespace(Command):
    type_name: ClassVar[str] = "namespace.delete"

    namespace_id: str


class CloneNamespace(Command):
    type_name: ClassVar[str] = "namespace.clone"

    namespace_id: str = Field(min_length=1, description="the namespace to clone")
    namespace_name: str = Field(pattern=NAME_PATTERN)
    description: str = Field(default="", max_length=2000)
    include_resources: IncludeResources = Field(default_factory=IncludeResources)


class NamespaceCreated(Event):
    type_name: ClassVar[str] = "namespace.created"

    namespace_id: str
    organization_id: str
    namespace_name: str
    description: str = ""


class NamespaceForked(Event):
    """The namespace's stream is a fork: it holds the parent's events up to ``at_position``.

    Every service that keeps namespace state forks its own streams when it sees this, and answers
    with ``NamespaceForkAcknowledged``; the clone task completes when all of ``awaiting`` have.
    """

    type_name: ClassVar[str] = "namespace.forked"

    namespace_id: str
    organization_id: str
    namespace_name: str
    description: str = ""
    parent_namespace_id: str
    at_position: int = Field(ge=0)
    include_resources: IncludeResources = Field(default_factory=IncludeResources)
    task_id: str
    awaiting: list[str] = Field(default_factory=list, description="services that must acknowledge")
    mapping: dict[str, str] = Field(
        default_factory=dict, description="the catalog's old id → new id"
    )


class NamespaceForkAcknowledged(Event):
    """A service has forked its own state for a clone (or failed to, with ``error``)."""

    type_name: ClassVar[str] = "namespace.fork_acknowledged"

    namespace_id: str
    service: str
    task_id: str
    mapping: dict[str, str] = Field(default_factory=dict)
    error: str | None = None


class NamespaceActivated(Event):
    """A cloned namespace became visible: every service acknowledged its fork."""

    type_name: ClassVar[str] = "namespace.activated"

    namespace_id: str


class NamespaceCloneFailed(Event):
    """A clone failed; the namespace stays invisible and its name is free again."""

    type_name: ClassVar[str] = "namespace.clone_failed"

    namespace_id: str
    reason: str


class NamespaceUpdated(Event):
    type_name: ClassVar[str] = "namespace.updated"

    namespace_id: str
    namespace_name: str | None = None
    description: str | None = None


class NamespaceDeleted(Event):
    type_name: ClassVar[str] = "namespace.deleted"

    namespace_id: str
