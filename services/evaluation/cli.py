"""CLI commands of the evaluation service, added to ``offshoot`` by ``register(app)``:

- ``offshoot datasets import-beir <dir> --split test -n <namespace>``
- ``offshoot evaluations run <retriever-or-alias> <dataset> -n <namespace>`` (waits, prints)
- ``offshoot evaluations report <id>... -n <namespace> --out out/report.html``
- ``offshoot collections diff <a> <b> -n <namespace>``

The connection options and one-line errors are the main CLI's (``offshoot.cli``), imported when
registering: that module imports this one at its end, after defining them.
"""

# No `from __future__ import annotations`: typer must see the local `Namespace` alias.

import json
from pathlib import Path
from typing import Annotated, Any

import typer


def register(app: typer.Typer) -> None:
    from offshoot.cli import (
        ApiKey,
        AsJson,
        DataDir,
        Url,
        connect,
        console,
        one_line_errors,
    )
    from services.evaluation.reports import comparison_table

    Namespace = Annotated[str, typer.Option("--namespace", "-n", help="Namespace id or name.")]
    datasets = typer.Typer(
        help="Evaluation datasets: queries with judgements.", no_args_is_help=True
    )
    evaluations = typer.Typer(help="Evaluations of retrievers on datasets.", no_args_is_help=True)
    collections = typer.Typer(help="Collections: change detection.", no_args_is_help=True)
    app.add_typer(datasets, name="datasets")
    app.add_typer(evaluations, name="evaluations")
    app.add_typer(collections, name="collections")

    def emit(record: Any, as_json: bool) -> None:
        typer.echo(json.dumps(record, indent=2, default=str))

    @datasets.command("import-beir")
    @one_line_errors
    def import_beir(
        folder: Annotated[Path, typer.Argument(help="A BEIR folder (queries.jsonl(.gz), qrels/).")],
        namespace: Namespace,
        split: str = "test",
        name: Annotated[str | None, typer.Option(help="Dataset name (default <folder>-<split>).")] = None,
        document_id_field: Annotated[str, typer.Option(help="Payload field holding corpus ids.")] = "_id",
        data_dir: DataDir = None, url: Url = None, api_key: ApiKey = None, as_json: AsJson = False,
    ) -> None:  # fmt: skip
        """Create a dataset from a BEIR folder's queries and qrels (the corpus is not read)."""
        with connect(data_dir, url, api_key) as client:
            created = client.with_namespace(namespace).datasets.import_beir(
                folder, split=split, dataset_name=name, document_id_field=document_id_field
            )
            if as_json:
                emit(created, as_json)
            else:
                typer.echo(f"{created['dataset_id']} {created['dataset_name']}: "
                           f"{created['query_count']} queries")  # fmt: skip

    @evaluations.command("run")
    @one_line_errors
    def run(
        retriever: Annotated[str, typer.Argument(help="A retriever id or name, or an alias.")],
        dataset: Annotated[str, typer.Argument(help="A dataset id or name.")],
        namespace: Namespace,
        k: Annotated[list[int] | None, typer.Option("--k", help="Cutoffs (repeat).")] = None,
        data_dir: DataDir = None, url: Url = None, api_key: ApiKey = None, as_json: AsJson = False,
    ) -> None:  # fmt: skip
        """Run an evaluation, wait for it and print its table."""
        with connect(data_dir, url, api_key) as client:
            group = client.with_namespace(namespace).retrievers.evaluations
            started = group.run(retriever, dataset, k_values=k or [1, 5, 10, 20, 100])
            with console.status(f"evaluating {retriever} on {dataset} ({started['task_id']})"):
                done = group.wait(started["evaluation_id"])
            if done["status"] != "COMPLETED":
                raise typer.BadParameter(f"evaluation {done['status']}: {done.get('error')}")
            if as_json:
                emit(done, as_json)
            else:
                console.print(comparison_table([done]))
                typer.echo(done["evaluation_id"])

    @evaluations.command("report")
    @one_line_errors
    def report(
        evaluation_ids: Annotated[list[str], typer.Argument(help="Evaluation ids; the first is the baseline.")],
        namespace: Namespace,
        out: Annotated[Path, typer.Option("--out", help="Where to write the HTML.")] = Path("out/report.html"),
        benchmark: Annotated[str | None, typer.Option(help="Also show this benchmark.")] = None,
        data_dir: DataDir = None, url: Url = None, api_key: ApiKey = None,
    ) -> None:  # fmt: skip
        """Print the delta table and write the self-contained HTML report."""
        with connect(data_dir, url, api_key) as client:
            group = client.with_namespace(namespace).retrievers.evaluations
            found = [group.get(i) for i in evaluation_ids]
            console.print(comparison_table(found, evaluation_ids[0]))
            written = group.report(evaluation_ids, out, benchmark_id=benchmark)
            typer.echo(f"wrote {written}")

    @collections.command("diff")
    @one_line_errors
    def diff(
        collection_a: str, collection_b: str, namespace: Namespace,
        data_dir: DataDir = None, url: Url = None, api_key: ApiKey = None, as_json: AsJson = False,
    ) -> None:  # fmt: skip
        """What changes from collection a to b (NONE | CONFIG_CHANGE | MODEL_UPDATE |
        DIMENSION_CHANGE) and what must be re-embedded."""
        with connect(data_dir, url, api_key) as client:
            result = client.with_namespace(namespace).collections.diff(collection_a, collection_b)
            if as_json:
                emit(result, as_json)
                return
            typer.echo(f"{result['change']}: re-embed {result['reembed']}")
            for difference in result["differences"]:
                typer.echo(f"  {difference['field']}: {difference['a']!r} → {difference['b']!r}")
