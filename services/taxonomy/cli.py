"""CLI commands of the taxonomy service, added to ``offshoot`` by ``register(app)``:

- ``offshoot taxonomies list -n <namespace>`` / ``get <taxonomy>``
- ``offshoot taxonomies create --file taxonomy.json -n <namespace>`` (the HTTP body)
- ``offshoot taxonomies apply <taxonomy> <collection> -n <namespace> [--merge append]`` (waits,
  with a progress bar)
- ``offshoot clusters run <collection> <feature-uri> -n <namespace> --k 8 [--write-back]``
  (create + execute + wait; prints sizes, labels and the quality metrics)

Connection options and one-line errors are the main CLI's, as for ``services.evaluation.cli``.
"""

# No `from __future__ import annotations`: typer must see the local `Namespace` alias.

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import Progress

from contracts.tasks import TaskStatus
from libs.errors import InvalidInputError, OffshootError

TAXONOMY_COLUMNS = ["taxonomy_id", "taxonomy_name", "taxonomy_type", "version"]


def _finish(client: Any, task_id: str, description: str) -> Any:
    """Poll a task with a progress bar; its final record, or a one-line error if it failed."""
    with Progress(transient=True) as progress:
        shown = progress.add_task(description, total=None)
        while not TaskStatus((task := client.tasks.get(task_id))["status"]).finished:
            counts = task.get("progress") or {}
            progress.update(shown, completed=counts.get("done", 0), total=counts.get("total"))
            time.sleep(0.2)
    if task["status"] != TaskStatus.COMPLETED:
        raise OffshootError(f"task {task_id} {task['status']}: {task.get('error')}")
    return task


def register(app: typer.Typer) -> None:
    from offshoot.cli import ApiKey, AsJson, DataDir, Url, connect, console, one_line_errors, show

    Namespace = Annotated[str, typer.Option("--namespace", "-n", help="Namespace id or name.")]
    taxonomies = typer.Typer(
        help="Taxonomies: retrieval-backed labels written onto documents.", no_args_is_help=True
    )
    clusters = typer.Typer(help="Clusters of a collection's vectors.", no_args_is_help=True)
    app.add_typer(taxonomies, name="taxonomies")
    app.add_typer(clusters, name="clusters")

    @taxonomies.command("list")
    @one_line_errors
    def taxonomies_list(
        namespace: Namespace,
        data_dir: DataDir = None, url: Url = None, api_key: ApiKey = None, as_json: AsJson = False,
    ) -> None:  # fmt: skip
        """List the namespace's taxonomies."""
        with connect(data_dir, url, api_key) as client:
            show(client.with_namespace(namespace).taxonomies.list(), TAXONOMY_COLUMNS, as_json)

    @taxonomies.command("get")
    @one_line_errors
    def taxonomies_get(
        taxonomy: str, namespace: Namespace,
        data_dir: DataDir = None, url: Url = None, api_key: ApiKey = None,
    ) -> None:  # fmt: skip
        """Print a taxonomy as JSON."""
        with connect(data_dir, url, api_key) as client:
            found = client.with_namespace(namespace).taxonomies.get(taxonomy)
            typer.echo(json.dumps(found, indent=2, default=str))

    @taxonomies.command("create")
    @one_line_errors
    def taxonomies_create(
        namespace: Namespace,
        file: Annotated[Path, typer.Option("--file", help="The taxonomy as JSON (HTTP body).")],
        data_dir: DataDir = None, url: Url = None, api_key: ApiKey = None,
    ) -> None:  # fmt: skip
        """Create a flat or hierarchical taxonomy from a JSON file."""
        try:
            body = json.loads(file.read_text())
        except (OSError, ValueError) as error:
            raise InvalidInputError(f"--file {file}: {error}") from None
        with connect(data_dir, url, api_key) as client:
            created = client.with_namespace(namespace).taxonomies.create(body)
            typer.echo(f"{created['taxonomy_id']} {created['taxonomy_name']}")

    @taxonomies.command("apply")
    @one_line_errors
    def taxonomies_apply(
        taxonomy: str, collection: str, namespace: Namespace,
        merge: Annotated[str, typer.Option(help="replace | append")] = "replace",
        data_dir: DataDir = None, url: Url = None, api_key: ApiKey = None,
    ) -> None:  # fmt: skip
        """Label every document of the collection; waits and prints what was written."""
        with connect(data_dir, url, api_key) as client:
            scoped = client.with_namespace(namespace)
            started = scoped.taxonomies.apply(taxonomy, collection, merge=merge)
            done = _finish(scoped, started["task_id"], f"applying {taxonomy} to {collection}")
            typer.echo(json.dumps(done.get("result"), default=str))

    @clusters.command("run")
    @one_line_errors
    def clusters_run(
        collection: str, feature_uri: str, namespace: Namespace,
        algorithm: Annotated[str, typer.Option(help="kmeans | hdbscan | agglomerative")] = "kmeans",
        k: Annotated[int | None, typer.Option("--k", help="n_clusters (kmeans, agglomerative).")] = None,
        write_back: Annotated[bool, typer.Option(help="Write cluster_id onto documents.")] = False,
        data_dir: DataDir = None, url: Url = None, api_key: ApiKey = None, as_json: AsJson = False,
    ) -> None:  # fmt: skip
        """Cluster a collection's vectors of one feature URI, wait, print the outcome."""
        params = {} if k is None else {"n_clusters": k}
        with connect(data_dir, url, api_key) as client:
            scoped = client.with_namespace(namespace)
            created = scoped.clusters.create(
                collection, feature_uri, algorithm, params, write_back=write_back
            )
            started = scoped.clusters.execute(created["cluster_id"])
            _finish(scoped, started["task_id"], f"clustering {collection}")
            found = scoped.clusters.get(created["cluster_id"])
            if as_json:
                typer.echo(json.dumps(found, indent=2, default=str))
                return
            run = found.get("last_execution") or {}
            metrics = run.get("metrics") or {}
            console.print(", ".join(f"{name} {value:.4f}" if value is not None else f"{name} —"
                                    for name, value in metrics.items()))  # fmt: skip
            for cluster in run.get("clusters") or []:
                typer.echo(f"  cluster {cluster.get('cluster')}: {cluster.get('size')} "
                           f"documents, {cluster.get('label')!r}")  # fmt: skip
