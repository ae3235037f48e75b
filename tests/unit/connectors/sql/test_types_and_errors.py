"""The type mapping, value conversion and error classification tables."""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime, time
from decimal import Decimal

import psycopg
import pymysql
import pytest
from sqlalchemy.dialects import mysql, postgresql, sqlite

from sfsync.connectors.sql.errors import classify
from sfsync.connectors.sql.types import (
    Dialect,
    canonical_version_text,
    column_type,
    converter,
    explain_rejection,
)
from sfsync.core.errors import ConfigError, FatalError, RetryableError, SkippableError
from sfsync.core.schema import FieldKind, FieldSpec

_DIALECTS = {
    "postgresql": postgresql.dialect(),  # type: ignore[no-untyped-call]
    "mysql": mysql.dialect(),
    "sqlite": sqlite.dialect(),
}


def ddl(spec: FieldSpec, dialect: Dialect) -> str:
    return str(column_type(spec, dialect).compile(dialect=_DIALECTS[dialect]))


@pytest.mark.parametrize(
    ("spec", "pg", "my", "lite"),
    [
        (FieldSpec(name="f", kind=FieldKind.ID, length=18), "VARCHAR(18)", "VARCHAR(18)", "TEXT"),
        (FieldSpec(name="f", kind=FieldKind.REFERENCE), "VARCHAR(255)", "VARCHAR(255)", "TEXT"),
        (
            FieldSpec(name="f", kind=FieldKind.STRING, length=80),
            "VARCHAR(80)",
            "VARCHAR(80)",
            "TEXT",
        ),
        (FieldSpec(name="f", kind=FieldKind.STRING, length=1000), "VARCHAR(1000)", "TEXT", "TEXT"),
        (FieldSpec(name="f", kind=FieldKind.STRING), "TEXT", "LONGTEXT", "TEXT"),
        (FieldSpec(name="f", kind=FieldKind.TEXT), "TEXT", "LONGTEXT", "TEXT"),
        (FieldSpec(name="f", kind=FieldKind.BOOLEAN), "BOOLEAN", "BOOL", "INTEGER"),
        (FieldSpec(name="f", kind=FieldKind.INTEGER), "BIGINT", "BIGINT", "INTEGER"),
        (
            FieldSpec(name="f", kind=FieldKind.DECIMAL, precision=18, scale=2),
            "NUMERIC(18, 2)",
            "NUMERIC(18, 2)",
            "NUMERIC",
        ),
        (FieldSpec(name="f", kind=FieldKind.DECIMAL), "NUMERIC", "NUMERIC(38, 10)", "NUMERIC"),
        (FieldSpec(name="f", kind=FieldKind.FLOAT), "DOUBLE PRECISION", "DOUBLE", "FLOAT"),
        (FieldSpec(name="f", kind=FieldKind.DATE), "DATE", "DATE", "TEXT"),
        (
            FieldSpec(name="f", kind=FieldKind.DATETIME),
            "TIMESTAMP WITH TIME ZONE",
            "DATETIME(6)",
            "TEXT",
        ),
        (FieldSpec(name="f", kind=FieldKind.TIME), "TIME WITHOUT TIME ZONE", "TIME(6)", "TEXT"),
        (FieldSpec(name="f", kind=FieldKind.JSON), "JSONB", "JSON", "TEXT"),
        (FieldSpec(name="f", kind=FieldKind.BINARY), "BYTEA", "LONGBLOB", "BLOB"),
    ],
)
def test_the_documented_type_mapping(spec: FieldSpec, pg: str, my: str, lite: str) -> None:
    assert (ddl(spec, "postgresql"), ddl(spec, "mysql"), ddl(spec, "sqlite")) == (pg, my, lite)


SF_STAMP = "2016-01-02T14:27:21.466+0000"
UTC_STAMP = datetime(2016, 1, 2, 14, 27, 21, 466000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("kind", "dialect", "raw", "expected"),
    [
        (FieldKind.DATETIME, "postgresql", SF_STAMP, UTC_STAMP),
        (FieldKind.DATETIME, "postgresql", "2016-01-02T16:27:21.466+02:00", UTC_STAMP),
        (FieldKind.DATETIME, "mysql", SF_STAMP, UTC_STAMP.replace(tzinfo=None)),
        (FieldKind.DATETIME, "sqlite", SF_STAMP, "2016-01-02T14:27:21.466000+00:00"),
        (FieldKind.DATE, "postgresql", "2024-02-29", date(2024, 2, 29)),
        (FieldKind.DATE, "sqlite", "2024-02-29", "2024-02-29"),
        (FieldKind.TIME, "mysql", "10:30:00.000Z", time(10, 30)),
        (FieldKind.DECIMAL, "postgresql", 12.1, Decimal("12.1")),
        (FieldKind.DECIMAL, "mysql", "1e3", Decimal("1e3")),
        (FieldKind.DECIMAL, "sqlite", "10.50", "10.50"),
        (FieldKind.INTEGER, "postgresql", "42", 42),
        (FieldKind.INTEGER, "postgresql", 3.0, 3),
        (FieldKind.BOOLEAN, "mysql", "true", True),
        (FieldKind.BOOLEAN, "sqlite", 0, False),
        (FieldKind.FLOAT, "postgresql", "2.5", 2.5),
        (FieldKind.STRING, "postgresql", 7, "7"),
        (FieldKind.JSON, "postgresql", {"city": "São Paulo"}, '{"city":"São Paulo"}'),
        (FieldKind.BINARY, "postgresql", "aGk=", b"hi"),
        (FieldKind.INTEGER, "sqlite", None, None),
    ],
)
def test_values_convert_exactly(
    kind: FieldKind, dialect: Dialect, raw: object, expected: object
) -> None:
    assert converter(kind, dialect)(raw) == expected


