"""Retrieval service commands and events: retrievers (immutable stage pipelines) and aliases
(mutable pointers to retrievers). Stored in the retrieval service's own event store, one stream
per namespace (``retrieval-<namespace_id>``), and published on ``offshoot.events``."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from contracts.base import Command, Event

NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"


class CreateRetriever(Command):
    """``POST /v1/retrievers``. ``collection_identifiers`` are collection ids or names of the
    namespace; ``stages`` use the seed shape ``{stage_name, stage_type, config: {stage_id,
    parameters}}``. The pipeline is validated in full before anything is stored."""

    type_name: ClassVar[str] = "retriever.create"

    retriever_name: str = Field(pattern=NAME)
    description: str = Field(default="", max_length=2000)
    tags: list[str] = Field(default_factory=list, max_length=50)
    collection_identifiers: list[str] = Field(min_length=1, max_length=32)
    input_schema: dict[str, Any] | None = None
    stages: list[dict[str, Any]] = Field(min_length=1, max_length=64)


class UpdateRetriever(Command):
    """``PATCH /v1/retrievers/{id}``: only name, description and tags may change (a change of
    behaviour is a clone)."""

    type_name: ClassVar[str] = "retriever.update"

    retriever_id: str | None = Field(
        default=None,
        description="on offshoot.commands: the retriever (id or name); over HTTP the URL names it",
    )
    retriever_name: str | None = Field(default=None, pattern=NAME)
    description: str | None = Field(default=None, max_length=2000)
    tags: list[str] | None = Field(default=None, max_length=50)
    stages: list[dict[str, Any]] | None = Field(
        default=None, description="refused (409): stages are immutable, clone instead"
    )
    collection_identifiers: list[str] | None = Field(
        default=None, description="refused (409): collections are immutable, clone instead"
    )
    input_schema: dict[str, Any] | None = Field(
        default=None, description="refused (409): the input schema is immutable, clone instead"
    )


class CloneRetriever(Command):
    """``POST /v1/retrievers/{id}/clone``: a new retriever from this one with overrides; it
    shares the collections (no data moves)."""

    type_name: ClassVar[str] = "retriever.clone"

    retriever_id: str | None = Field(
        default=None,
        description="on offshoot.commands: the retriever (id or name); over HTTP the URL names it",
    )
    retriever_name: str | None = Field(default=None, pattern=NAME)
    description: str | None = Field(default=None, max_length=2000)
    tags: list[str] | None = Field(default=None, max_length=50)
    stages: list[dict[str, Any]] | None = Field(default=None, min_length=1, max_length=64)
    collection_identifiers: list[str] | None = Field(default=None, min_length=1, max_length=32)
    input_schema: dict[str, Any] | None = None


class CreateAlias(Command):
    type_name: ClassVar[str] = "alias.create"

    alias_name: str = Field(pattern=NAME)
    retriever_id: str = Field(min_length=1, description="a retriever id or name")
    description: str = Field(default="", max_length=2000)


class MoveAlias(Command):
    """Point the alias at another retriever (a promotion); every move is an event."""

    type_name: ClassVar[str] = "alias.move"

    alias_name: str | None = Field(
        default=None, description="on offshoot.commands: the alias; over HTTP the URL names it"
    )
    retriever_id: str = Field(min_length=1, description="a retriever id or name")
    reason: str = Field(default="", max_length=2000)


class RollbackAlias(Command):
    """Point the alias back at the retriever it served before its last move."""

    type_name: ClassVar[str] = "alias.rollback"

    alias_name: str | None = Field(
        default=None, description="on offshoot.commands: the alias; over HTTP the URL names it"
    )
    reason: str = Field(default="", max_length=2000)


class SetCanary(Command):
    """Serve ``percent`` of the alias's traffic from another retriever. Assignment hashes the
    caller's ``user_id`` (else ``session_id``) with the alias id, so a user keeps its variant
    and raising the percent only moves users into the canary."""

    type_name: ClassVar[str] = "alias.canary"

    alias_name: str | None = Field(
        default=None, description="on offshoot.commands: the alias; over HTTP the URL names it"
    )
    retriever_id: str = Field(min_length=1, description="a retriever id or name")
    percent: float = Field(gt=0, le=100, description="share of callers served by the canary")
    reason: str = Field(default="", max_length=2000)


class SetShadow(Command):
    """Also run another retriever on every request's inputs, after the response, to compare."""

    type_name: ClassVar[str] = "alias.shadow"

    alias_name: str | None = Field(
        default=None, description="on offshoot.commands: the alias; over HTTP the URL names it"
    )
    retriever_id: str = Field(min_length=1, description="a retriever id or name")
    reason: str = Field(default="", max_length=2000)


