"""The service commands (`clusters`, `taxonomies`, `collections diff`) on a small embedded
namespace: what they print, and one-line errors for user mistakes."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from offshoot import Client
from offshoot.demo import SCHEMA, STATIC, scifact
from tests.cli.test_cli import _run

DOCUMENTS = 40


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """prod with one minilm-static collection of 40 SciFact abstracts."""
    directory = tmp_path_factory.mktemp("cli")
    with Client.embedded(directory) as client:
        client.namespaces.create("prod")
        prod = client.with_namespace("prod")
        bucket = prod.buckets.create("papers", bucket_schema=SCHEMA)
        collection = prod.collections.create(
            "abstracts",
            source={"type": "bucket", "bucket_id": bucket.bucket_id},
            feature_extractor=STATIC,
        )
        prod.objects.create_batch(bucket.bucket_id, [{"fields": row} for row in scifact(DOCUMENTS)])
        deadline = time.monotonic() + 60
        while len(prod.documents.list(collection.collection_id).results) < DOCUMENTS:
            assert time.monotonic() < deadline, "ingestion did not finish"
            time.sleep(0.1)
    return directory


def test_clusters_run_prints_metrics_and_every_cluster(data_dir: Path) -> None:
    code, output = _run(
        "clusters", "run", "abstracts", "offshoot://minilm-static@v1/text_embedding",
        "-n", "prod", "--k", "3", "--data-dir", str(data_dir),
    )  # fmt: skip

    assert code == 0, output
    assert "silhouette" in output
    sizes = [
        int(line.split(": ")[1].split()[0]) for line in output.splitlines() if "cluster " in line
    ]
    assert len(sizes) == 3 and sum(sizes) == DOCUMENTS


def test_clustering_a_feature_uri_the_collection_lacks_is_one_line(data_dir: Path) -> None:
    code, output = _run(
        "clusters", "run", "abstracts", "offshoot://minilm@v1/text_embedding",
        "-n", "prod", "--data-dir", str(data_dir),
    )  # fmt: skip

    assert code == 2
    assert output.startswith("error:") and len(output.strip().splitlines()) == 1


def test_taxonomies_list_starts_empty(data_dir: Path) -> None:
    code, output = _run("taxonomies", "list", "-n", "prod", "--data-dir", str(data_dir), "--json")

    assert code == 0, output
    assert output.strip() == "[]"


def test_taxonomies_create_refuses_a_file_that_is_not_json(data_dir: Path, tmp_path: Path) -> None:
    body = tmp_path / "taxonomy.json"
    body.write_text("{not json")

    code, output = _run(
        "taxonomies", "create", "-n", "prod", "--file", str(body), "--data-dir", str(data_dir)
    )

    assert code == 2
    assert output.startswith(f"error: --file {body}")


def test_collections_diff_of_a_collection_with_itself_is_none(data_dir: Path) -> None:
    code, output = _run(
        "collections", "diff", "abstracts", "abstracts", "-n", "prod", "--data-dir", str(data_dir)
    )

    assert code == 0, output
    assert output.startswith("NONE")
