"""Buckets, objects and collections: the catalog's namespace resources (stored in the namespace's
stream, so a namespace clone inherits them without copying)."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from contracts.base import Command, Event

RESOURCE_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class BlobRef(_Model):
    """A reference to content: a URL, a path on the server, or inline text. Never copied by a clone."""

    property: str = Field(min_length=1, description="the field name the blob fills, e.g. 'text'")
    type: Literal["text", "image", "video", "audio", "document"] = "text"
    url: str | None = None
    path: str | None = None
    text: str | None = None


class FeatureExtractorSpec(_Model):
    """What a collection runs: ``name@version`` with parameters; resolved to a Feature URI."""

    feature_extractor_name: str = Field(min_length=1)
    version: str = Field(min_length=1)
    parameters: dict[str, Any] = Field(default_factory=dict)
    input_mappings: dict[str, str] = Field(default_factory=lambda: {"text": "text"})


class SourceSpec(_Model):
    type: Literal["bucket", "collection"]
    bucket_id: str | None = None
    collection_id: str | None = None


# ---- commands (the HTTP bodies are these models) --------------------------------------------


class CreateBucket(Command):
    type_name: ClassVar[str] = "bucket.create"

    bucket_name: str = Field(pattern=RESOURCE_NAME)
    description: str = Field(default="", max_length=2000)
    bucket_schema: dict[str, Any] = Field(default_factory=lambda: {"type": "object"})
    unique_key: str | None = Field(
        default=None, description="a field whose value identifies an object (upsert)"
    )


class CreateObject(Command):
    type_name: ClassVar[str] = "object.create"

    bucket_id: str
    fields: dict[str, Any] = Field(default_factory=dict)
    blobs: list[BlobRef] = Field(default_factory=list)


class CreateCollection(Command):
    type_name: ClassVar[str] = "collection.create"

    collection_name: str = Field(pattern=RESOURCE_NAME)
    description: str = Field(default="", max_length=2000)
    tags: list[str] = Field(default_factory=list)
    source: SourceSpec
    feature_extractor: FeatureExtractorSpec


class CloneCollection(Command):
    type_name: ClassVar[str] = "collection.clone"

    collection_id: str
    collection_name: str = Field(pattern=RESOURCE_NAME)
    feature_extractor: FeatureExtractorSpec | None = None
    source: SourceSpec | None = None


# ---- events ---------------------------------------------------------------------------------


class BucketCreated(Event):
    type_name: ClassVar[str] = "bucket.created"

    bucket_id: str
    bucket_name: str
    description: str = ""
    bucket_schema: dict[str, Any]
    unique_key: str | None = None


class BucketUpdated(Event):
    type_name: ClassVar[str] = "bucket.updated"

    bucket_id: str
    bucket_name: str | None = None
    description: str | None = None


class BucketDeleted(Event):
    type_name: ClassVar[str] = "bucket.deleted"

    bucket_id: str


class ObjectStored(Event):
    """An object was created, or replaced one with the same unique key (``replaces``)."""

    type_name: ClassVar[str] = "object.stored"

    object_id: str
    bucket_id: str
    fields: dict[str, Any]
    blobs: list[BlobRef] = Field(default_factory=list)
    key_value: str | None = None
    replaces: str | None = None


class ObjectDeleted(Event):
    type_name: ClassVar[str] = "object.deleted"

    object_id: str
    bucket_id: str


class CollectionCreated(Event):
    """A collection and its immutable core: source and feature extractor (resolved to a URI)."""

    type_name: ClassVar[str] = "collection.created"

    collection_id: str
    collection_name: str
    description: str = ""
    tags: list[str] = Field(default_factory=list)
    source: SourceSpec
    feature_extractor: FeatureExtractorSpec
    feature_uri: str
    config_hash: str
    dimensions: int | None
    status: Literal["READY", "NEEDS_TRIGGER"] = "READY"
    cloned_from: str | None = None
    shares_vectors_with: str | None = Field(
        default=None, description="same extractor: the parent's vectors"
    )


class CollectionUpdated(Event):
    type_name: ClassVar[str] = "collection.updated"

    collection_id: str
    collection_name: str | None = None
    description: str | None = None
    tags: list[str] | None = None


class CollectionDeleted(Event):
    type_name: ClassVar[str] = "collection.deleted"

    collection_id: str


class CollectionTriggered(Event):
    """Re-process the whole source into the collection as a new batch (the extractor does it)."""

    type_name: ClassVar[str] = "collection.triggered"

    collection_id: str
    batch_id: str
    task_id: str
