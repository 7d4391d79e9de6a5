"""Buckets, objects and collections of a namespace: validated commands, fork-aware reads.

Writes append to the namespace's stream through ``CatalogService`` (one lock, read-your-writes);
reads go through the namespace's view, so a clone sees what it inherited without a copy.
"""

from __future__ import annotations

import uuid
from typing import Any

import jsonschema
from jsonschema.exceptions import SchemaError
from jsonschema.exceptions import ValidationError as SchemaViolation

from contracts.auth import Permission
from contracts.base import Event
from contracts.catalog import (
    BucketCreated,
    BucketDeleted,
    BucketUpdated,
    CloneCollection,
    CollectionCreated,
    CollectionDeleted,
    CollectionTriggered,
    CollectionUpdated,
    CreateBucket,
    CreateCollection,
    CreateObject,
    FeatureExtractorSpec,
    ObjectDeleted,
    ObjectStored,
    SourceSpec,
)
from contracts.tasks import TaskCreated
from libs.auth import Principal
from libs.errors import ConflictError, InvalidInputError, NotFoundError
from libs.ids import new_id
from libs.sources import SourceObject
from libs.views import View
from services.catalog.readmodel import namespace_view
from services.catalog.resources_readmodel import find, visible
from services.catalog.service import CatalogService

MUTABLE = {
    "bucket": {"bucket_name", "description"},
    "collection": {"collection_name", "description", "tags"},
}


