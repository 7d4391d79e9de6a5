"""Event store and bus figures: append throughput, replay throughput, fork time, Kafka latency.

    make bench                  # or: .venv/bin/python bench/eventstore.py [--quick]

Needs PostgreSQL and Kafka (``make up``); SQLite runs in a temporary file. Fork times of a small
and a large parent are measured in the same run, since only their ratio is stable across machines.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg

from libs.bus import KafkaBus, Message
from libs.eventstore import EventStore, NewEvent, PostgresEventStore, SqliteEventStore

PAYLOAD = {
    "object_id": "obj_0123456789",
    "fields": {"title": "a title", "year": 2024},
    "tags": ["a", "b"],
}


def _events(count: int) -> list[NewEvent]:
    return [
        NewEvent(type="object.created", data=PAYLOAD, metadata={"namespace_id": "ns_bench"})
        for _ in range(count)
    ]


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _timed(action: Callable[[], Awaitable[object]]) -> float:
    started = time.perf_counter()
    await action()
    return time.perf_counter() - started


async def bench_store(name: str, store: EventStore, *, large: int) -> dict[str, float]:
    figures: dict[str, float] = {}

    singles = 1000
    seconds = await _timed(lambda: _append_batches(store, "single", batches=singles, size=1))
    figures["append 1-event batches (events/s)"] = singles / seconds

    batches = 200
    seconds = await _timed(lambda: _append_batches(store, "batch", batches=batches, size=100))
    figures["append 100-event batches (events/s)"] = batches * 100 / seconds

    await _append_batches(store, "parent-small", batches=10, size=100, one_stream=True)
    await _append_batches(store, "parent-large", batches=large // 100, size=100, one_stream=True)

    total = await store.head_position()
    seconds = await _timed(lambda: _replay(store))
    figures[f"replay read_all of {total:,} events (events/s)"] = total / seconds

    for parent, label in (("parent-small", "1,000"), ("parent-large", f"{large:,}")):
        samples = []
        for _ in range(20):
            fork_id = f"fork-{uuid.uuid4().hex}"
            samples.append(await _timed(lambda: store.fork(fork_id, parent)) * 1000)  # noqa: B023
        figures[f"fork of a {label}-event parent, p50 (ms)"] = statistics.median(samples)
    small, big = list(figures.values())[-2:]
    figures["fork time ratio large/small"] = big / small
    print_table(name, figures)
    return figures


async def _append_batches(
    store: EventStore, prefix: str, *, batches: int, size: int, one_stream: bool = False
) -> None:
    for n in range(batches):
        stream = prefix if one_stream else f"{prefix}-{n}"
        await store.append(stream, _events(size), expected_version=None)


async def _replay(store: EventStore) -> int:
    count, position = 0, 0
    while events := await store.read_all(from_position=position, limit=5000):
        count += len(events)
        position = events[-1].global_position
    return count


async def bench_kafka(bootstrap: str, *, messages: int) -> dict[str, float]:
    topic = f"bench-latency-{uuid.uuid4().hex[:8]}"
    bus = KafkaBus(bootstrap)
    received: asyncio.Queue[float] = asyncio.Queue()

    async def handler(message: Message) -> None:
        received.put_nowait(time.perf_counter() - float(message.headers["sent"]))

    await bus.start()
    try:
        await bus.ensure_topic(topic, partitions=1)
        await bus.subscribe(topic, group="bench", handler=handler)
        await bus.publish(topic, b"warm-up", key="k", headers={"sent": str(time.perf_counter())})
        await asyncio.wait_for(received.get(), timeout=60)
        latencies = []
        for _ in range(messages):
            await bus.publish(topic, b"{}", key="k", headers={"sent": str(time.perf_counter())})
            latencies.append(await asyncio.wait_for(received.get(), timeout=10) * 1000)
    finally:
        await bus.stop()
    figures = {
        f"publish->consume latency p50 over {messages} (ms)": _percentile(latencies, 0.5),
        f"publish->consume latency p99 over {messages} (ms)": _percentile(latencies, 0.99),
    }
    print_table("Kafka", figures)
    return figures


def print_table(title: str, figures: dict[str, float]) -> None:
    print(f"\n## {title}")
    for label, value in figures.items():
        print(f"  {label:<55} {value:>12,.2f}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--large", type=int, default=100_000, help="events in the large fork parent"
    )
    parser.add_argument("--quick", action="store_true", help="a 10,000-event large parent")
    args = parser.parse_args()
    large = 10_000 if args.quick else args.large

    dsn = os.environ.get("OFFSHOOT_DATABASE_URL", "postgresql://postgres@127.0.0.1:55432/offshoot")
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    postgres = await PostgresEventStore.open(dsn, schema=schema)
    try:
        await bench_store("PostgreSQL", postgres, large=large)
    finally:
        await postgres.close()
        connection = await asyncpg.connect(dsn)
        await connection.execute(f"DROP SCHEMA {schema} CASCADE")
        await connection.close()

    with tempfile.TemporaryDirectory() as scratch:
        sqlite = await SqliteEventStore.open(Path(scratch) / "bench.sqlite3")
        try:
            await bench_store("SQLite", sqlite, large=large)
        finally:
            await sqlite.close()

    await bench_kafka(os.environ.get("OFFSHOOT_KAFKA", "127.0.0.1:9092"), messages=200)


if __name__ == "__main__":
    asyncio.run(main())
