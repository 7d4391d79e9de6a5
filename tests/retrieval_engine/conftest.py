"""A small real corpus for the engine: 300 SciFact abstracts (those judged for the first test
queries, then others) embedded once per session with minilm-static@v1 (dense, 256-d),
bm25@v1 (sparse) and minilm@v1 (dense, 384-d), written to an ``EdgeVectorStore`` in a temporary
directory. Embeddings go through the machine's inference cache, so only the first run on a
machine pays for MiniLM (about 15 s); later runs read them back.

Collections: ``col_static`` holds the minilm-static and BM25 spaces, ``col_minilm`` the MiniLM
space, over the same document ids (the "old model / new model" pair of a migration).
"""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from libs.datasets import scifact_dir
from libs.extractors import (
    CachedExtractor,
    DenseEmbedding,
    Embedding,
    InferenceCache,
    SparseEmbedding,
    get_extractor,
)
from libs.vectors import (
    DenseVector,
    EdgeVectorStore,
    PointIn,
    SpaceSpec,
    SparseVector,
    View,
)
from services.retrieval.engine import (
    CollectionRef,
    RetrievalEngine,
    RetrieverDefinition,
    StageSpec,
)

SCIFACT = scifact_dir()
CORPUS_SIZE = 300
STATIC = "offshoot://minilm-static@v1/text_embedding"
MINILM = "offshoot://minilm@v1/text_embedding"
BM25 = "offshoot://bm25@v1/sparse_embedding"
ROOT = "ns_engine_test"
SPECS = {
    STATIC: SpaceSpec(lineage_root=ROOT, feature_uri=STATIC, dimension=256),
    MINILM: SpaceSpec(lineage_root=ROOT, feature_uri=MINILM, dimension=384),
    BM25: SpaceSpec(lineage_root=ROOT, feature_uri=BM25, dimension=1 << 31, kind="sparse"),
}
QUERY_SCHEMA = {
    "type": "object",
    "properties": {"query": {"type": "string", "minLength": 1}, "year": {"type": "integer"}},
    "required": ["query"],
}


@dataclass(frozen=True)
class Corpus:
    documents: list[dict[str, Any]]  # payloads, with "document_id"
    queries: list[tuple[str, str, set[str]]]  # (query id, text, relevant document ids)
    embeddings: dict[str, list[Embedding]]  # feature URI -> one per document

    def text(self, document: Mapping[str, Any]) -> str:
        return f"{document['title']}\n{document['text']}"


def _load_corpus() -> tuple[list[dict[str, Any]], list[tuple[str, str, set[str]]]]:
    qrels: dict[str, set[str]] = {}
    for line in (SCIFACT / "qrels" / "test.tsv").read_text().splitlines()[1:]:
        query_id, corpus_id, _ = line.strip().split("\t")
        qrels.setdefault(query_id, set()).add(corpus_id)
    with gzip.open(SCIFACT / "queries.jsonl.gz", "rt") as lines:
        texts = {q["_id"]: q["text"] for q in map(json.loads, lines)}
    wanted: list[str] = []
    queries = []
    for query_id, relevant in list(qrels.items())[:60]:
        queries.append((query_id, texts[query_id], {f"doc_{r}" for r in relevant}))
        wanted.extend(sorted(relevant))
    wanted_set = set(wanted)
    documents: dict[str, dict[str, Any]] = {}
    with gzip.open(SCIFACT / "corpus.jsonl.gz", "rt") as lines:
        for raw in map(json.loads, lines):
            if raw["_id"] in wanted_set or len(documents) < CORPUS_SIZE - len(wanted_set):
                documents[raw["_id"]] = raw
            if wanted_set <= documents.keys() and len(documents) >= CORPUS_SIZE:
                break
    payloads = []
    for n, raw in enumerate(sorted(documents.values(), key=lambda d: int(d["_id"]))[:CORPUS_SIZE]):
        number = int(raw["_id"])
        payloads.append(
            {
                "document_id": f"doc_{raw['_id']}",
                "title": raw["title"],
                "text": raw["text"],
                "year": 2000 + number % 20,
                "group": f"g{number % 7}",
                "tags": ["even" if number % 2 == 0 else "odd", f"mod3_{number % 3}"],
                "rank_hint": n,
                "root_object_id": f"obj_{raw['_id']}",
                "lineage_path": f"bkt_scifact/obj_{raw['_id']}",
            }
        )
    present = {p["document_id"] for p in payloads}
    queries = [(q, t, rel & present) for q, t, rel in queries if rel & present]
    return payloads, queries


