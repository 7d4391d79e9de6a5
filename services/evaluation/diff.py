"""Change detection between two collections: what differs in their feature extractors and what
must be re-embedded to go from one to the other.

The comparison works on ``ExtractorInfo`` (``config_hash`` and the parts it hashes), resolved
from each collection's extractor spec, so it needs no vectors and no model load:

- ``NONE``: same configuration hash and input mappings — vectors are interchangeable, a clone
  shares them, nothing to re-embed;
- ``DIMENSION_CHANGE``: the output's kind or dimension differs — a new vector space; every
  document is re-embedded and retrievers must be cloned onto the new Feature URI;
- ``MODEL_UPDATE``: same shape, another model (name, version or weights) — vectors of the two
  are not comparable even at equal dimension; every document is re-embedded;
- ``CONFIG_CHANGE``: same model, other preprocessing, parameters or input mappings — every
  document is re-embedded (chunking changes may also change how many documents there are).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from libs.extractors import ExtractorInfo, get_extractor


class ChangeKind(StrEnum):
    NONE = "NONE"
    CONFIG_CHANGE = "CONFIG_CHANGE"
    MODEL_UPDATE = "MODEL_UPDATE"
    DIMENSION_CHANGE = "DIMENSION_CHANGE"


def info_of(spec: dict[str, Any]) -> ExtractorInfo:
    return get_extractor(
        spec["feature_extractor_name"], spec["version"], spec.get("parameters") or {}
    ).info


def _shape(info: ExtractorInfo) -> list[tuple[str, Any, Any]]:
    return [(o.name, o.kind, o.dimensions) for o in info.outputs]


def _differences(a: dict[str, Any], b: dict[str, Any], prefix: str) -> list[dict[str, Any]]:
    found = []
    for key in sorted(set(a) | set(b)):
        left, right = a.get(key), b.get(key)
        if left != right:
            found.append({"field": f"{prefix}{key}", "a": left, "b": right})
    return found


def classify(spec_a: dict[str, Any], spec_b: dict[str, Any]) -> dict[str, Any]:
    """The change from a collection with extractor ``spec_a`` to one with ``spec_b``."""
    a, b = info_of(spec_a), info_of(spec_b)
    mappings_a = spec_a.get("input_mappings") or {"text": "text"}
    mappings_b = spec_b.get("input_mappings") or {"text": "text"}
    differences = _differences(
        {"name": a.name, "version": a.version}, {"name": b.name, "version": b.version}, ""
    )
    differences += _differences(a.model, b.model, "model.")
    differences += _differences(a.preprocessing, b.preprocessing, "preprocessing.")
    differences += _differences(a.parameters, b.parameters, "parameters.")
    differences += _differences(mappings_a, mappings_b, "input_mappings.")
    if _shape(a) != _shape(b):
        differences.insert(0, {"field": "outputs", "a": _shape(a), "b": _shape(b)})
        kind = ChangeKind.DIMENSION_CHANGE
    elif a.config_hash == b.config_hash and mappings_a == mappings_b:
        kind = ChangeKind.NONE
    elif (a.name, a.version, a.model) != (b.name, b.version, b.model):
        kind = ChangeKind.MODEL_UPDATE
    else:
        kind = ChangeKind.CONFIG_CHANGE
    return {
        "change": kind.value,
        "config_hash_a": a.config_hash,
        "config_hash_b": b.config_hash,
        "feature_uri_a": a.feature_uri,
        "feature_uri_b": b.feature_uri,
        "differences": [_jsonable(d) for d in differences],
        "reembed_required": kind is not ChangeKind.NONE,
        "new_vector_space": kind is ChangeKind.DIMENSION_CHANGE or a.feature_uri != b.feature_uri,
        "reembed": _advice(kind),
    }


def _jsonable(difference: dict[str, Any]) -> dict[str, Any]:
    def plain(value: Any) -> Any:
        if isinstance(value, list | tuple):
            return [plain(v) for v in value]
        return value

    return {key: plain(value) for key, value in difference.items()}


def _advice(kind: ChangeKind) -> str:
    return {
        ChangeKind.NONE: "nothing: the collections' vectors are interchangeable (a clone shares them)",
        ChangeKind.CONFIG_CHANGE: "every document: same model, but preprocessing, parameters or "
        "input mappings change its vectors (trigger the collection)",
        ChangeKind.MODEL_UPDATE: "every document: another model's vectors are not comparable "
        "(trigger the collection; evaluate both before moving an alias)",
        ChangeKind.DIMENSION_CHANGE: "every document into a new vector space; retrievers must be "
        "cloned onto the new Feature URI",
    }[kind]


__all__ = ["ChangeKind", "classify", "info_of"]
