"""Reduce stages: ``limit``, ``sample`` (seeded, order-preserving), ``deduplicate``."""

from __future__ import annotations

import random
from typing import ClassVar, Literal

import numpy as np
from pydantic import Field, JsonValue, model_validator

from services.retrieval.engine.models import Candidate
from services.retrieval.engine.stages.base import (
    REGISTRY,
    PlanContext,
    RunContext,
    Stage,
    StageParameters,
    fetch_vectors,
)
from services.retrieval.engine.stages.conditions import FieldPath
from services.retrieval.engine.stages.vectors import default_dense_uri, is_dense, unit_rows

__all__ = ["Deduplicate", "Limit", "Sample"]


class LimitParameters(StageParameters):
    limit: int = Field(ge=1, le=10_000)
    offset: int = Field(default=0, ge=0, le=10_000)


@REGISTRY.register
class Limit(Stage[LimitParameters]):
    stage_id: ClassVar[str] = "limit"
    stage_type = "reduce"
    description: ClassVar[str] = "Keep candidates offset..offset+limit (pagination)."
    parameters_model = LimitParameters

    async def run(self, candidates: list[Candidate], context: RunContext) -> list[Candidate]:
        start = self.parameters.offset
        return candidates[start : start + self.parameters.limit]


class SampleParameters(StageParameters):
    size: int = Field(ge=1, le=10_000)
    seed: int = Field(default=0, description="Same seed, same input: same sample.")


@REGISTRY.register
class Sample(Stage[SampleParameters]):
    stage_id: ClassVar[str] = "sample"
    stage_type = "reduce"
    description: ClassVar[str] = (
        "A seeded random sample of `size` candidates, kept in their incoming order."
    )
    parameters_model = SampleParameters

    async def run(self, candidates: list[Candidate], context: RunContext) -> list[Candidate]:
        if len(candidates) <= self.parameters.size:
            return list(candidates)
        picked = random.Random(self.parameters.seed).sample(
            range(len(candidates)), self.parameters.size
        )
        return [candidates[i] for i in sorted(picked)]


class DeduplicateParameters(StageParameters):
    by: Literal["field", "vector"] = "field"
    field: FieldPath | None = Field(default=None, description="With by=field: the payload field.")
    threshold: float = Field(
        default=0.95, ge=-1.0, le=1.0, description="With by=vector: cosine at which two match."
    )
    feature_uri: str | None = Field(default=None, description="With by=vector: the dense space.")

    @model_validator(mode="after")
    def _field_for_field_mode(self) -> DeduplicateParameters:
        if self.by == "field" and self.field is None:
            raise ValueError("by=field needs `field`")
        return self


@REGISTRY.register
class Deduplicate(Stage[DeduplicateParameters]):
    stage_id: ClassVar[str] = "deduplicate"
    stage_type = "reduce"
    description: ClassVar[str] = (
        "Drop candidates that repeat an earlier one's field value, or whose stored vector is "
        "within a cosine threshold of an earlier one's; the best-ranked copy stays."
    )
    parameters_model = DeduplicateParameters

    def __init__(self, name: str, parameters: DeduplicateParameters) -> None:
        super().__init__(name, parameters)
        self.feature_uri = parameters.feature_uri or ""

    def check(self, context: PlanContext) -> None:
        if self.parameters.by != "vector":
            return
        uri = self.parameters.feature_uri or default_dense_uri(context)
        if uri is None or not is_dense(context, uri):
            raise self.invalid(
                "feature_uri", f"by=vector needs a dense space of the collections, got {uri}"
            )
        self.feature_uri = uri

    def vectors_needed(self) -> set[str]:
        return {self.feature_uri} if self.parameters.by == "vector" else set()

    def explain(self) -> dict[str, JsonValue]:
        explained = super().explain()
        if self.parameters.by == "vector":
            explained["feature_uri"] = self.feature_uri
        return explained

    async def run(self, candidates: list[Candidate], context: RunContext) -> list[Candidate]:
        if self.parameters.by == "field":
            return self._by_field(candidates)
        return await self._by_vector(candidates, context)

    def _by_field(self, candidates: list[Candidate]) -> list[Candidate]:
        """Documents lacking the field are never duplicates of each other."""
        field = self.parameters.field or ""
        seen: set[str] = set()
        kept = []
        for candidate in candidates:
            value = candidate.payload.get(field)
            if value is None:
                kept.append(candidate)
                continue
            key = repr(value)
            if key not in seen:
                seen.add(key)
                kept.append(candidate)
        return kept

    async def _by_vector(self, candidates: list[Candidate], context: RunContext) -> list[Candidate]:
        """Keeps order; a candidate without a stored vector is kept."""
        with_vectors = await fetch_vectors(candidates, self.feature_uri, context)
        have, rows, _ = unit_rows(with_vectors, self.feature_uri)
        row_of = {id(c): i for i, c in enumerate(have)}
        kept_rows: list[int] = []
        kept = []
        for candidate in with_vectors:
            row = row_of.get(id(candidate))
            if row is None:
                kept.append(candidate)
                continue
            if (
                kept_rows
                and float(np.max(rows[kept_rows] @ rows[row])) >= self.parameters.threshold
            ):
                continue
            kept_rows.append(row)
            kept.append(candidate)
        return kept