class ResourceService:
    def __init__(self, catalog: CatalogService) -> None:
        self.catalog = catalog

    async def _view(self, namespace_id: str) -> View:
        async with self.catalog.store.transaction() as tx:
            return await namespace_view(tx, namespace_id)

    async def _write(
        self, namespace_id: str, events: list[Event], command_id: uuid.UUID | None = None
    ) -> None:
        await self.catalog.append_to_namespace(namespace_id, events, command_id=command_id)

    async def _find(self, kind: str, namespace_id: str, resource_id: str) -> dict[str, Any]:
        async with self.catalog.store.transaction() as tx:
            found = await find(tx, kind, await namespace_view(tx, namespace_id), resource_id)
        if found is None:
            raise NotFoundError(f"{kind} {resource_id!r} not found")
        return found

    async def _named(self, kind: str, namespace_id: str, identifier: str) -> dict[str, Any]:
        """A bucket or collection by id or by name."""
        async with self.catalog.store.transaction() as tx:
            rows = await visible(tx, kind, await namespace_view(tx, namespace_id))
        for row in rows:
            if identifier in (row[f"{kind}_id"], row[f"{kind}_name"]):
                return row
        raise NotFoundError(f"{kind} {identifier!r} not found")

    async def _name_free(self, kind: str, namespace_id: str, name: str) -> None:
        async with self.catalog.store.transaction() as tx:
            rows = await visible(tx, kind, await namespace_view(tx, namespace_id))
        if any(row[f"{kind}_name"] == name for row in rows):
            raise ConflictError(f"a {kind} named {name!r} already exists in this namespace")

    # ---- buckets ---------------------------------------------------------------------------

    async def create_bucket(
        self, principal: Principal, namespace_id: str, command: CreateBucket
    ) -> dict[str, Any]:
        principal.require(Permission.WRITE)
        try:
            jsonschema.validators.validator_for(command.bucket_schema).check_schema(
                command.bucket_schema
            )
        except SchemaError as error:
            raise InvalidInputError(
                f"bucket_schema is not a valid JSON Schema: {error.message}"
            ) from None
        async with self.catalog.lock:
            await self._name_free("bucket", namespace_id, command.bucket_name)
            bucket_id = new_id("bkt")
            event = BucketCreated(
                bucket_id=bucket_id, bucket_name=command.bucket_name, description=command.description,
                bucket_schema=command.bucket_schema, unique_key=command.unique_key,
            )  # fmt: skip
            await self._write(namespace_id, [event], command.command_id)
        return await self.bucket(namespace_id, bucket_id)

    async def bucket(self, namespace_id: str, identifier: str) -> dict[str, Any]:
        return _public(await self._named("bucket", namespace_id, identifier))

    async def buckets(self, namespace_id: str) -> list[dict[str, Any]]:
        async with self.catalog.store.transaction() as tx:
            rows = await visible(tx, "bucket", await namespace_view(tx, namespace_id))
        return sorted((_public(r) for r in rows), key=lambda r: r["bucket_name"])

    async def update_bucket(
        self, principal: Principal, namespace_id: str, identifier: str, changes: dict[str, Any]
    ) -> dict[str, Any]:
        principal.require(Permission.WRITE)
        current = await self._named("bucket", namespace_id, identifier)
        _check_patch("bucket", changes)
        async with self.catalog.lock:
            if "bucket_name" in changes and changes["bucket_name"] != current["bucket_name"]:
                await self._name_free("bucket", namespace_id, changes["bucket_name"])
            await self._write(
                namespace_id, [BucketUpdated(bucket_id=current["bucket_id"], **changes)]
            )
        return await self.bucket(namespace_id, current["bucket_id"])

    async def delete_bucket(self, principal: Principal, namespace_id: str, identifier: str) -> None:
        principal.require(Permission.WRITE)
        current = await self._named("bucket", namespace_id, identifier)
        async with self.catalog.lock:
            await self._write(namespace_id, [BucketDeleted(bucket_id=current["bucket_id"])])

    # ---- objects ---------------------------------------------------------------------------

    async def _prepare_object(
        self, bucket: dict[str, Any], view: View, command: CreateObject
    ) -> ObjectStored:
        validator = jsonschema.validators.validator_for(bucket["bucket_schema"])(
            bucket["bucket_schema"]
        )
        errors = sorted(validator.iter_errors(command.fields), key=lambda e: list(e.absolute_path))
        if errors:
            raise InvalidInputError("; ".join(_schema_error(e) for e in errors))
        key_value, replaces = None, None
        if bucket["unique_key"]:
            if bucket["unique_key"] not in command.fields:
                raise InvalidInputError(
                    f"fields.{bucket['unique_key']}: required as the bucket's unique_key"
                )
            key_value = str(command.fields[bucket["unique_key"]])
            replaces = await self._object_with_key(bucket, view, key_value)
        return ObjectStored(
            object_id=new_id("obj"), bucket_id=bucket["bucket_id"], fields=command.fields,
            blobs=command.blobs, key_value=key_value, replaces=replaces,
        )  # fmt: skip

    async def _objects_in(
        self, bucket: dict[str, Any], view: View, *, where: str = "", args: tuple[Any, ...] = (),
        suffix: str = "",
    ) -> list[dict[str, Any]]:  # fmt: skip
        """Visible objects of ``bucket``: stored under its id at any level of the fork chain.
        ``where`` uses ``$1..`` for ``args``; the bucket's ids are numbered after them."""
        ids = view.stored_ids(bucket["_owner"], bucket["_stored_id"])
        placeholders = ", ".join(f"${len(args) + 1 + i}" for i in range(len(ids)))
        condition = f"parent_id IN ({placeholders})" + (f" AND {where}" if where else "")
        async with self.catalog.store.transaction() as tx:
            return await visible(
                tx, "object", view, where=condition, args=(*args, *ids), suffix=suffix
            )

    async def _object_with_key(
        self, bucket: dict[str, Any], view: View, key_value: str
    ) -> str | None:
        rows = await self._objects_in(bucket, view, where="key_value = $1", args=(key_value,))
        return rows[0]["object_id"] if rows else None

    async def create_object(
        self, principal: Principal, namespace_id: str, command: CreateObject
    ) -> dict[str, Any]:
        principal.require(Permission.WRITE)
        bucket = await self._named("bucket", namespace_id, command.bucket_id)
        async with self.catalog.lock:
            event = await self._prepare_object(bucket, await self._view(namespace_id), command)
            await self._write(namespace_id, [event], command.command_id)
        return await self.object(namespace_id, event.object_id)

    async def create_objects(
        self, principal: Principal, namespace_id: str, bucket_id: str, commands: list[CreateObject]
    ) -> list[dict[str, Any]]:
        """A batch: every valid object is stored (in one append); each item reports its outcome."""
        principal.require(Permission.WRITE)
        bucket = await self._named("bucket", namespace_id, bucket_id)
        results: list[dict[str, Any]] = []
        events: list[Event] = []
        async with self.catalog.lock:
            view = await self._view(namespace_id)
            for index, command in enumerate(commands):
                try:
                    event = await self._prepare_object(bucket, view, command)
                except InvalidInputError as error:
                    results.append({"index": index, "status": "FAILED", "error": str(error)})
                    continue
                events.append(event)
                results.append({"index": index, "status": "CREATED", "object_id": event.object_id})
            if events:
                await self._write(namespace_id, events)
        return results

    async def object(self, namespace_id: str, object_id: str) -> dict[str, Any]:
        found = await self._find("object", namespace_id, object_id)
        view = await self._view(namespace_id)
        return _object_record(found, view)

    async def objects(
        self,
        namespace_id: str,
        bucket_id: str,
        *,
        limit: int,
        offset: int,
        as_of: int | None = None,
    ) -> dict[str, Any]:
        """A page of the bucket's objects, now or as they were at global position ``as_of``."""
        bucket = await self._named("bucket", namespace_id, bucket_id)
        view = await self._view(namespace_id)
        if as_of is not None:
            view = view.as_of(as_of)
        rows = await self._objects_in(
            bucket, view, suffix=f" ORDER BY object_id LIMIT {int(limit) + 1} OFFSET {int(offset)}"
        )
        page = [_object_record(r, view) for r in rows[:limit]]
        return {"results": page, "limit": limit, "offset": offset, "has_more": len(rows) > limit}

    async def bucket_objects(
        self, *, namespace_id: str, bucket_id: str, after: str | None = None, limit: int = 500
    ) -> list[SourceObject]:
        """The ``SourceReader`` port: a keyset page of a bucket's objects, for processing."""
        bucket = await self._named("bucket", namespace_id, bucket_id)
        view = await self._view(namespace_id)
        rows = await self._objects_in(
            bucket, view, where="object_id > $1", args=(after or "",),
            suffix=f" ORDER BY object_id LIMIT {int(limit)}",
        )  # fmt: skip
        return [
            SourceObject(object_id=r["object_id"], bucket_id=bucket["bucket_id"], fields=r["fields"], blobs=r.get("blobs", []))
            for r in rows
        ]  # fmt: skip

    async def delete_object(self, principal: Principal, namespace_id: str, object_id: str) -> None:
        principal.require(Permission.WRITE)
        found = await self.object(namespace_id, object_id)
        async with self.catalog.lock:
            await self._write(
                namespace_id, [ObjectDeleted(object_id=object_id, bucket_id=found["bucket_id"])]
            )

    # ---- collections -------------------------------------------------------------------------

    async def _resolve_source(self, namespace_id: str, source: SourceSpec) -> SourceSpec:
        if source.type == "bucket":
            if not source.bucket_id:
                raise InvalidInputError("source.bucket_id: required for a bucket source")
            bucket = await self._named("bucket", namespace_id, source.bucket_id)
            return SourceSpec(type="bucket", bucket_id=bucket["bucket_id"])
        if not source.collection_id:
            raise InvalidInputError("source.collection_id: required for a collection source")
        upstream = await self._named("collection", namespace_id, source.collection_id)
        return SourceSpec(type="collection", collection_id=upstream["collection_id"])

    async def create_collection(
        self, principal: Principal, namespace_id: str, command: CreateCollection
    ) -> dict[str, Any]:
        principal.require(Permission.WRITE)
        source = await self._resolve_source(namespace_id, command.source)
        info = describe_extractor(command.feature_extractor)
        async with self.catalog.lock:
            await self._name_free("collection", namespace_id, command.collection_name)
            collection_id = new_id("col")
            event = CollectionCreated(
                collection_id=collection_id, collection_name=command.collection_name,
                description=command.description, tags=command.tags, source=source,
                feature_extractor=command.feature_extractor, **info,
            )  # fmt: skip
            await self._write(namespace_id, [event], command.command_id)
        return await self.collection(namespace_id, collection_id)

    async def collection(self, namespace_id: str, identifier: str) -> dict[str, Any]:
        view = await self._view(namespace_id)
        return _collection_record(await self._named("collection", namespace_id, identifier), view)

    async def collections(self, namespace_id: str) -> list[dict[str, Any]]:
        view = await self._view(namespace_id)
        async with self.catalog.store.transaction() as tx:
            rows = await visible(tx, "collection", view)
        return sorted(
            (_collection_record(r, view) for r in rows), key=lambda r: r["collection_name"]
        )

    async def update_collection(
        self, principal: Principal, namespace_id: str, identifier: str, changes: dict[str, Any]
    ) -> dict[str, Any]:
        principal.require(Permission.WRITE)
        current = await self._named("collection", namespace_id, identifier)
        _check_patch("collection", changes)
        async with self.catalog.lock:
            if (
                "collection_name" in changes
                and changes["collection_name"] != current["collection_name"]
            ):
                await self._name_free("collection", namespace_id, changes["collection_name"])
            await self._write(
                namespace_id, [CollectionUpdated(collection_id=current["collection_id"], **changes)]
            )
        return await self.collection(namespace_id, current["collection_id"])

    async def delete_collection(
        self, principal: Principal, namespace_id: str, identifier: str, *, force: bool
    ) -> None:
        principal.require(Permission.WRITE)
        current = await self._named("collection", namespace_id, identifier)
        view = await self._view(namespace_id)
        async with self.catalog.lock:
            async with self.catalog.store.transaction() as tx:
                dependants = [
                    c["collection_name"] for c in await visible(tx, "collection", view)
                    if c["source"].get("collection_id") and c["collection_id"] != current["collection_id"]
                    and view.present(c["_owner"], c["source"]["collection_id"]) == current["collection_id"]
                ]  # fmt: skip
            if dependants and not force:
                raise ConflictError(
                    f"collection {current['collection_name']!r} is the source of {', '.join(dependants)}; "
                    "delete those first or pass force=true"
                )
            await self._write(
                namespace_id, [CollectionDeleted(collection_id=current["collection_id"])]
            )

    async def clone_collection(
        self, principal: Principal, namespace_id: str, command: CloneCollection
    ) -> dict[str, Any]:
        """Same extractor: shares the parent's vectors (READY). Another one: NEEDS_TRIGGER."""
        principal.require(Permission.WRITE)
        parent = _collection_record(
            await self._named("collection", namespace_id, command.collection_id),
            await self._view(namespace_id),
        )
        extractor = command.feature_extractor or FeatureExtractorSpec.model_validate(
            parent["feature_extractor"]
        )
        source = await self._resolve_source(
            namespace_id, command.source or SourceSpec.model_validate(parent["source"])
        )
        info = describe_extractor(extractor)
        same = (
            info["config_hash"] == parent["config_hash"] and source.model_dump() == parent["source"]
        )
        async with self.catalog.lock:
            await self._name_free("collection", namespace_id, command.collection_name)
            collection_id = new_id("col")
            event = CollectionCreated(
                collection_id=collection_id, collection_name=command.collection_name,
                description=parent["description"], tags=parent["tags"], source=source,
                feature_extractor=extractor, **info, status="READY" if same else "NEEDS_TRIGGER",
                cloned_from=parent["collection_id"], shares_vectors_with=parent["collection_id"] if same else None,
            )  # fmt: skip
            await self._write(namespace_id, [event], command.command_id)
        return await self.collection(namespace_id, collection_id)

    async def trigger_collection(
        self, principal: Principal, namespace_id: str, identifier: str
    ) -> dict[str, Any]:
        """Start re-processing the whole source into the collection; the extractor does the work."""
        principal.require(Permission.WRITE)
        current = await self._named("collection", namespace_id, identifier)
        batch_id, task_id = new_id("bat"), new_id("tsk")
        async with self.catalog.lock:
            await self.catalog.append_task(
                TaskCreated(task_id=task_id, namespace_id=namespace_id, organization_id=principal.organization_id,
                            kind="collection.trigger", resource_id=current["collection_id"]),
            )  # fmt: skip
            await self._write(
                namespace_id,
                [
                    CollectionTriggered(
                        collection_id=current["collection_id"], batch_id=batch_id, task_id=task_id
                    )
                ],
            )
        return {"batch_id": batch_id, "task_id": task_id}


