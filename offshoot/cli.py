"""The ``offshoot`` command. It mirrors the SDK; user mistakes print one line and exit 2.

Connection: ``--url`` and ``--api-key`` (or ``OFFSHOOT_URL`` / ``OFFSHOOT_API_KEY``) for a
running API, or ``--data-dir`` (``OFFSHOOT_DATA_DIR``) to run everything embedded in-process.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from libs.errors import NotFoundError, OffshootError
from offshoot.client import Client, Record

app = typer.Typer(
    help="Offshoot: branchable, versioned retrieval over AI data.", no_args_is_help=True
)
admin = typer.Typer(help="Operator commands (bootstrap).", no_args_is_help=True)
namespaces = typer.Typer(
    help="Namespaces: environments you can clone in O(1).", no_args_is_help=True
)
tasks = typer.Typer(help="Tasks: the status of asynchronous work.", no_args_is_help=True)
app.add_typer(admin, name="admin")
app.add_typer(namespaces, name="namespaces")
app.add_typer(tasks, name="tasks")
console = Console()

P = ParamSpec("P")
R = TypeVar("R")

DataDir = Annotated[
    Path | None, typer.Option(envvar="OFFSHOOT_DATA_DIR", help="Run embedded on this directory.")
]
Url = Annotated[str | None, typer.Option(envvar="OFFSHOOT_URL", help="Base URL of a running API.")]
ApiKey = Annotated[str | None, typer.Option(envvar="OFFSHOOT_API_KEY", help="API key for --url.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def one_line_errors(command: Callable[P, R]) -> Callable[P, R]:
    """User mistakes and API refusals become ``error: ...`` and exit code 2, never a traceback."""

    @wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except (OffshootError, TimeoutError) as error:
            typer.echo(f"error: {error}", err=True)
            raise typer.Exit(2) from None

    return run


@contextmanager
def connect(data_dir: Path | None, url: str | None, api_key: str | None) -> Iterator[Client]:
    if data_dir is not None and url is not None:
        raise OffshootError("give either --data-dir or --url, not both")
    if url is not None:
        if not api_key:
            raise OffshootError("--url needs --api-key (or OFFSHOOT_API_KEY)")
        client = Client(url, api_key)
    else:
        client = Client.embedded(data_dir or Path(".offshoot"))
    with client:
        yield client


def show(records: list[Record] | Record, columns: list[str], as_json: bool) -> None:
    rows = records if isinstance(records, list) else [records]
    if as_json:
        typer.echo(json.dumps(records, indent=2, default=str))
        return
    table = Table()
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(_cell(row.get(c)) for c in columns))
    console.print(table)


def _cell(value: Any) -> str:
    return (
        "-"
        if value is None
        else value
        if isinstance(value, str)
        else json.dumps(value, default=str)
    )


@app.callback()
def main() -> None:
    """Offshoot command line."""


@app.command()
@one_line_errors
def demo(
    data_dir: Annotated[
        Path | None,
        typer.Option(help="Keep the embedded data here (default: a temporary directory)."),
    ] = None,
    documents: Annotated[
        int, typer.Option(min=1, max=5183, help="SciFact abstracts to ingest (all by default).")
    ] = 5183,
    model: Annotated[
        str, typer.Option(help="The candidate model staging migrates to (name@version).")
    ] = "minilm@v1",
    out: Annotated[Path, typer.Option(help="Where the HTML report goes.")] = Path("out"),
) -> None:
    """The model-migration story on the embedded default: ingest, clone, re-embed, evaluate,
    shadow, benchmark, promote, roll back, report."""
    from offshoot.demo import run_demo

    run_demo(data_dir, documents, model=model, out=out)


@app.command()
@one_line_errors
def serve(
    data_dir: DataDir = None,
    database_url: Annotated[
        str | None, typer.Option(envvar="OFFSHOOT_DATABASE_URL", help="PostgreSQL event store.")
    ] = None,
    kafka: Annotated[
        str | None, typer.Option(envvar="OFFSHOOT_KAFKA", help="Kafka bootstrap servers.")
    ] = None,
    qdrant_url: Annotated[
        str | None,
        typer.Option(
            envvar="OFFSHOOT_QDRANT_URL",
            help="A Qdrant server (default: Qdrant Edge in --data-dir).",
        ),
    ] = None,
    host: Annotated[str, typer.Option(envvar="OFFSHOOT_HOST")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="OFFSHOOT_PORT")] = 8000,
    role: Annotated[
        str,
        typer.Option(
            envvar="OFFSHOOT_ROLE",
            help="Services this process runs (comma-separated): catalog, extractor, retrieval, "
            "evaluation, taxonomy, webhooks, gateway (the HTTP API) or all.",
        ),
    ] = "all",
    bus_prefix: Annotated[
        str | None,
        typer.Option(envvar="OFFSHOOT_BUS_PREFIX", help="Prefix of every topic and group."),
    ] = None,
    grpc_port: Annotated[
        int | None,
        typer.Option(envvar="OFFSHOOT_GRPC_PORT", help="Also serve retrieval Execute over gRPC."),
    ] = None,
) -> None:
    """Serve the HTTP API: embedded on --data-dir, or on PostgreSQL + Kafka, one process per
    role if you like (see README, Distributed mode). SIGTERM shuts down gracefully."""
    from offshoot.roles import Settings, serve

    settings = Settings.from_env(
        roles=role, database_url=database_url, kafka=kafka, bus_prefix=bus_prefix,
        qdrant_url=qdrant_url, data_dir=data_dir, host=host, port=port, grpc_port=grpc_port,
    )  # fmt: skip
    asyncio.run(serve(settings, echo=typer.echo))


@admin.command("init")
@one_line_errors
def admin_init(
    data_dir: DataDir = None,
    database_url: Annotated[
        str | None, typer.Option(help="Bootstrap a PostgreSQL event store instead.")
    ] = None,
    organization: Annotated[str, typer.Option(help="Name of the first organization.")] = "default",
) -> None:
    """Create the first organization and its admin key (shown once)."""
    from offshoot.runtime import Runtime

    async def run() -> tuple[str, str]:
        runtime = await Runtime.open(data_dir=data_dir or Path(".offshoot"), store_url=database_url)
        try:
            organization_id, key = await runtime.catalog.bootstrap(organization)
            return organization_id, key.api_key
        finally:
            await runtime.close()

    organization_id, api_key = asyncio.run(run())
    typer.echo(f"organization {organization_id} created; admin API key (shown once):\n{api_key}")


NAMESPACE_COLUMNS = [
    "namespace_name",
    "namespace_id",
    "description",
    "parent_namespace_id",
    "forked_at_position",
]
TASK_COLUMNS = ["task_id", "kind", "status", "progress", "error"]


@app.command()
@one_line_errors
def search(
    target: Annotated[str, typer.Argument(help="An alias name, or a retriever id or name.")],
    query: Annotated[str, typer.Argument(help="The query text (the retriever's INPUT.query).")],
    namespace: Annotated[str, typer.Option("--namespace", "-n", help="Namespace id or name.")],
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 10,
    user_id: Annotated[
        str | None, typer.Option(help="Who asks: picks an alias's canary variant, stably.")
    ] = None,
    data_dir: DataDir = None, url: Url = None, api_key: ApiKey = None, as_json: AsJson = False,
) -> None:  # fmt: skip
    """Run a query through an alias (or a retriever) and print the ranked documents."""
    with connect(data_dir, url, api_key) as client:
        scoped = client.with_namespace(namespace)
        try:
            result = scoped.aliases.execute(target, {"query": query}, limit=limit, user_id=user_id)
        except NotFoundError:
            result = scoped.retrievers.execute(target, {"query": query}, limit=limit)
        if as_json:
            typer.echo(json.dumps(result, indent=2, default=str))
            return
        served = result.get("served_by") or target
        if result.get("variant") == "canary":
            served += " (canary)"
        table = Table(title=f"{len(result['results'])} results from {served}")
        for column in ("#", "score", "document", "text"):
            table.add_column(column)
        for rank, hit in enumerate(result["results"], start=1):
            payload = hit.get("payload", {})
            text = str(payload.get("title") or payload.get("text") or "")[:80]
            table.add_row(
                str(rank), f"{hit['score']:.4f}", payload.get("_id") or hit["document_id"], text
            )
        console.print(table)


@namespaces.command("list")
@one_line_errors
def namespaces_list(
    data_dir: DataDir = None, url: Url = None, api_key: ApiKey = None, as_json: AsJson = False
) -> None:
    """List the namespaces this key may see."""
    with connect(data_dir, url, api_key) as client:
        show(client.namespaces.list(), NAMESPACE_COLUMNS, as_json)


@namespaces.command("get")
@one_line_errors
def namespaces_get(
    namespace: str,
    as_of: Annotated[int | None, typer.Option(help="Read it as it was at this global position.")] = None,
    data_dir: DataDir = None, url: Url = None, api_key: ApiKey = None, as_json: AsJson = False,
) -> None:  # fmt: skip
    """Show one namespace (by id or name)."""
    with connect(data_dir, url, api_key) as client:
        show(client.namespaces.get(namespace, as_of=as_of), NAMESPACE_COLUMNS, as_json)


@namespaces.command("create")
@one_line_errors
def namespaces_create(
    name: str, description: str = "",
    data_dir: DataDir = None, url: Url = None, api_key: ApiKey = None, as_json: AsJson = False,
) -> None:  # fmt: skip
    """Create a namespace."""
    with connect(data_dir, url, api_key) as client:
        show(client.namespaces.create(name, description), NAMESPACE_COLUMNS, as_json)


@namespaces.command("clone")
@one_line_errors
def namespaces_clone(
    namespace: str,
    name: Annotated[str, typer.Option("--name", help="Name of the clone.")],
    with_taxonomies: Annotated[bool, typer.Option(help="Also clone taxonomies.")] = False,
    data_dir: DataDir = None, url: Url = None, api_key: ApiKey = None, as_json: AsJson = False,
) -> None:  # fmt: skip
    """Clone a namespace (a forked event stream: O(1)) and wait for the task."""
    with connect(data_dir, url, api_key) as client:
        body = {"namespace_name": name, "include_resources": {"taxonomies": with_taxonomies}}
        task = client.namespaces.clone(namespace, body)
        with console.status(f"cloning {namespace} into {name} ({task.task_id})"):
            done = client.tasks.wait(task.task_id)
        if done.status != "COMPLETED":
            raise OffshootError(f"clone {done.status}: {done.error}")
        show(client.namespaces.get(name), NAMESPACE_COLUMNS, as_json)


@namespaces.command("delete")
@one_line_errors
def namespaces_delete(
    namespace: str, data_dir: DataDir = None, url: Url = None, api_key: ApiKey = None
) -> None:
    """Delete a namespace (its clones keep what they inherited)."""
    with connect(data_dir, url, api_key) as client:
        client.namespaces.delete(namespace)
        typer.echo(f"deleted {namespace}")


@tasks.command("get")
@one_line_errors
def tasks_get(
    task_id: str,
    data_dir: DataDir = None,
    url: Url = None,
    api_key: ApiKey = None,
    as_json: AsJson = False,
) -> None:
    """Show a task."""
    with connect(data_dir, url, api_key) as client:
        show(client.tasks.get(task_id), TASK_COLUMNS, as_json)


@tasks.command("list")
@one_line_errors
def tasks_list(
    data_dir: DataDir = None, url: Url = None, api_key: ApiKey = None, as_json: AsJson = False
) -> None:
    """List recent tasks."""
    with connect(data_dir, url, api_key) as client:
        show(client.tasks.list(), TASK_COLUMNS, as_json)


from services.evaluation.cli import register as register_evaluation  # noqa: E402 (needs the above)
from services.taxonomy.cli import register as register_taxonomy  # noqa: E402

register_evaluation(app)
register_taxonomy(app)
