"""Request inputs against a retriever's ``input_schema`` (JSON Schema 2020-12), fast enough to
run on every execution, cache hits included.

jsonschema descends into every array item with a fresh validator: a 384-d query vector under
``{"items": {"type": "number"}}`` cost ~4 ms per pass. Here validators are compiled once per
schema, and ``items`` whose schema is a bare ``type`` is checked in one loop; only an array that
fails that loop goes through the full keyword (so messages and semantics are jsonschema's).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from functools import lru_cache
from typing import Any

import jsonschema
from pydantic import JsonValue

from libs.errors import InvalidInputError

_Base = jsonschema.Draft202012Validator
_ITEMS = _Base.VALIDATORS["items"]
# Exact type tests: a match is certainly valid; anything else takes the full path.
_FAST: dict[str, Callable[[object], bool]] = {
    "number": lambda x: type(x) is float or type(x) is int,
    "integer": lambda x: type(x) is int,
    "string": lambda x: type(x) is str,
}


def _items(
    validator: Any, items: Any, instance: Any, schema: Mapping[str, Any]
) -> Iterator[jsonschema.ValidationError]:
    if type(instance) is list and isinstance(items, dict) and items.keys() == {"type"}:
        check = _FAST.get(items["type"]) if isinstance(items["type"], str) else None
        if check is not None and all(map(check, instance)):
            return
    yield from _ITEMS(validator, items, instance, schema)


_Validator = jsonschema.validators.extend(_Base, {"items": _items})  # type: ignore[no-untyped-call]


def declared_inputs(schema: Mapping[str, Any] | None) -> frozenset[str] | None:
    """The input names a schema declares (None: no schema, anything goes); an invalid schema is
    a 422."""
    if schema is None:
        return None
    try:
        _Base.check_schema(dict(schema))
    except jsonschema.SchemaError as error:
        raise InvalidInputError(f"input_schema: not a valid JSON Schema: {error.message}") from None
    properties = schema.get("properties", {})
    return frozenset(properties) if isinstance(properties, dict) else frozenset()


@lru_cache(maxsize=256)
def _compiled(schema_json: str) -> Any:
    return _Validator(json.loads(schema_json))


def check_inputs(schema: Mapping[str, Any] | None, inputs: Mapping[str, JsonValue]) -> None:
    """A 422 naming the first offending input path, as jsonschema's ``best_match`` picks it."""
    if schema is None:
        return
    validator = _compiled(json.dumps(schema, sort_keys=True))
    error = jsonschema.exceptions.best_match(validator.iter_errors(dict(inputs)))
    if error is not None:
        where = "inputs" + "".join(f"[{p!r}]" for p in error.absolute_path)
        raise InvalidInputError(f"{where}: {error.message}")


__all__ = ["check_inputs", "declared_inputs"]
