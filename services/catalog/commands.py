"""Commands arriving on Kafka: authenticated exactly like HTTP, handled by the same methods.

A command that can never succeed (bad key, unknown type, invalid body, a refusal by the domain)
is recorded as ``command.rejected`` — an event that says why — and dead-lettered; nothing else
changes. Delivery is at-least-once and the envelope's id is the command id, so a redelivered
command is a no-op.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import ValidationError

from contracts.base import Command
from contracts.catalog import CloneCollection, CreateBucket, CreateCollection, CreateObject
from contracts.commands import CommandMessage, CommandRejected
from contracts.envelope import Envelope
from contracts.namespaces import CloneNamespace, CreateNamespace, DeleteNamespace, UpdateNamespace
from libs.auth import Principal, authenticate
from libs.bus import Rejected
from libs.errors import InfrastructureError, InvalidInputError, OffshootError
from services.catalog.resources import ResourceService
from services.catalog.service import CatalogService

Handler = Callable[
    [Principal, Any, str | None], Awaitable[Any]
]  # the command model matches its entry
REJECTIONS_STREAM = "command-rejections"


class CommandGateway:
    def __init__(self, catalog: CatalogService, resources: ResourceService) -> None:
        self.catalog = catalog
        self.resources = resources
        self.handlers: dict[str, tuple[type[Command], Handler]] = {
            CreateNamespace.type_name: (
                CreateNamespace,
                lambda p, c, _: catalog.create_namespace(p, c),
            ),
            UpdateNamespace.type_name: (
                UpdateNamespace,
                lambda p, c, _: catalog.update_namespace(p, c),
            ),
            DeleteNamespace.type_name: (
                DeleteNamespace,
                lambda p, c, _: catalog.delete_namespace(p, c),
            ),
            CloneNamespace.type_name: (
                CloneNamespace,
                lambda p, c, _: catalog.clone_namespace(p, c),
            ),
            CreateBucket.type_name: (CreateBucket, self._in_namespace(resources.create_bucket)),
            CreateObject.type_name: (CreateObject, self._in_namespace(resources.create_object)),
            CreateCollection.type_name: (
                CreateCollection,
                self._in_namespace(resources.create_collection),
            ),
            CloneCollection.type_name: (
                CloneCollection,
                self._in_namespace(resources.clone_collection),
            ),
        }

    def _in_namespace(self, method: Callable[[Principal, str, Any], Awaitable[Any]]) -> Handler:
        async def handle(principal: Principal, command: Command, namespace: str | None) -> Any:
            if not namespace:
                raise InvalidInputError(
                    "this command needs the envelope's namespace_id (like X-Namespace)"
                )
            target = await self.catalog.namespace(principal, namespace)
            return await method(principal, target["namespace_id"], command)

        return handle

    async def handle(self, envelope: Envelope) -> None:
        try:
            await self._dispatch(envelope)
        except InfrastructureError:
            raise  # retried by the consumer, then dead-lettered
        except (OffshootError, ValidationError) as error:
            reason = _reason(error)
            await self._record_rejection(envelope, reason)
            raise Rejected(reason) from None

    async def _dispatch(self, envelope: Envelope) -> None:
        message = CommandMessage.model_validate(envelope.data)
        principal = await authenticate(self.catalog, message.api_key)
        entry = self.handlers.get(envelope.type)
        if entry is None:
            raise InvalidInputError(
                f"unknown command type {envelope.type!r}; known: {', '.join(sorted(self.handlers))}"
            )
        model, handler = entry
        command = model.model_validate({**message.command, "command_id": str(envelope.event_id)})
        await handler(principal, command, envelope.namespace_id)

    async def _record_rejection(self, envelope: Envelope, reason: str) -> None:
        rejected = CommandRejected(
            command_id=str(envelope.event_id), command_type=envelope.type, reason=reason
        )
        async with self.catalog.lock:
            await self.catalog.append_event(
                REJECTIONS_STREAM, rejected, event_id=uuid.uuid5(envelope.event_id, "rejected")
            )


def _reason(error: Exception) -> str:
    if isinstance(error, ValidationError):
        first = error.errors()[0]
        field = ".".join(str(part) for part in first.get("loc", ()))
        return f"invalid command: {field}: {first.get('msg', '')}"
    return f"{type(error).__name__}: {error}"
