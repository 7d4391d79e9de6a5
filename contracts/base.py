"""Base classes for every event and command: explicit, frozen, versioned, registered by type name.

A stored event carries its type name and schema version; ``decode_event`` upcasts old versions
through registered upcasters before validating, so a stream written years ago still folds.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from libs.errors import InvalidInputError

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


class Message(BaseModel):
    """Common shape: frozen, unknown fields refused (a typo is an error, never a silent drop)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type_name: ClassVar[str]
    schema_version: ClassVar[int] = 1


class Event(Message):
    """A fact that happened. Subclasses set ``type_name`` (dotted, e.g. ``namespace.created``)."""

    registry: ClassVar[dict[str, type[Event]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "type_name" in cls.__dict__:
            if cls.type_name in Event.registry:
                raise TypeError(f"event type {cls.type_name!r} is defined twice")
            Event.registry[cls.type_name] = cls


class Command(Message):
    """A request to change state. ``command_id`` makes handling idempotent (retries are no-ops)."""

    registry: ClassVar[dict[str, type[Command]]] = {}

    command_id: uuid.UUID = Field(default_factory=uuid.uuid4)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "type_name" in cls.__dict__:
            if cls.type_name in Command.registry:
                raise TypeError(f"command type {cls.type_name!r} is defined twice")
            Command.registry[cls.type_name] = cls


_upcasters: dict[tuple[str, int], Upcaster] = {}


def upcaster(type_name: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
    """Register a function that turns ``from_version`` data of an event into the next version."""

    def register(function: Upcaster) -> Upcaster:
        _upcasters[(type_name, from_version)] = function
        return function

    return register


def decode_event(type_name: str, data: dict[str, Any], *, schema_version: int = 1) -> Event:
    """The typed event for stored data, upcast to the current schema version."""
    event_class = Event.registry.get(type_name)
    if event_class is None:
        raise InvalidInputError(f"unknown event type {type_name!r}")
    version = schema_version
    while version < event_class.schema_version:
        step = _upcasters.get((type_name, version))
        if step is None:
            raise InvalidInputError(f"no upcaster for {type_name!r} from schema version {version}")
        data = step(data)
        version += 1
    return event_class.model_validate(data)
