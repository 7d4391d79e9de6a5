"""Caches: whole executions and search stages are keyed by collection signatures (a changed
signature misses), query embeddings go through the inference cache, responses say what hit."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from services.retrieval.engine import RetrievalEngine, RetrieverDefinition
from tests.retrieval_engine.conftest import MINILM, STATIC, Signatures, search, stage

Make = Callable[..., RetrieverDefinition]


async def test_second_identical_execute_is_a_hit_and_a_changed_signature_misses(
    engine: RetrievalEngine, retriever: Make, signatures: Signatures
) -> None:
    query = f"statins and heart disease {uuid.uuid4()}"  # never embedded before
    plan = engine.plan(
        retriever(
            stage("s", "feature_search", searches=[search(STATIC, 20), search(MINILM, 20)]),
            stage("cut", "limit", "reduce", limit=5),
        )
    )
    first = await engine.execute(plan, {"query": query})
    assert not first.cache.execution_hit
    assert first.cache.stage_hits == {"s": False}
    assert first.cache.query_embedding_hits == {STATIC: False, MINILM: False}
    second = await engine.execute(plan, {"query": query})
    assert second.cache.execution_hit
    assert second.documents == first.documents
    other_inputs = await engine.execute(plan, {"query": query + "?"})
    assert not other_inputs.cache.execution_hit
    signatures.version["col_minilm"] = 1  # a write to one collection
    changed = await engine.execute(plan, {"query": query})
    assert not changed.cache.execution_hit
    assert changed.cache.stage_hits == {"s": False}  # the search read col_minilm too
    assert changed.cache.query_embedding_hits == {STATIC: True, MINILM: True}
    assert changed.signatures["col_minilm"] != first.signatures["col_minilm"]
    assert [d.document_id for d in changed.documents] == [d.document_id for d in first.documents]


async def test_a_clone_adding_a_stage_reuses_the_search_stage(
    engine: RetrievalEngine, retriever: Make, signatures: Signatures
) -> None:
    query = f"insulin resistance {uuid.uuid4()}"
    base = stage("s", "feature_search", searches=[search(STATIC, 30)])
    await engine.execute(retriever(base, retriever_id="ret_a"), {"query": query})
    clone = await engine.execute(
        retriever(
            base, stage("div", "mmr", "sort", **{"lambda": 0.5, "limit": 5}), retriever_id="ret_b"
        ),
        {"query": query},
    )
    assert not clone.cache.execution_hit
    assert clone.cache.stage_hits == {"s": False}  # mmr needs vectors: another search request
    again = await engine.execute(
        retriever(base, stage("cut", "limit", "reduce", limit=3), retriever_id="ret_c"),
        {"query": query},
    )
    assert again.cache.stage_hits == {"s": True}
    assert again.stages[0].cache_hit
    signatures.version["col_minilm"] = 7  # not searched by this stage: still a stage hit
    unrelated = await engine.execute(
        retriever(base, stage("cut", "limit", "reduce", limit=3), retriever_id="ret_c"),
        {"query": query},
    )
    assert not unrelated.cache.execution_hit  # the retriever covers col_minilm
    assert unrelated.cache.stage_hits == {"s": True}


async def test_without_signatures_nothing_is_cached(
    store: object, inference_cache: object, retriever: Make
) -> None:
    engine = RetrievalEngine(store=store, inference_cache=inference_cache)  # type: ignore[arg-type]
    plan = engine.plan(retriever(stage("s", "feature_search", searches=[search(STATIC, 5)])))
    first = await engine.execute(plan, {"query": "prion disease"})
    second = await engine.execute(plan, {"query": "prion disease"})
    assert not second.cache.execution_hit and not second.cache.enabled
    assert second.cache.stage_hits == {}
    assert second.cache.query_embedding_hits == {STATIC: True}
    assert second.documents == first.documents