@pytest.mark.parametrize(
    ("kind", "raw"),
    [
        (FieldKind.INTEGER, "many"),
        (FieldKind.INTEGER, 2.5),
        (FieldKind.DECIMAL, "NaN"),
        (FieldKind.DECIMAL, True),
        (FieldKind.BOOLEAN, "yes"),
        (FieldKind.DATETIME, "yesterday"),
        (FieldKind.DATE, "03/02/2001"),
        (FieldKind.FLOAT, "fast"),
        (FieldKind.BINARY, "not base64!"),
    ],
)
def test_unreadable_values_raise_value_error(kind: FieldKind, raw: object) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the message is checked in the sink suite
        converter(kind, "postgresql")(raw)


def test_version_text_is_canonical_so_text_order_is_time_order() -> None:
    early = canonical_version_text("2026-01-01T10:00:00.000+0200")
    late = canonical_version_text("2026-01-01T09:00:00.5Z")
    assert early == "2026-01-01T08:00:00.000000+00:00"
    assert early < late
    assert canonical_version_text("seq-0042") == "seq-0042"


def test_explain_rejection_names_the_field() -> None:
    specs = {
        "Name": FieldSpec(name="Name", kind=FieldKind.STRING, length=5),
        "Amount": FieldSpec(name="Amount", kind=FieldKind.DECIMAL, precision=5, scale=2),
    }
    problems = explain_rejection(specs, {"Name": "toolong", "Amount": Decimal("1234.5")})
    assert problems == [
        "field 'Name' has 7 characters, its column allows 5",
        "field 'Amount' = 1234.5 needs more than the 3 integer digits of decimal(5,2)",
    ]
    assert explain_rejection(specs, {"Name": "ok", "Amount": Decimal("999.99")}) == []


def _pg(sqlstate: str) -> psycopg.Error:
    return psycopg.errors.lookup(sqlstate)("server said no")


@pytest.mark.parametrize(
    ("exc", "expected", "code"),
    [
        (_pg("40P01"), RetryableError, "40P01"),  # deadlock
        (_pg("40001"), RetryableError, "40001"),  # serialization failure
        (_pg("57P01"), RetryableError, "57P01"),  # admin shutdown
        (_pg("08006"), RetryableError, "08006"),  # connection failure
        (_pg("22001"), SkippableError, "22001"),  # value too long
        (_pg("22003"), SkippableError, "22003"),  # numeric out of range
        (_pg("23505"), SkippableError, "23505"),  # unique violation
        (_pg("28P01"), ConfigError, "28P01"),  # bad password
        (_pg("3D000"), ConfigError, "3D000"),  # no such database
        (_pg("42501"), FatalError, "42501"),  # permission denied
        (_pg("42P01"), FatalError, "42P01"),  # table dropped
        (pymysql.err.OperationalError(2013, "Lost connection"), RetryableError, "2013"),
        (pymysql.err.OperationalError(1213, "Deadlock found"), RetryableError, "1213"),
        (pymysql.err.DataError(1406, "Data too long for column 'Name'"), SkippableError, "1406"),
        (pymysql.err.IntegrityError(1062, "Duplicate entry"), SkippableError, "1062"),
        (pymysql.err.OperationalError(1045, "Access denied"), ConfigError, "1045"),
        (pymysql.err.OperationalError(1049, "Unknown database"), ConfigError, "1049"),
        (pymysql.err.OperationalError(1142, "INSERT command denied"), FatalError, "1142"),
    ],
)
def test_driver_errors_classify_by_code(exc: Exception, expected: type, code: str) -> None:
    error = classify(exc)
    assert type(error) is expected
    assert error.code == code
    if expected in (ConfigError, FatalError):
        assert error.hint


def _sqlite_error(script: str) -> sqlite3.Error:
    conn = sqlite3.connect(":memory:")
    try:
        conn.executescript(script)
    except sqlite3.Error as exc:
        return exc
    finally:
        conn.close()
    raise AssertionError("the script should have failed")


def test_sqlite_errors_classify_from_real_failures() -> None:
    constraint = _sqlite_error(
        "CREATE TABLE t (k TEXT PRIMARY KEY); INSERT INTO t VALUES (NULL), ('a'), ('a');"
    )
    assert isinstance(classify(constraint), SkippableError)
    assert isinstance(classify(_sqlite_error("SELECT * FROM missing;")), FatalError)
    readonly = sqlite3.connect("file::memory:?mode=ro", uri=True)
    try:
        with pytest.raises(sqlite3.Error) as info:
            readonly.execute("CREATE TABLE t (k)")
    finally:
        readonly.close()
    assert isinstance(classify(info.value), FatalError)
