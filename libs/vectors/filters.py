"""A small, neutral filter language over point payloads, compiled by each adapter to Qdrant's.

Why our own: the view's visibility filter is built server-side from it, user filters (and later
the ``attribute_filter`` retriever stage) are written in it, and each adapter compiles it with
one function (``to_edge_filter``, ``to_qdrant_filter``), so the two adapters cannot drift.

Semantics (MongoDB-like, identical on both adapters; the congruence test pins them):

- ``eq``/``in``: the field equals the value / one of the values; for an array field, any element.
- ``ne``/``nin``: the negation of ``eq``/``in``, so they also match points *lacking* the field.
- ``gt``/``gte``/``lt``/``lte``: numeric comparison; points without a number there never match.
- ``exists``: the field holds a non-null, non-empty value.
- ``is_null``: the field holds ``null`` (or an array containing ``null``).
- ``has_id``: the point id (a UUID) is one of ``ids`` (used for masks; documents are addressed with
  ``eq``/``in`` on ``document_id``).
- ``and``/``or``/``not`` nest freely.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Callable
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    TypeAdapter,
)


def _canonical_uuid(value: str) -> str:
    return str(uuid.UUID(value))


PointId = Annotated[StrictStr, AfterValidator(_canonical_uuid)]
K = TypeVar("K")
V = TypeVar("V")
FieldPath = Annotated[str, Field(min_length=1, max_length=256, pattern=r"^[^\s]+$")]
Scalar = StrictStr | StrictInt | StrictBool
Number = StrictInt | Annotated[StrictFloat, Field(allow_inf_nan=False)]


class _Node(BaseModel):
    """Frozen and strict: a filter is a value, and a typo'd key is an error, never ignored."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Eq(_Node):
    op: Literal["eq"] = "eq"
    field: FieldPath
    value: Scalar


class Ne(_Node):
    op: Literal["ne"] = "ne"
    field: FieldPath
    value: Scalar


class Gt(_Node):
    op: Literal["gt"] = "gt"
    field: FieldPath
    value: Number


class Gte(_Node):
    op: Literal["gte"] = "gte"
    field: FieldPath
    value: Number


class Lt(_Node):
    op: Literal["lt"] = "lt"
    field: FieldPath
    value: Number


class Lte(_Node):
    op: Literal["lte"] = "lte"
    field: FieldPath
    value: Number


class In(_Node):
    """Qdrant matches ``any`` over strings or over integers, never a mix: so do we."""

    op: Literal["in"] = "in"
    field: FieldPath
    values: tuple[StrictStr, ...] | tuple[StrictInt, ...] = Field(min_length=1)


class Nin(_Node):
    op: Literal["nin"] = "nin"
    field: FieldPath
    values: tuple[StrictStr, ...] | tuple[StrictInt, ...] = Field(min_length=1)


class Exists(_Node):
    op: Literal["exists"] = "exists"
    field: FieldPath


class IsNull(_Node):
    op: Literal["is_null"] = "is_null"
    field: FieldPath


class HasId(_Node):
    op: Literal["has_id"] = "has_id"
    ids: tuple[PointId, ...] = Field(min_length=1)


class And(_Node):
    op: Literal["and"] = "and"
    filters: tuple[Filter, ...] = Field(min_length=1)


class Or(_Node):
    op: Literal["or"] = "or"
    filters: tuple[Filter, ...] = Field(min_length=1)


class Not(_Node):
    op: Literal["not"] = "not"
    filter: Filter


Filter = Annotated[
    Eq | Ne | Gt | Gte | Lt | Lte | In | Nin | Exists | IsNull | HasId | And | Or | Not,
    Field(discriminator="op"),
]

for _model in (And, Or, Not):
    _model.model_rebuild()

_FILTER: TypeAdapter[Filter] = TypeAdapter(Filter)


class IdentityCache(Generic[K, V]):
    """A small LRU memo keyed by object identity, for immutable values reused across calls: a
    view snapshot's visibility filter, a filter's compiled form. It holds each key, so an id is
    never reused while its entry lives. Used from the event-loop thread only."""

    def __init__(self, size: int = 256) -> None:
        self._size = size
        self._items: OrderedDict[int, tuple[K, V]] = OrderedDict()

    def get(self, key: K, build: Callable[[K], V]) -> V:
        hit = self._items.get(id(key))
        if hit is not None and hit[0] is key:
            self._items.move_to_end(id(key))
            return hit[1]
        value = build(key)
        self._items[id(key)] = (key, value)
        if len(self._items) > self._size:
            self._items.popitem(last=False)
        return value


def parse_filter(data: Any) -> Filter:
    """A filter from its JSON form, e.g. ``{"op": "eq", "field": "lang", "value": "en"}``."""
    return _FILTER.validate_python(data)


def all_of(*filters: Filter | None) -> Filter | None:
    """The conjunction of the filters given (``None`` entries ignored); ``None`` if none remain."""
    present = [f for f in filters if f is not None]
    if not present:
        return None
    if len(present) == 1:
        return present[0]
    return And(filters=tuple(present))


def any_of(*filters: Filter) -> Filter:
    """The disjunction of at least one filter (a single one is returned as is)."""
    if len(filters) == 1:
        return filters[0]
    return Or(filters=filters)
