"""Trace context crosses the bus: the consumer span is the producer span's child (both adapters)."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from contracts.envelope import DeadLetter, Envelope
from libs import telemetry
from libs.bus import Bus, KafkaBus, LocalBus, Message, consume_envelopes, publish_envelope


@pytest.fixture(params=["local", pytest.param("kafka", marks=pytest.mark.integration)])
async def bus(request: pytest.FixtureRequest) -> AsyncIterator[Bus]:
    b: Bus
    if request.param == "kafka":
        servers = os.environ.get("OFFSHOOT_KAFKA", "").strip()
        if not servers:
            pytest.skip(
                "OFFSHOOT_KAFKA is not set; start Kafka with deploy/kafka/up.sh and export "
                "OFFSHOOT_KAFKA=127.0.0.1:9092 to run the Kafka adapter"
            )
        b = KafkaBus(servers, session_timeout_ms=6_000, heartbeat_interval_ms=100)
    else:
        b = LocalBus()
    await b.start()
    yield b
    await b.stop()


def topic_name(label: str) -> str:
    return f"test-trace.{label}.{uuid.uuid4().hex[:8]}"


async def finished(
    exporter: InMemorySpanExporter, kind: SpanKind, count: int = 1
) -> list[ReadableSpan]:
    deadline = time.monotonic() + 15
    while True:
        found = [s for s in exporter.get_finished_spans() if s.kind is kind]
        if len(found) >= count:
            return found
        assert time.monotonic() < deadline, f"no {kind} span finished"
        await asyncio.sleep(0.005)


def envelope() -> Envelope:
    return Envelope(
        event_id=uuid.uuid4(), type="BucketCreated", stream_id="bkt_1", version=1, namespace_id="ns"
    )


async def test_consumer_span_is_a_child_of_the_producer_span(
    bus: Bus, spans: InMemorySpanExporter
) -> None:
    topic = topic_name("orders")
    await bus.ensure_topic(topic, partitions=4)
    seen: list[str] = []

    async def handle(e: Envelope) -> None:
        current = trace.get_current_span().get_span_context()
        seen.append(format(current.trace_id, "032x"))

    await consume_envelopes(bus, topic, group="svc", handler=handle)

    sent = await publish_envelope(bus, topic, envelope())

    (consumer,) = await finished(spans, SpanKind.CONSUMER)
    (producer,) = [s for s in spans.get_finished_spans() if s.kind is SpanKind.PRODUCER]
    assert producer.context is not None and consumer.context is not None
    assert consumer.context.trace_id == producer.context.trace_id
    assert consumer.parent is not None
    assert consumer.parent.span_id == producer.context.span_id
    assert seen == [format(producer.context.trace_id, "032x")]  # the handler runs inside it
    assert sent.trace_context["traceparent"].split("-")[2] == format(
        producer.context.span_id, "016x"
    )
    assert producer.name == f"send {topic}" and consumer.name == f"process {topic}"
    assert consumer.attributes is not None
    assert consumer.attributes["messaging.message.id"] == str(sent.event_id)


async def test_publish_continues_the_trace_the_envelope_carries(
    bus: Bus, spans: InMemorySpanExporter
) -> None:
    topic = topic_name("relay")
    await bus.ensure_topic(topic, partitions=4)
    with telemetry.get_tracer().start_as_current_span("http request") as request:
        recorded = telemetry.inject_headers()
    request_ctx = request.get_span_context()

    # Later, outside any span (an outbox relay): the producer span joins the request's trace.
    await publish_envelope(bus, topic, envelope().model_copy(update={"trace_context": recorded}))

    (producer,) = await finished(spans, SpanKind.PRODUCER)
    assert producer.context is not None and producer.parent is not None
    assert producer.context.trace_id == request_ctx.trace_id
    assert producer.parent.span_id == request_ctx.span_id


async def test_a_dead_letter_carries_the_consumer_trace(
    bus: Bus, spans: InMemorySpanExporter
) -> None:
    topic = topic_name("poison")
    await bus.ensure_topic(topic, partitions=4)
    letters: list[Message] = []

    async def keep(message: Message) -> None:
        letters.append(message)

    async def handle(e: Envelope) -> None:
        raise RuntimeError("boom")

    await consume_envelopes(bus, topic, group="svc", handler=handle, max_attempts=1)
    await bus.subscribe(f"{topic}.dlq", group="reader", handler=keep)
    await publish_envelope(bus, topic, envelope())

    (consumer,) = await finished(spans, SpanKind.CONSUMER)
    deadline = time.monotonic() + 15
    while not letters:
        assert time.monotonic() < deadline, "no dead letter"
        await asyncio.sleep(0.005)
    assert consumer.context is not None
    assert DeadLetter.model_validate_json(letters[0].value).reason == "RuntimeError: boom"
    assert telemetry.extract_context(letters[0].headers)
    parent = trace.get_current_span(telemetry.extract_context(letters[0].headers))
    assert parent.get_span_context().span_id == consumer.context.span_id
    assert consumer.status.status_code.name == "ERROR"
    assert [e.name for e in consumer.events] == ["exception"]


def test_inject_then_extract_round_trips_the_current_span() -> None:
    provider = TracerProvider()
    with (
        telemetry.use_tracer_provider(provider),
        telemetry.get_tracer().start_as_current_span("s") as span,
    ):
        headers = telemetry.inject_headers({"other": "kept", "traceparent": "stale"})
    assert headers["other"] == "kept"
    restored = trace.get_current_span(telemetry.extract_context(headers)).get_span_context()
    assert restored.trace_id == span.get_span_context().trace_id
    assert restored.span_id == span.get_span_context().span_id
    assert telemetry.inject_headers({"traceparent": "stale"}) == {}  # no span, no trace headers


def test_current_trace_context_is_empty_without_a_span_and_names_the_span_inside_one() -> None:
    assert telemetry.current_trace_context() == {}
    with (
        telemetry.use_tracer_provider(TracerProvider()),
        telemetry.get_tracer().start_as_current_span("request") as span,
    ):
        carrier = telemetry.current_trace_context()
    assert carrier["traceparent"].split("-")[2] == format(span.get_span_context().span_id, "016x")
