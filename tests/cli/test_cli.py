"""The CLI mirrors the SDK on the embedded default, and user mistakes are one line, exit 2."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from offshoot.cli import app

runner = CliRunner()


def _run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_namespaces_clone_prints_the_clone(tmp_path: Path) -> None:
    _run("namespaces", "create", "prod", "--data-dir", str(tmp_path))

    code, output = _run(
        "namespaces", "clone", "prod", "--name", "staging", "--data-dir", str(tmp_path), "--json"
    )

    assert code == 0
    assert '"namespace_name": "staging"' in output


def test_a_user_mistake_is_one_line_and_exit_2(tmp_path: Path) -> None:
    code, output = _run("namespaces", "get", "nope", "--data-dir", str(tmp_path))

    assert code == 2
    assert output.strip() == "error: HTTP 404: namespace 'nope' not found"


def test_url_without_a_key_is_refused_in_one_line() -> None:
    code, output = _run("namespaces", "list", "--url", "http://127.0.0.1:9")

    assert code == 2
    assert "needs --api-key" in output


def test_admin_init_refuses_a_second_bootstrap(tmp_path: Path) -> None:
    first_code, first = _run("admin", "init", "--data-dir", str(tmp_path))
    second_code, second = _run("admin", "init", "--data-dir", str(tmp_path))

    assert first_code == 0 and "osk." in first
    assert second_code == 2 and "already initialised" in second


def test_search_prints_the_ranked_documents_of_an_alias(tmp_path: Path) -> None:
    import time

    from offshoot import Client
    from offshoot.demo import SCHEMA, STATIC, scifact

    rows = list(scifact(10))
    with Client.embedded(tmp_path) as client:
        client.namespaces.create("prod")
        prod = client.with_namespace("prod")
        bucket = prod.buckets.create("papers", bucket_schema=SCHEMA)
        collection = prod.collections.create(
            "abstracts",
            source={"type": "bucket", "bucket_id": bucket.bucket_id},
            feature_extractor=STATIC,
        )
        prod.objects.create_batch(bucket.bucket_id, [{"fields": row} for row in rows])
        deadline = time.monotonic() + 60
        while len(prod.documents.list(collection.collection_id).results) < len(rows):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        stage = {"stage_name": "search", "stage_type": "filter", "config": {"stage_id": "feature_search", "parameters": {
            "searches": [{"feature_uri": collection.feature_uri, "query": "{{INPUT.query}}", "top_k": 3}]}}}  # fmt: skip
        schema = {
            "type": "object",
            "properties": {"query": {"type": "string"}},
            "required": ["query"],
        }
        retriever = prod.retrievers.create(
            "dense", collection_identifiers=["abstracts"], stages=[stage], input_schema=schema
        )
        prod.aliases.create("search", retriever.retriever_id)

    code, output = _run(
        "search", "search", rows[3]["text"][:200], "-n", "prod", "--data-dir", str(tmp_path)
    )

    assert code == 0, output
    assert f"results from {retriever.retriever_id}" in output
    first = next(line for line in output.splitlines() if line.startswith("│ 1 "))
    assert rows[3]["_id"] in first
