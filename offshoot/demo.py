"""The embedded scenario behind ``make demo``: no servers, one process, the real adapters.

It shows the foundation every later feature stands on: events appended to a namespace stream,
an O(1) fork, writes on each side invisible to the other, and the outbox publishing every
stored event to the in-process bus exactly as it would to Kafka.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from contracts import Envelope, topics
from contracts.namespaces import NamespaceCreated, NamespaceForked, NamespaceUpdated
from libs.bus import LocalBus, consume_envelopes
from libs.event_codec import from_recorded, to_new_event
from libs.eventstore import EventStore, SqliteEventStore
from libs.outbox import OutboxRelay
from services.catalog.namespace import Namespace, fold

console = Console()


async def _state(store: EventStore, stream_id: str) -> Namespace:
    return fold(from_recorded(event) for event in await store.read_stream(stream_id))


def _table(*states: Namespace) -> Table:
    table = Table(title="namespace states")
    for column in ("stream", "name", "description", "parent", "forked at", "version"):
        table.add_column(column)
    for state in states:
        table.add_row(
            state.namespace_id,
            state.namespace_name,
            state.description,
            state.parent_namespace_id or "-",
            "-" if state.forked_at_position is None else str(state.forked_at_position),
            str(state.version),
        )
    return table


async def run_demo(data_dir: Path | None) -> None:
    with tempfile.TemporaryDirectory(prefix="offshoot-demo-") as scratch:
        directory = data_dir or Path(scratch)
        directory.mkdir(parents=True, exist_ok=True)
        store = await SqliteEventStore.open(directory / "events.sqlite3")
        bus = LocalBus()
        try:
            await _scenario(store, bus)
        finally:
            await bus.stop()
            await store.close()


async def _scenario(store: EventStore, bus: LocalBus) -> None:
    delivered: list[Envelope] = []
    all_delivered = asyncio.Event()
    expected = 1003  # 1,000 in prod, the fork marker and one write on each side

    async def record(envelope: Envelope) -> None:
        delivered.append(envelope)
        if len(delivered) == expected:
            all_delivered.set()

    await bus.start()
    await consume_envelopes(bus, topics.EVENTS, group="demo", handler=record)
    relay = OutboxRelay(store, bus)
    stop = asyncio.Event()
    relay_task = asyncio.create_task(relay.run(stop))

    prod, staging = "ns_prod", "ns_staging"
    console.rule("[bold]1. create prod and write its history")
    await store.append(
        prod,
        [
            to_new_event(
                NamespaceCreated(namespace_id=prod, namespace_name="prod"), namespace_id=prod
            ),
            *(
                to_new_event(
                    NamespaceUpdated(namespace_id=prod, description=f"production, revision {n}"),
                    namespace_id=prod,
                )
                for n in range(1, 1000)
            ),
        ],
        expected_version=0,
    )
    console.print(f"prod holds {await store.stream_version(prod)} events")

    console.rule("[bold]2. fork prod into staging (O(1): nothing is copied)")
    started = time.perf_counter()
    fork = await store.fork(staging, prod)
    elapsed_ms = (time.perf_counter() - started) * 1000
    forked = NamespaceForked(
        namespace_id=staging,
        namespace_name="staging",
        parent_namespace_id=prod,
        at_position=fork.at_position,
    )
    await store.append(
        staging, [to_new_event(forked, namespace_id=staging)], expected_version=fork.base_version
    )
    console.print(
        f"forked at position {fork.at_position} in {elapsed_ms:.2f} ms; inherits {fork.base_version} versions"
    )

    console.rule("[bold]3. diverge: each side writes; neither sees the other")
    await store.append(
        staging,
        [
            to_new_event(
                NamespaceUpdated(namespace_id=staging, description="trying a new model"),
                namespace_id=staging,
            )
        ],
        expected_version=None,
    )
    await store.append(
        prod,
        [
            to_new_event(
                NamespaceUpdated(namespace_id=prod, description="production, hotfix"),
                namespace_id=prod,
            )
        ],
        expected_version=None,
    )
    console.print(_table(await _state(store, prod), await _state(store, staging)))

    console.rule("[bold]4. the outbox published every stored event to the bus")
    head = await store.head_position()
    await asyncio.wait_for(all_delivered.wait(), timeout=30)
    stop.set()
    await relay_task
    console.print(f"{head} events stored, {len(delivered)} delivered to the 'demo' consumer group")
