"""The capture SQL per dialect: its text, its quoting, and (on SQLite, in memory) that it runs."""

from __future__ import annotations

import json
import sqlite3

import pytest

from sfsync.connectors.sql.capture.statements import (
    CHANGES_TABLE,
    CapturedTable,
    install_statements,
    literal,
    mysql_trigger_name,
    origin_statements,
    quote,
    remove_statements,
)

INVOICE = CapturedTable(table="invoice", key_column="ext_id", columns=("id", "ext_id", "name"))


def test_postgres_install_creates_log_function_and_one_trigger_per_table() -> None:
    sql = install_statements("postgresql", "sales", [INVOICE])
    text = "\n".join(sql)
    assert sql[0].startswith('CREATE TABLE IF NOT EXISTS "sales"."_sfsync_changes"')
    assert "txid bigint NOT NULL DEFAULT txid_current()" in sql[0]
    assert "sync_status text NOT NULL DEFAULT 'pending'" in sql[0]
    assert 'CREATE OR REPLACE FUNCTION "sales"."_sfsync_capture"()' in text
    assert "pg_notify('sfsync_changes'" in text
    assert "SECURITY DEFINER SET search_path = pg_catalog, pg_temp" in text
    assert "current_setting('sfsync.origin', true)" in text
    assert sql[-2] == 'DROP TRIGGER IF EXISTS "_sfsync_capture" ON "sales"."invoice"'
    assert sql[-1].endswith('EXECUTE FUNCTION "sales"."_sfsync_capture"(\'ext_id\')')


def test_postgres_defaults_to_public_schema() -> None:
    assert '"public"."_sfsync_changes"' in install_statements("postgresql", None, [])[0]


def test_mysql_install_names_every_column_and_skips_updates_that_change_nothing() -> None:
    sql = install_statements("mysql", None, [INVOICE])
    assert sql[0].startswith("CREATE TABLE IF NOT EXISTS `_sfsync_changes`")
    triggers = [s for s in sql if s.startswith("CREATE TRIGGER")]
    assert [t.split()[2] for t in triggers] == [
        "`_sfsync_invoice_ins`",
        "`_sfsync_invoice_upd`",
        "`_sfsync_invoice_del`",
    ]
    update = triggers[1]
    assert "JSON_OBJECT('id', NEW.`id`, 'ext_id', NEW.`ext_id`, 'name', NEW.`name`)" in update
    assert "WHERE NOT (OLD.`id` <=> NEW.`id`) OR" in update
    assert "@sfsync_origin" in update
    assert "IF(NOT (OLD.`name` <=> NEW.`name`), '\"name\"', NULL)" in update
    # Each CREATE follows a DROP of the same trigger: a reinstall replaces it.
    assert sql.count("DROP TRIGGER IF EXISTS `_sfsync_invoice_upd`") == 1


def test_binary_columns_are_captured_as_hex() -> None:
    table = CapturedTable(
        table="doc", key_column="k", columns=("k", "body"), binary_columns=frozenset({"body"})
    )
    assert "HEX(NEW.`body`)" in "\n".join(install_statements("mysql", None, [table]))
    assert 'hex(NEW."body")' in "\n".join(install_statements("sqlite", None, [table]))


def test_identifiers_and_literals_are_quoted_for_each_dialect() -> None:
    assert quote("postgresql", 'we"ird') == '"we""ird"'
    assert quote("mysql", "we`ird") == "`we``ird`"
    assert literal("sqlite", "it's") == "'it''s'"
    assert literal("mysql", "a\\'b") == "'a\\\\''b'"


def test_long_table_names_get_short_stable_trigger_names() -> None:
    table = "t" * 70
    names = {mysql_trigger_name(table, op) for op in ("ins", "upd", "del")}
    assert len(names) == 3
    assert all(len(n) <= 64 and n.startswith("_sfsync_") for n in names)
    assert mysql_trigger_name(table, "ins") == mysql_trigger_name(table, "ins")
    assert mysql_trigger_name("invoice", "ins") == "_sfsync_invoice_ins"


