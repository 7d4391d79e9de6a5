"""Clusters through HTTP on both stacks: k-means over SciFact abstracts embedded with
minilm@v1 matches scikit-learn on the same vectors, and its write-back is filterable."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score, silhouette_score

from libs.vectors import DenseVector
from tests.catalog.conftest import Api
from tests.extractor.conftest import scifact
from tests.retrieval.conftest import retriever, wait_documents
from tests.taxonomy.conftest import wait_task

MINILM_URI = "offshoot://minilm@v1/text_embedding"


async def _papers(api: Api, count: int) -> tuple[str, str]:
    ns = (await api.ok("POST", "/v1/namespaces", json={"namespace_name": "clusters"}))[
        "namespace_id"
    ]
    bucket = (await api.ok("POST", "/v1/buckets", namespace=ns, json={"bucket_name": "b"}))[
        "bucket_id"
    ]
    collection = await api.ok(
        "POST", "/v1/collections", namespace=ns,
        json={"collection_name": "abstracts", "source": {"type": "bucket", "bucket_id": bucket},
              "feature_extractor": {"feature_extractor_name": "minilm", "version": "v1"}},
    )  # fmt: skip
    objects = [
        {"fields": {"text": f"{r['title']}\n{r['text']}", "title": r["title"]}}
        for r in scifact(count)
    ]
    await api.ok(
        "POST", f"/v1/buckets/{bucket}/objects/batch", namespace=ns, json={"objects": objects}
    )
    await wait_documents(api, ns, collection["collection_id"], count)
    return ns, str(collection["collection_id"])


async def _vectors(api: Api, ns: str, collection: str) -> tuple[list[str], np.ndarray[Any, Any]]:
    """The collection's stored vectors straight from the vector store, by document id."""
    extractor = api.runtime.extractor
    assert extractor is not None
    view = await extractor.active_view(ns, collection)
    page = await api.runtime.adapters.vectors.scroll(view=view, limit=1000)
    ids = sorted(p.document_id for p in page.points)
    points = await api.runtime.adapters.vectors.get(view=view, document_ids=ids, with_vectors=True)
    by_id = {p.document_id: p.vector for p in points}
    rows = []
    for document_id in ids:
        vector = by_id[document_id]
        assert isinstance(vector, DenseVector)
        rows.append(vector.values)
    return ids, np.asarray(rows, dtype=np.float64)


async def test_kmeans_matches_scikit_learn_and_writes_cluster_ids_back(api: Api) -> None:
    ns, collection = await _papers(api, 80)
    created = await api.ok("POST", "/v1/clusters", namespace=ns, json={
        "collection_id": collection, "feature_uri": MINILM_URI, "algorithm": "kmeans",
        "params": {"n_clusters": 4, "random_state": 7}, "write_back": True,
    })  # fmt: skip
    started = await api.ok("POST", f"/v1/clusters/{created['cluster_id']}/execute", namespace=ns)
    task = await wait_task(api, started["task_id"])
    assert task["status"] == "COMPLETED", task
    execution = (await api.ok("GET", f"/v1/clusters/{created['cluster_id']}", namespace=ns))[
        "last_execution"
    ]

    ids, matrix = await _vectors(api, ns, collection)
    expected = KMeans(n_clusters=4, random_state=7, n_init=10).fit_predict(matrix)
    labels = np.asarray([execution["assignments"][d] for d in ids])
    assert len(execution["clusters"]) == 4
    assert sorted(c["size"] for c in execution["clusters"]) == sorted(np.bincount(labels))
    assert (labels == expected).all()
    metrics = execution["metrics"]
    assert metrics["silhouette"] == silhouette_score(matrix, labels, metric="cosine")
    assert metrics["davies_bouldin"] == davies_bouldin_score(matrix, labels)
    assert metrics["calinski_harabasz"] == calinski_harabasz_score(matrix, labels)
    assert all(c["label"] and c["central_titles"] for c in execution["clusters"])
    assert execution["written_back"] == 80

    target = int(labels[0])
    by_cluster = await retriever(api, ns, collection, name="one-cluster", stages=[
        {"stage_name": "members", "stage_type": "filter",
         "config": {"stage_id": "attribute_filter",
                    "parameters": {"filter": {"op": "eq", "field": "cluster_id",
                                              "value": target}}}},
    ])  # fmt: skip
    members = await api.ok(
        "POST", f"/v1/retrievers/{by_cluster['retriever_id']}/execute", namespace=ns,
        json={"inputs": {"query": "x"}},
    )  # fmt: skip
    assert sorted(r["document_id"] for r in members["results"]) == sorted(
        d for d, k in zip(ids, labels, strict=True) if k == target
    )


async def test_clustering_a_feature_the_collection_lacks_is_422(api: Api) -> None:
    ns, collection = await _papers(api, 5)
    for body, reason in (
        ({"feature_uri": "offshoot://minilm-static@v1/text_embedding"}, "holds"),
        ({"feature_uri": MINILM_URI, "params": {"n_clusters": "4"}}, "n_clusters"),
        ({"feature_uri": MINILM_URI, "collection_id": "col_missing"}, "not found"),
    ):
        response = await api.call(
            "POST", "/v1/clusters", namespace=ns, json={"collection_id": collection, **body}
        )
        assert response.status_code == 422, response.text
        assert reason in response.text
    assert (await api.ok("GET", "/v1/clusters", namespace=ns))["results"] == []
