"""``mmr``: maximal marginal relevance (Carbonell & Goldstein 1998), for diverse result lists.

Greedy: pick the candidate maximising ``lambda * relevance - (1 - lambda) * max cosine to the
already picked``, where relevance is the incoming score min-max normalised to [0, 1] (fused
scores have no fixed scale) and cosines are between the documents' *stored* vectors of
``feature_uri`` (default: the first dense space an earlier search used; the search then returns
vectors with its hits). Candidates keep their scores; only the order and the cut change, so
``limit`` documents come out in selection order. Candidates without a stored vector follow.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from pydantic import Field, JsonValue

from services.retrieval.engine.fusion import min_max
from services.retrieval.engine.models import Candidate
from services.retrieval.engine.stages.base import (
    REGISTRY,
    PlanContext,
    RunContext,
    Stage,
    StageParameters,
    fetch_vectors,
)
from services.retrieval.engine.stages.vectors import default_dense_uri, is_dense, unit_rows

__all__ = ["Mmr", "MmrParameters"]


class MmrParameters(StageParameters):
    lambda_: float = Field(
        default=0.5,
        ge=0.0,
        le=1.0,
        alias="lambda",
        description="1: relevance only; 0: diversity only.",
    )
    limit: int = Field(default=10, ge=1, le=1_000)
    feature_uri: str | None = Field(
        default=None, description="Dense space whose vectors measure similarity."
    )


@REGISTRY.register
class Mmr(Stage[MmrParameters]):
    stage_id: ClassVar[str] = "mmr"
    stage_type = "sort"
    description: ClassVar[str] = "Diversify: maximal marginal relevance over stored vectors."
    parameters_model = MmrParameters

    def __init__(self, name: str, parameters: MmrParameters) -> None:
        super().__init__(name, parameters)
        self.feature_uri = parameters.feature_uri or ""

    def check(self, context: PlanContext) -> None:
        uri = self.parameters.feature_uri or default_dense_uri(context)
        if uri is None:
            raise self.invalid(
                "feature_uri", "no earlier search used a dense space: name one to compare with"
            )
        if not is_dense(context, uri):
            raise self.invalid(
                "feature_uri", f"{uri} is not a dense vector space of the retriever's collections"
            )
        self.feature_uri = uri

    def vectors_needed(self) -> set[str]:
        return {self.feature_uri}

    def explain(self) -> dict[str, JsonValue]:
        explained = super().explain()
        explained["feature_uri"] = self.feature_uri
        return explained

    async def run(self, candidates: list[Candidate], context: RunContext) -> list[Candidate]:
        with_vectors = await fetch_vectors(candidates, self.feature_uri, context)
        have, rows, lacking = unit_rows(with_vectors, self.feature_uri)
        limit = self.parameters.limit
        if not have:
            return lacking[:limit]
        weight = self.parameters.lambda_
        relevance = np.asarray(min_max([c.score for c in have]))
        similarity = rows @ rows.T
        chosen: list[int] = []
        closest = np.full(len(have), -np.inf)  # max similarity to anything chosen so far
        available = np.ones(len(have), dtype=bool)
        while len(chosen) < min(limit, len(have)):
            penalty = np.where(np.isfinite(closest), closest, 0.0)
            value = weight * relevance - (1.0 - weight) * penalty
            value[~available] = -np.inf
            pick = int(np.argmax(value))
            chosen.append(pick)
            available[pick] = False
            closest = np.maximum(closest, similarity[pick])
        return ([have[i] for i in chosen] + lacking)[:limit]
