"""Extractor throughput: every document written by ingestion is counted once."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, NumberDataPoint

from offshoot.runtime import Runtime
from tests.catalog.conftest import Api
from tests.retrieval.conftest import corpus


async def test_the_documents_counter_counts_each_ingested_document_once(
    tmp_path: Path, metric_reader: InMemoryMetricReader
) -> None:
    runtime = await Runtime.open(data_dir=tmp_path)
    try:
        _, key = await runtime.catalog.bootstrap(f"org-{uuid.uuid4().hex[:6]}")
        transport = httpx.ASGITransport(app=runtime.asgi)
        async with httpx.AsyncClient(transport=transport, base_url="http://offshoot.test") as http:
            await corpus(Api(runtime, http, key.api_key), count=12)  # minilm-static@v1
    finally:
        await runtime.close()

    data = metric_reader.get_metrics_data()
    assert data is not None
    points = [
        point
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for metric in sm.metrics
        if metric.name == "offshoot.extractor.documents"
        for point in metric.data.data_points
    ]
    assert all(isinstance(p, NumberDataPoint) for p in points)
    assert {str(dict(p.attributes or {})["offshoot.batch.kind"]): p.value for p in points} == {
        "ingest": 12
    }
