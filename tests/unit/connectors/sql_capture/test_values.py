"""Column types as fields, and one form for values however they were read."""

from __future__ import annotations

import base64
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql

from sfsync.connectors.sql.capture.values import RowNormaliser, field_spec, normaliser
from sfsync.core.schema import FieldKind


@pytest.mark.parametrize(
    ("column_type", "kind"),
    [
        (sa.Integer(), FieldKind.INTEGER),
        (sa.BigInteger(), FieldKind.INTEGER),
        (mysql.TINYINT(display_width=1), FieldKind.BOOLEAN),
        (mysql.TINYINT(display_width=4), FieldKind.INTEGER),
        (sa.Boolean(), FieldKind.BOOLEAN),
        (sa.Numeric(10, 2), FieldKind.DECIMAL),
        (sa.Float(), FieldKind.FLOAT),
        (postgresql.DOUBLE_PRECISION(), FieldKind.FLOAT),
        (sa.DateTime(timezone=True), FieldKind.DATETIME),
        (sa.Date(), FieldKind.DATE),
        (sa.Time(), FieldKind.TIME),
        (postgresql.JSONB(), FieldKind.JSON),
        (postgresql.BYTEA(), FieldKind.BINARY),
        (sa.Text(), FieldKind.TEXT),
        (sa.String(40), FieldKind.STRING),
        (sa.String(), FieldKind.TEXT),
        (sa.types.NullType(), FieldKind.STRING),
    ],
)
def test_column_types_map_to_kinds(
    column_type: sa.types.TypeEngine[object], kind: FieldKind
) -> None:
    assert field_spec("c", column_type).kind is kind


def test_lengths_and_precision_are_kept() -> None:
    assert field_spec("c", sa.String(40)).length == 40
    spec = field_spec("c", sa.Numeric(12, 3), nullable=False)
    assert (spec.precision, spec.scale, spec.nullable) == (12, 3, False)


STAMP = "2026-03-01T10:30:00+00:00"


@pytest.mark.parametrize(
    "value",
    [
        "2026-03-01 10:30:00",  # MariaDB DATETIME in JSON, SQLite text (taken as UTC)
        "2026-03-01 10:30:00.000000",
        "2026-03-01T10:30:00Z",
        "2026-03-01T12:30:00+02:00",  # PostgreSQL to_jsonb of timestamptz in another zone
        datetime(2026, 3, 1, 10, 30),
        datetime(2026, 3, 1, 11, 30, tzinfo=timezone(timedelta(hours=1))),
    ],
)
def test_timestamps_become_one_utc_iso_form(value: object) -> None:
    assert normaliser(FieldKind.DATETIME)(value) == STAMP


def test_other_kinds_normalise() -> None:
    assert normaliser(FieldKind.DATE)(date(2026, 3, 1)) == "2026-03-01"
    assert normaliser(FieldKind.DATE)("2026-03-01T00:00:00") == "2026-03-01"
    assert normaliser(FieldKind.DECIMAL)(12.5) == Decimal("12.5")
    assert normaliser(FieldKind.DECIMAL)(Decimal("1.10")) == Decimal("1.10")
    assert normaliser(FieldKind.BOOLEAN)(1) is True
    assert normaliser(FieldKind.BOOLEAN)(0) is False
    assert normaliser(FieldKind.BOOLEAN)("f") is False
    assert normaliser(FieldKind.INTEGER)("42") == 42
    assert normaliser(FieldKind.FLOAT)(Decimal("1.5")) == 1.5
    assert normaliser(FieldKind.JSON)('{"a": [1]}') == {"a": [1]}
    assert normaliser(FieldKind.STRING)(datetime(2026, 1, 1, tzinfo=UTC)) == (
        "2026-01-01T00:00:00+00:00"
    )


def test_bytes_become_the_same_base64_from_every_path() -> None:
    wanted = base64.b64encode(b"\x00\xffab").decode()
    binary = normaliser(FieldKind.BINARY)
    assert binary(b"\x00\xffab") == wanted
    assert binary(memoryview(b"\x00\xffab")) == wanted
    assert binary("\\x00ff6162") == wanted  # PostgreSQL's to_jsonb
    assert binary("00FF6162") == wanted  # MariaDB's and SQLite's hex()


@pytest.mark.parametrize(
    ("kind", "value"),
    [(FieldKind.BOOLEAN, "maybe"), (FieldKind.DATETIME, 12), (FieldKind.INTEGER, "x")],
)
def test_unreadable_values_raise_value_error(kind: FieldKind, value: object) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the message varies by kind
        normaliser(kind)(value)


def test_row_normaliser_keeps_carried_columns_and_nulls() -> None:
    normalise = RowNormaliser(
        {"a": FieldKind.TEXT, "b": FieldKind.INTEGER, "c": FieldKind.DATETIME}
    )
    row = normalise({"a": None, "b": "3", "c": "2026-03-01 10:30:00", "other": 1})
    assert row == {"a": None, "b": 3, "c": STAMP}


def test_row_normaliser_remembers_a_conversion_only_for_an_equal_value_of_one_type() -> None:
    normalise = RowNormaliser({"c": FieldKind.DATETIME, "d": FieldKind.DATE})
    assert normalise({"c": "2026-03-01 10:30:00"})["c"] == STAMP
    assert normalise({"c": "2026-03-01 10:30:00"})["c"] == STAMP
    assert normalise({"c": "2026-03-01 11:30:00"})["c"] == "2026-03-01T11:30:00+00:00"
    assert normalise({"d": date(2026, 3, 1)})["d"] == "2026-03-01"
    assert normalise({"d": datetime(2026, 3, 2, 1, 0)})["d"] == "2026-03-02"


def test_row_normaliser_renames_columns_to_fields() -> None:
    normalise = RowNormaliser(
        {"ext_id__c": FieldKind.STRING, "amount__c": FieldKind.DECIMAL},
        {"ext_id__c": "Ext_Id__c", "amount__c": "Amount__c"},
    )
    assert normalise({"ext_id__c": "E1", "amount__c": 2.5, "x": 1}) == {
        "Ext_Id__c": "E1",
        "Amount__c": Decimal("2.5"),
    }
