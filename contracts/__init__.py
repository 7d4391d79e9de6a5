"""The wire: every message that crosses a process boundary, as pydantic models.

Importing this package registers every event and command type. ``python -m contracts.export``
writes the JSON Schemas and the AsyncAPI document generated from these models.
"""

from contracts import (
    auth,
    catalog,
    commands,
    evaluation,
    extractor,
    namespaces,
    retrieval,
    tasks,
    taxonomy,
    webhooks,
)
from contracts.base import Command, Event, decode_event, upcaster
from contracts.envelope import DeadLetter, Envelope

__all__ = [
    "Command",
    "DeadLetter",
    "Envelope",
    "Event",
    "auth",
    "catalog",
    "commands",
    "decode_event",
    "evaluation",
    "extractor",
    "namespaces",
    "retrieval",
    "tasks",
    "taxonomy",
    "upcaster",
    "webhooks",
]
