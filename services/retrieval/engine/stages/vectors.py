"""Helpers for stages that compare documents by their stored vectors (``mmr``, ``deduplicate``)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from libs.vectors import DenseVector
from services.retrieval.engine.models import Candidate
from services.retrieval.engine.stages.base import PlanContext

__all__ = ["default_dense_uri", "is_dense", "unit_rows"]


def is_dense(context: PlanContext, feature_uri: str) -> bool:
    return any(c.views[feature_uri].space.kind == "dense" for c in context.holding(feature_uri))


def default_dense_uri(context: PlanContext) -> str | None:
    """The first dense feature URI an earlier search used: the space the ranking came from."""
    return next((uri for uri in context.searched_uris if is_dense(context, uri)), None)


def unit_rows(
    candidates: list[Candidate], feature_uri: str
) -> tuple[list[Candidate], NDArray[np.float64], list[Candidate]]:
    """``(with_vector, rows, without_vector)``: rows are the stored dense vectors,
    L2-normalised so that dot products are cosines."""
    have: list[Candidate] = []
    rows: list[NDArray[np.float64]] = []
    lacking: list[Candidate] = []
    for candidate in candidates:
        vector = candidate.vectors.get(feature_uri)
        if isinstance(vector, DenseVector):
            have.append(candidate)
            rows.append(np.asarray(vector.values, dtype=np.float64))
        else:
            lacking.append(candidate)
    if not rows:
        return have, np.zeros((0, 0)), lacking
    matrix = np.vstack(rows)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return have, matrix / norms, lacking
