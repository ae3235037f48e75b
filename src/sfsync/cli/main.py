"""The ``sfsync`` command line.

Exit codes: 0 success, 1 a sync failed, 2 the configuration or the command line is wrong.
"""

from __future__ import annotations

import enum
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from sfsync import __version__
from sfsync.cli.conflicts import conflicts_app

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


def print_config_error(exc: Exception) -> None:
    """Every problem of a configuration error (file:line:col, field, fix), unwrapped, so
    that editors can jump to the place; other configuration errors as one line."""
    problems = getattr(exc, "problems", None)
    for problem in problems or ():
        err_console.print(problem.render(), markup=False, soft_wrap=True)
    if not problems:
        err_console.print(f"configuration error: {exc}", markup=False, soft_wrap=True)


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
            err_console.print(problem.render(), markup=False, soft_wrap=True)
        noun = "problem" if len(problems) == 1 else "problems"
        err_console.print(f"{len(problems)} {noun} in {config}", markup=False)
        raise typer.Exit(EXIT_CONFIG)
    out_console.print(f"{config}: OK", markup=False)


@app.command()
def run(
    config: Annotated[Path, typer.Argument(help="The sync configuration file (YAML).")],
    sync: Annotated[
        list[str] | None,
        typer.Option("--sync", "-s", help="Run only this sync (repeatable); default: all enabled."),
    ] = None,
) -> None:
    """Run the configured syncs continuously: snapshot where needed, then keep them current.

    Polling syncs re-read changes every `interval`; real-time syncs (`mode: realtime`) follow
    Change Data Capture as it happens. Two-way syncs (`direction: two_way`) do both sides at
    once and settle conflicts by policy (docs/conflicts.md). Ctrl-C or SIGTERM stops cleanly:
    the batch in hand is finished and checkpointed, nothing is lost; a second Ctrl-C stops at
    once.
    """
    raise typer.Exit(_run(config, once=False, only=sync or []))


@app.command("sync")
def sync_once(
    config: Annotated[Path, typer.Argument(help="The sync configuration file (YAML).")],
    once: Annotated[
        bool,
        typer.Option("--once", help="One pass: snapshot where needed, then catch up, then exit."),
    ] = False,
    sync: Annotated[
        list[str] | None,
        typer.Option("--sync", "-s", help="Run only this sync (repeatable); default: all enabled."),
    ] = None,
) -> None:
    """Bring the configured syncs up to date once and exit (exit code 1 if any failed)."""
    if not once:
        err_console.print("sfsync sync runs one pass; add --once (or use `sfsync run`)")
        raise typer.Exit(EXIT_CONFIG)
    raise typer.Exit(_run(config, once=True, only=sync or []))


def _run(config: Path, *, once: bool, only: list[str]) -> int:
    import anyio

    from sfsync.cli.run import exit_code, run_config
    from sfsync.core.errors import ConfigError
    from sfsync.runtime.tuning import tune_gc

    tune_gc()  # a long-running process: see sfsync.runtime.tuning
    try:
        statuses = anyio.run(lambda: run_config(config, once=once, only=only, console=out_console))
    except ConfigError as exc:
        print_config_error(exc)
        return EXIT_CONFIG
    return exit_code(statuses)


class DemoMode(enum.Enum):
    REALTIME = "realtime"
    POLLING = "polling"


@app.command()
def demo(
    duration: Annotated[
        float, typer.Option(help="Seconds of live syncing while the org changes.")
    ] = 20.0,
    mode: Annotated[
        DemoMode,
        typer.Option(help="realtime (Change Data Capture over the Pub/Sub API) or polling."),
    ] = DemoMode.REALTIME,
    interval: Annotated[float, typer.Option(help="Seconds between polls (polling mode).")] = 2.0,
    accounts: Annotated[int, typer.Option(help="Accounts in the seeded org.")] = 2000,
    workdir: Annotated[
        Path, typer.Option(help="Where the SQLite target and state go (emptied first).")
    ] = Path(".sfsync/demo"),
) -> None:
    """The whole path with nothing to set up: emulator -> SQLite, snapshot then live changes.

    Starts a local Salesforce org (the emulator) seeded with realistic data, replicates it into
    a SQLite file, follows its changes in real time (Change Data Capture) while records change,
    and proves the copy equals the org.
    """
    import anyio

    from sfsync.cli.demo import prepare_workdir, run_demo

    prepare_workdir(workdir)
    code = anyio.run(
        lambda: run_demo(
            workdir=workdir,
            duration=duration,
            interval=interval,
            accounts=accounts,
            console=out_console,
            mode=mode.value,
        )
    )
    raise typer.Exit(code)


checkpoints_app = typer.Typer(
    help="Where each sync stands, and starting a sync over.", no_args_is_help=True
)
app.add_typer(checkpoints_app, name="checkpoints")


