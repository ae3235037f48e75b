"""``sfsync conflicts list|show|resolve``: the review queue of two-way syncs.

A two-way sync parks a record for review when both sides changed the same field and the
field's policy is ``manual``. These commands list the parked records, show one with its base
and both versions, and record a person's resolution; the sync applies it on its next pass.
"""

from __future__ import annotations

import getpass
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from sfsync.core.conflicts import ABSENT, Side
from sfsync.core.review import ParkedConflict, Resolution, ReviewState

conflicts_app = typer.Typer(
    help="Records both sides of a two-way sync changed, parked for a person to decide.",
    no_args_is_help=True,
)
console = Console(highlight=False)

ConfigArg = Annotated[Path, typer.Argument(help="The sync configuration file (YAML).")]


class StateChoice(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"
    ALL = "all"


class TakeChoice(StrEnum):
    SALESFORCE = "salesforce"
    EXTERNAL = "external"


def show_value(value: object) -> str:
    """A field value as a person reads it: ``null``, ISO dates, text as it is."""
    if value is ABSENT:
        return "-"
    if value is None:
        return "null"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _when(at: datetime | None) -> str:
    return "" if at is None else at.strftime("%Y-%m-%d %H:%M:%S")


def _resolution(conflict: ParkedConflict) -> str:
    if conflict.resolution is None:
        return ""
    text = conflict.resolution.value.replace("_", " ")
    if conflict.custom:
        text += f" (on {conflict.custom_base.value}'s)"
    return f"{text} by {conflict.resolved_by}"


@conflicts_app.command("list")
def list_command(
    config: ConfigArg,
    sync: Annotated[str | None, typer.Option("--sync", "-s", help="Only this sync.")] = None,
    state: Annotated[
        StateChoice, typer.Option(help="Which conflicts: open ones, resolved ones, or all.")
    ] = StateChoice.OPEN,
    limit: Annotated[int, typer.Option(help="At most this many, oldest first.")] = 50,
) -> None:
    """List parked conflicts: which record, which fields, and where each stands."""
    import anyio

    from sfsync.app import list_conflicts, load

    cfg = load(config)
    wanted = None if state is StateChoice.ALL else ReviewState(state.value)
    total, found = anyio.run(lambda: list_conflicts(cfg, sync=sync, state=wanted, limit=limit))
    table = Table("id", "parked", "sync", "object", "key", "fields", "state", "resolution")
    for c in found:
        table.add_row(
            str(c.id),
            _when(c.parked_at),
            Text(c.sync),
            Text(c.entity),
            Text(c.key),
            Text(", ".join(c.fields)),
            c.state.value,
            Text(_resolution(c)),
        )
    console.print(table)
    noun = "conflict" if total == 1 else "conflicts"
    which = "" if state is StateChoice.ALL else f"{state.value} "
    console.print(f"{len(found)} of {total} {which}{noun} shown", markup=False)


def _print(conflict: ParkedConflict) -> None:
    sf, ext = conflict.salesforce, conflict.external
    console.print(
        f"conflict {conflict.id}: {conflict.entity} {conflict.key} in sync {conflict.sync}, "
        f"{conflict.state.value}",
        markup=False,
    )
    console.print(
        f"parked {_when(conflict.parked_at)}, last changed {_when(conflict.updated_at)}; "
        f"Salesforce committed {_when(sf.committed_at) or 'at an unknown time'}, "
        f"external {_when(ext.committed_at) or 'at an unknown time'}",
        markup=False,
    )
    table = Table("", "field", "base (last synced)", "salesforce", "external")
    names = dict.fromkeys([*(conflict.base or {}), *(sf.values or {}), *(ext.values or {})])
    for name in names:
        table.add_row(
            "*" if name in conflict.fields else "",
            Text(name),
            Text(show_value((conflict.base or {}).get(name, ABSENT))),
            Text("(deleted)" if sf.values is None else show_value(sf.values.get(name, ABSENT))),
            Text("(deleted)" if ext.values is None else show_value(ext.values.get(name, ABSENT))),
        )
    console.print(table)
    console.print("* in conflict: both sides changed it since the last sync", markup=False)
    if conflict.resolution is None:
        console.print(
            f"resolve: sfsync conflicts resolve CONFIG {conflict.id} "
            "--take salesforce|external [--set FIELD=VALUE ...]",
            markup=False,
        )
        return
    if conflict.resolution is Resolution.SUPERSEDED:
        console.print(
            f"closed by the sync at {_when(conflict.resolved_at)}: the record changed again "
            "and no longer conflicts",
            markup=False,
        )
        return
    outcome = conflict.outcome()
    console.print(
        f"resolved: {_resolution(conflict)} at {_when(conflict.resolved_at)}; "
        + (
            f"applied {_when(conflict.applied_at)}"
            if conflict.applied_at
            else "applied on the sync's next pass"
        ),
        markup=False,
    )
    if outcome is None:
        console.print("outcome: the record is deleted on both sides", markup=False)
        return
    result = Table("field", "both sides get")
    for name, value in outcome.items():
        result.add_row(Text(name), Text(show_value(value)))
    console.print(result)


@conflicts_app.command("show")
def show_command(
    config: ConfigArg,
    conflict_id: Annotated[int, typer.Argument(metavar="ID", help="The conflict's id.")],
) -> None:
    """Show one conflict: the base and both sides' values, field by field."""
    import anyio

    from sfsync.app import load, show_conflict

    cfg = load(config)
    _print(anyio.run(lambda: show_conflict(cfg, conflict_id)))


def _assignments(items: list[str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for item in items:
        name, eq, value = item.partition("=")
        if not eq or not name.strip():
            raise typer.BadParameter(
                f"{item!r} is not FIELD=VALUE (write --set Phone='+41 44 000 00 00')",
                param_hint="--set",
            )
        values[name.strip()] = value
    return values


@conflicts_app.command("resolve")
def resolve_command(
    config: ConfigArg,
    conflict_id: Annotated[int, typer.Argument(metavar="ID", help="The conflict's id.")],
    take: Annotated[
        TakeChoice | None,
        typer.Option(help="Settle the conflicting fields with this side's values."),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="FIELD=VALUE (repeatable): set a field to a value of your own; `null` clears "
            "it. Without --take, set every field in conflict.",
        ),
    ] = None,
    by: Annotated[
        str | None, typer.Option(help="Who resolves it (default: your user name).")
    ] = None,
) -> None:
    """Resolve a conflict. Changes either side made to other fields are kept.

    Nothing is written here: the sync applies the resolution on its next pass, provided both
    sides still hold the versions shown; if either changed since, the record is compared anew.
    """
    import anyio

    from sfsync.app import load, resolve_conflict

    values = _assignments(set_ or [])
    cfg = load(config)
    side = None if take is None else Side(take.value)
    who = by or getpass.getuser()
    resolved = anyio.run(
        lambda: resolve_conflict(cfg, conflict_id, take=side, values=values, by=who)
    )
    _print(resolved)
