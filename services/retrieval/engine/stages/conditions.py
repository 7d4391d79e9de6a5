"""The ``attribute_filter`` condition language: the vector store's filter language plus
``contains`` and ``regex``, with one meaning whether it runs in the store or in Python.

Semantics follow ``libs/vectors/filters.py`` (MongoDB-like): ``eq``/``in`` match an array field
when any element matches, ``ne``/``nin`` are their negations (so they match documents lacking
the field), ranges need a number, ``exists`` means non-null and non-empty, ``is_null`` means
null. Values compare by JSON type (``1`` is not ``true``). ``contains``: a string field holding
the substring, or an array field holding the value. ``regex``: ``re.search`` on a string field
(or any string element). Field paths are dotted (``meta.year``); ``document_id`` is the
document's id. ``contains`` and ``regex`` run in Python only; everything else can be pushed
down to the store (``to_store_filter``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, StrictBool, StrictStr, field_validator

from libs.vectors import filters as store

__all__ = ["OPS", "Condition", "matches", "split_pushable", "to_store_filter"]

FieldPath = Annotated[str, Field(min_length=1, max_length=256, pattern=r"^[^\s]+$")]
Scalar = store.Scalar
Number = store.Number
MAX_PATTERN = 256


class _Node(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class Eq(_Node):
    op: Literal["eq"]
    field: FieldPath
    value: Scalar


class Ne(_Node):
    op: Literal["ne"]
    field: FieldPath
    value: Scalar


class Gt(_Node):
    op: Literal["gt"]
    field: FieldPath
    value: Number


class Gte(_Node):
    op: Literal["gte"]
    field: FieldPath
    value: Number


class Lt(_Node):
    op: Literal["lt"]
    field: FieldPath
    value: Number


class Lte(_Node):
    op: Literal["lte"]
    field: FieldPath
    value: Number


class In(_Node):
    op: Literal["in"]
    field: FieldPath
    values: tuple[StrictStr, ...] | tuple[int, ...] = Field(min_length=1, max_length=1000)


class Nin(_Node):
    op: Literal["nin"]
    field: FieldPath
    values: tuple[StrictStr, ...] | tuple[int, ...] = Field(min_length=1, max_length=1000)


class Exists(_Node):
    op: Literal["exists"]
    field: FieldPath


class IsNull(_Node):
    op: Literal["is_null"]
    field: FieldPath


class Contains(_Node):
    op: Literal["contains"]
    field: FieldPath
    value: Scalar
    case_sensitive: StrictBool = True


class Regex(_Node):
    op: Literal["regex"]
    field: FieldPath
    pattern: StrictStr = Field(min_length=1, max_length=MAX_PATTERN)

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, pattern: str) -> str:
        try:
            re.compile(pattern)
        except re.error as error:
            raise ValueError(f"invalid regular expression: {error}") from None
        return pattern


class And(_Node):
    op: Literal["and"]
    filters: tuple[Condition, ...] = Field(min_length=1, max_length=100)


class Or(_Node):
    op: Literal["or"]
    filters: tuple[Condition, ...] = Field(min_length=1, max_length=100)


class Not(_Node):
    op: Literal["not"]
    filter: Condition


Condition = Annotated[
    Eq | Ne | Gt | Gte | Lt | Lte | In | Nin | Exists | IsNull | Contains | Regex | And | Or | Not,
    Field(discriminator="op"),
]

for _model in (And, Or, Not):
    _model.model_rebuild()

OPS = frozenset(
    [
        "eq",
        "ne",
        "gt",
        "gte",
        "lt",
        "lte",
        "in",
        "nin",
        "exists",
        "is_null",
        "contains",
        "regex",
        "and",
        "or",
        "not",
    ]
)
"""The discriminator values (left out of error paths: ``filter.pattern``, not
``filter.regex.pattern``)."""


def to_store_filter(condition: Condition) -> store.Filter | None:
    """The same condition in the store's language, or ``None`` if any part runs in Python."""
    match condition:
        case Contains() | Regex():
            return None
        case And(filters=children) | Or(filters=children):
            compiled = [to_store_filter(c) for c in children]
            if any(c is None for c in compiled):
                return None
            kind = store.And if isinstance(condition, And) else store.Or
            return kind(filters=tuple(c for c in compiled if c is not None))
        case Not(filter=inner):
            compiled_inner = to_store_filter(inner)
            return None if compiled_inner is None else store.Not(filter=compiled_inner)
        case _:
            return store.parse_filter(condition.model_dump())


