"""`sfsync conflicts list|show|resolve` over a real SQLite state store."""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import anyio
import pytest
from typer.testing import CliRunner

from sfsync.cli.main import app
from sfsync.core.conflicts import ConflictRules, Side, Values, Version
from sfsync.core.merge import resolve
from sfsync.core.review import ParkedConflict, Resolution, ReviewState
from sfsync.stores.conflicts import SqlConflictQueue
from sfsync.stores.shadow_sql import SqliteStateDb

ROOT = Path(__file__).resolve().parents[3]
runner = CliRunner()
AT = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
BASE = {"Name": "Acme", "Revenue": Decimal("10.00"), "Since": date(2020, 1, 1), "City": "Bern"}
ENV = {"COLUMNS": "200", "USER": "ann", "LOGNAME": "ann"}


def _park(state: Path, key: str, sf: Values | None, ext: Values | None, sync: str) -> int:
    a = Version(side=Side.SALESFORCE, values=sf, committed_at=AT)
    b = Version(side=Side.EXTERNAL, values=ext, committed_at=None)
    conflict = ParkedConflict.of(
        sync=sync,
        entity="Account",
        key=key,
        base=BASE,
        salesforce=a,
        external=b,
        decision=resolve(BASE, a, b, ConflictRules()),
        at=AT,
    )

    async def park() -> int:
        queue = await SqlConflictQueue.open(SqliteStateDb(state))
        try:
            return await queue.park(conflict)
        finally:
            await queue.aclose()

    return anyio.run(park)


def _get(state: Path, conflict_id: int) -> ParkedConflict:
    async def get() -> ParkedConflict | None:
        queue = await SqlConflictQueue.open(SqliteStateDb(state))
        try:
            return await queue.get(conflict_id)
        finally:
            await queue.aclose()

    found = anyio.run(get)
    assert found is not None
    return found


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path, int, int]:
    """A configuration whose state store holds two open conflicts; their ids."""
    text = (ROOT / "examples" / "demo.yaml").read_text()
    config = tmp_path / "sync.yaml"
    config.write_text(text.replace("${SFSYNC_DEMO_DIR:-.sfsync}", str(tmp_path)))
    state = tmp_path / "state.sqlite"
    first = _park(
        state,
        "001A",
        {**BASE, "Name": "Acme AG", "Revenue": Decimal("12.50")},
        {**BASE, "Name": "ACME [Ltd]", "City": "Basel"},
        "crm-to-local",
    )
    second = _park(state, "001B", None, {**BASE, "City": "Zug"}, "crm-to-local")
    return config, state, first, second


def run(*args: str) -> str:
    result = runner.invoke(app, ["conflicts", *args], env=ENV)
    assert result.exit_code == 0, result.output
    return result.output


def test_list_shows_open_conflicts(setup: tuple[Path, Path, int, int]) -> None:
    config, *_ = setup
    out = run("list", str(config))
    assert "001A" in out
    assert "001B" in out
    assert "2 of 2 open conflicts shown" in out
    assert "2026-05-01 12:00:00" in out
    out = run("list", str(config), "--state", "resolved")
    assert "0 of 0 resolved conflicts shown" in out


def test_list_of_an_unknown_sync_is_a_usage_error(setup: tuple[Path, Path, int, int]) -> None:
    config, *_ = setup
    result = runner.invoke(app, ["conflicts", "list", str(config), "--sync", "nope"], env=ENV)
    assert result.exit_code != 0
    assert isinstance(result.exception, Exception)
    assert "no sync named nope" in str(result.exception)


def test_show_lists_every_field_with_the_conflicts_marked(
    setup: tuple[Path, Path, int, int],
) -> None:
    config, _, first, second = setup
    out = run("show", str(config), str(first))
    assert f"conflict {first}: Account 001A in sync crm-to-local, open" in out
    name_row = next(line for line in out.splitlines() if " Name " in line)
    assert "*" in name_row
    assert "Acme AG" in name_row
    assert "ACME [Ltd]" in name_row  # user text is never read as markup
    city_row = next(line for line in out.splitlines() if " City " in line)
    assert "*" not in city_row
    assert "2020-01-01" in out
    assert "Salesforce committed 2026-05-01 12:00:00, external at an unknown time" in out
    assert f"sfsync conflicts resolve CONFIG {first}" in out
    deleted = run("show", str(config), str(second))
    assert "(deleted)" in deleted


def test_resolve_by_taking_a_side(setup: tuple[Path, Path, int, int]) -> None:
    config, state, first, _ = setup
    out = run("resolve", str(config), str(first), "--take", "external")
    assert "take external by ann" in out
    resolved = _get(state, first)
    assert resolved.state is ReviewState.RESOLVED
    assert resolved.resolution is Resolution.TAKE_EXTERNAL
    assert resolved.resolved_by == "ann"
    # External's name and city; Salesforce's revenue (not in conflict) is kept.
    assert resolved.outcome() == {
        **BASE,
        "Name": "ACME [Ltd]",
        "Revenue": Decimal("12.50"),
        "City": "Basel",
    }
    listed = run("list", str(config), "--state", "all")
    assert "2 of 2 conflicts shown" in listed
    resolved_row = next(line for line in listed.splitlines() if "001A" in line)
    assert "resolved" in resolved_row
    assert "take external by ann" in resolved_row


