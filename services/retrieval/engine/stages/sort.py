"""Sort stages that only reorder or rescale: ``sort_relevance``, ``sort_attribute``,
``score_normalize``. All are stable: equal keys keep the incoming order."""

from __future__ import annotations

import math
from typing import ClassVar, Literal

from pydantic import Field, JsonValue

from services.retrieval.engine.fusion import min_max
from services.retrieval.engine.models import Candidate
from services.retrieval.engine.stages.base import REGISTRY, RunContext, Stage, StageParameters
from services.retrieval.engine.stages.conditions import FieldPath

__all__ = ["ScoreNormalize", "SortAttribute", "SortRelevance"]


class SortRelevanceParameters(StageParameters):
    direction: Literal["desc", "asc"] = "desc"


@REGISTRY.register
class SortRelevance(Stage[SortRelevanceParameters]):
    stage_id: ClassVar[str] = "sort_relevance"
    stage_type = "sort"
    description: ClassVar[str] = "Order candidates by their current score (best first)."
    parameters_model = SortRelevanceParameters

    async def run(self, candidates: list[Candidate], context: RunContext) -> list[Candidate]:
        sign = -1.0 if self.parameters.direction == "desc" else 1.0
        return sorted(candidates, key=lambda c: sign * c.score)


class SortAttributeParameters(StageParameters):
    field: FieldPath = Field(description="Payload field (dotted path) to sort by.")
    direction: Literal["asc", "desc"] = "desc"
    missing: Literal["last", "first"] = Field(
        default="last", description="Where documents lacking a comparable value go."
    )


def _sort_value(payload: dict[str, JsonValue] | object, path: str) -> float | str | None:
    value: object = payload
    for key in path.split("."):
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    return value if isinstance(value, str) else None


@REGISTRY.register
class SortAttribute(Stage[SortAttributeParameters]):
    stage_id: ClassVar[str] = "sort_attribute"
    stage_type = "sort"
    description: ClassVar[str] = (
        "Order candidates by a payload field; numbers before strings, missing values last "
        "(or first)."
    )
    parameters_model = SortAttributeParameters

    async def run(self, candidates: list[Candidate], context: RunContext) -> list[Candidate]:
        keyed = [(_sort_value(dict(c.payload), self.parameters.field), c) for c in candidates]
        present = [(v, c) for v, c in keyed if v is not None]
        absent = [c for v, c in keyed if v is None]
        reverse = self.parameters.direction == "desc"
        numbers = sorted(
            ((v, c) for v, c in present if isinstance(v, float)),
            key=lambda item: item[0],
            reverse=reverse,
        )
        strings = sorted(
            ((v, c) for v, c in present if isinstance(v, str)),
            key=lambda item: item[0],
            reverse=reverse,
        )
        ordered = [c for _, c in numbers] + [c for _, c in strings]
        return absent + ordered if self.parameters.missing == "first" else ordered + absent


class ScoreNormalizeParameters(StageParameters):
    method: Literal["min_max", "z_score"] = "min_max"


@REGISTRY.register
class ScoreNormalize(Stage[ScoreNormalizeParameters]):
    stage_id: ClassVar[str] = "score_normalize"
    stage_type = "sort"
    description: ClassVar[str] = (
        "Rescale scores: min_max to [0, 1] (all equal: 1), or z_score (mean 0, population sd "
        "1; sd 0: 0). Order is unchanged."
    )
    parameters_model = ScoreNormalizeParameters

    async def run(self, candidates: list[Candidate], context: RunContext) -> list[Candidate]:
        scores = [c.score for c in candidates]
        if self.parameters.method == "min_max":
            normalised = min_max(scores)
        else:
            mean = sum(scores) / len(scores) if scores else 0.0
            sd = math.sqrt(sum((s - mean) ** 2 for s in scores) / len(scores)) if scores else 0.0
            normalised = [(s - mean) / sd if sd else 0.0 for s in scores]
        return [c.rescored(s) for c, s in zip(candidates, normalised, strict=True)]