def test_remove_drops_triggers_function_and_log() -> None:
    pg = remove_statements("postgresql", "s", [("invoice", "_sfsync_capture")])
    assert pg == [
        'DROP TRIGGER IF EXISTS "_sfsync_capture" ON "s"."invoice"',
        'DROP FUNCTION IF EXISTS "s"."_sfsync_capture"() CASCADE',
        'DROP TABLE IF EXISTS "s"."_sfsync_changes"',
    ]
    my = remove_statements("mysql", None, [("invoice", "_sfsync_invoice_ins")])
    assert my == [
        "DROP TRIGGER IF EXISTS `_sfsync_invoice_ins`",
        "DROP TABLE IF EXISTS `_sfsync_changes`",
    ]
    assert remove_statements("sqlite", None, [])[-1] == 'DROP TABLE IF EXISTS "_sfsync_origin"'


@pytest.mark.parametrize("dialect", ["postgresql", "mysql", "sqlite"])
def test_origin_statements_set_and_clear(dialect: str) -> None:
    mark, unmark = origin_statements(dialect, "s", "sfsync:o'brien")  # type: ignore[arg-type]
    assert "o''brien" in mark
    assert "o''brien" not in unmark


def _sqlite_with(table_sql: str, table: CapturedTable) -> sqlite3.Connection:
    db = sqlite3.connect(":memory:")
    db.execute(table_sql)
    for statement in install_statements("sqlite", None, [table]):
        db.execute(statement)
    return db


def test_sqlite_statements_run_and_capture_odd_names_and_values() -> None:
    odd = CapturedTable(table='in"voice', key_column="Ext Id", columns=("Ext Id", "it's"))
    db = _sqlite_with('CREATE TABLE "in""voice" ("Ext Id" text, "it\'s" text)', odd)
    db.execute('INSERT INTO "in""voice" VALUES (?, ?)', ("E1", "quote \" and ' "))
    db.execute('UPDATE "in""voice" SET "it\'s" = ?', ("changed",))
    db.execute('UPDATE "in""voice" SET "it\'s" = ?', ("changed",))  # no change: not logged
    db.execute('DELETE FROM "in""voice"')
    rows = db.execute(
        f"SELECT op, row_key, after_row, before_row, changed_columns, origin FROM {CHANGES_TABLE}"
        " ORDER BY seq"
    ).fetchall()
    assert [(r[0], r[1]) for r in rows] == [("I", "E1"), ("U", "E1"), ("D", "E1")]
    assert json.loads(rows[0][2]) == {"Ext Id": "E1", "it's": "quote \" and ' "}
    assert json.loads(rows[1][4]) == ["it's"]
    assert json.loads(rows[2][3])["it's"] == "changed"
    assert rows[2][2] is None


def test_sqlite_origin_is_recorded_only_while_marked() -> None:
    db = _sqlite_with("CREATE TABLE invoice (id, ext_id, name)", INVOICE)
    mark, unmark = origin_statements("sqlite", None, "sfsync:sync-a")
    db.execute("BEGIN")
    db.execute(mark)
    db.execute("INSERT INTO invoice VALUES (1, 'A', 'ours')")
    db.execute(unmark)
    db.execute("COMMIT")
    db.execute("INSERT INTO invoice VALUES (2, 'B', 'theirs')")
    origins = db.execute(f"SELECT row_key, origin FROM {CHANGES_TABLE} ORDER BY seq").fetchall()
    assert origins == [("A", "sfsync:sync-a"), ("B", None)]


def test_sqlite_install_twice_keeps_one_set_of_triggers() -> None:
    db = _sqlite_with("CREATE TABLE invoice (id, ext_id, name)", INVOICE)
    for statement in install_statements("sqlite", None, [INVOICE]):
        db.execute(statement)
    count = db.execute("SELECT COUNT(*) FROM sqlite_master WHERE type = 'trigger'").fetchone()
    assert count == (3,)


def test_sqlite_bytes_in_a_text_column_never_fail_the_write() -> None:
    db = _sqlite_with("CREATE TABLE invoice (id, ext_id, name text)", INVOICE)
    db.execute("INSERT INTO invoice VALUES (1, 'A', ?)", (b"\x00\x01",))
    (after,) = db.execute(f"SELECT after_row FROM {CHANGES_TABLE}").fetchone()
    assert json.loads(after)["name"] == "0001"
