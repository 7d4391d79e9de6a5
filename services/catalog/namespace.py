"""The namespace aggregate: its state is the fold of its stream (inherited events included)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from contracts.base import Event
from contracts.namespaces import NamespaceCreated, NamespaceForked, NamespaceUpdated


@dataclass(frozen=True, slots=True)
class Namespace:
    namespace_id: str = ""
    namespace_name: str = ""
    description: str = ""
    parent_namespace_id: str | None = None
    forked_at_position: int | None = None
    version: int = 0


def evolve(state: Namespace, event: Event) -> Namespace:
    """One step of the fold; events of other aggregates are not expected in a namespace stream."""
    match event:
        case NamespaceCreated(namespace_id=ns_id, namespace_name=name, description=description):
            state = Namespace(namespace_id=ns_id, namespace_name=name, description=description)
        case NamespaceForked():
            state = replace(
                state,
                namespace_id=event.namespace_id,
                namespace_name=event.namespace_name,
                parent_namespace_id=event.parent_namespace_id,
                forked_at_position=event.at_position,
            )
        case NamespaceUpdated(namespace_name=name, description=description):
            state = replace(
                state,
                namespace_name=state.namespace_name if name is None else name,
                description=state.description if description is None else description,
            )
        case _:
            raise TypeError(f"a namespace stream cannot hold {type(event).__name__}")
    return replace(state, version=state.version + 1)


def fold(events: Iterable[Event]) -> Namespace:
    state = Namespace()
    for event in events:
        state = evolve(state, event)
    return state
