"""``feature_search`` on the real corpus: single legs, two models fused (equal to a hand
fusion of the legs), input modes, min_score, and the shape of results."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from pydantic import JsonValue

from libs.errors import InvalidInputError, NotFoundError
from services.retrieval.engine import RetrievalEngine, RetrieverDefinition
from tests.retrieval_engine.conftest import BM25, MINILM, STATIC, Corpus, search, stage

Make = Callable[..., RetrieverDefinition]


async def test_single_leg_returns_ranked_documents_with_lineage(
    engine: RetrievalEngine, retriever: Make, corpus: Corpus
) -> None:
    _, text, _ = corpus.queries[0]
    result = await engine.execute(
        retriever(stage("search", "feature_search", searches=[search(STATIC, top_k=10)])),
        {"query": text},
    )
    scores = [d.score for d in result.documents]
    assert len(result.documents) == 10
    assert scores == sorted(scores, reverse=True)
    top = result.documents[0]
    assert top.collection_id == "col_static"
    assert top.root_object_id == f"obj_{top.document_id.removeprefix('doc_')}"
    assert top.lineage_path == f"bkt_scifact/{top.root_object_id}"
    assert top.payload["title"]
    assert result.feature_uris == (STATIC,)
    assert [s.stage_name for s in result.stages] == ["search"]
    assert result.stages[0].output_count == 10


async def test_static_and_minilm_find_relevant_documents(
    engine: RetrievalEngine, retriever: Make, corpus: Corpus
) -> None:
    """Sanity of the corpus: both models put a relevant abstract in the top 10 most of the time."""
    for uri in (STATIC, MINILM):
        plan = engine.plan(retriever(stage("s", "feature_search", searches=[search(uri, 10)])))
        found = 0
        for _, text, relevant in corpus.queries[:20]:
            result = await engine.execute(plan, {"query": text})
            found += bool(relevant & {d.document_id for d in result.documents})
        assert found >= 14, (uri, found)


def _hand_rrf(legs: list[list[str]], weights: list[float], k: int = 60) -> dict[str, float]:
    fused: dict[str, float] = {}
    for ranked, weight in zip(legs, weights, strict=True):
        for rank, document_id in enumerate(ranked, start=1):
            fused[document_id] = fused.get(document_id, 0.0) + weight / (k + rank)
    return fused


def _hand_weighted(legs: list[list[tuple[str, float]]], weights: list[float]) -> dict[str, float]:
    fused: dict[str, float] = {}
    for ranked, weight in zip(legs, weights, strict=True):
        scores = [s for _, s in ranked]
        low, high = min(scores), max(scores)
        for document_id, score in ranked:
            normalised = (score - low) / (high - low)
            fused[document_id] = fused.get(document_id, 0.0) + weight * normalised
    return fused


@pytest.mark.parametrize("fusion", ["rrf", "weighted"])
async def test_two_models_fuse_like_a_hand_computation(
    engine: RetrievalEngine, retriever: Make, corpus: Corpus, fusion: str
) -> None:
    """Old model 0.9, new model 0.1, as in a migration: the fused list equals fusing the two
    single-leg results by hand."""
    _, text, _ = corpus.queries[3]
    legs = []
    for uri in (STATIC, MINILM):
        single = await engine.execute(
            retriever(stage("s", "feature_search", searches=[search(uri, 15)])), {"query": text}
        )
        legs.append([(d.document_id, d.score) for d in single.documents])
    fused = await engine.execute(
        retriever(
            stage(
                "s",
                "feature_search",
                searches=[search(STATIC, 15, weight=0.9), search(MINILM, 15, weight=0.1)],
                fusion=fusion,
                final_top_k=30,
            )
        ),
        {"query": text},
    )
    weights = [0.9, 0.1]
    if fusion == "rrf":
        expected = _hand_rrf([[d for d, _ in leg] for leg in legs], weights)
    else:
        expected = _hand_weighted(legs, weights)
    got = {d.document_id: d.score for d in fused.documents}
    assert got.keys() == expected.keys()
    for document_id, score in expected.items():
        assert got[document_id] == pytest.approx(score, abs=1e-12)
    assert [d.score for d in fused.documents] == sorted(got.values(), reverse=True)
    assert set(fused.feature_uris) == {STATIC, MINILM}
    both = [d for d in fused.documents if len(d.leg_scores) == 2]
    assert both and set(both[0].leg_scores) == {STATIC, MINILM}


async def test_hybrid_dense_and_bm25(
    engine: RetrievalEngine, retriever: Make, corpus: Corpus
) -> None:
    _, text, relevant = corpus.queries[1]
    result = await engine.execute(
        retriever(
            stage(
                "hybrid",
                "feature_search",
                searches=[search(STATIC, 20), search(BM25, 20)],
                fusion="dbsf",
                final_top_k=10,
            )
        ),
        {"query": text},
    )
    assert len(result.documents) == 10
    assert relevant & {d.document_id for d in result.documents}


async def test_vector_and_document_input_modes(
    engine: RetrievalEngine, retriever: Make, corpus: Corpus
) -> None:
    document = corpus.documents[5]
    by_document = await engine.execute(
        retriever(
            stage(
                "like",
                "feature_search",
                searches=[
                    {"feature_uri": STATIC, "query": "{{INPUT.doc}}", "input_mode": "document"}
                ],
            ),
            input_schema=None,
        ),
        {"doc": document["document_id"]},
    )
    assert by_document.documents[0].document_id == document["document_id"]
    assert by_document.documents[0].score == pytest.approx(1.0, abs=1e-5)
    vector: list[JsonValue] = [float(v) for v in corpus.embeddings[STATIC][5].values]
    by_vector = await engine.execute(
        retriever(
            stage(
                "vec",
                "feature_search",
                searches=[{"feature_uri": STATIC, "query": "{{INPUT.v}}", "input_mode": "vector"}],
            ),
            input_schema=None,
        ),
        {"v": vector},
    )
    assert [d.document_id for d in by_vector.documents] == [
        d.document_id for d in by_document.documents
    ]
    with pytest.raises(InvalidInputError, match=r"'vec' \(feature_search\): searches\[0\].query"):
        await engine.execute(
            retriever(
                stage(
                    "vec",
                    "feature_search",
                    searches=[
                        {"feature_uri": STATIC, "query": "{{INPUT.v}}", "input_mode": "vector"}
                    ],
                ),
                input_schema=None,
            ),
            {"v": vector[:10]},
        )
    with pytest.raises(NotFoundError, match="doc_missing"):
        await engine.execute(
            retriever(
                stage(
                    "like",
                    "feature_search",
                    searches=[
                        {"feature_uri": STATIC, "query": "doc_missing", "input_mode": "document"}
                    ],
                ),
            ),
            {"query": "x"},
        )


async def test_min_score_and_final_top_k(
    engine: RetrievalEngine, retriever: Make, corpus: Corpus
) -> None:
    _, text, _ = corpus.queries[2]
    plain = await engine.execute(
        retriever(stage("s", "feature_search", searches=[search(STATIC, 30)])), {"query": text}
    )
    threshold = plain.documents[9].score
    cut = await engine.execute(
        retriever(stage("s", "feature_search", searches=[search(STATIC, 30, min_score=threshold)])),
        {"query": text},
    )
    assert all(d.score >= threshold for d in cut.documents)
    assert len(cut.documents) >= 10
    short = await engine.execute(
        retriever(stage("s", "feature_search", searches=[search(STATIC, 30)], final_top_k=5)),
        {"query": text},
    )
    assert [d.document_id for d in short.documents] == [d.document_id for d in plain.documents[:5]]


async def test_single_search_shorthand(engine: RetrievalEngine, retriever: Make) -> None:
    """``{feature_uri, query, limit}`` as the published retriever examples write it."""
    result = await engine.execute(
        retriever(
            stage("search", "feature_search", feature_uri=STATIC, query="{{INPUT.query}}", limit=7)
        ),
        {"query": "vitamin D deficiency"},
    )
    assert len(result.documents) == 7
