"""`sfsync checkpoints list|show|reset` on a real sync: emulator over a socket into SQLite,
whose sink keeps the checkpoint in the target database next to the data."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import anyio
from rich.console import Console
from typer.testing import CliRunner

from sfsync.cli.main import app
from sfsync.cli.run import run_config
from sfsync.emulator.org import Org
from sfsync.emulator.server import serve_in_background

TOKEN = "00D000000000001!checkpoints-cli"
CONFIG = """
version: 1
state: {{url: "sqlite:///{dir}/state.sqlite"}}
connections:
  crm:
    type: salesforce
    instance_url: {url}
    login_url: {url}
    auth: {{flow: access_token, access_token: "{token}"}}
  db:
    type: sqlite
    url: sqlite:///{dir}/target.sqlite
syncs:
  - name: accounts
    source: crm
    target: db
    mode: polling
    objects:
      - {{name: Account, fields: [Id, Name, SystemModstamp]}}
"""


def test_list_show_reset_then_the_next_run_snapshots_again(tmp_path: Path) -> None:
    org = Org.create(access_token=TOKEN)
    org.store.bulk_insert("Account", [{"Name": f"A{i}"} for i in range(25)])
    runner = CliRunner()
    try:
        with serve_in_background(org, port=0) as server:
            config = tmp_path / "sync.yaml"
            config.write_text(CONFIG.format(dir=tmp_path, url=server.url, token=TOKEN))
            console = Console(record=True, width=120)

            result = runner.invoke(
                app, ["checkpoints", "list", str(config)], env={"COLUMNS": "200"}
            )
            assert result.exit_code == 0, result.output
            assert "never run" in result.output

            (status,) = anyio.run(lambda: run_config(config, once=True, console=console))
            assert status.counters.read >= 25

            result = runner.invoke(
                app, ["checkpoints", "list", str(config)], env={"COLUMNS": "200"}
            )
            assert "target database" in result.output
            assert "complete" in result.output
            assert "sf:Account @" in result.output

            result = runner.invoke(app, ["checkpoints", "show", str(config), "accounts"])
            assert result.exit_code == 0, result.output
            assert json.loads(result.output)["snapshot"]["status"] == "complete"

            result = runner.invoke(app, ["checkpoints", "reset", str(config), "accounts", "--yes"])
            assert result.exit_code == 0, result.output
            assert "forgotten" in result.output
            result = runner.invoke(
                app, ["checkpoints", "list", str(config)], env={"COLUMNS": "200"}
            )
            assert "never run" in result.output

            (status,) = anyio.run(lambda: run_config(config, once=True, console=console))
            assert status.counters.read >= 25  # a full snapshot again
            assert status.snapshot_done == frozenset({"Account"})
    finally:
        org.close()


def test_an_unknown_sync_is_a_configuration_error(tmp_path: Path) -> None:
    config = tmp_path / "sync.yaml"
    config.write_text(CONFIG.format(dir=tmp_path, url="http://127.0.0.1:9", token=TOKEN))
    result = subprocess.run(
        [sys.executable, "-m", "sfsync", "checkpoints", "show", str(config), "nope"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert "no sync named nope" in result.stderr
    assert "Traceback" not in result.stderr