@checkpoints_app.command("list")
def checkpoints_list(
    config: Annotated[Path, typer.Argument(help="The sync configuration file (YAML).")],
    sync: Annotated[
        list[str] | None, typer.Option("--sync", "-s", help="Only this sync (repeatable).")
    ] = None,
) -> None:
    """Each sync's checkpoint: where it is kept, the snapshot's progress, the stream positions."""
    import anyio
    from rich.table import Table

    from sfsync.app import default_registry, load, read_checkpoints

    registry = default_registry()
    cfg = load(config, registry)
    views = anyio.run(lambda: read_checkpoints(cfg, registry, sync or []))
    table = Table("sync", "kept in", "snapshot", "done", "positions")
    for view in views:
        cp = view.checkpoint
        if cp is None:
            table.add_row(view.sync, view.location, "never run", "", "")
            continue
        positions = "\n".join(f"{p.stream} @ {p.token}" for p in cp.positions.values())
        table.add_row(
            view.sync,
            view.location,
            cp.snapshot.status.value,
            ", ".join(sorted(cp.snapshot.done)),
            positions,
        )
    out_console.print(table)


@checkpoints_app.command("show")
def checkpoints_show(
    config: Annotated[Path, typer.Argument(help="The sync configuration file (YAML).")],
    sync: Annotated[str, typer.Argument(help="The sync's name.")],
) -> None:
    """Print one sync's checkpoint as stored (JSON)."""
    import anyio

    from sfsync.app import default_registry, load, read_checkpoints

    registry = default_registry()
    cfg = load(config, registry)
    (view,) = anyio.run(lambda: read_checkpoints(cfg, registry, [sync]))
    if view.checkpoint is None:
        out_console.print(f"{sync}: no checkpoint (it has never run, or was reset)")
        return
    out_console.print_json(view.checkpoint.to_json())


@checkpoints_app.command("reset")
def checkpoints_reset(
    config: Annotated[Path, typer.Argument(help="The sync configuration file (YAML).")],
    sync: Annotated[list[str], typer.Argument(help="The syncs to start over.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do it without asking.")] = False,
) -> None:
    """Forget syncs' checkpoints: their next run starts with a full snapshot.

    Rows already in the target stay; the new snapshot rewrites them (idempotently).
    """
    import anyio

    from sfsync.app import default_registry, load, reset_checkpoints

    registry = default_registry()
    cfg = load(config, registry)
    if not yes and not typer.confirm(f"Start {', '.join(sync)} over from a full snapshot?"):
        raise typer.Exit(1)
    views = anyio.run(lambda: reset_checkpoints(cfg, registry, sync))
    for view in views:
        out_console.print(f"{view.sync}: checkpoint forgotten ({view.location})")


deadletters_app = typer.Typer(
    help="Records that could not be applied, kept with their reason.", no_args_is_help=True
)
app.add_typer(deadletters_app, name="deadletters")
app.add_typer(conflicts_app, name="conflicts")


@deadletters_app.command("list")
def deadletters_list(
    config: Annotated[Path, typer.Argument(help="The sync configuration file (YAML).")],
    sync: Annotated[str | None, typer.Option("--sync", "-s", help="Only this sync.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, oldest first.")] = 50,
    payload: Annotated[bool, typer.Option(help="Also print each record's data.")] = False,
) -> None:
    """List dead letters: what failed, why, and how to fix it."""
    import anyio
    from rich.table import Table

    from sfsync.app import load
    from sfsync.core.deadletter import DeadLetter
    from sfsync.stores.checkpoints import open_state

    cfg = load(config)

    async def fetch() -> tuple[int, list[DeadLetter]]:
        state = await open_state(cfg.state.url)
        try:
            return await state.dead_letters.count(sync), list(
                await state.dead_letters.list(sync, limit=limit)
            )
        finally:
            await state.aclose()

    total, letters = anyio.run(fetch)
    table = Table("when", "sync", "kind", "object", "key", "code", "message", "fix")
    for d in letters:
        table.add_row(
            d.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            d.sync,
            d.kind.value,
            d.entity,
            d.key,
            d.code or "",
            d.message,
            d.hint or "",
        )
    out_console.print(table)
    if payload:
        for d in letters:
            out_console.print(d.payload, markup=False, soft_wrap=True)
    out_console.print(f"{len(letters)} of {total} dead letters shown")


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


def _mount_emulator() -> None:
    from sfsync.emulator.cli import emulator_app

    app.add_typer(emulator_app, name="emulator")


_mount_emulator()

from sfsync.cli.db import db_app  # noqa: E402 - a sub-command group, mounted like the emulator's

app.add_typer(db_app, name="db")


def main() -> None:
    """Entry point of the ``sfsync`` console script.

    Errors sfsync raises on purpose end the process with their message and fix, not a
    traceback: configuration problems with exit code 2, the others with 1.
    """
    from sfsync.core.errors import ConfigError, SyncError

    try:
        app()
    except ConfigError as exc:
        print_config_error(exc)
        sys.exit(EXIT_CONFIG)
    except SyncError as exc:
        err_console.print(f"error: {exc}", markup=False, soft_wrap=True)
        sys.exit(1)
    except KeyboardInterrupt:  # pragma: no cover - interactive only
        sys.exit(130)