@pytest.fixture(scope="session")
def inference_cache() -> InferenceCache:
    """The machine's persistent cache: corpus and query embeddings survive between runs."""
    return InferenceCache.open_default()


@pytest.fixture(scope="session")
def corpus(inference_cache: InferenceCache) -> Corpus:
    documents, queries = _load_corpus()
    texts = [f"{d['title']}\n{d['text']}" for d in documents]
    embeddings = {}
    for uri, name in ((STATIC, "minilm-static"), (BM25, "bm25"), (MINILM, "minilm")):
        extractor = CachedExtractor(get_extractor(name, "v1"), inference_cache)
        embeddings[uri] = extractor.embed(texts, role="document")
    return Corpus(documents=documents, queries=queries, embeddings=embeddings)


def _vector(uri: str, embedding: Embedding) -> DenseVector | SparseVector:
    if isinstance(embedding, DenseEmbedding):
        return DenseVector(feature_uri=uri, values=tuple(float(v) for v in embedding.values))
    assert isinstance(embedding, SparseEmbedding)
    return SparseVector(
        feature_uri=uri,
        indices=tuple(int(i) for i in embedding.indices),
        values=tuple(float(v) for v in embedding.values),
    )


@dataclass(frozen=True)
class Built:
    data_dir: Path
    collections: dict[str, CollectionRef]


@pytest.fixture(scope="session")
def built(corpus: Corpus, tmp_path_factory: pytest.TempPathFactory) -> Built:
    """The store written once per session; tests open it read-only in their own event loop."""
    data_dir = tmp_path_factory.mktemp("engine-vectors")
    owners = {STATIC: "col_static", BM25: "col_static", MINILM: "col_minilm"}

    async def build() -> dict[str, dict[str, View]]:
        store = EdgeVectorStore(data_dir, optimize_idle_seconds=None)
        views: dict[str, dict[str, View]] = {}
        try:
            for uri, spec in SPECS.items():
                await store.ensure_space(spec=spec, indexes={"year": "integer", "group": "keyword"})
                view = await store.create_view(space=spec, owner=owners[uri])
                points = [
                    PointIn(
                        document_id=payload["document_id"],
                        vector=_vector(uri, embedding),
                        payload={k: v for k, v in payload.items() if k != "document_id"},
                    )
                    for payload, embedding in zip(
                        corpus.documents, corpus.embeddings[uri], strict=True
                    )
                ]
                view = await store.upsert(view=view, points=points, position=1)
                await store.optimize(space=spec)
                views.setdefault(owners[uri], {})[uri] = view
        finally:
            await store.close()
        return views

    views = asyncio.run(build())
    return Built(
        data_dir=data_dir,
        collections={
            owner: CollectionRef(collection_id=owner, views=held) for owner, held in views.items()
        },
    )


@pytest.fixture
async def store(built: Built) -> AsyncIterator[EdgeVectorStore]:
    opened = EdgeVectorStore(built.data_dir, optimize_idle_seconds=None)
    yield opened
    await opened.close()


class Signatures:
    """The caller's side of caching: a signature per collection that tests can change."""

    def __init__(self) -> None:
        self.version: dict[str, int] = {}

    async def __call__(self, collection: CollectionRef) -> str:
        return f"{collection.collection_id}:v{self.version.get(collection.collection_id, 0)}"


@pytest.fixture
def signatures() -> Signatures:
    return Signatures()


@pytest.fixture
def engine(
    store: EdgeVectorStore, inference_cache: InferenceCache, signatures: Signatures
) -> RetrievalEngine:
    return RetrievalEngine(store=store, inference_cache=inference_cache, signature=signatures)


def stage(name: str, stage_id: str, stage_type: str = "filter", **parameters: Any) -> StageSpec:
    return StageSpec.model_validate(
        {
            "stage_name": name,
            "stage_type": stage_type,
            "config": {"stage_id": stage_id, "parameters": parameters},
        }
    )


def search(uri: str = STATIC, top_k: int = 20, **extra: Any) -> dict[str, Any]:
    return {"feature_uri": uri, "query": "{{INPUT.query}}", "top_k": top_k, **extra}


@pytest.fixture
def retriever(built: Built) -> Callable[..., RetrieverDefinition]:
    def make(
        *stages: StageSpec,
        collections: tuple[str, ...] = ("col_static", "col_minilm"),
        input_schema: dict[str, Any] | None = QUERY_SCHEMA,
        retriever_id: str = "ret_test",
    ) -> RetrieverDefinition:
        return RetrieverDefinition(
            retriever_id=retriever_id,
            stages=stages,
            collections=tuple(built.collections[c] for c in collections),
            input_schema=input_schema,
        )

    return make
