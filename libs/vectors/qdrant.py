"""``QdrantVectorStore``: the production adapter, a Qdrant server through ``qdrant-client``.

One collection per vector space (named by ``SpaceSpec.space_id``) with payload indexes on the
system fields. Give it ``url=`` (``QDRANT_URL``), or inject an ``AsyncQdrantClient`` — tests use
the client's local mode (``AsyncQdrantClient(":memory:")``), which runs the same API in Python.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from typing import Any, TypeVar

from qdrant_client import AsyncQdrantClient, models

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

__all__ = ["QdrantVectorStore", "to_qdrant_filter"]

R = TypeVar("R")
_Condition = (
    models.FieldCondition
    | models.IsEmptyCondition
    | models.IsNullCondition
    | models.HasIdCondition
    | models.Filter
)


_COMPILED: IdentityCache[Filter, models.Filter] = IdentityCache(size=512)


def to_qdrant_filter(node: Filter) -> models.Filter:
    """Compile a neutral filter to a ``qdrant_client`` filter (the one place that knows how).
    Compound nodes are memoised by identity: a view's visibility filter compiles once."""

    def condition(node: Filter) -> _Condition:
        if isinstance(node, And | Or | Not):
            return _COMPILED.get(node, compound)
        return leaf(node)

    def compound(node: Filter) -> models.Filter:
        match node:
            case And(filters=children):
                must = [condition(c) for c in children if not isinstance(c, Not)]
                must_not = [condition(c.filter) for c in children if isinstance(c, Not)]
                return models.Filter(must=must or None, must_not=must_not or None)
            case Or(filters=children):
                return models.Filter(should=[condition(c) for c in children])
            case Not(filter=inner):
                return models.Filter(must_not=[condition(inner)])
        raise TypeError(f"not a compound filter: {node!r}")  # pragma: no cover

    def leaf(node: Filter) -> _Condition:
        match node:
            case Eq(field=key, value=value):
                return models.FieldCondition(key=key, match=models.MatchValue(value=value))
            case Ne(field=key, value=value):
                match_value = models.MatchValue(value=value)
                return models.Filter(must_not=[models.FieldCondition(key=key, match=match_value)])
            case Gt(field=key, value=value):
                return models.FieldCondition(key=key, range=models.Range(gt=value))
            case Gte(field=key, value=value):
                return models.FieldCondition(key=key, range=models.Range(gte=value))
            case Lt(field=key, value=value):
                return models.FieldCondition(key=key, range=models.Range(lt=value))
            case Lte(field=key, value=value):
                return models.FieldCondition(key=key, range=models.Range(lte=value))
            case In(field=key, values=values):
                return models.FieldCondition(key=key, match=models.MatchAny(any=list(values)))
            case Nin(field=key, values=values):
                match_any = models.MatchAny(any=list(values))
                return models.Filter(must_not=[models.FieldCondition(key=key, match=match_any)])
            case Exists(field=key):
                empty = models.IsEmptyCondition(is_empty=models.PayloadField(key=key))
                return models.Filter(must_not=[empty])
            case IsNull(field=key):
                return models.IsNullCondition(is_null=models.PayloadField(key=key))
            case HasId(ids=ids):
                return models.HasIdCondition(has_id=list(ids))
        raise TypeError(f"not a filter node: {node!r}")  # pragma: no cover - exhaustive

    compiled = condition(node)
    return compiled if isinstance(compiled, models.Filter) else models.Filter(must=[compiled])


_SCHEMAS = {
    "keyword": models.PayloadSchemaType.KEYWORD,
    "integer": models.PayloadSchemaType.INTEGER,
    "float": models.PayloadSchemaType.FLOAT,
    "bool": models.PayloadSchemaType.BOOL,
}


def _qdrant_vector(vector: RawVector) -> dict[str, Any]:
    if vector is None:
        return {}
    if isinstance(vector, tuple):
        return {SPARSE: models.SparseVector(indices=vector[0], values=vector[1])}
    return {DENSE: vector}


def _raw_vector(vector: Any) -> RawVector:
    if not isinstance(vector, dict) or not vector:
        return None
    if DENSE in vector:
        return [float(v) for v in vector[DENSE]]
    sparse = vector[SPARSE]
    return (list(sparse.indices), [float(v) for v in sparse.values])


