"""Roles: which services a process runs as bus consumers, and the process around them.

Distributed mode runs the same ``Runtime`` in several processes, each with a subset of roles
(``offshoot serve --role extractor``). Every process builds every service object, because
reads need them (the gateway answers ``GET /documents`` from the extractor's read model,
retrieval resolves collections through the extractor's directory) and read models live in the
event stores' PostgreSQL schemas, which any process may read and fold (projection runners
claim their checkpoint per batch, so two processes never apply an event twice). What a role
owns is what must run once per consumer group or per store: its bus consumers, its outbox
relay and its workers (the extractor's batch runs, the webhooks' delivery worker). A service
whose role a process does not run is *dormant* there: routes mounted, read model caught up
at start, nothing consumed or relayed.

The ``gateway`` role serves the whole HTTP API; every other process serves only ``/healthz``
and ``/readyz``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Awaitable, Callable, Collection, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import uvicorn
from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from libs import observability, telemetry
from libs.bus import Bus, KafkaBus
from libs.errors import InvalidInputError
from libs.eventstore import EventStore
from libs.extractors import InferenceCache
from libs.sources import SourceReader
from libs.vectors import VectorStore
from services.catalog.webhooks.routes import ScopeLike, webhook_router
from services.catalog.webhooks.service import WebhookService
from services.evaluation.routes import evaluation_router
from services.evaluation.service import EvaluationService
from services.extractor.routes import extractor_router
from services.extractor.service import ExtractorService
from services.retrieval.engine.stages import taxonomy_enrich
from services.retrieval.routes import retrieval_router
from services.retrieval.service import CollectionDirectory, RetrievalService
from services.taxonomy.routes import taxonomy_router
from services.taxonomy.service import TaxonomyService

if TYPE_CHECKING:
    from offshoot.runtime import Runtime

log = logging.getLogger("offshoot.roles")

SERVICE_ROLES = ("catalog", "extractor", "retrieval", "evaluation", "taxonomy", "webhooks")
ROLES = (*SERVICE_ROLES, "gateway")
ALL = frozenset(ROLES)


def parse_roles(text: str | Collection[str] | None) -> frozenset[str]:
    """``"extractor,retrieval"`` (or a collection of names) → the roles; ``all``/empty → every
    role. An unknown name is an error naming the known ones."""
    if text is None:
        return ALL
    names = text.split(",") if isinstance(text, str) else list(text)
    roles = {name.strip().lower() for name in names if name.strip()}
    if not roles or "all" in roles:
        return ALL
    unknown = roles - ALL
    if unknown:
        raise InvalidInputError(
            f"unknown role(s) {sorted(unknown)}: choose from {', '.join(ROLES)} or all"
        )
    return frozenset(roles)


# ---- dormant services: the install functions' wiring without ``start`` ----------------------


async def dormant_webhooks(
    runtime_app: FastAPI,
    *,
    store: EventStore,
    bus: Bus,
    scope_dependency: Callable[..., Awaitable[ScopeLike]],
    **options: Any,
) -> WebhookService:
    """Routes and subscriptions only: no consumer, no delivery worker (the webhooks role's)."""
    service = WebhookService(store, bus, **options)
    runtime_app.include_router(webhook_router(service, scope_dependency))
    await service.refresh()
    return service


async def dormant_extractor(
    app: FastAPI,
    *,
    store: EventStore,
    vectors: VectorStore,
    bus: Bus,
    sources: SourceReader,
    cache: InferenceCache,
    scope_dependency: Callable[..., Awaitable[Any]] | None = None,
    principal_dependency: Callable[..., Awaitable[Any]] | None = None,
    **options: Any,
) -> ExtractorService:
    """Routes and read model only: batches run, events are consumed and relayed by the
    extractor role's processes."""
    service = ExtractorService(store, vectors, bus, sources, cache, **options)
    if scope_dependency is not None:
        app.include_router(extractor_router(service, scope_dependency, principal_dependency))
    await service._catch_up()
    return service


async def dormant_retrieval(
    app: FastAPI,
    *,
    store: EventStore,
    bus: Bus,
    vectors: VectorStore,
    cache: InferenceCache,
    directory: CollectionDirectory,
    write_position: Callable[[], Awaitable[int]] | None = None,
    scope_dependency: Callable[..., Awaitable[Any]] | None = None,
    principal_dependency: Callable[..., Awaitable[Any]] | None = None,
    **options: Any,
) -> RetrievalService:
    """Routes, executions and read model: fork acknowledgements and the relay of retrieval's
    events belong to the retrieval role's processes."""
    service = RetrievalService(
        store, bus, vectors=vectors, inference_cache=cache, directory=directory,
        write_position=write_position, **options,
    )  # fmt: skip
    if scope_dependency is not None:
        app.include_router(retrieval_router(service, scope_dependency, principal_dependency))
    await service._catch_up()
    return service


async def dormant_taxonomy(
    app: FastAPI,
    *,
    store: EventStore,
    bus: Bus,
    scope_dependency: Callable[..., Awaitable[Any]] | None = None,
    **options: Any,
) -> TaxonomyService:
    """Routes, read model and the ``taxonomy_enrich`` stage (a retriever executed here may
    use it): applies and fork copies started here run here, but the taxonomy role's processes
    consume its events and relay its outbox."""
    service = TaxonomyService(store, bus, **options)
    if scope_dependency is not None:
        app.include_router(taxonomy_router(service, scope_dependency))
    taxonomy_enrich.install(service.enrich_payloads)
    await service._catch_up()
    return service


async def dormant_evaluation(
    app: FastAPI,
    *,
    store: EventStore,
    bus: Bus,
    scope_dependency: Callable[..., Awaitable[Any]] | None = None,
    **options: Any,
) -> EvaluationService:
    """Routes and read model: evaluations started through this process's API run here; the
    evaluation role's processes consume its events and relay its outbox."""
    service = EvaluationService(store, bus, **options)
    if scope_dependency is not None:
        app.include_router(evaluation_router(service, scope_dependency))
    await service._catch_up()
    return service


# ---- configuration ------------------------------------------------------------------------


class Settings(BaseModel):
    """A process's configuration; ``from_env`` reads the ``OFFSHOOT_*`` variables."""

    model_config = ConfigDict(frozen=True)

    roles: frozenset[str] = ALL
    database_url: str | None = None
    kafka: str | None = None
    bus_prefix: str | None = None
    qdrant_url: str | None = None
    data_dir: Path = Path(".offshoot")
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    grpc_port: int | None = Field(default=None, ge=0, le=65535, description="retrieval gRPC")

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
        """``OFFSHOOT_ROLE``, ``OFFSHOOT_DATABASE_URL``, ``OFFSHOOT_KAFKA``,
        ``OFFSHOOT_BUS_PREFIX``, ``OFFSHOOT_QDRANT_URL`` (a server, or ``edge:///path``),
        ``OFFSHOOT_DATA_DIR``, ``OFFSHOOT_HOST``, ``OFFSHOOT_PORT``; ``overrides`` (not None)
        win, as command-line options do."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {
            "roles": parse_roles(env.get("OFFSHOOT_ROLE")),
            "database_url": env.get("OFFSHOOT_DATABASE_URL") or None,
            "kafka": env.get("OFFSHOOT_KAFKA") or None,
            "bus_prefix": env.get("OFFSHOOT_BUS_PREFIX") or None,
            "qdrant_url": env.get("OFFSHOOT_QDRANT_URL") or None,
        }
        for name, variable in (
            ("data_dir", "DATA_DIR"), ("host", "HOST"), ("port", "PORT"),
            ("grpc_port", "GRPC_PORT"),
        ):  # fmt: skip
            if env.get(f"OFFSHOOT_{variable}"):
                values[name] = env[f"OFFSHOOT_{variable}"]
        values.update({k: v for k, v in overrides.items() if v is not None})
        if isinstance(values["roles"], str):
            values["roles"] = parse_roles(values["roles"])
        return cls.model_validate(values)

    @property
    def bus_url(self) -> str | None:
        if self.kafka is None:
            return None
        return f"kafka://{self.kafka}" + (f"?prefix={self.bus_prefix}" if self.bus_prefix else "")

    def summary(self) -> str:
        """One line per setting, printed at start (passwords in URLs are masked)."""
        roles = "all" if self.roles == ALL else ",".join(sorted(self.roles))
        rows = [
            ("roles", roles),
            ("event store", _masked(self.database_url) or f"SQLite in {self.data_dir}"),
            ("bus", (self.bus_url or "in-process (memory://)")),
            ("vectors", self.qdrant_url or f"Qdrant Edge in {self.data_dir / 'vectors'}"),
            ("data dir", str(self.data_dir)),
            ("http", f"http://{self.host}:{self.port}" + ("" if "gateway" in self.roles else " (health only)")),
        ]  # fmt: skip
        return "\n".join(f"offshoot: {name:<12} {value}" for name, value in rows)


def _masked(url: str | None) -> str | None:
    if url is None or "@" not in url or ":" not in url.split("@", 1)[0].split("//", 1)[-1]:
        return url
    scheme, rest = url.split("//", 1)
    credentials, host = rest.split("@", 1)
    return f"{scheme}//{credentials.split(':', 1)[0]}:***@{host}"


# ---- health ---------------------------------------------------------------------------------


class Health:
    """``/healthz``: the process is alive. ``/readyz``: the runtime is open, every event store
    answers and every read model it holds has caught up with the head its store had when the
    process started (after that, lag under traffic is normal and not a reason to stop routing)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.closing = False

    async def readiness(self) -> tuple[bool, dict[str, Any]]:
        checks: dict[str, Any] = {"bus": not self.closing}
        for name, store in self.runtime.adapters.stores().items():
            try:
                async with asyncio.timeout(5):
                    async with store.transaction() as tx:
                        rows = await tx.fetch(
                            "SELECT name, position FROM checkpoints WHERE name LIKE 'projection:%'"
                        )
            except Exception as error:
                checks[name] = {"reachable": False, "error": f"{type(error).__name__}: {error}"}
                continue
            floor = self.runtime.start_heads.get(name, 0)
            behind = sorted(str(r["name"]) for r in rows if int(r["position"]) < floor)
            checks[name] = {"reachable": True, "behind": behind}
        ready = checks["bus"] and all(
            isinstance(check, dict) and check["reachable"] and not check["behind"]
            for name, check in checks.items()
            if name != "bus"
        )
        return ready, checks

    def router(self) -> APIRouter:
        router = APIRouter(tags=["health"])

        @router.get("/healthz", include_in_schema=False)
        async def healthz() -> dict[str, str]:
            return {"status": "alive"}

        @router.get("/readyz", include_in_schema=False)
        async def readyz() -> JSONResponse:
            ready, checks = await self.readiness()
            body = {"status": "ready" if ready else "not ready", "checks": checks}
            return JSONResponse(body, status_code=200 if ready else 503)

        return router


# ---- the process ----------------------------------------------------------------------------


@contextlib.contextmanager
def _signals(on_signal: Callable[[], None]) -> Iterator[None]:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    try:
        yield
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


async def serve(settings: Settings, *, echo: Callable[[str], None] = print) -> None:
    """Run one process until SIGTERM/SIGINT, then shut down in order: stop taking HTTP
    requests, stop the services (batch runs end; they resume wherever the extractor runs
    next), let each outbox relay drain, let in-flight bus handlers finish and commit their
    offsets, close the stores."""
    from offshoot.runtime import Runtime

    observed = observability.configure(service_name(settings.roles))
    echo(settings.summary())
    echo(f"offshoot: {'telemetry':<12} {observed.exporter or 'not exported'}")
    runtime = await Runtime.open(
        data_dir=settings.data_dir, store_url=settings.database_url, bus_url=settings.bus_url,
        vectors_url=settings.qdrant_url, roles=settings.roles, grpc_port=settings.grpc_port,
    )  # fmt: skip
    health = Health(runtime)
    lag: asyncio.Task[None] | None = None
    try:
        if "gateway" in settings.roles:
            runtime.app.include_router(health.router())
            app: Any = runtime.asgi
        else:
            app = FastAPI(
                title="Offshoot (health)", docs_url=None, redoc_url=None,
                telemetry=telemetry.fastapi_settings(),
            )  # fmt: skip
            app.include_router(health.router())
        server = _Server(  # log_config=None: uvicorn logs through the root handler (JSON)
            uvicorn.Config(
                app, host=settings.host, port=settings.port, log_level="warning", log_config=None
            )
        )
        lag = _watch_lag(runtime.bus, settings.kafka) if observed.exporter else None

        def stop() -> None:
            health.closing = True
            server.should_exit = True

        with _signals(stop):
            echo(f"offshoot: ready to serve on http://{settings.host}:{settings.port}")
            if runtime.retrieval is not None and runtime.retrieval.grpc_port is not None:
                echo(f"offshoot: retrieval gRPC on 127.0.0.1:{runtime.retrieval.grpc_port}")
            await server.serve()
    finally:
        if lag is not None:
            lag.cancel()
        health.closing = True
        await runtime.close()
        echo("offshoot: stopped")


def service_name(roles: Collection[str]) -> str:
    """``offshoot`` for every role, else ``offshoot-<role>[-<role>...]`` (OpenTelemetry's
    ``service.name``)."""
    return "offshoot" if frozenset(roles) == ALL else "-".join(["offshoot", *sorted(roles)])


def _watch_lag(bus: Bus, servers: str | None) -> asyncio.Task[None] | None:
    """The consumer-lag poller of this process's Kafka subscriptions (none on another bus)."""
    kafka = getattr(bus, "inner", bus)
    if servers is None or not isinstance(kafka, KafkaBus) or not kafka.subscriptions:
        return None
    return asyncio.create_task(watch_consumer_lag(servers, kafka.subscriptions))


class _Server(uvicorn.Server):
    """uvicorn's server without its own signal capture: uvicorn re-raises a captured SIGTERM
    once ``serve`` returns, which would kill the process before the runtime closes."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


# ---- operations: consumer groups --------------------------------------------------------------


class GroupState(BaseModel):
    """A consumer group as the broker sees it: its state (``Stable`` once a rebalance is over)
    and one entry per member, the partitions of each topic assigned to it."""

    model_config = ConfigDict(frozen=True)

    state: str
    members: list[dict[str, list[int]]]


async def describe_group(servers: str, group: str) -> GroupState:
    """Which process consumes what: read from the group coordinator (aiokafka's admin API)."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment

    admin = AIOKafkaAdminClient(bootstrap_servers=servers)
    await admin.start()
    try:
        (response,) = await admin.describe_consumer_groups([group])
    finally:
        await admin.close()
    _, _, state, _, _, members, *_ = response.groups[0]
    assigned: list[dict[str, list[int]]] = []
    for member in members:
        raw = member[4]
        decoded = ConsumerProtocolMemberAssignment.decode(raw) if raw else None
        topics_ = {t: sorted(p) for t, p in decoded.assignment} if decoded else {}
        assigned.append(topics_)
    return GroupState(state=str(state), members=assigned)


async def consumer_lag(servers: str, group: str, topic: str) -> int:
    """Messages of ``topic`` the group has not committed yet (end offsets minus committed offsets,
    summed over partitions; a partition the group never committed counts from its start)."""
    return (await consumer_lags(servers, [(topic, group)]))[(topic, group)]


async def consumer_lags(
    servers: str, subscriptions: Collection[tuple[str, str]]
) -> dict[tuple[str, str], int]:
    """``consumer_lag`` of every ``(topic, group)``, through one admin client and one consumer."""
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=servers)
    consumer = AIOKafkaConsumer(bootstrap_servers=servers, enable_auto_commit=False)
    await admin.start()
    await consumer.start()
    try:
        topics_ = sorted({topic for topic, _ in subscriptions})
        described = await admin.describe_topics(topics_) if topics_ else []
        partitions = {
            found["topic"]: [
                TopicPartition(found["topic"], int(p["partition"])) for p in found["partitions"]
            ]
            for found in described
        }
        every = [tp for tps in partitions.values() for tp in tps]
        ends = await consumer.end_offsets(every) if every else {}
        starts = await consumer.beginning_offsets(every) if every else {}
        lags: dict[tuple[str, str], int] = {}
        for topic, group in subscriptions:
            held = partitions.get(topic, [])
            committed = (
                await admin.list_consumer_group_offsets(group, partitions=held) if held else {}
            )
            lag = 0
            for tp in held:
                found = committed.get(tp)
                offset = found.offset if found is not None and found.offset >= 0 else starts[tp]
                lag += max(0, ends[tp] - offset)
            lags[(topic, group)] = lag
        return lags
    finally:
        await consumer.stop()
        await admin.close()


async def watch_consumer_lag(
    servers: str, subscriptions: Collection[tuple[str, str]], *, interval: float = 15.0
) -> None:
    """Record the lag of every subscription for the ``offshoot.bus.consumer.lag`` gauge, every
    ``interval`` seconds until cancelled (a failed poll is logged; the next one tries again)."""
    while True:
        try:
            for (topic, group), lag in (await consumer_lags(servers, subscriptions)).items():
                telemetry.record_consumer_lag(group, topic, lag)
        except Exception as error:
            log.warning("consumer lag not read: %s: %s", type(error).__name__, error)
        await asyncio.sleep(interval)


def partition_of(key: str, partitions: int) -> int:
    """The partition Kafka's default partitioner (murmur2, as the producers here use) gives
    ``key``: which consumer of a group will get a namespace's messages."""
    from aiokafka.partitioner import DefaultPartitioner

    every = list(range(partitions))
    return int(DefaultPartitioner()(key.encode(), every, every))


async def topic_partitions(servers: str, topic: str) -> list[int]:
    """The partition numbers of ``topic`` (none when it does not exist; never creates it)."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=servers)
    await admin.start()
    try:
        (found,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return sorted(int(p["partition"]) for p in found["partitions"])