def test_resolve_with_values_of_the_fields_own_types(setup: tuple[Path, Path, int, int]) -> None:
    config, state, first, _ = setup
    out = run(
        "resolve",
        str(config),
        str(first),
        "--set",
        "name=Acme Holding",
        "--set",
        "Revenue=11.75",
        "--by",
        "bob",
    )
    assert "custom (on salesforce's) by bob" in out
    resolved = _get(state, first)
    assert resolved.custom == {"Name": "Acme Holding", "Revenue": Decimal("11.75")}
    assert resolved.outcome() == {
        **BASE,
        "Name": "Acme Holding",
        "Revenue": Decimal("11.75"),
        "City": "Basel",
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "say how to resolve it"),
        (["--set", "Revenue=lots"], "the field holds Decimal values"),
        (["--set", "Fax=1"], "'Fax' is not a field of this record"),
        (["--set", "Revenue=1"], "set every field in conflict (Name)"),
        (["--set", "nonsense"], "is not FIELD=VALUE"),
    ],
)
def test_resolve_refuses_what_cannot_be_applied(
    setup: tuple[Path, Path, int, int], args: list[str], message: str
) -> None:
    config, state, first, _ = setup
    result = runner.invoke(app, ["conflicts", "resolve", str(config), str(first), *args], env=ENV)
    assert result.exit_code != 0
    shown = result.output + str(result.exception)
    assert message in shown
    assert _get(state, first).state is ReviewState.OPEN


def test_a_deleted_record_cannot_take_values(setup: tuple[Path, Path, int, int]) -> None:
    config, _, _, second = setup
    result = runner.invoke(
        app,
        [
            "conflicts",
            "resolve",
            str(config),
            str(second),
            "--take",
            "salesforce",
            "--set",
            "City=X",
        ],
        env=ENV,
    )
    assert "deletes the record" in str(result.exception)
    out = run("resolve", str(config), str(second), "--take", "salesforce")
    assert "the record is deleted on both sides" in out


def test_resolving_twice_or_an_unknown_id_says_so(setup: tuple[Path, Path, int, int]) -> None:
    config, _, first, _ = setup
    run("resolve", str(config), str(first), "--take", "salesforce")
    again = runner.invoke(
        app, ["conflicts", "resolve", str(config), str(first), "--take", "external"], env=ENV
    )
    assert "already resolved by ann" in str(again.exception)
    missing = runner.invoke(app, ["conflicts", "show", str(config), "999"], env=ENV)
    assert "there is no conflict 999" in str(missing.exception)


def test_the_console_script_ends_usage_errors_with_exit_2(
    setup: tuple[Path, Path, int, int],
) -> None:
    import subprocess
    import sys

    config, *_ = setup
    done = subprocess.run(
        [sys.executable, "-m", "sfsync", "conflicts", "show", str(config), "999"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert "there is no conflict 999" in done.stderr
    assert "conflicts list CONFIG --state all" in done.stderr


def test_a_two_way_sync_says_what_its_database_lacks(tmp_path: Path) -> None:
    text = (ROOT / "examples" / "demo.yaml").read_text()
    text = text.replace("${SFSYNC_DEMO_DIR:-.sfsync}", str(tmp_path)).replace(
        "    mode: ${SFSYNC_DEMO_MODE:-realtime}\n", "    direction: two_way\n    mode: polling\n"
    )
    config = tmp_path / "sync.yaml"
    config.write_text(text)
    valid = runner.invoke(app, ["validate", str(config)], env=ENV)
    assert valid.exit_code == 0, valid.output
    db = sqlite3.connect(tmp_path / "demo.sqlite")  # a table that lacks most fields
    db.execute('CREATE TABLE accounts ("Id" text PRIMARY KEY, "Name" text)')
    db.close()
    refused = runner.invoke(app, ["sync", "--once", str(config)], env=ENV)
    assert refused.exit_code == 1
    # Said before any attempt to reach the (absent) org: the database is opened first.
    assert "has no column(s) annualrevenue" in " ".join(refused.output.split())


def test_show_a_conflict_the_sync_closed_itself(setup: tuple[Path, Path, int, int]) -> None:
    config, state, first, _ = setup

    async def supersede() -> None:
        queue = await SqlConflictQueue.open(SqliteStateDb(state))
        try:
            await queue.supersede([first], AT)
        finally:
            await queue.aclose()

    anyio.run(supersede)
    out = run("show", str(config), str(first))
    assert "closed by the sync at 2026-05-01 12:00:00" in out
    listed = run("list", str(config), "--state", "resolved")
    assert "superseded by sfsync" in listed
