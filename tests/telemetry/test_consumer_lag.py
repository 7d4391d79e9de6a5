"""The consumer-lag gauge on real Kafka: what a group has not committed, per group and topic."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid

import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, NumberDataPoint

from libs import telemetry
from offshoot.roles import watch_consumer_lag
from tests.infra import kafka_servers, new_kafka_bus

pytestmark = pytest.mark.integration


def lag_points(reader: InMemoryMetricReader) -> dict[tuple[str, str], int | float]:
    data = reader.get_metrics_data()
    points: dict[tuple[str, str], int | float] = {}
    for rm in data.resource_metrics if data else []:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name != "offshoot.bus.consumer.lag":
                    continue
                for point in metric.data.data_points:
                    assert isinstance(point, NumberDataPoint)
                    attributes = dict(point.attributes or {})
                    key = (
                        str(attributes["messaging.consumer.group.name"]),
                        str(attributes["messaging.destination.name"]),
                    )
                    points[key] = point.value
    return points


async def test_the_lag_gauge_counts_the_messages_a_group_has_not_committed(
    metric_reader: InMemoryMetricReader,
) -> None:
    servers = kafka_servers()
    topic, group = f"test-lag.{uuid.uuid4().hex[:8]}", "never-reads"
    bus = new_kafka_bus(servers)
    await bus.start()
    try:
        await bus.ensure_topic(topic, partitions=2)
        for i in range(3):
            await bus.publish(topic, b"{}", key=f"k{i}")
    finally:
        await bus.stop()
    telemetry.instruments()  # the gauge is registered with this test's provider

    watcher = asyncio.create_task(watch_consumer_lag(servers, [(topic, group)], interval=0.2))
    try:
        deadline = time.monotonic() + 30
        while lag_points(metric_reader).get((group, topic)) != 3:
            assert time.monotonic() < deadline, f"lag never reached 3: {lag_points(metric_reader)}"
            await asyncio.sleep(0.2)
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
