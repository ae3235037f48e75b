"""The SQL that installs and removes trigger-based change capture, per dialect (pure text).

One change log table per database (per schema on PostgreSQL), ``_sfsync_changes``, filled by
row triggers on every captured table:

=================  ===========================================================================
column             meaning
=================  ===========================================================================
seq                increasing number of the change (bigserial / AUTO_INCREMENT / AUTOINCREMENT)
table_name         the captured table
op                 ``I`` insert, ``U`` update, ``D`` delete
row_key            the key column's value, as text
after_row          the row after the change, as JSON (none for a delete)
before_row         the row before the change, as JSON (updates and deletes)
changed_columns    JSON array of the columns an update changed
changed_at         when the row changed (UTC; the trigger's clock, not the commit's)
txid               the writing transaction (PostgreSQL only: ``txid_current()``)
origin             who wrote: the session's ``sfsync.origin`` setting (PostgreSQL), the
                   ``@sfsync_origin`` variable (MariaDB), the row of ``_sfsync_origin`` (SQLite);
                   NULL for everybody else's writes
sync_status        ``pending`` until sfsync records the outcome: ``applied``, ``stale``,
                   ``rejected`` or ``conflict`` (like Heroku Connect's ``_hc_lastop``)
sync_error         why a change was rejected (like ``_hc_err``)
target_key         the key the target gave the record (a new Salesforce Id)
synced_at          when the outcome was recorded
=================  ===========================================================================

An update that changes no value logs nothing. PostgreSQL's trigger also sends
``NOTIFY sfsync_changes`` (payload ``schema.table``; delivered at commit) so that a listening
source wakes at once.

PostgreSQL's trigger function serialises the whole row with ``to_jsonb``, so new columns are
captured without reinstalling; MariaDB's and SQLite's triggers name each column, so a table
whose columns change needs ``sfsync db install-capture`` again (it is idempotent).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

from sfsync.connectors.sql.types import Dialect

CHANGES_TABLE = "_sfsync_changes"
ORIGIN_TABLE = "_sfsync_origin"
PG_FUNCTION = "_sfsync_capture"
PG_TRIGGER = "_sfsync_capture"
NOTIFY_CHANNEL = "sfsync_changes"
TRIGGER_PREFIX = "_sfsync_"
PG_ORIGIN_SETTING = "sfsync.origin"
MYSQL_ORIGIN_VARIABLE = "@sfsync_origin"

_MYSQL_IDENTIFIER_MAX = 64


@dataclass(frozen=True, slots=True)
class CapturedTable:
    """One table to capture.

    Attributes:
        table: its name (in the connection's schema on PostgreSQL).
        key_column: the column whose value becomes the event key.
        columns: every column, in table order (MariaDB and SQLite name them in the trigger).
        binary_columns: columns holding bytes; captured as hex text (JSON holds no bytes).
    """

    table: str
    key_column: str
    columns: tuple[str, ...]
    binary_columns: frozenset[str] = frozenset()


def quote(dialect: Dialect, name: str) -> str:
    """``name`` as a quoted identifier."""
    if dialect == "mysql":
        return "`" + name.replace("`", "``") + "`"
    return '"' + name.replace('"', '""') + '"'


def literal(dialect: Dialect, text: str) -> str:
    """``text`` as a SQL string literal (MariaDB also treats backslashes as escapes)."""
    if dialect == "mysql":
        text = text.replace("\\", "\\\\")
    return "'" + text.replace("'", "''") + "'"


def qualified(dialect: Dialect, schema: str | None, name: str) -> str:
    """``schema.name`` quoted, or just ``name`` without a schema."""
    return f"{quote(dialect, schema)}.{quote(dialect, name)}" if schema else quote(dialect, name)


def mysql_trigger_name(table: str, op: str) -> str:
    """The name of the MariaDB/SQLite trigger for ``op`` (``ins``, ``upd``, ``del``) on ``table``.

    Names stay within MariaDB's 64 characters: a long table name is replaced by a hash.
    """
    name = f"{TRIGGER_PREFIX}{table}_{op}"
    if len(name) <= _MYSQL_IDENTIFIER_MAX:
        return name
    digest = hashlib.sha1(table.encode()).hexdigest()[:16]
    return f"{TRIGGER_PREFIX}{digest}_{op}"


_OPS = ("ins", "upd", "del")


# --- installing --------------------------------------------------------------------------


def install_statements(
    dialect: Dialect, schema: str | None, tables: Sequence[CapturedTable]
) -> list[str]:
    """Every statement that installs capture for ``tables``; running them again is harmless.

    Triggers are dropped and created again, so a reinstall picks up new columns and keys.
    """
    if dialect == "postgresql":
        return _pg_install(schema or "public", tables)
    if dialect == "mysql":
        return _mysql_install(tables)
    return _sqlite_install(tables)


def _pg_install(schema: str, tables: Sequence[CapturedTable]) -> list[str]:
    q = _pg_quote
    log = f"{q(schema)}.{q(CHANGES_TABLE)}"
    function = f"{q(schema)}.{q(PG_FUNCTION)}"
    statements = [
        f"CREATE TABLE IF NOT EXISTS {log} (\n"
        "  seq bigserial PRIMARY KEY,\n"
        "  table_name text NOT NULL,\n"
        "  op char(1) NOT NULL,\n"
        "  row_key text,\n"
        "  after_row jsonb,\n"
        "  before_row jsonb,\n"
        "  changed_columns jsonb,\n"
        "  changed_at timestamptz NOT NULL DEFAULT clock_timestamp(),\n"
        "  txid bigint NOT NULL DEFAULT txid_current(),\n"
        "  origin text,\n"
        "  sync_status text NOT NULL DEFAULT 'pending',\n"
        "  sync_error text,\n"
        "  target_key text,\n"
        "  synced_at timestamptz\n"
        ")",
        # The reader finds where a window starts by transaction id (capture/log.py); with
        # seq in the index that is an index-only scan.
        f"CREATE INDEX IF NOT EXISTS {q(CHANGES_TABLE + '_txid')} ON {log} (txid, seq)",
        # SECURITY DEFINER: the application's roles write to their tables without any right
        # on the change log; the function writes it as its owner (the installer), with a
        # search path that a caller cannot redirect.
        f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger\n"
        "LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp\n"
        "AS $sfsync$\n"
        "DECLARE\n"
        "  new_row jsonb;\n"
        "  old_row jsonb;\n"
        "  changed jsonb;\n"
        "BEGIN\n"
        "  IF TG_OP <> 'DELETE' THEN new_row := to_jsonb(NEW); END IF;\n"
        "  IF TG_OP <> 'INSERT' THEN old_row := to_jsonb(OLD); END IF;\n"
        "  IF TG_OP = 'UPDATE' THEN\n"
        "    SELECT jsonb_agg(n.key) INTO changed FROM jsonb_each(new_row) AS n\n"
        "      WHERE n.value IS DISTINCT FROM old_row -> n.key;\n"
        "    IF changed IS NULL THEN RETURN NULL; END IF;\n"
        "  END IF;\n"
        f"  INSERT INTO {log}\n"
        "    (table_name, op, row_key, after_row, before_row, changed_columns, origin)\n"
        "  VALUES (TG_TABLE_NAME, left(TG_OP, 1), coalesce(new_row, old_row) ->> TG_ARGV[0],\n"
        "    new_row, old_row, changed,\n"
        f"    nullif(current_setting('{PG_ORIGIN_SETTING}', true), ''));\n"
        f"  PERFORM pg_notify('{NOTIFY_CHANNEL}', TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME);\n"
        "  RETURN NULL;\n"
        "END\n"
        "$sfsync$",
    ]
    for t in tables:
        target = f"{q(schema)}.{q(t.table)}"
        statements.append(f"DROP TRIGGER IF EXISTS {q(PG_TRIGGER)} ON {target}")
        statements.append(
            f"CREATE TRIGGER {q(PG_TRIGGER)} AFTER INSERT OR UPDATE OR DELETE ON {target}\n"
            f"  FOR EACH ROW EXECUTE FUNCTION {function}({_pg_literal(t.key_column)})"
        )
    return statements


def _pg_quote(name: str) -> str:
    return quote("postgresql", name)


def _pg_literal(text: str) -> str:
    return literal("postgresql", text)


_LOG_COLUMNS = "table_name, op, row_key, after_row, before_row, changed_columns, changed_at, origin"


def _mysql_install(tables: Sequence[CapturedTable]) -> list[str]:
    q = _mysql_quote
    log = q(CHANGES_TABLE)
    statements = [
        f"CREATE TABLE IF NOT EXISTS {log} (\n"
        "  seq BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,\n"
        "  table_name VARCHAR(64) NOT NULL,\n"
        "  op CHAR(1) NOT NULL,\n"
        # TEXT: a trigger must never refuse the application's write for a long key.
        "  row_key TEXT,\n"
        "  after_row LONGTEXT,\n"
        "  before_row LONGTEXT,\n"
        "  changed_columns LONGTEXT,\n"
        "  changed_at DATETIME(6) NOT NULL,\n"
        "  txid BIGINT,\n"
        "  origin VARCHAR(255),\n"
        "  sync_status VARCHAR(16) NOT NULL DEFAULT 'pending',\n"
        "  sync_error TEXT,\n"
        "  target_key VARCHAR(255),\n"
        "  synced_at DATETIME(6)\n"
        ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
    ]
    for t in tables:
        target = q(t.table)
        table_text = literal("mysql", t.table)
        new_obj = _mysql_object("NEW", t)
        old_obj = _mysql_object("OLD", t)
        key_new = f"NEW.{q(t.key_column)}"
        key_old = f"OLD.{q(t.key_column)}"
        differs = [f"NOT (OLD.{q(c)} <=> NEW.{q(c)})" for c in t.columns]
        changed = ", ".join(
            f"IF({d}, {literal('mysql', json.dumps(c))}, NULL)"
            for c, d in zip(t.columns, differs, strict=True)
        )
        bodies = {
            "ins": f"INSERT INTO {log} ({_LOG_COLUMNS})\n"
            f"  VALUES ({table_text}, 'I', {key_new}, {new_obj}, NULL, NULL, UTC_TIMESTAMP(6), "
            f"{MYSQL_ORIGIN_VARIABLE})",
            "upd": f"INSERT INTO {log} ({_LOG_COLUMNS})\n"
            f"  SELECT {table_text}, 'U', {key_new}, {new_obj}, {old_obj},\n"
            f"    CONCAT('[', CONCAT_WS(',', {changed}), ']'), UTC_TIMESTAMP(6), "
            f"{MYSQL_ORIGIN_VARIABLE}\n"
            f"  FROM DUAL WHERE {' OR '.join(differs)}",
            "del": f"INSERT INTO {log} ({_LOG_COLUMNS})\n"
            f"  VALUES ({table_text}, 'D', {key_old}, NULL, {old_obj}, NULL, UTC_TIMESTAMP(6), "
            f"{MYSQL_ORIGIN_VARIABLE})",
        }
        events = {"ins": "INSERT", "upd": "UPDATE", "del": "DELETE"}
        for op in _OPS:
            name = q(mysql_trigger_name(t.table, op))
            statements.append(f"DROP TRIGGER IF EXISTS {name}")
            statements.append(
                f"CREATE TRIGGER {name} AFTER {events[op]} ON {target} FOR EACH ROW\n{bodies[op]}"
            )
    return statements


def _mysql_quote(name: str) -> str:
    return quote("mysql", name)


def _mysql_object(row: str, t: CapturedTable) -> str:
    parts = []
    for c in t.columns:
        value = f"{row}.{_mysql_quote(c)}"
        if c in t.binary_columns:
            value = f"HEX({value})"
        parts.append(f"{literal('mysql', c)}, {value}")
    return f"JSON_OBJECT({', '.join(parts)})"


def _sqlite_install(tables: Sequence[CapturedTable]) -> list[str]:
    q = _sqlite_quote
    log = q(CHANGES_TABLE)
    statements = [
        f"CREATE TABLE IF NOT EXISTS {log} (\n"
        "  seq INTEGER PRIMARY KEY AUTOINCREMENT,\n"
        "  table_name TEXT NOT NULL,\n"
        "  op TEXT NOT NULL,\n"
        "  row_key TEXT,\n"
        "  after_row TEXT,\n"
        "  before_row TEXT,\n"
        "  changed_columns TEXT,\n"
        "  changed_at TEXT NOT NULL,\n"
        "  txid INTEGER,\n"
        "  origin TEXT,\n"
        "  sync_status TEXT NOT NULL DEFAULT 'pending',\n"
        "  sync_error TEXT,\n"
        "  target_key TEXT,\n"
        "  synced_at TEXT\n"
        ")",
        # sfsync's own writer puts its origin here inside its transaction and deletes it
        # before committing; SQLite has one writer at a time, so no other write can see it.
        f"CREATE TABLE IF NOT EXISTS {q(ORIGIN_TABLE)} (origin TEXT)",
    ]
    now = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
    origin = f"(SELECT origin FROM {q(ORIGIN_TABLE)} LIMIT 1)"
    for t in tables:
        target = q(t.table)
        table_text = literal("sqlite", t.table)
        new_obj = _sqlite_object("NEW", t)
        old_obj = _sqlite_object("OLD", t)
        differs = [f"OLD.{q(c)} IS NOT NEW.{q(c)}" for c in t.columns]
        picks = " UNION ALL ".join(
            f"SELECT {literal('sqlite', c)} AS c WHERE {d}"
            for c, d in zip(t.columns, differs, strict=True)
        )
        changed = f"(SELECT json_group_array(c) FROM ({picks}))"
        key_new, key_old = f"NEW.{q(t.key_column)}", f"OLD.{q(t.key_column)}"
        heads = {
            "ins": f"AFTER INSERT ON {target}",
            "upd": f"AFTER UPDATE ON {target} WHEN {' OR '.join(differs)}",
            "del": f"AFTER DELETE ON {target}",
        }
        values = {
            "ins": f"{table_text}, 'I', {key_new}, {new_obj}, NULL, NULL, {now}, {origin}",
            "upd": f"{table_text}, 'U', {key_new}, {new_obj}, {old_obj}, {changed}, {now}, "
            f"{origin}",
            "del": f"{table_text}, 'D', {key_old}, NULL, {old_obj}, NULL, {now}, {origin}",
        }
        for op in _OPS:
            name = q(mysql_trigger_name(t.table, op))
            statements.append(f"DROP TRIGGER IF EXISTS {name}")
            statements.append(
                f"CREATE TRIGGER {name} {heads[op]}\nBEGIN\n"
                f"  INSERT INTO {log} ({_LOG_COLUMNS})\n  VALUES ({values[op]});\nEND"
            )
    return statements


def _sqlite_quote(name: str) -> str:
    return quote("sqlite", name)


def _sqlite_object(row: str, t: CapturedTable) -> str:
    parts = []
    for c in t.columns:
        value = f"{row}.{_sqlite_quote(c)}"
        if c in t.binary_columns:
            value = f"hex({value})"
        else:
            # Any SQLite column can hold bytes, which json_object refuses: the trigger would
            # then fail the application's write.
            value = f"CASE WHEN typeof({value}) = 'blob' THEN hex({value}) ELSE {value} END"
        parts.append(f"{literal('sqlite', c)}, {value}")
    return f"json_object({', '.join(parts)})"


# --- removing ----------------------------------------------------------------------------


def remove_statements(
    dialect: Dialect,
    schema: str | None,
    triggers: Sequence[tuple[str, str]],
) -> list[str]:
    """Every statement that removes capture: the ``triggers`` found (``(table, trigger)``
    pairs), the trigger function (PostgreSQL), the change log and the origin table (SQLite).

    The change log goes too, with the write-back statuses it holds.
    """
    statements: list[str] = []
    if dialect == "postgresql":
        schema = schema or "public"
        for table, trigger in triggers:
            statements.append(
                f"DROP TRIGGER IF EXISTS {_pg_quote(trigger)} ON "
                f"{_pg_quote(schema)}.{_pg_quote(table)}"
            )
        statements.append(
            f"DROP FUNCTION IF EXISTS {_pg_quote(schema)}.{_pg_quote(PG_FUNCTION)}() CASCADE"
        )
        statements.append(f"DROP TABLE IF EXISTS {_pg_quote(schema)}.{_pg_quote(CHANGES_TABLE)}")
        return statements
    for _table, trigger in triggers:
        statements.append(f"DROP TRIGGER IF EXISTS {quote(dialect, trigger)}")
    statements.append(f"DROP TABLE IF EXISTS {quote(dialect, CHANGES_TABLE)}")
    if dialect == "sqlite":
        statements.append(f"DROP TABLE IF EXISTS {quote(dialect, ORIGIN_TABLE)}")
    return statements


# --- marking sfsync's own writes ---------------------------------------------------------


def origin_statements(dialect: Dialect, schema: str | None, origin: str) -> tuple[str, str]:
    """``(mark, unmark)``: run ``mark`` in a transaction before writing and ``unmark`` before
    committing, and the change log records ``origin`` for that transaction's changes.

    For a writer into a captured database (two-way syncs drop their own echoes by it).
    """
    if dialect == "postgresql":
        return (
            f"SELECT set_config('{PG_ORIGIN_SETTING}', {literal(dialect, origin)}, true)",
            f"SELECT set_config('{PG_ORIGIN_SETTING}', '', true)",
        )
    if dialect == "mysql":
        return (
            f"SET {MYSQL_ORIGIN_VARIABLE} = {literal(dialect, origin)}",
            f"SET {MYSQL_ORIGIN_VARIABLE} = NULL",
        )
    table = quote(dialect, ORIGIN_TABLE)
    return (
        f"INSERT INTO {table} (origin) VALUES ({literal(dialect, origin)})",
        f"DELETE FROM {table}",
    )
