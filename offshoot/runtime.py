"""The composition root: every service wired to its adapters, behind one HTTP app.

``Runtime.open(data_dir=...)`` is the embedded default: SQLite event stores, the in-process bus
and Qdrant Edge, all under ``data_dir``, no servers. Adding ``store_url`` (PostgreSQL),
``bus_url`` (Kafka) and ``vectors_url`` (a Qdrant server) runs the same services on the
distributed adapters; only adapters differ, so one test suite runs on both. ``data_dir`` always
holds what stays local (Qdrant Edge when no server is given).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from fastapi import FastAPI

from contracts import topics
from contracts.envelope import Envelope
from contracts.namespaces import NamespaceForkAcknowledged
from contracts.tasks import TaskCreated
from libs import telemetry
from libs.bus import Bus, consume_envelopes, open_bus
from libs.eventstore import EventStore, open_event_store
from libs.extractors import InferenceCache
from libs.http import BodyLimit, install_error_handlers, principal_dependency
from libs.outbox import OutboxRelay
from libs.vectors import EdgeVectorStore, VectorStore, open_vector_store
from offshoot.roles import (
    dormant_evaluation,
    dormant_extractor,
    dormant_retrieval,
    dormant_taxonomy,
    dormant_webhooks,
    parse_roles,
)
from services.catalog.commands import CommandGateway
from services.catalog.resource_routes import resource_router
from services.catalog.resources import ResourceService
from services.catalog.routes import router as catalog_router
from services.catalog.routes import scope_dependency
from services.catalog.service import CatalogService
from services.catalog.webhooks import WebhookService
from services.catalog.webhooks import install as install_webhooks
from services.evaluation import EvaluationService
from services.evaluation import install as install_evaluation
from services.extractor import ExtractorService
from services.extractor import install as install_extractor
from services.retrieval import RetrievalService
from services.retrieval import install as install_retrieval
from services.retrieval import serve_grpc as serve_retrieval_grpc
from services.retrieval.commands import command_handlers as retrieval_commands
from services.taxonomy import TaxonomyService
from services.taxonomy import install as install_taxonomy

DEFAULT_MAX_BODY = 16 * 1024 * 1024
# the services that fork their own state when a namespace is cloned
PARTICIPANTS = ("extractor", "retrieval", "taxonomy", "evaluation")


@dataclass(frozen=True)
class Adapters:
    """Everything a runtime runs on; ``open_adapters`` picks them from URLs."""

    catalog_store: EventStore
    extractor_store: EventStore
    retrieval_store: EventStore
    taxonomy_store: EventStore
    evaluation_store: EventStore
    bus: Bus
    vectors: VectorStore
    cache: InferenceCache

    def stores(self) -> dict[str, EventStore]:
        """Every service's store by service name (a new ``<service>_store`` field counts too)."""
        return {
            field.name.removesuffix("_store"): getattr(self, field.name)
            for field in dataclasses.fields(self)
            if field.name.endswith("_store")
        }

    async def close(self) -> None:
        await self.vectors.close()
        await self.retrieval_store.close()
        await self.taxonomy_store.close()
        await self.evaluation_store.close()
        await self.extractor_store.close()
        await self.catalog_store.close()
        self.cache.close()


