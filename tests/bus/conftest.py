"""Fixtures for the bus suite: every test runs on ``LocalBus`` ("local") and ``KafkaBus`` ("kafka").

Kafka tests need a broker: ``deploy/kafka/up.sh`` and ``OFFSHOOT_KAFKA=127.0.0.1:9092``; without
the variable they are skipped. Topic and group names are unique per test, so tests never see
each other's messages, and consumer timeouts are lowered so group joins take milliseconds.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest

from libs.bus import Bus, KafkaBus, LocalBus, Message
from tests.infra import kafka_servers, new_kafka_bus

PARTITIONS = 4

BusFactory = Callable[[], Bus]
TopicFactory = Callable[..., Awaitable[str]]
WaitUntil = Callable[..., Awaitable[None]]


@pytest.fixture(params=["local", pytest.param("kafka", marks=pytest.mark.integration)])
def adapter(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    if name == "kafka":
        kafka_servers()
    return name


@pytest.fixture
async def make_bus(adapter: str) -> AsyncIterator[BusFactory]:
    """Builds unstarted buses of the test's adapter (e.g. two processes); stops them all after."""
    made: list[Bus] = []

    def make() -> Bus:
        bus: Bus = new_kafka_bus(kafka_servers()) if adapter == "kafka" else LocalBus()
        made.append(bus)
        return bus

    yield make
    for bus in reversed(made):
        await bus.stop()


@pytest.fixture
async def make_kafka_bus() -> AsyncIterator[Callable[[], KafkaBus]]:
    """Builds unstarted Kafka buses (skips without a broker); stops them all after the test."""
    servers = kafka_servers()
    made: list[KafkaBus] = []

    def make() -> KafkaBus:
        made.append(new_kafka_bus(servers))
        return made[-1]

    yield make
    for bus in reversed(made):
        await bus.stop()


@pytest.fixture
async def bus(make_bus: BusFactory) -> Bus:
    """A started bus."""
    b = make_bus()
    await b.start()
    return b


@pytest.fixture
def unique(request: pytest.FixtureRequest) -> Callable[[str], str]:
    """``unique("orders")`` -> a topic/group name no other test (or run) uses."""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", request.node.name)[:80]

    def make(label: str) -> str:
        return f"{stem}.{label}.{uuid.uuid4().hex[:8]}"

    return make


@pytest.fixture
def new_topic(bus: Bus, unique: Callable[[str], str]) -> TopicFactory:
    """Creates a unique topic with ``PARTITIONS`` partitions (or as many as asked)."""

    async def create(label: str = "topic", *, partitions: int = PARTITIONS) -> str:
        name = unique(label)
        await bus.ensure_topic(name, partitions=partitions)
        return name

    return create


async def _wait_until(
    condition: Callable[[], bool], *, within: float = 15.0, what: str = "condition"
) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within} s waiting for {what}")
        await asyncio.sleep(0.005)


@pytest.fixture
def wait_until() -> WaitUntil:
    """``await wait_until(lambda: ..., within=seconds, what=...)``: poll until true or fail."""
    return _wait_until


@dataclass
class Recorder:
    """A handler that records every delivery (and can be told to fail or stall)."""

    received: list[Message] = field(default_factory=list)

    async def __call__(self, message: Message) -> None:
        self.received.append(message)

    @property
    def values(self) -> list[bytes]:
        return [m.value for m in self.received]


@pytest.fixture
def recorder() -> Callable[[], Recorder]:
    return Recorder
