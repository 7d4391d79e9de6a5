"""``EdgeVectorStore``: the embedded default, on Qdrant Edge (in-process Rust engine).

One Edge shard per vector space under ``<data_dir>/spaces/<space_id>``: persistent segments and
WAL, HNSW, payload indexes on the system fields. Edge has no background optimizer, so the store
runs ``optimize()`` (segment merging, HNSW build) in a worker thread once writes to a shard have
been idle for ``optimize_idle_seconds``; ``await store.optimize()`` forces it. Every Edge call
runs in a worker thread (Edge releases the GIL while it searches and indexes).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar, cast

import numpy as np
import qdrant_edge as qe

from libs.errors import InfrastructureError, InvalidInputError, OffshootError
from libs.vectors.backend import (
    DENSE,
    INTEGER_INDEXES,
    KEYWORD_INDEXES,
    SPARSE,
    RawPoint,
    RawRecord,
    RawVector,
)
from libs.vectors.base import IndexKind, SpaceSpec
from libs.vectors.core import ForkableVectorStore
from libs.vectors.filters import (
    And,
    Eq,
    Exists,
    Filter,
    Gt,
    Gte,
    HasId,
    IdentityCache,
    In,
    IsNull,
    Lt,
    Lte,
    Ne,
    Nin,
    Not,
    Or,
)

__all__ = ["EdgeVectorStore", "to_edge_filter"]

_log = logging.getLogger(__name__)
R = TypeVar("R")


_COMPILED: IdentityCache[Filter, Any] = IdentityCache(size=512)


def to_edge_filter(node: Filter) -> Any:
    """Compile a neutral filter to a ``qdrant_edge.Filter`` (the one place that knows how).
    Compound nodes are memoised by identity: a view's visibility filter compiles once."""

    def condition(node: Filter) -> Any:
        if isinstance(node, And | Or | Not):
            return _COMPILED.get(node, compound)
        return leaf(node)

    def compound(node: Filter) -> Any:
        match node:
            case And(filters=children):
                must = [condition(c) for c in children if not isinstance(c, Not)]
                must_not = [condition(c.filter) for c in children if isinstance(c, Not)]
                return qe.Filter(must=must or None, must_not=must_not or None)
            case Or(filters=children):
                return qe.Filter(should=[condition(c) for c in children])
            case Not(filter=inner):
                return qe.Filter(must_not=[condition(inner)])
        raise TypeError(f"not a compound filter: {node!r}")  # pragma: no cover

    def leaf(node: Filter) -> Any:
        match node:
            case Eq(field=key, value=value):
                return qe.FieldCondition(key, match=_match_value(value))
            case Ne(field=key, value=value):
                return qe.Filter(must_not=[qe.FieldCondition(key, match=_match_value(value))])
            case Gt(field=key, value=value):
                return qe.FieldCondition(key, range=qe.RangeFloat(gt=float(value)))
            case Gte(field=key, value=value):
                return qe.FieldCondition(key, range=qe.RangeFloat(gte=float(value)))
            case Lt(field=key, value=value):
                return qe.FieldCondition(key, range=qe.RangeFloat(lt=float(value)))
            case Lte(field=key, value=value):
                return qe.FieldCondition(key, range=qe.RangeFloat(lte=float(value)))
            case In(field=key, values=values):
                return qe.FieldCondition(key, match=qe.MatchAny(_any(values)))
            case Nin(field=key, values=values):
                return qe.Filter(must_not=[qe.FieldCondition(key, match=qe.MatchAny(_any(values)))])
            case Exists(field=key):
                return qe.Filter(must_not=[qe.IsEmptyCondition(key)])
            case IsNull(field=key):
                return qe.IsNullCondition(key)
            case HasId(ids=ids):
                return qe.HasIdCondition(set(ids))
        raise TypeError(f"not a filter node: {node!r}")  # pragma: no cover - exhaustive

    compiled = condition(node)
    return compiled if isinstance(compiled, qe.Filter) else qe.Filter(must=[compiled])


def _match_value(value: str | int | bool) -> Any:
    """qdrant-edge-py 0.9 reads a Python ``bool`` as the integer 0/1 (``bool`` subclasses ``int``),
    so ``True`` would match ``1`` and never ``true``; a numpy bool reaches it as a boolean."""
    if isinstance(value, bool):
        return qe.MatchValue(cast(Any, np.bool_(value)))
    return qe.MatchValue(value)


def _any(values: tuple[str, ...] | tuple[int, ...]) -> list[str] | list[int]:
    return cast("list[str] | list[int]", list(values))


def _edge_vector(vector: RawVector) -> dict[str, Any]:
    if vector is None:
        return {}
    if isinstance(vector, tuple):
        return {SPARSE: qe.SparseVector(vector[0], vector[1])}
    return {DENSE: vector}


