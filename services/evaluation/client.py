"""The SDK's evaluation groups: ``client.datasets``, ``client.interactions``,
``client.retrievers.evaluations``, ``client.retrievers.benchmarks`` and
``client.collections.diff``, as methods over the HTTP routes.

They take the SDK's ``Client`` duck-typed (anything with ``request(method, path, **kwargs)``), so
this module need not import ``offshoot.client``, which calls ``attach`` to add them. The client
must send ``X-Namespace``. ``metrics_by_k`` is keyed by k as a string, as on the wire
(``evaluation["metrics_by_k"]["10"]["ndcg"]``).
"""

from __future__ import annotations

import builtins
import csv
import gzip
import json
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

__all__ = [
    "Benchmarks",
    "CollectionDiff",
    "Datasets",
    "Evaluations",
    "Interactions",
    "attach",
    "read_beir",
]

FINISHED = ("COMPLETED", "FAILED")


class _Requester(Protocol):
    def request(self, method: str, path: str, **kwargs: Any) -> Any: ...


class _Group:
    def __init__(self, client: _Requester) -> None:
        self._client = client

    def _results(self, page: Any) -> builtins.list[Any]:
        kind = type(page)
        return [kind(item) for item in page["results"]]


def _lines(path: Path) -> Iterator[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        yield from handle


def read_beir(folder: str | Path, split: str = "test") -> builtins.list[dict[str, Any]]:
    """A BEIR folder's judged queries as dataset queries: ``queries.jsonl`` (or ``.gz``) and
    ``qrels/<split>.tsv`` (the corpus is not needed). Queries without judgements in the split
    are left out."""
    root = Path(folder)
    found = [p for p in (root / "queries.jsonl", root / "queries.jsonl.gz") if p.exists()]
    qrels_path = root / "qrels" / f"{split}.tsv"
    if not found or not qrels_path.exists():
        raise FileNotFoundError(f"{root}: need queries.jsonl(.gz) and qrels/{split}.tsv")
    texts = {}
    for line in _lines(found[0]):
        if line.strip():
            row = json.loads(line)
            texts[str(row["_id"])] = row["text"]
    judged: dict[str, dict[str, int]] = {}
    with qrels_path.open(encoding="utf-8") as tsv:
        for row in csv.DictReader(tsv, delimiter="\t"):
            judged.setdefault(row["query-id"], {})[row["corpus-id"]] = int(row["score"])
    return [
        {"query_id": query_id, "query_input": texts[query_id],
         "relevant_documents": list(docs), "relevance_scores": list(docs.values())}
        for query_id, docs in judged.items() if query_id in texts
    ]  # fmt: skip


class Datasets(_Group):
    def create(
        self, dataset_name: str, queries: Sequence[dict[str, Any]], *,
        document_id_field: str = "_id", description: str = "",
    ) -> Any:  # fmt: skip
        """``queries``: ``[{query_id, query_input, relevant_documents, relevance_scores}]``."""
        body = {"dataset_name": dataset_name, "queries": list(queries),
                "document_id_field": document_id_field, "description": description}  # fmt: skip
        return self._client.request("POST", "/v1/evaluations/datasets", json=body)

    def import_beir(
        self, path: str | Path, split: str = "test", dataset_name: str | None = None,
        document_id_field: str = "_id",
    ) -> Any:  # fmt: skip
        """Read a BEIR folder here and create the dataset (named ``<folder>-<split>``)."""
        queries = read_beir(path, split)
        name = dataset_name or f"{Path(path).resolve().name}-{split}"
        return self.create(name, queries, document_id_field=document_id_field)

    def list(self) -> builtins.list[Any]:
        return self._results(self._client.request("GET", "/v1/evaluations/datasets"))

    def get(self, dataset_id: str) -> Any:
        return self._client.request("GET", f"/v1/evaluations/datasets/{dataset_id}")

    def delete(self, dataset_id: str) -> None:
        self._client.request("DELETE", f"/v1/evaluations/datasets/{dataset_id}")


class Evaluations(_Group):
    def run(
        self, retriever_or_alias: str, dataset_id: str | None = None,
        k_values: Sequence[int] = (1, 5, 10, 20, 100), filter_identical_ids: bool = False,
        query_input_key: str = "query", *, dataset_name: str | None = None,
    ) -> Any:  # fmt: skip
        """Start an evaluation; returns ``{evaluation_id, task_id, status, ...}`` (wait with
        ``client.tasks.wait(task_id)`` or ``wait(evaluation_id)``)."""
        dataset = dataset_id or dataset_name
        if dataset is None:
            raise ValueError("give dataset_id (or dataset_name)")
        body = {"retriever_id": retriever_or_alias, "dataset_id": dataset,
                "k_values": list(k_values), "filter_identical_ids": filter_identical_ids,
                "query_input_key": query_input_key}  # fmt: skip
        return self._client.request("POST", "/v1/evaluations", json=body)

    def get(self, evaluation_id: str) -> Any:
        return self._client.request("GET", f"/v1/evaluations/{evaluation_id}")

    def list(self) -> builtins.list[Any]:
        return self._results(self._client.request("GET", "/v1/evaluations"))

    def wait(self, evaluation_id: str, *, timeout: float = 1800.0, interval: float = 0.1) -> Any:
        """Poll until the evaluation is COMPLETED or FAILED; returns it."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.get(evaluation_id)
            if found["status"] in FINISHED:
                return found
            if time.monotonic() > deadline:
                raise TimeoutError(f"evaluation {evaluation_id} still {found['status']}")
            time.sleep(interval)

    def report(
        self, evaluation_ids: Sequence[str], path: str | Path, *,
        benchmark_id: str | None = None,
    ) -> Path:  # fmt: skip
        """Write the self-contained HTML report of these evaluations (and a benchmark)."""
        from services.evaluation.reports import evaluation_report_html

        evaluations = [self.get(i) for i in evaluation_ids]
        benchmark = (
            self._client.request("GET", f"/v1/benchmarks/{benchmark_id}") if benchmark_id else None
        )
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(evaluation_report_html(evaluations, benchmark), encoding="utf-8")
        return target


class Benchmarks(_Group):
    def create(
        self, benchmark_name: str, baseline_retriever_id: str,
        candidate_retriever_ids: Sequence[str], session_count: int = 100, *, k: int = 10,
        query_input_key: str = "query", seed: int = 0, description: str = "",
    ) -> Any:  # fmt: skip
        body = {"benchmark_name": benchmark_name, "baseline_retriever_id": baseline_retriever_id,
                "candidate_retriever_ids": list(candidate_retriever_ids),
                "session_count": session_count, "k": k, "query_input_key": query_input_key,
                "seed": seed, "description": description}  # fmt: skip
        return self._client.request("POST", "/v1/benchmarks", json=body)

    def execute(self, benchmark_id: str) -> Any:
        """Replay the latest sessions; returns ``{benchmark_id, task_id, ...}``."""
        return self._client.request("POST", f"/v1/benchmarks/{benchmark_id}/execute")

    def get(self, benchmark_id: str) -> Any:
        """With ``results`` once COMPLETED: per retriever ``ndcg_at_k``, ``mrr``,
        ``recall_at_k``, ``mean_clicked_rank``, ``latency_ms``; per candidate ``deltas``,
        sessions improved/degraded/neutral, ``significance`` and ``verdict``."""
        return self._client.request("GET", f"/v1/benchmarks/{benchmark_id}")

    def list(self) -> builtins.list[Any]:
        return self._results(self._client.request("GET", "/v1/benchmarks"))


class Interactions(_Group):
    def create(
        self, interaction_type: str, session_id: str, *, query: str | dict[str, Any] | None = None,
        document_id: str | None = None, position: int | None = None,
        execution_id: str | None = None, retriever_id: str | None = None,
        document_id_field: str | None = None, metadata: dict[str, Any] | None = None,
    ) -> Any:  # fmt: skip
        """One interaction (view, click, long_click, skip, add_to_cart, purchase,
        positive_feedback, negative_feedback)."""
        item = {"interaction_type": interaction_type, "session_id": session_id, "query": query,
                "document_id": document_id, "position": position, "execution_id": execution_id,
                "retriever_id": retriever_id, "document_id_field": document_id_field,
                "metadata": metadata or {}}  # fmt: skip
        return self.create_batch([item])

    def create_batch(self, interactions: Sequence[dict[str, Any]]) -> Any:
        return self._client.request(
            "POST", "/v1/interactions", json={"interactions": list(interactions)}
        )

    def list(self, session_id: str | None = None, limit: int = 1000) -> builtins.list[Any]:
        params: dict[str, Any] = {"limit": limit}
        if session_id is not None:
            params["session_id"] = session_id
        return self._results(self._client.request("GET", "/v1/interactions", params=params))

    def simulate_from_dataset(
        self, dataset_id: str, session_count: int = 100, seed: int = 0
    ) -> Any:
        """Record seeded sessions that click each sampled query's relevant documents."""
        body = {"dataset_id": dataset_id, "session_count": session_count, "seed": seed}
        return self._client.request("POST", "/v1/interactions/simulate", json=body)


class CollectionDiff:
    def __init__(self, client: _Requester) -> None:
        self._client = client

    def __call__(self, collection_a: str, collection_b: str) -> Any:
        """NONE | CONFIG_CHANGE | MODEL_UPDATE | DIMENSION_CHANGE and what to re-embed."""
        return self._client.request("GET", f"/v1/collections/{collection_a}/diff/{collection_b}")


def attach(client: Any) -> None:
    """Add the groups to an SDK client (``offshoot.client.Client._groups`` calls this)."""
    client.datasets = Datasets(client)
    client.interactions = Interactions(client)
    client.retrievers.evaluations = Evaluations(client)
    client.retrievers.benchmarks = Benchmarks(client)
    client.collections.diff = CollectionDiff(client)
