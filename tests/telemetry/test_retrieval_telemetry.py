"""A retriever execution is traced stage by stage and timed, over a small vector-input corpus."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from libs.extractors import InferenceCache
from libs.vectors import DenseVector, EdgeVectorStore, PointIn, SpaceSpec
from services.retrieval.engine import (
    CollectionRef,
    RetrievalEngine,
    RetrieverDefinition,
    StageSpec,
)

URI = "offshoot://minilm-static@v1/text_embedding"
SPACE = SpaceSpec(lineage_root="ns_telemetry", feature_uri=URI, dimension=4)
SEARCH: dict[str, Any] = {
    "feature_uri": URI,
    "query": [1.0, 0.0, 0.0, 0.0],
    "input_mode": "vector",
    "top_k": 5,
}


def stage(name: str, stage_id: str, stage_type: str, **parameters: Any) -> StageSpec:
    return StageSpec.model_validate(
        {
            "stage_name": name,
            "stage_type": stage_type,
            "config": {"stage_id": stage_id, "parameters": parameters},
        }
    )


@pytest.fixture
async def engine_and_retriever(
    tmp_path: Path,
) -> AsyncIterator[tuple[RetrievalEngine, RetrieverDefinition]]:
    """Six documents with 4-d vectors and a three-stage retriever: search, sort, limit."""
    store = EdgeVectorStore(tmp_path / "vectors", optimize_idle_seconds=None)
    await store.ensure_space(spec=SPACE, indexes={})
    view = await store.create_view(space=SPACE, owner="col_small")
    points = [
        PointIn(
            document_id=f"doc_{i}",
            vector=DenseVector(feature_uri=URI, values=(1.0, i / 10, 0.0, 0.5)),
            payload={"rank": i},
        )
        for i in range(6)
    ]
    view = await store.upsert(view=view, points=points, position=1)
    engine = RetrievalEngine(store=store, inference_cache=InferenceCache(tmp_path / "cache.db"))
    retriever = RetrieverDefinition(
        retriever_id="ret_traced",
        stages=(
            stage("search", "feature_search", "filter", searches=[SEARCH]),
            stage("by_rank", "sort_attribute", "sort", field="rank"),
            stage("top", "limit", "reduce", limit=3),
        ),
        collections=(CollectionRef(collection_id="col_small", views={URI: view}),),
    )
    yield engine, retriever
    await store.close()


async def test_executing_a_retriever_gives_one_span_per_stage(
    engine_and_retriever: tuple[RetrievalEngine, RetrieverDefinition],
    spans: InMemorySpanExporter,
) -> None:
    engine, retriever = engine_and_retriever

    result = await engine.execute(retriever, {})

    finished = spans.get_finished_spans()
    (execution,) = [s for s in finished if s.name == "retriever.execute"]
    stages = [s for s in finished if s.name.startswith("stage ")]
    assert execution.context is not None
    assert [s.name for s in stages] == [
        "stage feature_search",
        "stage sort_attribute",
        "stage limit",
    ]
    assert [(s.attributes or {}).get("offshoot.stage_name") for s in stages] == [
        "search",
        "by_rank",
        "top",
    ]
    assert [(s.attributes or {}).get("offshoot.stage_id") for s in stages] == [
        r.stage_id for r in result.stages
    ]
    assert all(
        s.parent is not None and s.parent.span_id == execution.context.span_id for s in stages
    )
    assert (
        (stages[-1].attributes or {})["offshoot.stage.output_count"] == len(result.documents) == 3
    )


async def test_an_execution_records_a_query_duration_point(
    engine_and_retriever: tuple[RetrievalEngine, RetrieverDefinition],
    metric_reader: InMemoryMetricReader,
) -> None:
    engine, retriever = engine_and_retriever

    await engine.execute(retriever, {})

    data = metric_reader.get_metrics_data()
    assert data is not None
    (metric,) = [
        m
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        if m.name == "offshoot.retrieval.query.duration"
    ]
    (point,) = metric.data.data_points
    assert isinstance(point, HistogramDataPoint)
    assert metric.unit == "ms"
    assert point.count == 1 and point.sum > 0
    assert dict(point.attributes or {}) == {"offshoot.cache_hit": False}