def _schema_url(url: str, suffix: str) -> str:
    """The PostgreSQL URL of another service's schema next to ``url``'s (``?schema=``)."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query["schema"] = f"{query['schema']}_{suffix}" if "schema" in query else suffix
    return urlunsplit(parts._replace(query=urlencode(query)))


def _prepare(data_dir: Path) -> Path:
    data_dir.mkdir(parents=True, exist_ok=True)
    return data_dir.resolve()


async def open_adapters(
    data_dir: Path,
    *,
    store_url: str | None = None,
    bus_url: str | None = None,
    vectors_url: str | None = None,
    inference_cache: Path | None = None,
) -> Adapters:
    root = _prepare(data_dir)
    if store_url is None:
        catalog = await open_event_store(f"sqlite:///{root / 'catalog.sqlite3'}")
        extractor = await open_event_store(f"sqlite:///{root / 'extractor.sqlite3'}")
        retrieval = await open_event_store(f"sqlite:///{root / 'retrieval.sqlite3'}")
        taxonomy = await open_event_store(f"sqlite:///{root / 'taxonomy.sqlite3'}")
        evaluation = await open_event_store(f"sqlite:///{root / 'evaluation.sqlite3'}")
    else:
        catalog = await open_event_store(store_url)
        extractor = await open_event_store(_schema_url(store_url, "extractor"))
        retrieval = await open_event_store(_schema_url(store_url, "retrieval"))
        taxonomy = await open_event_store(_schema_url(store_url, "taxonomy"))
        evaluation = await open_event_store(_schema_url(store_url, "evaluation"))
    vectors = open_vector_store(vectors_url) if vectors_url else EdgeVectorStore(root / "vectors")
    cache = InferenceCache(inference_cache) if inference_cache else InferenceCache.open_default()
    bus = open_bus(bus_url or "memory://")
    return Adapters(catalog, extractor, retrieval, taxonomy, evaluation, bus, vectors, cache)


class Runtime:
    def __init__(
        self,
        adapters: Adapters,
        *,
        max_body_bytes: int = DEFAULT_MAX_BODY,
        fork_participants: Sequence[str] = PARTICIPANTS,
        extractor_options: Mapping[str, Any] | None = None,
        roles: Collection[str] | None = None,
        grpc_port: int | None = None,
    ) -> None:
        """``grpc_port``: also serve retrieval ``Execute`` over gRPC (0 = any free port, read
        ``runtime.retrieval.grpc_port``); off when None."""
        self.adapters = adapters
        self.start_heads: dict[str, int] = {}  # each store's head when ``open`` began
        self._grpc_port = grpc_port
        self.roles = parse_roles(roles)  # see offshoot/roles.py: what this process consumes
        self.store = adapters.catalog_store
        self.bus = adapters.bus
        self.catalog = CatalogService(self.store, fork_participants=fork_participants)
        # FastAPI's own OpenTelemetry support: a SERVER span per request (continuing the
        # caller's traceparent), current while the request stores events and publishes
        # commands, so their producer and consumer spans join its trace
        self.app = FastAPI(title="Offshoot", version="1", telemetry=telemetry.fastapi_settings())
        install_error_handlers(self.app)
        self._principal = principal_dependency(self.catalog)
        self.resources = ResourceService(self.catalog)
        self.commands = CommandGateway(self.catalog, self.resources)
        self.app.include_router(catalog_router(self.catalog, self._principal))
        self._scope = scope_dependency(self.catalog, self._principal)
        self.app.include_router(resource_router(self.resources, self._scope))
        self._extractor_options = dict(extractor_options or {})
        self.webhooks: WebhookService | None = None
        self.extractor: ExtractorService | None = None
        self.retrieval: RetrievalService | None = None
        self.taxonomy: TaxonomyService | None = None
        self.evaluation: EvaluationService | None = None
        self.asgi = BodyLimit(self.app, max_bytes=max_body_bytes)
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    @classmethod
    async def open(
        cls,
        *,
        data_dir: Path,
        store_url: str | None = None,
        bus_url: str | None = None,
        vectors_url: str | None = None,
        inference_cache: Path | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY,
        fork_participants: Sequence[str] = PARTICIPANTS,
        extractor_options: Mapping[str, Any] | None = None,
        roles: Collection[str] | None = None,
        grpc_port: int | None = None,
    ) -> Runtime:
        """``fork_participants``: services whose acknowledgement a namespace clone waits for."""
        adapters = await open_adapters(
            data_dir, store_url=store_url, bus_url=bus_url, vectors_url=vectors_url,
            inference_cache=inference_cache,
        )  # fmt: skip
        runtime = cls(
            adapters, max_body_bytes=max_body_bytes, fork_participants=fork_participants,
            extractor_options=extractor_options, roles=roles, grpc_port=grpc_port,
        )  # fmt: skip
        # before any service starts: a dormant read model catches up once, at start, and must
        # not be judged against events appended after that (readiness, offshoot/roles.py)
        runtime.start_heads = {
            name: await store.head_position() for name, store in adapters.stores().items()
        }
        await runtime._start()
        return runtime

    async def _start(self) -> None:
        await self.bus.start()
        await self.bus.ensure_topic(topics.EVENTS, partitions=4)
        await self.bus.ensure_topic(topics.COMMANDS, partitions=4)
        await self.catalog.start()
        self.webhooks = await (install_webhooks if self.runs("webhooks") else dormant_webhooks)(
            self.app, store=self.store, bus=self.bus, scope_dependency=self._scope
        )
        self.extractor = await (install_extractor if self.runs("extractor") else dormant_extractor)(
            self.app, store=self.adapters.extractor_store, vectors=self.adapters.vectors,
            bus=self.bus, sources=self.resources, cache=self.adapters.cache,
            scope_dependency=self._scope, principal_dependency=self._principal,
            **self._extractor_options,
        )  # fmt: skip
        self.retrieval = await (install_retrieval if self.runs("retrieval") else dormant_retrieval)(
            self.app, store=self.adapters.retrieval_store, bus=self.bus,
            vectors=self.adapters.vectors, cache=self.adapters.cache, directory=self.extractor,
            write_position=self.adapters.extractor_store.head_position,
            scope_dependency=self._scope, principal_dependency=self._principal,
        )  # fmt: skip
        if self._grpc_port is not None:
            await serve_retrieval_grpc(
                self.retrieval, scope_dependency=self._scope,
                principal_dependency=self._principal, port=self._grpc_port,
            )  # fmt: skip
        # retriever.* and alias.* on offshoot.commands, through the one command consumer
        self.commands.handlers.update(retrieval_commands(self.retrieval, self.catalog.namespace))
        self.taxonomy = await (install_taxonomy if self.runs("taxonomy") else dormant_taxonomy)(
            self.app, store=self.adapters.taxonomy_store, bus=self.bus, retrieval=self.retrieval,
            documents=self.extractor, vectors=self.adapters.vectors, start_task=self._start_task,
            scope_dependency=self._scope,
        )  # fmt: skip
        self.evaluation = await (
            install_evaluation if self.runs("evaluation") else dormant_evaluation
        )(
            self.app, store=self.adapters.evaluation_store, bus=self.bus,
            retrieval=self.retrieval, directory=self.extractor, start_task=self._start_task,
            scope_dependency=self._scope,
        )  # fmt: skip
        if self.runs("catalog"):
            await self._start_catalog()

    def runs(self, role: str) -> bool:
        """Whether this process consumes, relays and works for ``role`` (all do by default)."""
        return role in self.roles

    async def _start_catalog(self) -> None:
        await consume_envelopes(self.bus, topics.EVENTS, group="catalog", handler=self._on_event)
        await consume_envelopes(
            self.bus, topics.COMMANDS, group="catalog-commands", handler=self.commands.handle
        )
        self._tasks.append(asyncio.create_task(OutboxRelay(self.store, self.bus).run(self._stop)))

    async def _start_task(self, created: TaskCreated) -> None:
        """Register another service's task with the catalog at once (pollable on return)."""
        async with self.catalog.lock:
            await self.catalog.append_task(created)

    async def _on_event(self, envelope: Envelope) -> None:
        if envelope.type.startswith("task."):
            await self.catalog.apply_task_event(envelope)
        elif envelope.type == NamespaceForkAcknowledged.type_name:
            await self.catalog.acknowledge_fork(
                NamespaceForkAcknowledged.model_validate(envelope.data)
            )

    async def close(self) -> None:
        for service in (
            self.evaluation,
            self.webhooks,
            self.taxonomy,
            self.retrieval,
            self.extractor,
        ):
            if service is not None:
                await service.stop()
        self._stop.set()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.bus.stop()
        await self.adapters.close()
