"""Commands sent on Kafka (``offshoot.commands``): the same command models as HTTP, plus the API
key that authenticates them exactly like an HTTP call, in an ordinary envelope."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from contracts.base import Event


class CommandMessage(BaseModel):
    """The envelope's ``data`` on ``offshoot.commands``. The envelope's ``type`` is the command's
    type name, its ``event_id`` the command id (dedupe), its ``namespace_id`` the target
    namespace (id or name) for namespace-scoped commands and the partition key."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    api_key: str = Field(min_length=1)
    command: dict[str, Any]


class CommandRejected(Event):
    """A command from the bus was refused; nothing changed. ``reason`` says why."""

    type_name: ClassVar[str] = "command.rejected"

    command_id: str
    command_type: str
    reason: str
