"""Each stage's behaviour on the real corpus: attribute filters (store and Python agree, at any
nesting), sorts, normalisation, reduce stages, MMR diversity, rerank."""

from __future__ import annotations

import json
from collections.abc import Callable
from itertools import combinations
from typing import Any

import numpy as np
import pytest

from services.retrieval.engine import ExecutionResult, RetrievalEngine, RetrieverDefinition
from services.retrieval.engine.stages.attribute import AttributeFilterParameters
from services.retrieval.engine.stages.conditions import Condition as _Condition
from services.retrieval.engine.stages.conditions import matches
from tests.retrieval_engine.conftest import MINILM, STATIC, Corpus, search, stage

Make = Callable[..., RetrieverDefinition]
QUERY = "T cells and immune response in cancer"

FILTERS: list[dict[str, Any]] = [
    {"op": "eq", "field": "group", "value": "g3"},
    {"op": "ne", "field": "group", "value": "g3"},
    {"op": "gt", "field": "year", "value": 2015},
    {"op": "lte", "field": "year", "value": 2003},
    {"op": "in", "field": "group", "values": ["g1", "g2"]},
    {"op": "nin", "field": "tags", "values": ["even"]},
    {"op": "eq", "field": "tags", "value": "mod3_0"},
    {"op": "exists", "field": "lineage_path"},
    {"op": "is_null", "field": "nothing_here"},
    {"op": "eq", "field": "document_id", "value": "doc_4983"},
    {
        "op": "or",
        "filters": [
            {
                "op": "and",
                "filters": [
                    {"op": "gte", "field": "year", "value": 2010},
                    {"op": "eq", "field": "group", "value": "g0"},
                ],
            },
            {"op": "not", "filter": {"op": "in", "field": "tags", "values": ["odd", "mod3_1"]}},
        ],
    },
]


def _ids(result: ExecutionResult) -> list[str]:
    return [d.document_id for d in result.documents]


def _condition(data: dict[str, Any]) -> _Condition:
    return AttributeFilterParameters.model_validate_json(json.dumps({"filter": data})).filter


@pytest.mark.parametrize("condition", FILTERS, ids=[str(i) for i in range(len(FILTERS))])
async def test_attribute_filter_store_and_python_agree(
    engine: RetrievalEngine, retriever: Make, corpus: Corpus, condition: dict[str, Any]
) -> None:
    """As the source stage the filter runs in the store; after a search that is not adjacent,
    in Python. Both equal evaluating the condition on every document."""
    expected = {
        d["document_id"]
        for d in corpus.documents
        if matches(_condition(condition), d["document_id"], d)
    }
    source = await engine.execute(
        retriever(stage("f", "attribute_filter", filter=condition), collections=("col_static",)),
        {"query": QUERY},
    )
    assert set(_ids(source)) == expected
    assert all(d.score == 0.0 for d in source.documents)
    everything = search(STATIC, top_k=len(corpus.documents))
    in_python = await engine.execute(
        retriever(
            stage("s", "feature_search", searches=[everything]),
            stage("order", "sort_relevance", "sort"),
            stage("f", "attribute_filter", filter=condition),
            collections=("col_static",),
        ),
        {"query": QUERY},
    )
    assert set(_ids(in_python)) == expected
    assert not in_python.stages[2].pushed_down


async def test_pushdown_keeps_top_k_and_python_parts_run_after(
    engine: RetrievalEngine, retriever: Make, corpus: Corpus
) -> None:
    """Pushed into the search, a filter still yields top_k matches; contains/regex then run on
    what came back."""
    in_group = {"op": "eq", "field": "group", "value": "g2"}
    result = await engine.execute(
        retriever(
            stage("f", "attribute_filter", filter=in_group),
            stage("s", "feature_search", searches=[search(STATIC, 10)]),
        ),
        {"query": QUERY},
    )
    assert len(result.documents) == 10
    assert all(d.payload["group"] == "g2" for d in result.documents)
    assert [s.stage_name for s in result.stages] == ["s", "f"]
    assert result.stages[1].pushed_down
    mixed = {
        "op": "and",
        "filters": [
            in_group,
            {"op": "regex", "field": "title", "pattern": "(?i)cell"},
            {
                "op": "not",
                "filter": {
                    "op": "contains",
                    "field": "text",
                    "value": "mouse",
                    "case_sensitive": False,
                },
            },
        ],
    }
    filtered = await engine.execute(
        retriever(
            stage("s", "feature_search", searches=[search(STATIC, 40)]),
            stage("f", "attribute_filter", filter=mixed),
        ),
        {"query": QUERY},
    )
    assert filtered.documents
    for document in filtered.documents:
        assert document.payload["group"] == "g2"
        assert "cell" in str(document.payload["title"]).lower()
        assert "mouse" not in str(document.payload["text"]).lower()