def describe_extractor(spec: FeatureExtractorSpec) -> dict[str, Any]:
    """Resolve ``name@version`` + parameters to the Feature URI, config hash and dimensions."""
    from libs.extractors import get_extractor

    info = get_extractor(spec.feature_extractor_name, spec.version, spec.parameters).info
    return {
        "feature_uri": info.feature_uri,
        "config_hash": info.config_hash,
        "dimensions": info.outputs[0].dimensions,
    }


def _check_patch(kind: str, changes: dict[str, Any]) -> None:
    frozen = sorted(set(changes) - MUTABLE[kind])
    if frozen:
        raise ConflictError(
            f"{', '.join(frozen)} cannot change: a {kind}'s core configuration is immutable "
            f"(PATCH accepts {', '.join(sorted(MUTABLE[kind]))}); clone the {kind} to change it"
        )


def _schema_error(error: SchemaViolation) -> str:
    path = ".".join(str(p) for p in error.absolute_path)
    return f"fields{'.' + path if path else ''}: {error.message}"


def _public(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if not k.startswith("_")}


def _object_record(row: dict[str, Any], view: View) -> dict[str, Any]:
    record = _public(row)
    record["bucket_id"] = view.present(row["_owner"], row["bucket_id"])
    record.pop("key_value", None)
    return record


def _collection_record(row: dict[str, Any], view: View) -> dict[str, Any]:
    record = _public(row)
    source = dict(record["source"])
    for field in ("bucket_id", "collection_id"):
        if source.get(field):
            source[field] = view.present(row["_owner"], source[field])
    record["source"] = source
    for field in ("cloned_from", "shares_vectors_with"):
        if record.get(field):
            record[field] = view.present(row["_owner"], record[field])
    return record
