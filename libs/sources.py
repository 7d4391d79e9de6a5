"""The port through which processing services read source objects they do not own.

Objects belong to the catalog; the extractor needs them to (re)process a bucket. The runtime
wires the catalog's reader in-process (embedded) or over HTTP (distributed), so services never
import each other.
"""

from __future__ import annotations

from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field


class SourceObject(BaseModel):
    model_config = ConfigDict(frozen=True)

    object_id: str
    bucket_id: str = Field(description="the bucket id as the namespace names it")
    fields: dict[str, Any]
    blobs: list[dict[str, Any]] = Field(default_factory=list)


class SourceReader(Protocol):
    async def bucket_objects(
        self, *, namespace_id: str, bucket_id: str, after: str | None = None, limit: int = 500
    ) -> list[SourceObject]:
        """Objects of the bucket visible in the namespace, ordered by id, after ``after``."""
        ...
