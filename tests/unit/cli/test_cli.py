from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sfsync.cli.demo import demo_config
from sfsync.cli.main import app

ROOT = Path(__file__).resolve().parents[3]
runner = CliRunner()


def test_help_lists_every_command() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("validate", "run", "sync", "demo", "connectors", "emulator"):
        assert command in result.output


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.startswith("sfsync ")


def test_validate_good_config_exits_0() -> None:
    result = runner.invoke(app, ["validate", str(ROOT / "examples" / "demo.yaml")])
    assert result.exit_code == 0, result.output
    assert "OK" in result.output


def test_validate_broken_config_prints_every_problem_and_exits_2() -> None:
    path = ROOT / "examples" / "broken.yaml"
    result = runner.invoke(app, ["validate", str(path)], env={"SF_CLIENT_ID": "x"})
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.startswith(str(path))]
    assert len(lines) >= 10
    assert result.output.count("fix:") >= len(lines)
    assert "problems in" in result.output


def test_validate_missing_file_exits_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["validate", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert "nope.yaml" in result.output


def test_sync_without_once_is_refused(tmp_path: Path) -> None:
    result = runner.invoke(app, ["sync", str(ROOT / "examples" / "demo.yaml")])
    assert result.exit_code == 2
    assert "--once" in result.output


def test_run_with_a_broken_config_exits_2() -> None:
    result = runner.invoke(app, ["sync", "--once", str(ROOT / "examples" / "broken.yaml")])
    assert result.exit_code == 2
    assert "fix:" in result.output


def test_connectors_lists_the_builtin_ones() -> None:
    result = runner.invoke(app, ["connectors"])
    assert result.exit_code == 0
    for name in ("salesforce", "postgres", "mysql", "sqlite"):
        assert name in result.output


@pytest.mark.parametrize("name", ["demo.yaml"])
def test_packaged_demo_config_is_the_documented_example(name: str) -> None:
    assert demo_config().read_text() == (ROOT / "examples" / name).read_text()


def test_status_board_shows_snapshot_progress_and_eta() -> None:
    from rich.console import Console

    from sfsync.cli.display import StatusBoard
    from sfsync.core.state import PipelineState
    from sfsync.runtime.status import Counters, PipelineStatus

    board = StatusBoard(["s"])
    status = PipelineStatus(
        name="s",
        state=PipelineState.SNAPSHOTTING,
        counters=Counters(read=500, applied=500),
        per_entity=(("Account", 500), ("Contact", 20)),
        snapshot_done=frozenset({"Contact"}),
        snapshot_totals=(("Account", 2000),),
    )
    board.update(status)
    console = Console(record=True, width=140)
    console.print(board.render())
    text = console.export_text()
    assert "500/2,000" in text
    assert "25%" in text
    assert "ETA" in text
    assert "snapshot done" in text


def test_deadletters_list_shows_reason_and_fix(tmp_path: Path) -> None:
    import anyio

    from sfsync.core.deadletter import DeadLetter, DeadLetterKind
    from sfsync.core.errors import SkippableError
    from sfsync.core.events import ChangeEvent, Operation, Position
    from sfsync.stores.deadletters import SqliteDeadLetterStore

    text = (ROOT / "examples" / "demo.yaml").read_text()
    config = tmp_path / "sync.yaml"
    config.write_text(text.replace("${SFSYNC_DEMO_DIR:-.sfsync}", str(tmp_path)))
    event = ChangeEvent(
        entity="Account",
        key="001A",
        op=Operation.UPDATE,
        after={"Name": "x" * 300},
        position=Position("s", "1"),
        committed_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    error = SkippableError("Name: data value too large", code="STRING_TOO_LONG", hint="shorten")

    async def put() -> None:
        store = SqliteDeadLetterStore(tmp_path / "state.sqlite")
        await store.put(
            [
                DeadLetter.of(
                    "crm-to-local", DeadLetterKind.REJECTED, event, error, event.committed_at
                )
            ]
        )
        await store.aclose()

    anyio.run(put)
    result = runner.invoke(
        app, ["deadletters", "list", str(config), "--payload"], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    assert "STRING_TOO_LONG" in result.output
    assert "shorten" in result.output
    assert "1 of 1 dead letters shown" in result.output
    assert '"key": "001A"' in result.output


def test_status_board_shows_how_each_object_is_read() -> None:
    from rich.console import Console

    from sfsync.cli.display import StatusBoard
    from sfsync.core.state import PipelineState
    from sfsync.runtime.status import Counters, PipelineStatus

    board = StatusBoard(["live"])
    board.update(
        PipelineStatus(
            name="live",
            state=PipelineState.STREAMING,
            counters=Counters(read=90, applied=90),
            per_entity=(("Account", 60), ("Contact", 30)),
            snapshot_done=frozenset({"Account", "Contact"}),
            source_health=(("Account", "streaming (pubsub)"), ("Contact", "polling (fallback)")),
        )
    )
    console = Console(record=True, width=140)
    console.print(board.render())
    text = console.export_text()
    assert "streaming (pubsub)" in text
    assert "polling (fallback)" in text
    assert "snapshot done" not in text  # what happens now says more
