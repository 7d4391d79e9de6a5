"""Retriever and alias commands from ``offshoot.commands``, handled by the service methods the
HTTP routes call.

The catalog's ``CommandGateway`` consumes the topic (authenticating the message's API key and
recording rejections); the runtime registers these handlers in it, so one consumer knows every
command type and none is dead-lettered as unknown by another. Over HTTP the URL names the target
retriever or alias; on the bus the command body does (``retriever_id`` / ``alias_name``, and
``variant`` for ``alias.clear_variant``). The envelope's ``namespace_id`` scopes the command,
like ``X-Namespace``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from contracts.auth import Permission
from contracts.base import Command
from contracts.retrieval import (
    ClearVariant,
    CloneRetriever,
    CreateAlias,
    CreateRetriever,
    MoveAlias,
    RollbackAlias,
    SetCanary,
    SetShadow,
    UpdateRetriever,
)
from libs.auth import Principal
from libs.errors import InvalidInputError
from services.retrieval.service import RetrievalService

# What the gateway calls: (caller, command, the envelope's namespace id or name).
Handler = Callable[[Principal, Any, str | None], Awaitable[Any]]
# The catalog's namespace lookup for a caller (404 for one it may not see).
NamespaceOf = Callable[[Principal, str], Awaitable[dict[str, Any]]]
Method = Callable[[RetrievalService, str, Any, str | None], Awaitable[Any]]


def _target(command: Command, field: str) -> Any:
    value = getattr(command, field)
    if value is None:
        raise InvalidInputError(
            f"{field}: required on offshoot.commands (the URL names it on HTTP)"
        )
    return value


_METHODS: dict[type[Command], Method] = {
    CreateRetriever: lambda s, ns, c, key: s.create_retriever(ns, c, key_id=key),
    UpdateRetriever: lambda s, ns, c, _: s.update_retriever(ns, _target(c, "retriever_id"), c),
    CloneRetriever: lambda s, ns, c, key: s.clone_retriever(
        ns, _target(c, "retriever_id"), c, key_id=key
    ),
    CreateAlias: lambda s, ns, c, key: s.create_alias(ns, c, key_id=key),
    MoveAlias: lambda s, ns, c, key: s.move_alias(ns, _target(c, "alias_name"), c, key_id=key),
    RollbackAlias: lambda s, ns, c, key: s.rollback_alias(
        ns, _target(c, "alias_name"), c, key_id=key
    ),
    SetCanary: lambda s, ns, c, key: s.set_canary(ns, _target(c, "alias_name"), c, key_id=key),
    SetShadow: lambda s, ns, c, key: s.set_shadow(ns, _target(c, "alias_name"), c, key_id=key),
    ClearVariant: lambda s, ns, c, key: s.clear_variant(
        ns, _target(c, "alias_name"), _target(c, "variant"), c, key_id=key
    ),
}


def command_handlers(
    service: RetrievalService, namespace_of: NamespaceOf
) -> dict[str, tuple[type[Command], Handler]]:
    """Entries for ``CommandGateway.handlers``: every retriever and alias command, needing the
    write permission and the envelope's namespace."""

    def handler(method: Method) -> Handler:
        async def handle(principal: Principal, command: Any, namespace: str | None) -> Any:
            principal.require(Permission.WRITE)
            if not namespace:
                raise InvalidInputError(
                    "this command needs the envelope's namespace_id (like X-Namespace)"
                )
            target = await namespace_of(principal, namespace)
            return await method(service, target["namespace_id"], command, principal.key_id)

        return handle

    return {model.type_name: (model, handler(method)) for model, method in _METHODS.items()}


__all__ = ["command_handlers"]