class ClearVariant(Command):
    """Stop an alias's canary or shadow (``DELETE /v1/aliases/{name}/canary|shadow``)."""

    type_name: ClassVar[str] = "alias.clear_variant"

    alias_name: str | None = Field(
        default=None, description="on offshoot.commands: the alias; over HTTP the URL names it"
    )
    variant: Literal["canary", "shadow"] | None = Field(
        default=None, description="on offshoot.commands: which to clear; over HTTP the URL says"
    )
    reason: str = Field(default="", max_length=2000)


class RetrieverCreated(Event):
    type_name: ClassVar[str] = "retriever.created"

    namespace_id: str
    retriever_id: str
    retriever_name: str
    description: str = ""
    tags: list[str] = Field(default_factory=list)
    collection_ids: list[str]
    input_schema: dict[str, Any] | None = None
    stages: list[dict[str, Any]]
    cloned_from: str | None = None
    created_by: str | None = Field(default=None, description="the API key id")
    created_at: str


class RetrieverUpdated(Event):
    type_name: ClassVar[str] = "retriever.updated"

    namespace_id: str
    retriever_id: str
    retriever_name: str | None = None
    description: str | None = None
    tags: list[str] | None = None
    updated_at: str


class RetrieverDeleted(Event):
    type_name: ClassVar[str] = "retriever.deleted"

    namespace_id: str
    retriever_id: str


class AliasCreated(Event):
    type_name: ClassVar[str] = "alias.created"

    namespace_id: str
    alias_id: str
    alias_name: str
    retriever_id: str
    description: str = ""
    created_by: str | None = None
    created_at: str


class AliasMoved(Event):
    """The alias now serves ``to_retriever_id`` (``kind``: a move or a rollback)."""

    type_name: ClassVar[str] = "alias.moved"

    namespace_id: str
    alias_id: str
    alias_name: str
    from_retriever_id: str
    to_retriever_id: str
    kind: Literal["move", "rollback"] = "move"
    reason: str = ""
    moved_by: str | None = Field(default=None, description="the API key id")
    moved_at: str


class AliasVariantChanged(Event):
    """An alias's canary or shadow was set (``retriever_id``) or cleared (``None``)."""

    type_name: ClassVar[str] = "alias.variant_changed"

    namespace_id: str
    alias_id: str
    alias_name: str
    variant: Literal["canary", "shadow"]
    retriever_id: str | None = None
    percent: float | None = Field(default=None, description="canary only")
    previous_retriever_id: str | None = None
    reason: str = ""
    changed_by: str | None = Field(default=None, description="the API key id")
    changed_at: str


class ShadowCompared(Event):
    """One shadowed request: the shadow's top results against the primary's. ``overlap_at_k``
    = |top-k ∩| / k with k the primary's result count; ``mean_rank_shift`` = mean |rank
    difference| over the documents both returned (None when none); ``latency_delta_ms`` =
    shadow - primary engine time."""

    type_name: ClassVar[str] = "alias.shadow_compared"

    namespace_id: str
    alias_id: str
    alias_name: str
    primary_retriever_id: str
    shadow_retriever_id: str
    k: int = Field(ge=0)
    overlap_at_k: float = Field(ge=0, le=1)
    mean_rank_shift: float | None = None
    primary_ms: float
    shadow_ms: float
    latency_delta_ms: float
    error: str | None = Field(default=None, description="the shadow failed: why")
    compared_at: str


class AliasDeleted(Event):
    type_name: ClassVar[str] = "alias.deleted"

    namespace_id: str
    alias_id: str
    alias_name: str


class RetrievalNamespaceForked(Event):
    """The retrieval service forked a namespace's retrievers and aliases into a clone
    (``mapping``: old id → new id)."""

    type_name: ClassVar[str] = "retrieval.namespace_forked"

    namespace_id: str
    parent_namespace_id: str
    at_position: int = Field(ge=0)
    mapping: dict[str, str] = Field(default_factory=dict)
