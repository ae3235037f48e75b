"""Pure rules of SQL capture: key columns, carried columns, objects, tokens and outcomes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sfsync.connectors.sql.capture.install import CaptureObject, capture_objects, key_column
from sfsync.connectors.sql.capture.log import PgToken, seq_of
from sfsync.connectors.sql.capture.outcomes import log_outcomes
from sfsync.connectors.sql.capture.tables import carried_columns, field_names, log_stream
from sfsync.connectors.sql.config import PostgresConnection, SqliteConnection
from sfsync.core.errors import (
    ConfigError,
    ConflictError,
    RetryableError,
    SkippableError,
    SyncError,
)
from sfsync.core.events import ChangeEvent, Operation, Position
from sfsync.spi.sink import Outcome, OutcomeKind
from sfsync.spi.spec import EntitySelection

OBJ = CaptureObject(entity="Invoice__c", table="invoice", key="Ext_Id__c")


def test_key_column_is_the_field_name_then_its_lower_case() -> None:
    assert key_column(OBJ, ["id", "Ext_Id__c", "ext_id__c"]) == "Ext_Id__c"
    assert key_column(OBJ, ["id", "ext_id__c"]) == "ext_id__c"


def test_key_column_can_be_mapped_per_table() -> None:
    assert key_column(OBJ, ["ref", "ext_id__c"], {"invoice": "ref"}) == "ref"
    with pytest.raises(ConfigError, match="no such column"):
        key_column(OBJ, ["ext_id__c"], {"invoice": "ref"})


def test_a_missing_key_column_names_the_columns_and_the_fixes() -> None:
    with pytest.raises(ConfigError) as caught:
        key_column(OBJ, ["id", "name"])
    assert "'ext_id__c'" in str(caught.value)
    assert "capture_key_columns" in str(caught.value)
    assert "id, name" in str(caught.value)


def test_carried_columns_follow_fields_and_exclude_without_regard_to_case() -> None:
    names = ["id", "ext_id__c", "Name", "amount", "_sfsync_synced_at"]
    assert carried_columns(OBJ, names, "ext_id__c") == ["ext_id__c", "id", "Name", "amount"]
    picked = CaptureObject(entity="X", table="t", key="k", fields=("NAME", "Ext_Id__c"))
    assert carried_columns(picked, names, "ext_id__c") == ["ext_id__c", "Name"]
    dropped = CaptureObject(entity="X", table="t", key="k", exclude=("Amount",))
    assert carried_columns(dropped, names, "ext_id__c") == ["ext_id__c", "id", "Name"]
    with pytest.raises(ConfigError, match="no column"):
        carried_columns(
            CaptureObject(entity="X", table="t", key="k", fields=("Nope",)), names, "id"
        )


def test_capture_objects_refuse_a_where_filter() -> None:
    ok = capture_objects([EntitySelection(name="Invoice__c", target="inv", key="Ext_Id__c")])
    assert ok == [CaptureObject(entity="Invoice__c", table="inv", key="Ext_Id__c")]
    with pytest.raises(ConfigError, match="where"):
        capture_objects([EntitySelection(name="Account", where="Name != null")])


def test_pg_tokens_round_trip() -> None:
    for token in (PgToken("10:12:11"), PgToken("10:12:11", "15:15:", 42)):
        assert PgToken.parse(token.encode()) == token
    assert seq_of(PgToken("1:1:", "2:2:", 7).encode()) == 7
    assert seq_of("99") == 99
    with pytest.raises(ValueError, match="not a change log position"):
        PgToken.parse("a/b")


def _event(seq: int, stream: str = log_stream("invoice")) -> ChangeEvent:
    return ChangeEvent(
        entity="Invoice__c",
        key=f"K{seq}",
        op=Operation.CREATE,
        after={"name": "x"},
        position=Position(stream, str(seq)),
        committed_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


def test_outcomes_map_to_statuses() -> None:
    events = [_event(n) for n in range(1, 6)] + [_event(9, "snapshot:Invoice__c"), _event(10)]
    outcomes: list[Outcome | SyncError] = [
        Outcome.applied("a01"),
        Outcome(OutcomeKind.STALE),
        Outcome.rejected(SkippableError("bad", code="BAD", hint="fix it")),
        Outcome(OutcomeKind.CONFLICT, error=ConflictError("both changed")),
        Outcome(OutcomeKind.RETRY, error=RetryableError("locked")),
        Outcome.applied(),
        RetryableError("gave up"),  # an error in place of an outcome is not final
    ]
    marks = log_outcomes(events, outcomes, log_streams={log_stream("invoice")})
    assert [(m.seq, m.status, m.target_key) for m in marks] == [
        (1, "applied", "a01"),
        (2, "stale", None),
        (3, "rejected", None),
        (4, "conflict", None),
    ]
    assert marks[2].error == "[BAD] bad (fix: fix it)"


def test_the_last_outcome_of_a_repeated_change_wins() -> None:
    events = [_event(1), _event(1)]
    outcomes = [Outcome.rejected(SkippableError("first")), Outcome.applied()]
    marks = log_outcomes(events, outcomes, log_streams={log_stream("invoice")})
    assert [(m.seq, m.status) for m in marks] == [(1, "applied")]


def test_capture_settings_are_validated() -> None:
    conn = PostgresConnection(type="postgres", url="postgresql://u@h/db")
    assert conn.capture == "triggers"
    assert conn.updated_at_column == "updated_at"
    with pytest.raises(ValueError, match="capture"):
        SqliteConnection(type="sqlite", url="sqlite:///x.db", capture="cdc")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="updated_at_column"):
        SqliteConnection(type="sqlite", url="sqlite:///x.db", updated_at_column="bad name")


def test_columns_become_fields_spelled_as_configured() -> None:
    obj = CaptureObject(
        entity="Invoice__c", table="invoice", key="Ext_Id__c", fields=("Amount__c", "Ext_Id__c")
    )
    names = field_names(obj, ["ext_id__c", "amount__c", "note"], "ext_id__c")
    assert names == {"ext_id__c": "Ext_Id__c", "amount__c": "Amount__c", "note": "note"}
    mapped = CaptureObject(entity="X", table="t", key="Erp_Id__c")
    assert field_names(mapped, ["ref"], "ref") == {"ref": "Erp_Id__c"}


def test_two_columns_becoming_one_field_is_a_config_error() -> None:
    obj = CaptureObject(entity="X", table="t", key="k", fields=("Name",))
    with pytest.raises(ConfigError, match="would both become field 'Name'"):
        field_names(obj, ["k", "Name", "name"], "k")


def test_capture_columns_rename_a_column_to_any_field() -> None:
    obj = CaptureObject(entity="Contact", table="contacts", key="Ext_Id__c")
    names = field_names(
        obj, ["ext_id__c", "account_ref", "last_name"], "ext_id__c",
        {"account_ref": "Account.Ext_Id__c", "last_name": "LastName"},
    )  # fmt: skip
    assert names == {
        "ext_id__c": "Ext_Id__c",
        "account_ref": "Account.Ext_Id__c",
        "last_name": "LastName",
    }
    with pytest.raises(ConfigError, match="renames nope"):
        field_names(obj, ["ext_id__c"], "ext_id__c", {"nope": "X"})
    with pytest.raises(ConfigError, match="renames ext_id__c"):
        field_names(obj, ["ext_id__c"], "ext_id__c", {"ext_id__c": "Other__c"})
