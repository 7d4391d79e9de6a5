"""Inputs against a retriever's input_schema: the fast path for typed arrays keeps
jsonschema's verdicts and messages."""

from __future__ import annotations

from typing import Any

import pytest

from libs.errors import InvalidInputError
from services.retrieval.engine.inputs import check_inputs, declared_inputs

VECTOR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "vector": {"type": "array", "items": {"type": "number"}, "minItems": 3},
        "ids": {"type": "array", "items": {"type": "integer"}},
    },
    "required": ["vector"],
}


def test_a_numeric_vector_passes() -> None:
    check_inputs(VECTOR_SCHEMA, {"vector": [0.1, -2, 3.5], "ids": [1, 2]})


def test_a_string_inside_a_vector_is_named_by_its_index() -> None:
    with pytest.raises(InvalidInputError, match=r"inputs\['vector'\]\[1\]: 'x' is not of type"):
        check_inputs(VECTOR_SCHEMA, {"vector": [0.1, "x", 3.5]})


def test_a_boolean_is_not_a_number() -> None:
    with pytest.raises(InvalidInputError, match=r"\[2\]: True is not of type 'number'"):
        check_inputs(VECTOR_SCHEMA, {"vector": [0.1, 0.2, True]})


def test_an_integral_float_is_an_integer_as_json_schema_says() -> None:
    check_inputs(VECTOR_SCHEMA, {"vector": [1, 2, 3], "ids": [1.0, 2]})


def test_other_keywords_still_apply_to_a_fast_checked_array() -> None:
    with pytest.raises(InvalidInputError, match=r"inputs\[.vector.\]: .*(too short|non-empty)"):
        check_inputs(VECTOR_SCHEMA, {"vector": [0.1]})


def test_an_invalid_schema_is_refused_and_names_are_declared() -> None:
    assert declared_inputs(VECTOR_SCHEMA) == {"vector", "ids"}
    with pytest.raises(InvalidInputError, match="input_schema"):
        declared_inputs({"type": "no-such-type"})
