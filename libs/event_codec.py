"""Between typed contract events and the store's JSON records: one place that knows both."""

from __future__ import annotations

import uuid
from typing import Any

from contracts.base import Event, decode_event
from libs.eventstore import NewEvent, RecordedEvent
from libs.telemetry import current_trace_context


def to_new_event(
    event: Event,
    *,
    namespace_id: str | None,
    event_id: uuid.UUID | None = None,
    causation_id: uuid.UUID | None = None,
    correlation_id: uuid.UUID | None = None,
) -> NewEvent:
    """A storable event; metadata records the schema version, the namespace and the current trace."""
    metadata: dict[str, Any] = {
        "schema_version": event.schema_version,
        "namespace_id": namespace_id,
    }
    if causation_id is not None:
        metadata["causation_id"] = str(causation_id)
    if correlation_id is not None:
        metadata["correlation_id"] = str(correlation_id)
    trace_context = current_trace_context()
    if trace_context:
        metadata["trace_context"] = trace_context
    return NewEvent(
        type=event.type_name,
        data=event.model_dump(mode="json"),
        metadata=metadata,
        event_id=event_id or uuid.uuid4(),
    )


def from_recorded(recorded: RecordedEvent) -> Event:
    """The typed event, upcast from the schema version it was stored with."""
    return decode_event(
        recorded.type, recorded.data, schema_version=recorded.metadata.get("schema_version", 1)
    )
