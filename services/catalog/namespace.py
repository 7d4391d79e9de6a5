"""The namespace aggregate: its state is the fold of its stream (inherited events included)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from contracts.base import Event
from contracts.namespaces import (
    NamespaceActivated,
    NamespaceCloneFailed,
    NamespaceCreated,
    NamespaceDeleted,
    NamespaceForkAcknowledged,
    NamespaceForked,
    NamespaceUpdated,
)


@dataclass(frozen=True, slots=True)
class Namespace:
    namespace_id: str = ""
    organization_id: str = ""
    namespace_name: str = ""
    description: str = ""
    parent_namespace_id: str | None = None
    forked_at_position: int | None = None
    status: str = "ACTIVE"
    version: int = 0


def evolve(state: Namespace, event: Event) -> Namespace:
    """One step of the fold; events of other aggregates are not expected in a namespace stream."""
    match event:
        case NamespaceCreated():
            state = Namespace(
                namespace_id=event.namespace_id,
                organization_id=event.organization_id,
                namespace_name=event.namespace_name,
                description=event.description,
            )
        case NamespaceForked():
            state = replace(
                state,
                namespace_id=event.namespace_id,
                organization_id=event.organization_id,
                namespace_name=event.namespace_name,
                description=event.description,
                parent_namespace_id=event.parent_namespace_id,
                forked_at_position=event.at_position,
                status="CLONING",
            )
        case NamespaceActivated():
            state = replace(state, status="ACTIVE")
        case NamespaceCloneFailed():
            state = replace(state, status="FAILED")
        case NamespaceDeleted():
            state = replace(state, status="DELETED")
        case NamespaceForkAcknowledged():
            pass
        case NamespaceUpdated(namespace_name=name, description=description):
            state = replace(
                state,
                namespace_name=state.namespace_name if name is None else name,
                description=state.description if description is None else description,
            )
        case _:
            pass  # resource events (buckets, objects, ...) share the stream; other folds read them
    return replace(state, version=state.version + 1)


def fold(events: Iterable[Event]) -> Namespace:
    state = Namespace()
    for event in events:
        state = evolve(state, event)
    return state
