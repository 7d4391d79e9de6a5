"""HTTP routes of buckets, objects and collections (``X-Namespace`` required)."""

# No `from __future__ import annotations`: FastAPI must see the local `InNamespace` alias.

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from contracts.catalog import (
    RESOURCE_NAME,
    BlobRef,
    CloneCollection,
    CreateBucket,
    CreateCollection,
    CreateObject,
    FeatureExtractorSpec,
    SourceSpec,
)
from services.catalog.resources import ResourceService
from services.catalog.routes import Scope


class ObjectBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    fields: dict[str, Any] = Field(default_factory=dict)
    blobs: list[BlobRef] = Field(default_factory=list)


class ObjectBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    objects: list[ObjectBody] = Field(min_length=1, max_length=10_000)


class CollectionClone(BaseModel):
    model_config = ConfigDict(extra="forbid")

    collection_name: str = Field(pattern=RESOURCE_NAME)
    feature_extractor: FeatureExtractorSpec | None = None
    source: SourceSpec | None = None


Changes = Annotated[dict[str, Any], Body()]


def resource_router(service: ResourceService, scope: Callable[..., Awaitable[Scope]]) -> APIRouter:
    api = APIRouter(prefix="/v1")
    InNamespace = Annotated[Scope, Depends(scope)]

    @api.post("/buckets", status_code=201, tags=["buckets"])
    async def create_bucket(body: CreateBucket, at: InNamespace) -> dict[str, Any]:
        return await service.create_bucket(at.principal, at.namespace_id, body)

    @api.get("/buckets", tags=["buckets"])
    async def list_buckets(at: InNamespace) -> dict[str, Any]:
        return {"results": await service.buckets(at.namespace_id)}

    @api.get("/buckets/{bucket_id}", tags=["buckets"])
    async def get_bucket(bucket_id: str, at: InNamespace) -> dict[str, Any]:
        return await service.bucket(at.namespace_id, bucket_id)

    @api.patch("/buckets/{bucket_id}", tags=["buckets"])
    async def patch_bucket(bucket_id: str, changes: Changes, at: InNamespace) -> dict[str, Any]:
        return await service.update_bucket(at.principal, at.namespace_id, bucket_id, changes)

    @api.delete("/buckets/{bucket_id}", status_code=204, tags=["buckets"])
    async def delete_bucket(bucket_id: str, at: InNamespace) -> Response:
        await service.delete_bucket(at.principal, at.namespace_id, bucket_id)
        return Response(status_code=204)

    @api.post("/buckets/{bucket_id}/objects", status_code=201, tags=["objects"])
    async def create_object(bucket_id: str, body: ObjectBody, at: InNamespace) -> dict[str, Any]:
        command = CreateObject(bucket_id=bucket_id, fields=body.fields, blobs=body.blobs)
        return await service.create_object(at.principal, at.namespace_id, command)

    @api.post("/buckets/{bucket_id}/objects/batch", tags=["objects"])
    async def create_objects(bucket_id: str, body: ObjectBatch, at: InNamespace) -> dict[str, Any]:
        commands = [
            CreateObject(bucket_id=bucket_id, fields=o.fields, blobs=o.blobs) for o in body.objects
        ]
        results = await service.create_objects(at.principal, at.namespace_id, bucket_id, commands)
        created = sum(1 for r in results if r["status"] == "CREATED")
        return {"created": created, "failed": len(results) - created, "results": results}

    @api.get("/buckets/{bucket_id}/objects", tags=["objects"])
    async def list_objects(
        bucket_id: str, at: InNamespace,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100, offset: Annotated[int, Query(ge=0)] = 0,
        as_of: Annotated[int | None, Query(ge=0, description="a global position: time travel")] = None,
    ) -> dict[str, Any]:  # fmt: skip
        return await service.objects(
            at.namespace_id, bucket_id, limit=limit, offset=offset, as_of=as_of
        )

    @api.get("/objects/{object_id}", tags=["objects"])
    async def get_object(object_id: str, at: InNamespace) -> dict[str, Any]:
        return await service.object(at.namespace_id, object_id)

    @api.delete("/objects/{object_id}", status_code=204, tags=["objects"])
    async def delete_object(object_id: str, at: InNamespace) -> Response:
        await service.delete_object(at.principal, at.namespace_id, object_id)
        return Response(status_code=204)

    @api.post("/collections", status_code=201, tags=["collections"])
    async def create_collection(body: CreateCollection, at: InNamespace) -> dict[str, Any]:
        return await service.create_collection(at.principal, at.namespace_id, body)

    @api.get("/collections", tags=["collections"])
    async def list_collections(at: InNamespace) -> dict[str, Any]:
        return {"results": await service.collections(at.namespace_id)}

    @api.get("/collections/{collection_id}", tags=["collections"])
    async def get_collection(collection_id: str, at: InNamespace) -> dict[str, Any]:
        return await service.collection(at.namespace_id, collection_id)

    @api.patch("/collections/{collection_id}", tags=["collections"])
    async def patch_collection(
        collection_id: str, changes: Changes, at: InNamespace
    ) -> dict[str, Any]:
        return await service.update_collection(
            at.principal, at.namespace_id, collection_id, changes
        )

    @api.delete("/collections/{collection_id}", status_code=204, tags=["collections"])
    async def delete_collection(
        collection_id: str, at: InNamespace, force: bool = False
    ) -> Response:
        await service.delete_collection(at.principal, at.namespace_id, collection_id, force=force)
        return Response(status_code=204)

    @api.post("/collections/{collection_id}/clone", status_code=201, tags=["collections"])
    async def clone_collection(
        collection_id: str, body: CollectionClone, at: InNamespace
    ) -> dict[str, Any]:
        command = CloneCollection(collection_id=collection_id, **body.model_dump(exclude_none=True))
        return await service.clone_collection(at.principal, at.namespace_id, command)

    @api.post("/collections/{collection_id}/trigger", status_code=202, tags=["collections"])
    async def trigger_collection(collection_id: str, at: InNamespace) -> dict[str, Any]:
        return await service.trigger_collection(at.principal, at.namespace_id, collection_id)

    return api
