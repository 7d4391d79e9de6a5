"""Clustering a collection's vectors with scikit-learn: the algorithms, their parameters, the
quality metrics and the labels of each cluster. Pure (numpy in, plain data out), so the service
runs it in a worker thread and the tests compare it with scikit-learn directly.

Metrics are scikit-learn's silhouette (cosine, as the spaces are searched), Davies-Bouldin
and Calinski-Harabasz over the clustered points; HDBSCAN's noise (label -1) is left out of
them. They are ``None`` when undefined (fewer than two clusters).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from libs.errors import InvalidInputError

Matrix = NDArray[np.float64]


class _Params(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class KMeansParams(_Params):
    n_clusters: int = Field(default=8, ge=2, le=1000)
    random_state: int = 0
    n_init: int = Field(default=10, ge=1, le=100)
    max_iter: int = Field(default=300, ge=1, le=10_000)


class HdbscanParams(_Params):
    min_cluster_size: int = Field(default=5, ge=2, le=100_000)
    min_samples: int | None = Field(default=None, ge=1)


class AgglomerativeParams(_Params):
    n_clusters: int = Field(default=8, ge=2, le=1000)
    linkage: Literal["ward", "complete", "average", "single"] = "ward"


PARAMS: dict[str, type[_Params]] = {
    "kmeans": KMeansParams,
    "hdbscan": HdbscanParams,
    "agglomerative": AgglomerativeParams,
}


def parse_params(algorithm: str, params: dict[str, Any]) -> dict[str, Any]:
    """The parameters with defaults filled in; a mistake is a 422 naming the field."""
    model = PARAMS.get(algorithm)
    if model is None:
        raise InvalidInputError(f"algorithm: {algorithm!r} is not one of {sorted(PARAMS)}")
    try:
        return model.model_validate(params).model_dump()
    except ValidationError as error:
        details = "; ".join(
            f"params.{'.'.join(str(p) for p in e['loc']) or algorithm}: {e['msg']}"
            for e in error.errors()
        )
        raise InvalidInputError(details) from None


@dataclass(frozen=True)
class Clustering:
    labels: NDArray[np.int64]
    centroids: Matrix
    metrics: dict[str, float | None]


def fit(matrix: Matrix, algorithm: str, params: dict[str, Any]) -> NDArray[np.int64]:
    """Cluster labels per row (``-1``: noise, HDBSCAN only)."""
    from sklearn.cluster import HDBSCAN, AgglomerativeClustering, KMeans

    n = len(matrix)
    if algorithm == "kmeans":
        p = KMeansParams.model_validate(params)
        if p.n_clusters > n:
            raise InvalidInputError(f"params.n_clusters: {p.n_clusters} > {n} documents")
        model: Any = KMeans(
            n_clusters=p.n_clusters, random_state=p.random_state, n_init=p.n_init,
            max_iter=p.max_iter,
        )  # fmt: skip
    elif algorithm == "hdbscan":
        h = HdbscanParams.model_validate(params)
        model = HDBSCAN(min_cluster_size=h.min_cluster_size, min_samples=h.min_samples)
    else:
        a = AgglomerativeParams.model_validate(params)
        if a.n_clusters > n:
            raise InvalidInputError(f"params.n_clusters: {a.n_clusters} > {n} documents")
        model = AgglomerativeClustering(n_clusters=a.n_clusters, linkage=a.linkage)
    return np.asarray(model.fit_predict(matrix), dtype=np.int64)


def metrics(matrix: Matrix, labels: NDArray[np.int64]) -> dict[str, float | None]:
    from sklearn.metrics import (
        calinski_harabasz_score,
        davies_bouldin_score,
        silhouette_score,
    )

    kept = labels >= 0
    points, assigned = matrix[kept], labels[kept]
    if len(set(assigned.tolist())) < 2 or len(set(assigned.tolist())) >= len(points):
        return {"silhouette": None, "davies_bouldin": None, "calinski_harabasz": None}
    return {
        "silhouette": float(silhouette_score(points, assigned, metric="cosine")),
        "davies_bouldin": float(davies_bouldin_score(points, assigned)),
        "calinski_harabasz": float(calinski_harabasz_score(points, assigned)),
    }


def cluster(matrix: Matrix, algorithm: str, params: dict[str, Any]) -> Clustering:
    labels = fit(matrix, algorithm, params)
    ids = sorted(set(labels.tolist()) - {-1})
    centroids = (
        np.stack([matrix[labels == k].mean(axis=0) for k in ids])
        if ids
        else np.zeros((0, matrix.shape[1]))
    )
    return Clustering(labels, centroids, metrics(matrix, labels))


def central(
    matrix: Matrix, labels: NDArray[np.int64], centroid: Matrix, k: int, n: int
) -> list[int]:
    """Row indices of the ``n`` members of cluster ``k`` nearest its centroid (cosine)."""
    members = np.flatnonzero(labels == k)
    rows = matrix[members]
    norms = np.linalg.norm(rows, axis=1) * (np.linalg.norm(centroid) or 1.0)
    similarity = rows @ centroid / np.where(norms == 0, 1.0, norms)
    return [int(members[i]) for i in np.argsort(-similarity)[:n]]


def summaries(
    matrix: Matrix,
    result: Clustering,
    titles: Sequence[str | None],
    *,
    central_count: int = 3,
) -> list[dict[str, Any]]:
    """Per cluster: id, size, centroid, and a label from its most central documents' titles."""
    out = []
    ids = sorted(set(result.labels.tolist()) - {-1})
    for index, k in enumerate(ids):
        centroid = result.centroids[index]
        nearest = central(matrix, result.labels, centroid, k, central_count)
        names = [t for t in (titles[i] for i in nearest) if t]
        out.append(
            {
                "cluster": k,
                "size": int((result.labels == k).sum()),
                "label": names[0] if names else f"cluster {k}",
                "central_titles": names,
                "centroid": [round(float(x), 6) for x in centroid],
            }
        )
    noise = int((result.labels == -1).sum())
    if noise:
        out.append({"cluster": -1, "size": noise, "label": "noise", "central_titles": [],
                    "centroid": None})  # fmt: skip
    return out
