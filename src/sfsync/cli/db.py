"""``sfsync db``: set up and take down change capture in the databases syncs read from.

A sync whose ``source`` is a SQL connection (``postgres``, ``mysql``, ``mariadb``, ``sqlite``)
with ``capture: triggers`` (the default) reads the change log that ``install-capture``
creates. See ``docs/sql-capture.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

if TYPE_CHECKING:
    from sfsync.connectors.sql.client import ConnectionSettings
    from sfsync.spi.spec import EntitySelection

db_app = typer.Typer(
    help="Change capture (change log table and triggers) in SQL databases that syncs read from.",
    no_args_is_help=True,
)

_out = Console(highlight=False)
_err = Console(stderr=True, highlight=False)
EXIT_CONFIG = 2

ConfigArg = Annotated[Path, typer.Argument(help="The sync configuration file (YAML).")]
SyncOpt = Annotated[
    list[str] | None,
    typer.Option("--sync", "-s", help="Only the source of this sync (repeatable); default: all."),
]
DryRunOpt = Annotated[
    bool, typer.Option("--dry-run", help="Print the SQL instead of running it; change nothing.")
]


@dataclass
class _Target:
    """One SQL connection that syncs read from, with every object they read from it."""

    name: str
    settings: ConnectionSettings
    entities: list[EntitySelection] = field(default_factory=list)
    syncs: list[str] = field(default_factory=list)

    @property
    def where(self) -> str:
        """How messages name it: ``connection db (sqlite:///x.db)``."""
        return f"connection {self.name} ({self.settings.display_url})"


def _targets(config: Path, syncs: list[str]) -> list[_Target]:
    from sfsync.app import check_sync_names, default_registry, load, selection
    from sfsync.connectors.sql.config import SQL_CONNECTION_MODELS

    cfg = load(config, default_registry())
    check_sync_names(cfg, syncs)
    sql_models = tuple(SQL_CONNECTION_MODELS.values())
    targets: dict[str, _Target] = {}
    for sync in cfg.syncs:
        if syncs and sync.name not in syncs:
            continue
        conn = cfg.connections[sync.source]
        settings = conn.config
        if not isinstance(settings, sql_models):
            continue
        target = targets.setdefault(sync.source, _Target(sync.source, settings))  # type: ignore[arg-type]
        target.syncs.append(sync.name)
        known = {(e.name, e.target) for e in target.entities}
        for obj in sync.objects:
            chosen = selection(obj)
            if (chosen.name, chosen.target) not in known:
                target.entities.append(chosen)
    if not targets:
        from sfsync.core.errors import ConfigError

        scope = f"syncs {', '.join(syncs)}" if syncs else "syncs"
        raise ConfigError(
            f"none of the {scope} reads from a SQL database",
            hint="capture is for syncs whose `source` is a postgres, mysql, mariadb or "
            "sqlite connection",
        )
    return list(targets.values())


def _guarded(action: Callable[[], None]) -> None:
    from sfsync.core.errors import ConfigError, SyncError

    try:
        action()
    except ConfigError as exc:
        from sfsync.cli.main import print_config_error

        print_config_error(exc)
        raise typer.Exit(EXIT_CONFIG) from None
    except SyncError as exc:
        _err.print(f"error: {exc}", markup=False, soft_wrap=True)
        raise typer.Exit(1) from None


def _print_sql(header: str, statements: list[str]) -> None:
    _out.print(f"-- {header}", markup=False, soft_wrap=True)
    for statement in statements:
        _out.print(f"{statement};", markup=False, soft_wrap=True)
    _out.print("")


@db_app.command("install-capture")
def install_capture(config: ConfigArg, sync: SyncOpt = None, dry_run: DryRunOpt = False) -> None:
    """Create the change log table and the triggers that fill it.

    For every table that a sync reads from a SQL database. Idempotent: run it again after
    adding a table or a column.
    """

    def act() -> None:
        from sfsync.connectors.sql.capture import install
        from sfsync.connectors.sql.client import dialect_of

        for target in _targets(config, sync or []):
            settings, where = target.settings, target.where
            if settings.capture != "triggers":
                _out.print(f"{where}: capture: updated_at needs nothing installed", markup=False)
                continue
            objects = install.capture_objects(target.entities)
            with install.connected(settings) as conn:
                statements = install.plan_install(conn, settings, objects)
                if dry_run:
                    _print_sql(f"{where}: would run", statements)
                    continue
                install.execute(conn, dialect_of(settings), statements)
            tables = ", ".join(dict.fromkeys(o.table for o in objects))
            _out.print(f"{where}: capture installed on {tables}", markup=False, soft_wrap=True)

    _guarded(act)


@db_app.command("remove-capture")
def remove_capture(
    config: ConfigArg,
    sync: SyncOpt = None,
    dry_run: DryRunOpt = False,
    yes: Annotated[bool, typer.Option("--yes", help="Do it without asking.")] = False,
) -> None:
    """Drop the capture triggers and the change log.

    From every database that a sync reads from; the write-back statuses in the change log go
    with it.
    """

    def act() -> None:
        from sfsync.connectors.sql.capture import install
        from sfsync.connectors.sql.client import dialect_of

        targets = _targets(config, sync or [])
        names = ", ".join(t.name for t in targets)
        if (
            not dry_run
            and not yes
            and not typer.confirm(f"Drop change capture and its change log from {names}?")
        ):
            raise typer.Exit(1)
        for target in targets:
            settings, where = target.settings, target.where
            with install.connected(settings) as conn:
                statements = install.plan_remove(conn, settings)
                if dry_run:
                    _print_sql(f"{where}: would run", statements)
                    continue
                install.execute(conn, dialect_of(settings), statements)
            _out.print(f"{where}: capture removed", markup=False, soft_wrap=True)

    _guarded(act)


@db_app.command("capture-status")
def capture_status(config: ConfigArg, sync: SyncOpt = None) -> None:
    """Show capture per table: triggers, and changes by write-back status.

    `pending` changes wait for sfsync; `rejected` ones show the latest reason.
    """

    def act() -> None:
        from rich.table import Table

        from sfsync.connectors.sql.capture import install
        from sfsync.connectors.sql.capture.status import capture_status

        for target in _targets(config, sync or []):
            settings, where = target.settings, target.where
            if settings.capture != "triggers":
                _out.print(f"{where}: capture: updated_at (nothing installed)", markup=False)
                continue
            objects = install.capture_objects(target.entities)
            with install.connected(settings) as conn:
                has_log, tables = capture_status(conn, settings, objects)
            log = "change log present" if has_log else "no change log: run install-capture"
            table = Table("table", "triggers", "pending", "applied", "rejected", "last error")
            for t in tables:
                table.add_row(
                    t.table,
                    t.triggers,
                    str(t.counts.get("pending", 0)),
                    str(t.counts.get("applied", 0) + t.counts.get("stale", 0)),
                    str(t.counts.get("rejected", 0)),
                    t.last_error or "",
                )
            _out.print(f"{where}: {log}", markup=False, soft_wrap=True)
            _out.print(table)

    _guarded(act)