async def test_search_after_a_source_filter_is_restricted_to_it(
    engine: RetrievalEngine, retriever: Make
) -> None:
    result = await engine.execute(
        retriever(
            stage("f", "attribute_filter", filter={"op": "in", "field": "group", "values": ["g5"]}),
            stage("cut", "limit", "reduce", limit=1000),
            stage("s", "feature_search", searches=[search(MINILM, 50)]),
        ),
        {"query": QUERY},
    )
    assert result.documents and all(d.payload["group"] == "g5" for d in result.documents)
    assert result.stages[2].input_count == result.stages[0].output_count


async def test_sorts_and_normalisation(engine: RetrievalEngine, retriever: Make) -> None:
    base = stage("s", "feature_search", searches=[search(STATIC, 20)])
    by_year = await engine.execute(
        retriever(base, stage("y", "sort_attribute", "sort", field="year", direction="asc")),
        {"query": QUERY},
    )
    years = [d.payload["year"] for d in by_year.documents]
    assert years == sorted(years)  # type: ignore[type-var]
    missing = await engine.execute(
        retriever(base, stage("y", "sort_attribute", "sort", field="nothing")), {"query": QUERY}
    )
    plain = await engine.execute(retriever(base), {"query": QUERY})
    assert _ids(missing) == _ids(plain)  # all missing: stable
    minmax = await engine.execute(
        retriever(base, stage("n", "score_normalize", "sort", method="min_max")), {"query": QUERY}
    )
    assert _ids(minmax) == _ids(plain)
    assert minmax.documents[0].score == 1.0 and minmax.documents[-1].score == 0.0
    z = await engine.execute(
        retriever(base, stage("n", "score_normalize", "sort", method="z_score")), {"query": QUERY}
    )
    scores = np.array([d.score for d in z.documents])
    assert abs(scores.mean()) < 1e-9 and abs(scores.std() - 1.0) < 1e-9
    ascending = await engine.execute(
        retriever(base, stage("r", "sort_relevance", "sort", direction="asc")), {"query": QUERY}
    )
    assert _ids(ascending) == _ids(plain)[::-1]


async def test_reduce_stages(
    engine: RetrievalEngine, retriever: Make, unit_static: dict[str, Any]
) -> None:
    base = stage("s", "feature_search", searches=[search(STATIC, 30)])
    plain = _ids(await engine.execute(retriever(base), {"query": QUERY}))
    page = await engine.execute(
        retriever(base, stage("l", "limit", "reduce", limit=5, offset=10)), {"query": QUERY}
    )
    assert _ids(page) == plain[10:15]
    samples = [
        _ids(
            await engine.execute(
                retriever(base, stage("x", "sample", "reduce", size=8, seed=seed)),
                {"query": QUERY},
            )
        )
        for seed in (1, 1, 2)
    ]
    assert samples[0] == samples[1] != samples[2]
    assert samples[0] == [d for d in plain if d in samples[0]]  # order kept
    by_group = await engine.execute(
        retriever(base, stage("d", "deduplicate", "reduce", by="field", field="group")),
        {"query": QUERY},
    )
    groups = [d.payload["group"] for d in by_group.documents]
    assert len(groups) == len(set(groups)) > 1
    assert _ids(by_group)[0] == plain[0]
    near = await engine.execute(
        retriever(base, stage("d", "deduplicate", "reduce", by="vector", threshold=0.6)),
        {"query": QUERY},
    )
    assert 0 < len(near.documents) < 30 and _ids(near)[0] == plain[0]
    vectors = np.array([unit_static[d.document_id] for d in near.documents])
    similarity = vectors @ vectors.T
    assert all(similarity[i, j] < 0.6 for i, j in combinations(range(len(vectors)), 2))


