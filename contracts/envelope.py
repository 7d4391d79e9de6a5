"""The message envelope: how every event and command travels between processes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Envelope(BaseModel):
    """One event (or command) on the wire, with what a consumer needs to order, dedupe and trace it.

    ``event_id`` is the dedupe key; ``global_position`` is set for events read from the store
    (absent for commands); ``trace_context`` carries W3C ``traceparent``/``tracestate``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: int = 1
    event_id: uuid.UUID
    type: str = Field(min_length=1)
    stream_id: str = Field(min_length=1)
    version: int = Field(ge=1)
    global_position: int | None = Field(default=None, ge=1)
    namespace_id: str | None = None
    occurred_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    causation_id: uuid.UUID | None = None
    correlation_id: uuid.UUID | None = None
    trace_context: dict[str, str] = Field(default_factory=dict)
    data: dict[str, Any] = Field(default_factory=dict)


class DeadLetter(BaseModel):
    """What lands on ``<topic>.dlq`` when a message cannot be handled: the reason, the raw bytes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source_topic: str
    consumer_group: str
    reason: str
    key: str | None = None
    partition: int
    offset: int
    value: str = Field(description="the original message body, decoded as UTF-8 with replacement")
    failed_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
