"""Taxonomies through HTTP on both stacks: flat apply (fork-safe, idempotent), a two-level
hierarchy, compare, the query-time stage, and bad input."""

from __future__ import annotations

from typing import Any

from tests.catalog.conftest import Api
from tests.retrieval.conftest import retriever, search_stage
from tests.taxonomy.conftest import (
    AREAS,
    TOPICS,
    apply,
    documents,
    label_collection,
    topics_setup,
    wait_task,
)


async def _clone(api: Api, ns: str, name: str) -> str:
    task = await api.ok(
        "POST", f"/v1/namespaces/{ns}/clone",
        json={"namespace_name": name, "include_resources": {"taxonomies": True}},
    )  # fmt: skip
    finished = await wait_task(api, task["task_id"])
    assert finished["status"] == "COMPLETED", finished
    return str(finished["result"]["namespace_id"])


async def test_a_flat_taxonomy_labels_documents_only_where_it_is_applied(api: Api) -> None:
    setup = await topics_setup(api, 200)
    ns, papers = setup["ns"], setup["papers"]
    clone = await _clone(api, ns, "staging")
    grandchild = await _clone(api, clone, "staging-copy")
    clone_taxonomy = await api.ok("GET", "/v1/taxonomies/topics", namespace=clone)
    clone_papers = (await api.ok("GET", "/v1/collections/abstracts", namespace=clone))[
        "collection_id"
    ]

    first = await apply(api, clone, clone_taxonomy["taxonomy_id"], clone_papers)

    labelled = await documents(api, clone, clone_papers)
    assert first["result"]["documents_seen"] == 200
    assert first["result"]["documents_changed"] == 200
    assert all(d["fields"]["topic"] in TOPICS for d in labelled)
    assert all(d["fields"]["topic_path"] == [d["fields"]["topic"]] for d in labelled)
    assert all(d["fields"]["topic_area"] == TOPICS[d["fields"]["topic"]][0] for d in labelled)
    assert len({d["fields"]["topic"] for d in labelled}) >= 5  # not one label for everything
    for other, collection in ((ns, papers), (grandchild, None)):
        if collection is None:
            collection = (await api.ok("GET", "/v1/collections/abstracts", namespace=other))[
                "collection_id"
            ]
        assert all("topic" not in d["fields"] for d in await documents(api, other, collection))

    head = await api.runtime.adapters.extractor_store.head_position()
    again = await apply(api, clone, clone_taxonomy["taxonomy_id"], clone_papers)
    assert again["result"]["documents_changed"] == 0
    assert await api.runtime.adapters.extractor_store.head_position() == head
    assert await documents(api, clone, clone_papers) == labelled

    # enrichment is visible to retrievers' attribute filters at once
    label = labelled[0]["fields"]["topic"]
    filtered = await retriever(api, clone, clone_papers, name="by-topic", stages=[
        search_stage(),
        {"stage_name": "only", "stage_type": "filter",
         "config": {"stage_id": "attribute_filter",
                    "parameters": {"filter": {"op": "eq", "field": "topic", "value": label}}}},
    ])  # fmt: skip
    found = await api.ok(
        "POST", f"/v1/retrievers/{filtered['retriever_id']}/execute", namespace=clone,
        json={"inputs": {"query": setup["rows"][0]["title"]}},
    )  # fmt: skip
    assert found["results"] and all(r["payload"]["topic"] == label for r in found["results"])