class _QdrantBackend:
    """The ``Backend`` protocol on a Qdrant server (or qdrant-client's local mode)."""

    def __init__(self, client: AsyncQdrantClient) -> None:
        self._client = client

    @staticmethod
    async def _run(call: Awaitable[R]) -> R:
        try:
            return await call
        except OffshootError:
            raise
        except Exception as error:
            raise InfrastructureError(f"qdrant: {error}") from error

    async def create_collection(self, spec: SpaceSpec) -> None:
        name = spec.space_id
        if await self._run(self._client.collection_exists(name)):
            return
        vectors: dict[str, models.VectorParams] = {}
        sparse: dict[str, models.SparseVectorParams] = {}
        if spec.kind == "dense":
            distance = models.Distance.COSINE if spec.distance == "cosine" else models.Distance.DOT
            vectors[DENSE] = models.VectorParams(size=spec.dimension, distance=distance)
        else:
            modifier = models.Modifier.IDF if spec.idf else None
            sparse[SPARSE] = models.SparseVectorParams(modifier=modifier)
        try:
            await self._client.create_collection(
                name, vectors_config=vectors, sparse_vectors_config=sparse
            )
        except Exception as error:  # another process may have created it meanwhile
            if not await self._run(self._client.collection_exists(name)):
                raise InfrastructureError(f"qdrant: {error}") from error
        schemas = [(k, models.PayloadSchemaType.KEYWORD) for k in KEYWORD_INDEXES]
        schemas += [(k, models.PayloadSchemaType.INTEGER) for k in INTEGER_INDEXES]
        for key, schema in schemas:
            await self._run(self._client.create_payload_index(name, key, field_schema=schema))

    async def create_indexes(self, name: str, indexes: Mapping[str, IndexKind]) -> None:
        for key, kind in indexes.items():
            schema = _SCHEMAS[kind]
            await self._run(self._client.create_payload_index(name, key, field_schema=schema))

    async def collection_exists(self, name: str) -> bool:
        return await self._run(self._client.collection_exists(name))

    async def drop_collection(self, name: str) -> None:
        await self._run(self._client.delete_collection(name))

    async def write(self, name: str, points: Sequence[RawPoint], *, overwrite: bool) -> None:
        structs = [
            models.PointStruct(id=p.id, vector=_qdrant_vector(p.vector), payload=p.payload)
            for p in points
        ]
        mode = None if overwrite else models.UpdateMode.INSERT_ONLY
        await self._run(self._client.upsert(name, points=structs, update_mode=mode, wait=True))

    async def set_payload(self, name: str, ids: Sequence[str], payload: dict[str, Any]) -> None:
        selector: list[models.ExtendedPointId] = list(ids)
        await self._run(self._client.set_payload(name, payload, points=selector, wait=True))

    async def delete_where(self, name: str, where: Filter) -> None:
        selector = models.FilterSelector(filter=to_qdrant_filter(where))
        await self._run(self._client.delete(name, points_selector=selector, wait=True))

    async def retrieve(self, name: str, ids: Sequence[str]) -> list[RawRecord]:
        found = await self._run(self._client.retrieve(name, list(ids), with_payload=True))
        return [RawRecord(str(r.id), dict(r.payload or {})) for r in found]

    async def scroll(
        self, name: str, where: Filter, *, limit: int, offset: str | None, with_vectors: bool
    ) -> tuple[list[RawRecord], str | None]:
        records, next_offset = await self._run(
            self._client.scroll(
                name,
                scroll_filter=to_qdrant_filter(where),
                limit=limit,
                offset=offset,
                with_payload=True,
                with_vectors=with_vectors,
            )
        )
        found = [
            RawRecord(
                str(r.id), dict(r.payload or {}), _raw_vector(r.vector) if with_vectors else None
            )
            for r in records
        ]
        return found, None if next_offset is None else str(next_offset)

    async def count(self, name: str, where: Filter) -> int:
        result = await self._run(
            self._client.count(name, count_filter=to_qdrant_filter(where), exact=True)
        )
        return result.count

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
        query: list[float] | models.SparseVector
        if isinstance(vector, tuple):
            query, using = models.SparseVector(indices=vector[0], values=vector[1]), SPARSE
        elif vector is not None:
            query, using = vector, DENSE
        else:  # pragma: no cover - the store always passes a vector
            raise InvalidInputError("a search needs a query vector")
        params = None
        if idf_corpus is not None:
            corpus = models.IdfCorpusParams(corpus=to_qdrant_filter(idf_corpus))
            params = models.SearchParams(idf=corpus)
        response = await self._run(
            self._client.query_points(
                spec.space_id,
                query=query,
                using=using,
                query_filter=to_qdrant_filter(where),
                search_params=params,
                limit=top_k,
                with_payload=True,
                with_vectors=with_vectors,
            )
        )
        return [
            RawRecord(
                str(p.id),
                dict(p.payload or {}),
                _raw_vector(p.vector) if with_vectors else None,
                float(p.score),
            )
            for p in response.points
        ]

    async def close(self) -> None:
        await self._run(self._client.close())


class QdrantVectorStore(ForkableVectorStore):
    """Forkable vector spaces on a Qdrant server: ``url=`` or an injected ``client=``."""

    def __init__(
        self,
        url: str | None = None,
        *,
        api_key: str | None = None,
        client: AsyncQdrantClient | None = None,
        timeout: int = 30,
        mask_threshold: int = 1_000,
        batch_size: int = 256,
    ) -> None:
        if (url is None) == (client is None):
            raise InvalidInputError("QdrantVectorStore needs exactly one of url= or client=")
        if client is None:
            client = AsyncQdrantClient(
                url=url, api_key=api_key, timeout=timeout, check_compatibility=False
            )
        super().__init__(
            _QdrantBackend(client), mask_threshold=mask_threshold, batch_size=batch_size
        )