def split_pushable(condition: Condition) -> tuple[store.Filter | None, Condition | None]:
    """``(pushed, residual)``: the conjuncts the store can run, and the rest for Python. Their
    conjunction is the original condition."""
    conjuncts = condition.filters if isinstance(condition, And) else (condition,)
    pushed: list[store.Filter] = []
    residual: list[Condition] = []
    for part in conjuncts:
        compiled = to_store_filter(part)
        if compiled is None:
            residual.append(part)
        else:
            pushed.append(compiled)
    return (
        store.all_of(*pushed),
        None
        if not residual
        else residual[0]
        if len(residual) == 1
        else And(op="and", filters=tuple(residual)),
    )


_MISSING = object()


def _values(payload: Mapping[str, JsonValue], path: str) -> list[JsonValue]:
    """Every value at a dotted path (arrays of objects are walked into), leaf arrays flattened."""
    current: list[JsonValue] = [dict(payload)]
    for key in path.split("."):
        following: list[JsonValue] = []
        for value in current:
            items = value if isinstance(value, list) else [value]
            for item in items:
                if isinstance(item, dict) and key in item:
                    following.append(item[key])
        current = following
    flat: list[JsonValue] = []
    for value in current:
        if isinstance(value, list):
            flat.extend(value)
        else:
            flat.append(value)
    return flat


def _raw(payload: Mapping[str, JsonValue], path: str) -> list[JsonValue]:
    """Values at the path without flattening leaf arrays (``exists`` needs to see ``[]``)."""
    current: list[JsonValue] = [dict(payload)]
    for key in path.split("."):
        following: list[JsonValue] = []
        for value in current:
            items = value if isinstance(value, list) else [value]
            following.extend(item[key] for item in items if isinstance(item, dict) and key in item)
        current = following
    return current


def _same(a: JsonValue, b: JsonValue) -> bool:
    return type(a) is type(b) and a == b


def _number(value: JsonValue) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def matches(condition: Condition, document_id: str, payload: Mapping[str, JsonValue]) -> bool:
    """Whether one document satisfies the condition (evaluated in Python)."""
    if isinstance(condition, And):
        return all(matches(c, document_id, payload) for c in condition.filters)
    if isinstance(condition, Or):
        return any(matches(c, document_id, payload) for c in condition.filters)
    if isinstance(condition, Not):
        return not matches(condition.filter, document_id, payload)
    scope: Mapping[str, JsonValue] = {**payload, "document_id": document_id}
    values = _values(scope, condition.field)
    match condition:
        case Eq(value=wanted):
            return any(_same(v, wanted) for v in values)
        case Ne(value=wanted):
            return not any(_same(v, wanted) for v in values)
        case In(values=wanted):
            return any(_same(v, w) for v in values for w in wanted)
        case Nin(values=wanted):
            return not any(_same(v, w) for v in values for w in wanted)
        case Gt(value=bound):
            return any(_number(v) and v > bound for v in values)  # type: ignore[operator]
        case Gte(value=bound):
            return any(_number(v) and v >= bound for v in values)  # type: ignore[operator]
        case Lt(value=bound):
            return any(_number(v) and v < bound for v in values)  # type: ignore[operator]
        case Lte(value=bound):
            return any(_number(v) and v <= bound for v in values)  # type: ignore[operator]
        case Exists():
            return any(v is not None and v != [] for v in _raw(scope, condition.field))
        case IsNull():
            return any(v is None for v in values)
        case Contains(value=wanted, case_sensitive=sensitive):
            return any(_contains(v, wanted, sensitive) for v in _raw(scope, condition.field))
        case Regex(pattern=pattern):
            compiled = re.compile(pattern)
            return any(isinstance(v, str) and compiled.search(v) is not None for v in values)
    return False  # pragma: no cover - every node kind is handled above


def _contains(value: JsonValue, wanted: JsonValue, case_sensitive: bool) -> bool:
    if isinstance(value, str) and isinstance(wanted, str):
        if case_sensitive:
            return wanted in value
        return wanted.casefold() in value.casefold()
    if isinstance(value, list):
        if not case_sensitive and isinstance(wanted, str):
            return any(isinstance(v, str) and v.casefold() == wanted.casefold() for v in value)
        return any(_same(v, wanted) for v in value)
    return False
