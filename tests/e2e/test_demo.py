"""The README's main job, end to end: emulator -> SQLite with live activity, then verified."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from rich.console import Console

from sfsync.cli.demo import prepare_workdir, run_demo


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["realtime", "polling"])
async def test_demo_replicates_a_changing_org_exactly(tmp_path: Path, mode: str) -> None:
    workdir = tmp_path / "demo"
    prepare_workdir(workdir)
    console = Console(record=True, width=120)
    code = await run_demo(
        workdir=workdir, duration=3.0, interval=0.5, accounts=60, console=console, mode=mode
    )
    text = console.export_text()
    assert code == 0, text
    assert "equals the org, record by record" in text
    assert "updated" in text
    db = sqlite3.connect(workdir / "demo.sqlite")
    try:
        accounts = db.execute(
            'SELECT count(*) FROM accounts WHERE NOT "_sfsync_deleted"'
        ).fetchone()
        assert accounts[0] >= 60
    finally:
        db.close()