def _raw_vector(vector: Any) -> RawVector:
    if not vector:
        return None
    if DENSE in vector:
        return list(vector[DENSE])
    sparse = vector[SPARSE]
    return (list(sparse.indices), list(sparse.values))


_SCHEMAS = {
    "keyword": qe.PayloadSchemaType.Keyword,
    "integer": qe.PayloadSchemaType.Integer,
    "float": qe.PayloadSchemaType.Float,
    "bool": qe.PayloadSchemaType.Bool,
}


def _config(spec: SpaceSpec) -> Any:
    if spec.kind == "sparse":
        modifier = qe.Modifier.Idf if spec.idf else None
        return qe.EdgeConfig(sparse_vectors={SPARSE: qe.EdgeSparseVectorParams(modifier=modifier)})
    distance = qe.Distance.Cosine if spec.distance == "cosine" else qe.Distance.Dot
    return qe.EdgeConfig(
        vectors={DENSE: qe.EdgeVectorParams(size=spec.dimension, distance=distance)}
    )


class _EdgeBackend:
    """The ``Backend`` protocol on Edge shards, with the idle-time optimizer."""

    def __init__(self, data_dir: Path, optimize_idle_seconds: float | None) -> None:
        self._root = data_dir / "spaces"
        self._idle = optimize_idle_seconds
        self._shards: dict[str, Any] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._optimizing: dict[str, asyncio.Future[Any]] = {}
        self._open_lock = asyncio.Lock()

    async def _run(self, call: Callable[[], R]) -> R:
        try:
            return await asyncio.to_thread(call)
        except OffshootError:
            raise
        except Exception as error:
            raise InfrastructureError(f"qdrant edge: {error}") from error

    async def _shard(self, name: str) -> Any:
        shard = self._shards.get(name)
        if shard is not None:
            return shard
        async with self._open_lock:
            if name not in self._shards:
                path = self._root / name
                if not path.is_dir():
                    raise InfrastructureError(f"vector space directory {path} is missing")
                self._shards[name] = await self._run(lambda: qe.EdgeShard.load(str(path)))
            return self._shards[name]

    async def create_collection(self, spec: SpaceSpec) -> None:
        name = spec.space_id
        path = self._root / name
        if name in self._shards or path.is_dir():
            await self._shard(name)
            return

        def create() -> Any:
            path.parent.mkdir(parents=True, exist_ok=True)
            shard = qe.EdgeShard.create(str(path), _config(spec))
            for key in KEYWORD_INDEXES:
                shard.update(
                    qe.UpdateOperation.create_field_index(key, qe.PayloadSchemaType.Keyword)
                )
            for key in INTEGER_INDEXES:
                shard.update(
                    qe.UpdateOperation.create_field_index(key, qe.PayloadSchemaType.Integer)
                )
            return shard

        async with self._open_lock:
            self._shards[name] = await self._run(create)

    async def create_indexes(self, name: str, indexes: Mapping[str, IndexKind]) -> None:
        for key, kind in indexes.items():
            schema = _SCHEMAS[kind]
            await self._update(name, qe.UpdateOperation.create_field_index(key, schema))

    async def collection_exists(self, name: str) -> bool:
        return name in self._shards or (self._root / name).is_dir()

    async def drop_collection(self, name: str) -> None:
        await self._settle(name)
        shard = self._shards.pop(name, None)
        path = self._root / name

        def drop() -> None:
            if shard is not None:
                shard.close()
            shutil.rmtree(path, ignore_errors=True)

        await self._run(drop)

    async def _update(self, name: str, operation: Any) -> None:
        shard = await self._shard(name)
        await self._run(lambda: shard.update(operation))
        self._touch(name)

    async def write(self, name: str, points: Sequence[RawPoint], *, overwrite: bool) -> None:
        edge_points = [qe.Point(p.id, _edge_vector(p.vector), p.payload) for p in points]
        mode = None if overwrite else qe.UpdateMode.InsertOnly
        await self._update(name, qe.UpdateOperation.upsert_points(edge_points, update_mode=mode))

    async def set_payload(self, name: str, ids: Sequence[str], payload: dict[str, Any]) -> None:
        await self._update(name, qe.UpdateOperation.set_payload(list(ids), payload))

    async def delete_where(self, name: str, where: Filter) -> None:
        await self._update(name, qe.UpdateOperation.delete_points_by_filter(to_edge_filter(where)))

    async def retrieve(self, name: str, ids: Sequence[str]) -> list[RawRecord]:
        shard = await self._shard(name)
        records = await self._run(
            lambda: shard.retrieve(list(ids), with_payload=True, with_vector=False)
        )
        return [RawRecord(str(r.id), dict(r.payload or {})) for r in records]

    async def scroll(
        self, name: str, where: Filter, *, limit: int, offset: str | None, with_vectors: bool
    ) -> tuple[list[RawRecord], str | None]:
        shard = await self._shard(name)
        request = qe.ScrollRequest(
            offset=offset,
            limit=limit,
            filter=to_edge_filter(where),
            with_payload=True,
            with_vector=with_vectors,
        )
        records, next_offset = await self._run(lambda: shard.scroll(request))
        found = [
            RawRecord(
                str(r.id), dict(r.payload or {}), _raw_vector(r.vector) if with_vectors else None
            )
            for r in records
        ]
        return found, None if next_offset is None else str(next_offset)

    async def count(self, name: str, where: Filter) -> int:
        shard = await self._shard(name)
        request = qe.CountRequest(exact=True, filter=to_edge_filter(where))
        return int(await self._run(lambda: shard.count(request)))

    async def search(
        self,
        spec: SpaceSpec,
        vector: RawVector,
        where: Filter,
        *,
        top_k: int,
        with_vectors: bool,
        idf_corpus: Filter | None,
    ) -> list[RawRecord]:
        shard = await self._shard(spec.space_id)
        if isinstance(vector, tuple):
            query = qe.Query.Nearest(qe.SparseVector(vector[0], vector[1]), using=SPARSE)
        elif vector is not None:
            query = qe.Query.Nearest(vector, using=DENSE)
        else:  # pragma: no cover - the store always passes a vector
            raise InvalidInputError("a search needs a query vector")
        params = None
        if idf_corpus is not None:
            params = qe.SearchParams(idf=qe.IdfParams(corpus=to_edge_filter(idf_corpus)))
        request = qe.QueryRequest(
            limit=top_k,
            query=query,
            filter=to_edge_filter(where),
            with_payload=True,
            with_vector=with_vectors,
            params=params,
        )
        hits = await self._run(lambda: shard.query(request))
        return [
            RawRecord(
                str(h.id),
                dict(h.payload or {}),
                _raw_vector(h.vector) if with_vectors else None,
                float(h.score),
            )
            for h in hits
        ]

    # -- optimisation -------------------------------------------------------------------------

    def _touch(self, name: str) -> None:
        """(Re)arm the idle timer: optimising once a burst of writes ends beats per-batch merges."""
        if self._idle is None:
            return
        timer = self._timers.pop(name, None)
        if timer is not None:
            timer.cancel()
        loop = asyncio.get_running_loop()
        self._timers[name] = loop.call_later(self._idle, self._start_optimize, name)

    def _start_optimize(self, name: str) -> None:
        self._timers.pop(name, None)
        running = self._optimizing.get(name)
        shard = self._shards.get(name)
        if shard is None:
            return
        if running is not None and not running.done():
            self._touch(name)
            return
        future = asyncio.get_running_loop().run_in_executor(None, shard.optimize)
        future.add_done_callback(lambda f: self._optimized(name, f))
        self._optimizing[name] = future

    @staticmethod
    def _optimized(name: str, future: asyncio.Future[Any]) -> None:
        if not future.cancelled() and future.exception() is not None:
            _log.warning("optimizing vector space %s failed: %s", name, future.exception())

    async def _settle(self, name: str) -> None:
        """Stop the timer and wait for a running optimisation (never close a shard under it)."""
        timer = self._timers.pop(name, None)
        if timer is not None:
            timer.cancel()
        running = self._optimizing.pop(name, None)
        if running is not None:
            with contextlib.suppress(Exception):
                await running

    async def optimize(self, name: str) -> None:
        await self._settle(name)
        shard = await self._shard(name)
        await self._run(shard.optimize)

    async def close(self) -> None:
        for name in list(self._shards):
            await self._settle(name)
        shards, self._shards = list(self._shards.values()), {}

        def close_all() -> None:
            for shard in shards:
                shard.flush()
                shard.close()

        await self._run(close_all)


class EdgeVectorStore(ForkableVectorStore):
    """Forkable vector spaces on Qdrant Edge, persisted under ``data_dir``.

    ``optimize_idle_seconds``: build indexes (HNSW) once writes to a space pause this long;
    ``None`` leaves it to explicit ``optimize()`` calls (bulk loads, benchmarks).
    """

    def __init__(
        self,
        data_dir: str | Path,
        *,
        mask_threshold: int = 1_000,
        batch_size: int = 256,
        optimize_idle_seconds: float | None = 2.0,
    ) -> None:
        self._edge = _EdgeBackend(Path(data_dir), optimize_idle_seconds)
        super().__init__(self._edge, mask_threshold=mask_threshold, batch_size=batch_size)

    async def optimize(self, *, space: SpaceSpec) -> None:
        """Merge segments and build HNSW now; returns when the space is fully indexed."""
        await self._require_space(space)
        await self._edge.optimize(space.space_id)
