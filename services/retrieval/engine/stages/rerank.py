"""``rerank``: re-score candidates with another extractor's similarity.

The query (a template, by default ``{{INPUT.query}}``) and each candidate's text (payload
``text_fields`` joined by newlines) are embedded with the extractor that ``feature_uri`` names,
and the new score is their cosine. Query and document embeddings both go through the inference
cache, so re-ranking documents seen before costs no model call. The extractor need not be one
the collections were built with: that is the point (a stronger or newer model scoring a cheap
model's candidates). Only the first ``top_n`` candidates are re-scored and re-ordered; the rest,
and candidates without text, follow in their incoming order with their old scores.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from libs.errors import OffshootError
from libs.extractors import DenseEmbedding
from services.retrieval.engine.models import Candidate
from services.retrieval.engine.stages.base import (
    REGISTRY,
    PlanContext,
    RunContext,
    Stage,
    StageParameters,
)
from services.retrieval.engine.stages.conditions import FieldPath

__all__ = ["Rerank", "RerankParameters"]


class RerankParameters(StageParameters):
    feature_uri: str = Field(
        description="Dense extractor output that scores, e.g. offshoot://minilm@v1/text_embedding."
    )
    query: str = "{{INPUT.query}}"
    text_fields: tuple[FieldPath, ...] = Field(default=("text",), min_length=1, max_length=8)
    top_n: int = Field(default=100, ge=1, le=1_000)


def _text(payload: object, fields: tuple[str, ...]) -> str:
    parts = []
    for field in fields:
        value = payload.get(field) if isinstance(payload, dict) else None
        if isinstance(value, str) and value.strip():
            parts.append(value)
    return "\n".join(parts)


@REGISTRY.register
class Rerank(Stage[RerankParameters]):
    stage_id: ClassVar[str] = "rerank"
    stage_type = "sort"
    description: ClassVar[str] = (
        "Re-score candidates by cosine between query and document text embedded with another "
        "extractor."
    )
    parameters_model = RerankParameters

    def templates(self) -> list[tuple[str, str]]:
        return [("query", self.parameters.query)]

    def check(self, context: PlanContext) -> None:
        try:
            extractor = context.extractor_for(self.parameters.feature_uri)
        except OffshootError as error:
            raise self.invalid("feature_uri", str(error)) from None
        if extractor.info.outputs[0].kind != "dense":
            raise self.invalid(
                "feature_uri",
                f"{self.parameters.feature_uri} is sparse: rerank needs a dense model",
            )

    async def run(self, candidates: list[Candidate], context: RunContext) -> list[Candidate]:
        query = self.render("query", self.parameters.query, context.inputs)
        if not isinstance(query, str) or not query.strip():
            raise self.invalid("query", f"needs a non-empty string, got {query!r}")
        head, tail = candidates[: self.parameters.top_n], candidates[self.parameters.top_n :]
        texts = [_text(dict(c.payload), self.parameters.text_fields) for c in head]
        scored = [(c, t) for c, t in zip(head, texts, strict=True) if t]
        textless = [c for c, t in zip(head, texts, strict=True) if not t]
        if not scored:
            return candidates
        uri = self.parameters.feature_uri
        query_embedding = await context.embed_query(uri, query)
        documents = await context.embed_documents(uri, [t for _, t in scored])
        q = _unit(query_embedding)
        rescored = [
            c.rescored(float(q @ _unit(d))) for (c, _), d in zip(scored, documents, strict=True)
        ]
        rescored.sort(key=lambda c: -c.score)
        return rescored + textless + tail


def _unit(embedding: object) -> NDArray[np.float64]:
    if not isinstance(embedding, DenseEmbedding):
        raise TypeError("rerank needs dense embeddings")  # excluded at plan time
    values = embedding.values.astype(np.float64)
    norm = float(np.linalg.norm(values))
    return values / norm if norm else values
