"""One trace per command: the gateway's HTTP span is the root of what the request publishes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from offshoot.runtime import Runtime

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.fixture
async def http(tmp_path: Path, spans: InMemorySpanExporter) -> AsyncIterator[httpx.AsyncClient]:
    """The embedded runtime's API with an admin key (in-process bus, SQLite), built while the
    test's tracer provider is in use, so FastAPI's request spans go there too."""
    runtime = await Runtime.open(data_dir=tmp_path)
    _, key = await runtime.catalog.bootstrap("org-traced")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=runtime.asgi),
        base_url="http://offshoot.test",
        headers={"Authorization": f"Bearer {key.api_key}"},
    ) as client:
        yield client
    await runtime.close()


async def in_trace(
    exporter: InMemorySpanExporter, trace_id: int, kind: SpanKind
) -> list[ReadableSpan]:
    deadline = time.monotonic() + 15
    while True:
        found = [
            s
            for s in exporter.get_finished_spans()
            if s.kind is kind and s.context is not None and s.context.trace_id == trace_id
        ]
        if found:
            return found
        assert time.monotonic() < deadline, f"no {kind} span in the request's trace"
        await asyncio.sleep(0.01)


def ancestors(span: ReadableSpan, finished: Sequence[ReadableSpan]) -> list[int]:
    """The span ids from ``span``'s parent up to its trace's root, through ``finished``."""
    by_id = {s.context.span_id: s for s in finished if s.context is not None}
    found: list[int] = []
    parent = span.parent
    while parent is not None:
        found.append(parent.span_id)
        parent = by_id[parent.span_id].parent if parent.span_id in by_id else None
    return found


async def test_the_consumers_of_an_event_a_request_stored_join_the_request_trace(
    http: httpx.AsyncClient, spans: InMemorySpanExporter
) -> None:
    reply = await http.post("/v1/namespaces", json={"namespace_name": "traced"})
    assert reply.status_code == 201, reply.text

    (server,) = [s for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER]
    assert server.context is not None
    consumers = await in_trace(spans, server.context.trace_id, SpanKind.CONSUMER)
    (producer,) = await in_trace(spans, server.context.trace_id, SpanKind.PRODUCER)
    assert server.name == "POST /v1/namespaces"
    assert server.attributes is not None
    assert server.attributes["http.route"] == "/v1/namespaces"
    assert server.attributes["http.response.status_code"] == 201
    assert server.context.span_id in ancestors(producer, spans.get_finished_spans())
    assert producer.context is not None
    assert {c.parent.span_id if c.parent else None for c in consumers} == {producer.context.span_id}


async def test_a_request_with_a_traceparent_continues_the_callers_trace(
    http: httpx.AsyncClient, spans: InMemorySpanExporter
) -> None:
    traceparent = f"00-{CALLER_TRACE}-00f067aa0ba902b7-01"
    reply = await http.get("/v1/namespaces", headers={"traceparent": traceparent})
    assert reply.status_code == 200, reply.text

    (server,) = [s for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER]
    assert server.context is not None and server.parent is not None
    assert format(server.context.trace_id, "032x") == CALLER_TRACE
    assert format(server.parent.span_id, "016x") == "00f067aa0ba902b7"
    assert server.name == "GET /v1/namespaces"
