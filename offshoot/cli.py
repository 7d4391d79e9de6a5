"""The ``offshoot`` command. User mistakes print one line and exit 2; never a traceback."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from libs.errors import OffshootError

app = typer.Typer(
    help="Offshoot: branchable, versioned retrieval over AI data.", no_args_is_help=True
)


@app.callback()
def main() -> None:
    """Offshoot command line."""


@app.command()
def demo(
    data_dir: Annotated[
        Path | None,
        typer.Option(help="Keep the embedded store here (default: a temporary directory)."),
    ] = None,
) -> None:
    """Run the embedded scenario: create a namespace, fork it, diverge both sides, print both states."""
    from offshoot.demo import run_demo

    try:
        run_demo(data_dir)
    except OffshootError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