async def test_a_two_level_hierarchy_yields_consistent_full_chains(api: Api) -> None:
    setup = await topics_setup(api, 60)
    ns, papers = setup["ns"], setup["papers"]
    areas = await label_collection(api, ns, "areas", {a: (None, t) for a, t in AREAS.items()})
    area_search = await retriever(api, ns, areas, name="area-search", stages=[search_stage()])
    mapping = [{"input_key": "query", "source": "field", "path": "text"}]
    taxonomy = await api.ok("POST", "/v1/taxonomies", namespace=ns, json={
        "taxonomy_name": "fields-of-science", "taxonomy_type": "hierarchical",
        "output": "full_chain", "output_field": "science",
        "nodes": [
            {"node_id": "area", "retriever_id": area_search["retriever_id"],
             "input_mappings": mapping, "enrichment_fields": ["area"]},
            {"node_id": "topic", "parent_node_id": "area",
             "retriever_id": setup["retriever"]["retriever_id"], "input_mappings": mapping},
        ],
    })  # fmt: skip

    await apply(api, ns, taxonomy["taxonomy_id"], papers)

    for document in await documents(api, ns, papers):
        chain = document["fields"]["science_path"]
        assert chain[0] in AREAS
        if len(chain) == 2:
            assert TOPICS[chain[1]][0] == chain[0]  # a topic only under its own area
        assert document["fields"]["science"] == chain[-1]
        assert document["fields"]["science_area"] == chain[0]  # inherited from the root node


async def test_compare_reports_agreement_and_accuracy_of_a_clone_with_another_retriever(
    api: Api,
) -> None:
    setup = await topics_setup(api, 60)
    ns, papers = setup["ns"], setup["papers"]
    narrow = await retriever(
        api, ns, setup["topics"], name="narrow", stages=[search_stage(top_k=2)]
    )
    candidate = await api.ok(
        "POST", f"/v1/taxonomies/{setup['taxonomy']['taxonomy_id']}/clone", namespace=ns,
        json={"taxonomy_name": "topics-v2", "retriever_id": narrow["retriever_id"],
              "min_score": 0.3},
    )  # fmt: skip
    report = await api.ok("POST", "/v1/taxonomies/compare", namespace=ns, json={
        "baseline": "topics", "candidate": "topics-v2", "collection_id": papers, "sample": 40,
    })  # fmt: skip
    assert report["sample"] == 40 and 0.0 <= report["agreement"] <= 1.0
    assert sum(row["count"] for row in report["confusion"]) == 40
    assert {"label", "baseline", "candidate", "delta"} <= set(report["labels"][0])
    assert report["ground_truth"] is None

    # ground truth: the baseline's own labels, so its accuracy is 1 and the delta is the gap
    await apply(api, ns, "topics", papers)
    truth = {d["document_id"]: d["fields"]["topic"] for d in await documents(api, ns, papers)}
    graded = await api.ok("POST", "/v1/taxonomies/compare", namespace=ns, json={
        "baseline": "topics", "candidate": candidate["taxonomy_id"], "collection_id": papers,
        "sample": 40, "ground_truth": truth,
    })  # fmt: skip
    grades = graded["ground_truth"]
    assert grades["baseline"]["accuracy"] == 1.0
    assert grades["candidate"]["accuracy"] == graded["agreement"]
    assert grades["delta"]["accuracy"] == round(grades["candidate"]["accuracy"] - 1.0, 6)
    assert set(grades["delta"]["per_label_f1"]) == set(grades["baseline"]["per_label_f1"])


async def test_the_taxonomy_enrich_stage_labels_results_as_apply_would(api: Api) -> None:
    setup = await topics_setup(api, 30)
    ns, papers, taxonomy = setup["ns"], setup["papers"], setup["taxonomy"]
    labelling = await retriever(api, ns, papers, name="labelled-search", stages=[
        search_stage(top_k=5),
        {"stage_name": "label", "stage_type": "sort",
         "config": {"stage_id": "taxonomy_enrich",
                    "parameters": {"taxonomy_id": taxonomy["taxonomy_id"]}}},
    ])  # fmt: skip
    live = await api.ok(
        "POST", f"/v1/retrievers/{labelling['retriever_id']}/execute", namespace=ns,
        json={"inputs": {"query": setup["rows"][3]["title"]}},
    )  # fmt: skip
    await apply(api, ns, taxonomy["taxonomy_id"], papers)
    stored = {d["document_id"]: d["fields"]["topic"] for d in await documents(api, ns, papers)}
    assert live["results"]
    for result in live["results"]:
        assert result["payload"]["topic"] == stored[result["document_id"]]


