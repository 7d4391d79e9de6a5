"""A publisher process for the crash test: stores events, then relays them slowly until killed.

python -m tests.outbox.publisher_process STORE_URL KAFKA TOPIC COUNT
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Mapping

from libs.bus import KafkaBus
from libs.eventstore import NewEvent, open_event_store
from libs.outbox import OutboxRelay


class SlowReportingBus(KafkaBus):
    """Publishes like Kafka, a little slowly, printing its progress for the test to read."""

    published = 0

    async def publish(
        self,
        topic: str,
        value: bytes,
        *,
        key: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        await super().publish(topic, value, key=key, headers=headers)
        self.published += 1
        print(f"published {self.published}", flush=True)
        await asyncio.sleep(0.01)


async def main(store_url: str, servers: str, topic: str, count: int) -> None:
    store = await open_event_store(store_url)
    events = [
        NewEvent(type="object.created", data={"n": n}, metadata={"namespace_id": "ns_killed"})
        for n in range(count)
    ]
    await store.append("ns_killed", events, expected_version=0)
    print(f"stored {count}", flush=True)
    bus = SlowReportingBus(servers)
    await bus.start()
    await OutboxRelay(store, bus, topic=topic, batch_size=20).drain()
    await asyncio.sleep(3600)  # the test kills us long before this


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
