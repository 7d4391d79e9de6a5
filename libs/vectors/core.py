"""The vector-store port implemented once, over a ``Backend``: both adapters subclass this.

Reads take the caller's ``View`` snapshot as it is (no registry round trip, repeatable). Writes
resolve the registered view by (space, owner) and return the new one. Writes to one space are
serialised in-process by a lock; across processes each view must have a single writer (the
extractor service partitions by namespace), and ``vacuum``/``materialise`` must not race a fork
being registered from another process. A concurrent reader may briefly see a replaced document
twice (the new version is written before the old one dies; a crash in between is repaired by
the replay, which is idempotent).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from typing import TypeVar

from libs.errors import ConflictError, InvalidInputError, NotFoundError
from libs.vectors import views
from libs.vectors.backend import Backend, RawRecord
from libs.vectors.base import (
    RESERVED_FIELDS,
    DenseVector,
    IndexKind,
    Mask,
    Page,
    PointIn,
    PointRecord,
    ScoredPoint,
    SpaceSpec,
    SparseVector,
    View,
)
from libs.vectors.filters import And, Filter, IdentityCache, In
from libs.vectors.points import (
    check_limit,
    check_points,
    check_position,
    check_vector,
    raw_vector,
    record,
    scored,
    stored,
    user_payload,
)
from libs.vectors.registry import Registry

T = TypeVar("T")

# A snapshot is immutable, so its visibility filter is built once however often it is searched
# (a fork with thousands of masks would otherwise spend milliseconds per query rebuilding it).
_VISIBILITY: IdentityCache[View, Filter] = IdentityCache(size=64)


def _visibility(view: View) -> Filter:
    return _VISIBILITY.get(view, views.visibility)


def _within(view: View, extra: Filter | None) -> Filter:
    """The view's visibility AND the caller's filter: the caller can only narrow what it sees."""
    visible = _visibility(view)
    return visible if extra is None else And(filters=(visible, extra))


def _documents(document_ids: Sequence[str]) -> Filter:
    return In(field="document_id", values=tuple(document_ids))


def _chunks(items: Sequence[T], size: int) -> Iterable[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class ForkableVectorStore:
    """Views over shared collections: forks are registry writes, deletes are soft or masks,
    materialisation copies, vacuum collects what no view reaches. See docs/decisions/0005."""

    def __init__(
        self, backend: Backend, *, mask_threshold: int = 1_000, batch_size: int = 256
    ) -> None:
        if mask_threshold < 1 or batch_size < 1:
            raise InvalidInputError("mask_threshold and batch_size must be >= 1")
        self._backend = backend
        self._registry = Registry(backend, page=batch_size)
        self.mask_threshold = mask_threshold
        self._batch = batch_size
        self._known: set[str] = set()
        self._locks: dict[str, asyncio.Lock] = {}

    def _lock(self, spec: SpaceSpec) -> asyncio.Lock:
        return self._locks.setdefault(spec.space_id, asyncio.Lock())

    # -- spaces -------------------------------------------------------------------------------

    async def ensure_space(
        self, *, spec: SpaceSpec, indexes: Mapping[str, IndexKind] | None = None
    ) -> None:
        reserved = RESERVED_FIELDS.intersection(indexes or {})
        if reserved:
            raise InvalidInputError(f"system fields {sorted(reserved)} are indexed already")
        async with self._lock(spec):
            await self._backend.create_collection(spec)
            if indexes:
                await self._backend.create_indexes(spec.space_id, indexes)
            if await self._registry.spec(spec) is None:
                await self._registry.put_spec(spec)
            self._known.add(spec.space_id)

    async def drop_space(self, *, spec: SpaceSpec) -> None:
        async with self._lock(spec):
            self._known.discard(spec.space_id)
            await self._backend.drop_collection(spec.space_id)

    async def _require_space(self, spec: SpaceSpec) -> None:
        if spec.space_id in self._known:
            return
        if not await self._backend.collection_exists(spec.space_id) or (
            await self._registry.spec(spec) is None
        ):
            raise NotFoundError(
                f"vector space {spec.describe()} of lineage {spec.lineage_root!r} does not "
                "exist; call ensure_space first"
            )
        self._known.add(spec.space_id)

    async def _registered(self, view: View) -> View:
        """Writes apply to the registered state, whatever snapshot the caller holds."""
        await self._require_space(view.space)
        found = await self._registry.load(view.space, view.owner)
        if found is None:
            raise NotFoundError(f"view {view.owner!r} is not registered in {view.space.space_id}")
        return found.view

    # -- views --------------------------------------------------------------------------------

    async def create_view(self, *, space: SpaceSpec, owner: str) -> View:
        views.check_owner(owner)
        await self._require_space(space)
        async with self._lock(space):
            found = await self._registry.load(space, owner)
            if found is not None:
                return found.view
            view = views.root_view(space, owner)
            await self._registry.save(view)
            return view

    async def get_view(self, *, space: SpaceSpec, owner: str) -> View:
        await self._require_space(space)
        found = await self._registry.load(space, owner)
        if found is None:
            raise NotFoundError(f"no view of {owner!r} in space {space.describe()}")
        return found.view

    async def fork_view(self, *, parent: View, owner: str, at_position: int) -> View:
        views.check_owner(owner)
        check_position(at_position)
        async with self._lock(parent.space):
            source = await self._registered(parent)
            existing = await self._registry.load(parent.space, owner)
            if existing is not None:
                view = existing.view
                if view.parent == parent.owner and view.forked_at == at_position:
                    return view  # a replayed fork
                raise ConflictError(
                    f"owner {owner!r} already has a view in space {parent.space.space_id} "
                    f"(parent {view.parent!r}, forked at {view.forked_at})"
                )
            child = views.forked(source, owner, at_position)
            await self._registry.save(child)
            return child

    async def drop_view(self, *, view: View) -> None:
        await self._require_space(view.space)
        async with self._lock(view.space):
            await self._registry.drop(view)

    def needs_materialise(self, view: View) -> bool:
        return views.needs_materialise(view, max_masks=self.mask_threshold)

    # -- writes -------------------------------------------------------------------------------

    async def upsert(self, *, view: View, points: Sequence[PointIn], position: int) -> View:
        check_position(position)
        spec = view.space
        by_document = check_points(spec, points)
        async with self._lock(spec):
            current = await self._registered(view)
            visible = await self._visible_versions(current, list(by_document))
            # A version born after this write is newer: the write is a stale replay, skip it.
            stale = {r.payload["document_id"] for r in visible if r.payload["born"] > position}
            fresh = [
                stored(
                    views.point_id(current.owner, document_id, position),
                    raw_vector(point.vector),
                    point.payload,
                    owner=current.owner,
                    document_id=document_id,
                    born=position,
                )
                for document_id, point in by_document.items()
                if document_id not in stale
            ]
            for batch in _chunks(fresh, self._batch):
                await self._backend.write(spec.space_id, batch, overwrite=False)
            written = {p.id for p in fresh}
            replaced = [
                r for r in visible if r.payload["document_id"] not in stale and r.id not in written
            ]
            return await self._retire(current, replaced, position)

    async def delete(self, *, view: View, document_ids: Sequence[str], position: int) -> View:
        check_position(position)
        wanted = list(dict.fromkeys(document_ids))
        async with self._lock(view.space):
            current = await self._registered(view)
            visible = await self._visible_versions(current, wanted)
            doomed = [r for r in visible if r.payload["born"] <= position]
            return await self._retire(current, doomed, position)

    async def _visible_versions(self, view: View, document_ids: list[str]) -> list[RawRecord]:
        found: list[RawRecord] = []
        for chunk in _chunks(document_ids, self._batch):
            found += await self._scroll_all(view, _within(view, _documents(chunk)))
        return found

    async def _scroll_all(
        self, view: View, where: Filter, *, with_vectors: bool = False
    ) -> list[RawRecord]:
        found: list[RawRecord] = []
        offset: str | None = None
        while True:
            records, offset = await self._backend.scroll(
                view.space.space_id,
                where,
                limit=self._batch,
                offset=offset,
                with_vectors=with_vectors,
            )
            found += records
            if offset is None:
                return found

    async def _retire(self, view: View, records: list[RawRecord], position: int) -> View:
        """Own points die at ``position`` (forks still see them); inherited ones are masked."""
        own = [r.id for r in records if r.payload["owner"] in view.live_owners]
        for batch in _chunks(own, self._batch):
            await self._backend.set_payload(view.space.space_id, batch, {"died": position})
        masks = [
            Mask(point_id=r.id, position=position)
            for r in records
            if r.payload["owner"] not in view.live_owners
        ]
        updated = views.with_masks(view, masks)
        if updated is not view:
            await self._registry.save(updated)
        return updated

    async def materialise(self, *, view: View, position: int) -> View:
        check_position(position)
        async with self._lock(view.space):
            current = await self._registered(view)
            if all(s.live for s in current.segments) and not current.masked:
                return current
            target = views.materialised(current, position)
            generation = target.segments[0].owner
            await self._registry.save(current, materialising=position)  # vacuum keeps it
            source = views.inherited_visibility(current)
            offset: str | None = None
            while source is not None:
                records, offset = await self._backend.scroll(
                    current.space.space_id,
                    source,
                    limit=self._batch,
                    offset=offset,
                    with_vectors=True,
                )
                copies = [
                    stored(
                        views.point_id(generation, r.payload["document_id"], position),
                        r.vector,
                        user_payload(r.payload),
                        owner=generation,
                        document_id=r.payload["document_id"],
                        born=position,
                    )
                    for r in records
                ]
                await self._backend.write(current.space.space_id, copies, overwrite=False)
                if offset is None:
                    break
            await self._registry.save(target)
            return target

    async def vacuum(self, *, space: SpaceSpec) -> int:
        await self._require_space(space)
        async with self._lock(space):
            registered, reserved = await self._registry.all(space)
            where = views.garbage(registered, reserved)
            doomed = await self._backend.count(space.space_id, where)
            if doomed:
                await self._backend.delete_where(space.space_id, where)
            return doomed

    # -- reads --------------------------------------------------------------------------------

    async def get(
        self, *, view: View, document_ids: Sequence[str], with_vectors: bool = False
    ) -> list[PointRecord]:
        await self._require_space(view.space)
        wanted = list(dict.fromkeys(document_ids))
        found: dict[str, PointRecord] = {}
        for chunk in _chunks(wanted, self._batch):
            where = _within(view, _documents(chunk))
            for raw in await self._scroll_all(view, where, with_vectors=with_vectors):
                point = record(view.space, raw)
                found[point.document_id] = point
        return [found[d] for d in wanted if d in found]

    async def scroll(
        self,
        *,
        view: View,
        filter: Filter | None = None,
        limit: int = 100,
        offset: str | None = None,
        with_vectors: bool = False,
    ) -> Page:
        check_limit("limit", limit)
        await self._require_space(view.space)
        records, next_offset = await self._backend.scroll(
            view.space.space_id,
            _within(view, filter),
            limit=limit,
            offset=offset,
            with_vectors=with_vectors,
        )
        found = tuple(record(view.space, r) for r in records)
        return Page(points=found, next_offset=next_offset)

    async def count(self, *, view: View, filter: Filter | None = None) -> int:
        await self._require_space(view.space)
        return await self._backend.count(view.space.space_id, _within(view, filter))

    async def search(
        self,
        *,
        view: View,
        query: DenseVector | SparseVector,
        top_k: int = 10,
        filter: Filter | None = None,
        with_vectors: bool = False,
    ) -> list[ScoredPoint]:
        check_limit("top_k", top_k)
        spec = view.space
        check_vector(spec, query, what="query")
        await self._require_space(spec)
        visible = _visibility(view)
        hits = await self._backend.search(
            spec,
            raw_vector(query),
            _within(view, filter),
            top_k=top_k,
            with_vectors=with_vectors,
            # BM25's IDF over what the view sees, not over the lineage's shared collection.
            idf_corpus=visible if spec.idf else None,
        )
        return [scored(spec, h) for h in hits]

    async def close(self) -> None:
        await self._backend.close()