async def test_bad_taxonomies_are_422_and_store_nothing(api: Api) -> None:
    setup = await topics_setup(api, 10)
    ns, backing = setup["ns"], setup["retriever"]["retriever_id"]
    mapping = [{"input_key": "query", "source": "field", "path": "text"}]

    def flat(**changes: Any) -> dict[str, Any]:
        return {"taxonomy_name": "bad", "retriever_id": backing, "input_mappings": mapping,
                **changes}  # fmt: skip

    cases = {
        "does not exist": flat(retriever_id="ret_missing"),
        "is not an input": flat(input_mappings=[{"input_key": "q", "path": "text"}]),
        "cycle": {
            "taxonomy_name": "bad",
            "taxonomy_type": "hierarchical",
            "nodes": [
                {
                    "node_id": "a",
                    "parent_node_id": "c",
                    "retriever_id": backing,
                    "input_mappings": mapping,
                },
                {
                    "node_id": "b",
                    "parent_node_id": "a",
                    "retriever_id": backing,
                    "input_mappings": mapping,
                },
                {
                    "node_id": "c",
                    "parent_node_id": "b",
                    "retriever_id": backing,
                    "input_mappings": mapping,
                },
            ],
        },
    }
    for reason, body in cases.items():
        response = await api.call("POST", "/v1/taxonomies", namespace=ns, json=body)
        assert response.status_code == 422, (reason, response.text)
        assert reason in response.text

    missing_field = await api.ok("POST", "/v1/taxonomies", namespace=ns, json=flat(
        taxonomy_name="wrong-field",
        input_mappings=[{"input_key": "query", "path": "summary"}],
    ))  # fmt: skip
    head = await api.runtime.adapters.extractor_store.head_position()
    refused = await api.call(
        "POST", f"/v1/taxonomies/{missing_field['taxonomy_id']}/apply", namespace=ns,
        json={"collection_id": setup["papers"]},
    )  # fmt: skip
    assert refused.status_code == 422 and "summary" in refused.text
    assert await api.runtime.adapters.extractor_store.head_position() == head
    listed = await api.ok("GET", "/v1/taxonomies", namespace=ns)
    assert sorted(t["taxonomy_name"] for t in listed["results"]) == ["topics", "wrong-field"]


async def test_patch_changes_names_only_and_versions_record_it(api: Api) -> None:
    setup = await topics_setup(api, 10)
    ns, taxonomy = setup["ns"], setup["taxonomy"]
    path = f"/v1/taxonomies/{taxonomy['taxonomy_id']}"
    renamed = await api.ok("PATCH", path, namespace=ns, json={"taxonomy_name": "subjects"})
    refused = await api.call("PATCH", path, namespace=ns, json={"retriever_id": "x"})
    clone = await api.ok("POST", f"{path}/clone", namespace=ns, json={"taxonomy_name": "copy"})
    versions = await api.ok("GET", f"{path}/versions", namespace=ns)
    await api.ok("DELETE", f"/v1/taxonomies/{clone['taxonomy_id']}", namespace=ns)

    assert renamed["taxonomy_name"] == "subjects" and renamed["version"] == 2
    assert refused.status_code == 409 and "clone" in refused.text
    assert clone["cloned_from"] == taxonomy["taxonomy_id"] and clone["taxonomy_type"] == "flat"
    assert [v["change"] for v in versions["results"]] == ["created", "updated"]
    assert versions["clones"] == [clone["taxonomy_id"]]
    assert (
        await api.call("GET", f"/v1/taxonomies/{clone['taxonomy_id']}", namespace=ns)
    ).status_code == 404
