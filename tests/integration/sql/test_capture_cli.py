"""``sfsync db install-capture`` and ``remove-capture`` through typer's CliRunner."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from sfsync.cli.main import app
from sfsync.connectors.sql.capture import install
from sfsync.connectors.sql.capture.log import ChangeLog
from sfsync.connectors.sql.capture.log import Outcome as LogOutcome
from sfsync.connectors.sql.client import dialect_of
from sfsync.connectors.sql.config import PostgresConnection, SqliteConnection

runner = CliRunner()
Settings = PostgresConnection | SqliteConnection
Target = tuple[Path, Settings, sa.Engine]

CONFIG = """\
version: 1
state: {{url: "sqlite:///{state}"}}
connections:
  crm:
    type: salesforce
    instance_url: http://127.0.0.1:8765
    auth: {{flow: access_token, access_token: "00Dx!token"}}
  local_db:
{connection}
syncs:
  - name: db-to-crm
    source: local_db
    target: crm
    mode: polling
    objects:
      - name: Invoice__c
        key: {key}
      - name: Account
        key: Ext_Id__c
        table: customers
  - name: crm-to-db
    source: crm
    target: local_db
    mode: polling
    objects:
      - name: Contact
"""


def _write_config(
    tmp_path: Path, connection: str, *, key: str = "Ext_Id__c", extra: str = ""
) -> Path:
    path = tmp_path / "sfsync.yaml"
    path.write_text(
        CONFIG.format(state=tmp_path / "state.sqlite", connection=connection + extra, key=key)
    )
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'db.sqlite'}"
        settings: Settings = SqliteConnection(type="sqlite", url=url)
        section = f"    type: sqlite\n    url: {url}\n"
        engine = sa.create_engine(url)
        prefix = ""
    else:
        url = request.getfixturevalue("postgres_url")
        schema = f"sfsync_c_{uuid.uuid4().hex[:10]}"
        settings = PostgresConnection(type="postgres", url=url, schema=schema)
        section = f"    type: postgres\n    url: {url}\n    schema: {schema}\n"
        engine = sa.create_engine(sa.make_url(url).set(drivername="postgresql+psycopg"))
        with engine.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        prefix = f'"{schema}".'
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE TABLE {prefix}invoice (ext_id__c varchar(20), name text)")
        conn.exec_driver_sql(f"CREATE TABLE {prefix}customers (ext_id__c varchar(20), name text)")
    yield _write_config(tmp_path, section), settings, engine
    engine.dispose()
    if isinstance(settings, PostgresConnection):
        with psycopg.connect(url, autocommit=True) as pg:
            pg.execute(f'DROP SCHEMA IF EXISTS "{settings.db_schema}" CASCADE')


def _state(settings: Settings) -> tuple[list[tuple[str, str]], bool]:
    engine, conn = install.connect(settings)
    try:
        return install.installed_triggers(conn, settings), install.log_exists(conn, settings)
    finally:
        conn.close()
        engine.dispose()


def test_dry_run_prints_the_sql_and_changes_nothing(target: Target) -> None:
    config, settings, _ = target
    result = runner.invoke(app, ["db", "install-capture", str(config), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "CREATE TABLE IF NOT EXISTS" in result.output
    assert result.output.count("CREATE TRIGGER") >= 2
    assert "customers" in result.output
    assert _state(settings) == ([], False)
    result = runner.invoke(app, ["db", "remove-capture", str(config), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "DROP TABLE IF EXISTS" in result.output


def test_install_twice_then_remove(target: Target) -> None:
    config, settings, _ = target
    for _ in range(2):
        result = runner.invoke(app, ["db", "install-capture", str(config)])
        assert result.exit_code == 0, result.output
        assert "capture installed on invoice, customers" in result.output
    triggers, has_log = _state(settings)
    assert has_log
    assert {table for table, _ in triggers} == {"invoice", "customers"}
    refused = runner.invoke(app, ["db", "remove-capture", str(config)], input="n\n")
    assert refused.exit_code == 1
    assert _state(settings) == (triggers, True)
    result = runner.invoke(app, ["db", "remove-capture", str(config), "--yes"])
    assert result.exit_code == 0, result.output
    assert "capture removed" in result.output
    assert _state(settings) == ([], False)


def test_a_missing_key_column_exits_2_with_the_fix(target: Target) -> None:
    config, settings, _ = target
    config.write_text(config.read_text().replace("key: Ext_Id__c\n", "key: Number__c\n", 1))
    result = runner.invoke(app, ["db", "install-capture", str(config)])
    assert result.exit_code == 2
    assert "number__c" in result.output
    assert "capture_key_columns" in result.output
    assert _state(settings) == ([], False)


def test_key_columns_can_be_mapped_per_table(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE invoice (ref text, name text)")
        conn.exec_driver_sql("CREATE TABLE customers (ext_id__c text, name text)")
    engine.dispose()
    section = f"    type: sqlite\n    url: {url}\n    capture_key_columns: {{invoice: ref}}\n"
    config = _write_config(tmp_path, section)
    result = runner.invoke(app, ["db", "install-capture", str(config), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert 'NEW."ref"' in result.output


def test_updated_at_capture_needs_nothing_installed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    section = f"    type: sqlite\n    url: {url}\n    capture: updated_at\n"
    result = runner.invoke(app, ["db", "install-capture", str(_write_config(tmp_path, section))])
    assert result.exit_code == 0, result.output
    assert "needs nothing installed" in result.output


def test_unknown_sync_and_syncs_without_a_sql_source_exit_2(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    config = _write_config(tmp_path, f"    type: sqlite\n    url: {url}\n")
    result = runner.invoke(app, ["db", "install-capture", str(config), "--sync", "nope"])
    assert result.exit_code == 2
    assert "no sync named nope" in result.output
    result = runner.invoke(app, ["db", "install-capture", str(config), "--sync", "crm-to-db"])
    assert result.exit_code == 2
    assert "reads from a SQL database" in result.output


def test_a_missing_sqlite_file_exits_2_and_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / "absent.sqlite"
    config = _write_config(tmp_path, f"    type: sqlite\n    url: sqlite:///{path}\n")
    result = runner.invoke(app, ["db", "install-capture", str(config)])
    assert result.exit_code == 2
    assert "does not exist" in result.output
    assert not path.exists()


def test_capture_status_shows_triggers_counts_and_the_last_rejection(target: Target) -> None:
    config, settings, engine = target
    before = runner.invoke(app, ["db", "capture-status", str(config)], terminal_width=200)
    assert before.exit_code == 0, before.output
    assert "no change log" in before.output
    assert "missing" in before.output
    assert runner.invoke(app, ["db", "install-capture", str(config)]).exit_code == 0
    prefix = f'"{settings.db_schema}".' if isinstance(settings, PostgresConnection) else ""
    with engine.begin() as conn:
        conn.exec_driver_sql(
            f"INSERT INTO {prefix}invoice (ext_id__c, name) VALUES ('A', 'a'), ('B', 'b')"
        )
    e, conn = install.connect(settings)
    try:
        log = ChangeLog(conn, dialect_of(settings), getattr(settings, "db_schema", None))
        log.record([LogOutcome(1, "rejected", "[BAD] Amount too big")], datetime.now(UTC))
    finally:
        conn.close()
        e.dispose()
    after = runner.invoke(app, ["db", "capture-status", str(config)], terminal_width=200)
    assert after.exit_code == 0, after.output
    assert "change log present" in after.output
    invoice = next(line for line in after.output.splitlines() if " invoice " in line)
    assert "installed" in invoice
    assert "[BAD] Amount too big" in invoice
    cells = [c.strip() for c in invoice.split("│") if c.strip()]
    assert cells[2:5] == ["1", "0", "1"]  # pending, applied, rejected
