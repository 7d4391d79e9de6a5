"""The taxonomy service through HTTP on both stacks (the catalog suite's ``api`` fixture), over
SciFact abstracts and a small collection of topic labels, both embedded with minilm-static@v1."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.catalog.conftest import Api, api, runtime_options  # noqa: F401 (fixtures)
from tests.extractor.conftest import STATIC
from tests.retrieval.conftest import corpus, retriever, search_stage, wait_documents

# 20 topics with a parent area each (the second level of the two-level hierarchy).
TOPICS: dict[str, tuple[str, str]] = {
    "oncology": ("medicine", "cancer, tumours, chemotherapy and oncology"),
    "cardiology": ("medicine", "heart disease, blood pressure and cardiovascular risk"),
    "infectious disease": ("medicine", "viruses, bacteria, infection, HIV, malaria, vaccines"),
    "neurology": ("medicine", "brain, neurons, stroke, dementia and the nervous system"),
    "diabetes": ("medicine", "insulin, glucose, obesity and metabolic disease"),
    "immunology": ("biology", "immune response, T cells, antibodies and inflammation"),
    "genetics": ("biology", "genes, mutations, DNA, genome-wide association"),
    "cell biology": ("biology", "cells, proteins, signalling pathways and organelles"),
    "stem cells": ("biology", "stem cells, differentiation and regeneration"),
    "microbiology": ("biology", "microbes, the microbiome and bacterial growth"),
    "epidemiology": ("public health", "populations, cohorts, incidence and mortality"),
    "nutrition": ("public health", "diet, vitamins, food and nutrition"),
    "maternal health": ("public health", "pregnancy, birth, infants and mothers"),
    "mental health": ("public health", "depression, anxiety and psychiatric disorders"),
    "health policy": ("public health", "health care systems, costs and policy"),
    "pharmacology": ("chemistry", "drugs, dosage, clinical trials of treatments"),
    "biochemistry": ("chemistry", "enzymes, metabolism and chemical reactions"),
    "structural biology": ("chemistry", "protein structure, crystallography, binding"),
    "ageing": ("biology", "ageing, lifespan and senescence"),
    "surgery": ("medicine", "surgical procedures, operations and outcomes"),
}
AREAS = {
    "medicine": "medicine, patients, disease and clinical treatment",
    "biology": "biology, cells, genes and molecular mechanisms",
    "public health": "public health, populations, society and prevention",
    "chemistry": "chemistry, molecules, drugs and reactions",
}


async def label_collection(
    client: Api, ns: str, name: str, labels: dict[str, tuple[str | None, str]]
) -> str:
    """A bucket + collection of reference labels: text = the description, ``label``,
    ``parent`` and ``area`` fields. Returns the collection id once every label is searchable."""
    bucket = (await client.ok("POST", "/v1/buckets", namespace=ns, json={"bucket_name": name}))[
        "bucket_id"
    ]
    collection = await client.ok(
        "POST", "/v1/collections", namespace=ns,
        json={"collection_name": name, "source": {"type": "bucket", "bucket_id": bucket},
              "feature_extractor": STATIC},
    )  # fmt: skip
    objects = [
        {"fields": {"text": f"{label}: {text}", "label": label, "parent": parent or "",
                    "area": parent or label}}
        for label, (parent, text) in labels.items()
    ]  # fmt: skip
    await client.ok(
        "POST", f"/v1/buckets/{bucket}/objects/batch", namespace=ns, json={"objects": objects}
    )
    await wait_documents(client, ns, collection["collection_id"], len(labels))
    return str(collection["collection_id"])


async def topics_setup(client: Api, count: int = 200) -> dict[str, Any]:
    """Papers, topic labels, a retriever over them and a flat taxonomy (not yet applied)."""
    ns, papers, rows = await corpus(client, count)
    topics = await label_collection(client, ns, "topics", {k: v for k, v in TOPICS.items()})
    backing = await retriever(
        client, ns, topics, name="topic-search", stages=[search_stage(top_k=20)]
    )
    taxonomy = await client.ok("POST", "/v1/taxonomies", namespace=ns, json={
        "taxonomy_name": "topics", "taxonomy_type": "flat",
        "retriever_id": backing["retriever_id"],
        "input_mappings": [{"input_key": "query", "source": "field", "path": "text"}],
        "enrichment_fields": ["area"], "output_field": "topic",
    })  # fmt: skip
    return {"ns": ns, "papers": papers, "rows": rows, "topics": topics, "retriever": backing,
            "taxonomy": taxonomy}  # fmt: skip


async def documents(client: Api, ns: str, collection: str) -> list[dict[str, Any]]:
    page = await client.ok(
        "GET", f"/v1/collections/{collection}/documents", namespace=ns, params={"limit": 1000}
    )
    return list(page["results"])


async def apply(
    client: Api, ns: str, taxonomy: str, collection: str, **body: Any
) -> dict[str, Any]:
    started = await client.ok(
        "POST", f"/v1/taxonomies/{taxonomy}/apply", namespace=ns,
        json={"collection_id": collection, **body},
    )  # fmt: skip
    finished = await wait_task(client, started["task_id"])
    assert finished["status"] == "COMPLETED", finished
    return finished


async def wait_task(client: Api, task_id: str, seconds: float = 120.0) -> dict[str, Any]:
    """The finished task (applies and clusterings take longer than the catalog's wait)."""
    for _ in range(int(seconds / 0.05)):
        task: dict[str, Any] = await client.ok("GET", f"/v1/tasks/{task_id}")
        if task["status"] not in ("PENDING", "IN_PROGRESS", "PROCESSING"):
            return task
        await asyncio.sleep(0.05)
    raise AssertionError(f"task {task_id} did not finish")