@pytest.fixture(scope="module")
def unit_static(corpus: Corpus) -> dict[str, np.ndarray[Any, Any]]:
    """Each document's minilm-static vector, L2-normalised (to measure diversity)."""
    vectors = {}
    for document, embedding in zip(corpus.documents, corpus.embeddings[STATIC], strict=True):
        values = np.asarray(embedding.values, dtype=np.float64)
        vectors[document["document_id"]] = values / np.linalg.norm(values)
    return vectors


def _mean_pairwise_cosine(result: ExecutionResult, unit: dict[str, Any]) -> float:
    vectors = np.array([unit[d.document_id] for d in result.documents])
    similarity = vectors @ vectors.T
    pairs = list(combinations(range(len(vectors)), 2))
    return float(np.mean([similarity[i, j] for i, j in pairs]))


async def test_mmr_returns_a_more_diverse_top_10(
    engine: RetrievalEngine, retriever: Make, corpus: Corpus, unit_static: dict[str, Any]
) -> None:
    base = stage("s", "feature_search", searches=[search(STATIC, 50)])
    lower = 0
    queries = corpus.queries[:10]
    for _, text, _ in queries:
        plain = await engine.execute(
            retriever(base, stage("l", "limit", "reduce", limit=10)), {"query": text}
        )
        diverse = await engine.execute(
            retriever(base, stage("div", "mmr", "sort", **{"lambda": 0.3, "limit": 10})),
            {"query": text},
        )
        assert len(diverse.documents) == 10
        assert diverse.documents[0].document_id == plain.documents[0].document_id
        lower += _mean_pairwise_cosine(diverse, unit_static) < _mean_pairwise_cosine(
            plain, unit_static
        )
    assert lower == len(queries)  # every query (lambda 0.5 leaves a few lists unchanged)


async def test_mmr_lambda_one_is_relevance_order(engine: RetrievalEngine, retriever: Make) -> None:
    base = stage("s", "feature_search", searches=[search(STATIC, 30)])
    plain = await engine.execute(retriever(base), {"query": QUERY})
    same = await engine.execute(
        retriever(base, stage("div", "mmr", "sort", **{"lambda": 1.0, "limit": 12})),
        {"query": QUERY},
    )
    assert _ids(same) == _ids(plain)[:12]
    # after a BM25-only search, mmr can still use the stored dense vectors named explicitly
    fetched = await engine.execute(
        retriever(
            stage("s", "feature_search", searches=[search(MINILM, 30)]),
            stage("div", "mmr", "sort", **{"lambda": 0.3, "limit": 5, "feature_uri": STATIC}),
        ),
        {"query": QUERY},
    )
    assert len(fetched.documents) == 5


async def test_rerank_with_another_model(
    engine: RetrievalEngine, retriever: Make, corpus: Corpus
) -> None:
    """Candidates of the cheap model re-scored by MiniLM equal MiniLM's own cosines."""
    _, text, _ = corpus.queries[4]
    reranked = await engine.execute(
        retriever(
            stage("s", "feature_search", searches=[search(STATIC, 20)]),
            stage("rr", "rerank", "sort", feature_uri=MINILM, text_fields=["title", "text"]),
        ),
        {"query": text},
    )
    by_minilm = await engine.execute(
        retriever(stage("s", "feature_search", searches=[search(MINILM, len(corpus.documents))])),
        {"query": text},
    )
    minilm_scores = {d.document_id: d.score for d in by_minilm.documents}
    assert len(reranked.documents) == 20
    scores = [d.score for d in reranked.documents]
    assert scores == sorted(scores, reverse=True)
    for document in reranked.documents:
        assert document.score == pytest.approx(minilm_scores[document.document_id], abs=1e-4)
    assert reranked.feature_uris == (STATIC, MINILM)
