"""Result caches keyed by collection signatures, so a changed collection can never be served
from a stale entry: the key changes, the old entry is simply never asked for again (and ages
out of the LRU). No invalidation messages are needed.

A collection's signature is computed by the caller, who knows the read model: a hash of its
document count, the last global position written to it, its spaces' dimensions and its payload
schema (``collection_signature``). Two caches use it: whole executions (retriever id + plan +
inputs + every collection's signature) and ``feature_search`` stage results (stage parameters,
rendered queries, filters + the searched collections' signatures), which lets a cloned retriever
that only adds a later stage reuse the search.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Generic, TypeVar

from services.retrieval.engine.models import CollectionRef

__all__ = ["LruCache", "SignatureFn", "collection_signature", "stable_key"]

T = TypeVar("T")
SignatureFn = Callable[[CollectionRef], Awaitable[str]]


def stable_key(material: Any) -> str:
    """sha256 of canonical JSON: equal material, equal key, in every process."""
    encoded = json.dumps(material, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(encoded.encode()).hexdigest()


def collection_signature(
    *,
    document_count: int,
    last_position: int,
    dimensions: Mapping[str, int],
    schema: Mapping[str, Any] | None = None,
) -> str:
    """The signature a caller passes for one collection (any change of these changes it)."""
    return stable_key(
        {
            "documents": document_count,
            "position": last_position,
            "dimensions": dict(dimensions),
            "schema": schema,
        }
    )


class LruCache(Generic[T]):
    """A bounded in-process LRU with an optional time to live; thread-safe. Values must be
    immutable (they are shared between requests)."""

    def __init__(self, max_entries: int = 1024, ttl_seconds: float | None = None) -> None:
        self._max = max_entries
        self._ttl = ttl_seconds
        self._items: OrderedDict[str, tuple[float, T]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> T | None:
        with self._lock:
            entry = self._items.get(key)
            if entry is None:
                return None
            stored_at, value = entry
            if self._ttl is not None and time.monotonic() - stored_at > self._ttl:
                del self._items[key]
                return None
            self._items.move_to_end(key)
            return value

    def put(self, key: str, value: T) -> None:
        if self._max <= 0:
            return
        with self._lock:
            self._items[key] = (time.monotonic(), value)
            self._items.move_to_end(key)
            while len(self._items) > self._max:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)
