"""The ``sfsync`` command line.

Exit codes: 0 success, 1 a sync failed, 2 the configuration or the command line is wrong.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from sfsync import __version__

app = typer.Typer(
    name="sfsync",
    help=(
        "Keep Salesforce and the systems around it in sync: real time (Change Data Capture), "
        "near-real time (polling) and batch (Bulk API), in either direction."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

EXIT_CONFIG = 2
err_console = Console(stderr=True, highlight=False)
out_console = Console(highlight=False)


def _version(value: bool) -> None:
    if value:
        out_console.print(f"sfsync {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """sfsync: the hub that keeps Salesforce and your other systems consistent."""


@app.command()
def validate(
    config: Annotated[Path, typer.Argument(help="The sync configuration file (YAML).")],
) -> None:
    """Check a configuration file completely, without connecting to anything.

    Prints every problem at once, each with file, line, field and how to fix it, and exits 2
    if there is any; exits 0 when the configuration is valid.
    """
    from sfsync.app import default_registry
    from sfsync.config.validate import validate_file

    problems = validate_file(config, default_registry())
    if problems:
        for problem in problems:
            err_console.print(problem.render(), markup=False)
        noun = "problem" if len(problems) == 1 else "problems"
        err_console.print(f"{len(problems)} {noun} in {config}", markup=False)
        raise typer.Exit(EXIT_CONFIG)
    out_console.print(f"{config}: OK", markup=False)


@app.command()
def connectors() -> None:
    """List the connectors installed, with what each can do."""
    from rich.table import Table

    from sfsync.app import default_registry

    registry = default_registry()
    table = Table("type", "roles", "summary")
    for name in registry.names():
        spec = registry.get(name)
        table.add_row(name, ", ".join(spec.roles) or "config only", spec.summary)
    out_console.print(table)


def main() -> None:
    """Entry point of the ``sfsync`` console script."""
    try:
        app()
    except KeyboardInterrupt:  # pragma: no cover - interactive only
        sys.exit(130)
