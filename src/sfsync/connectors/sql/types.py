"""The documented mapping from portable field kinds to SQL column types and values.

Two halves, kept together because they must agree:

* :func:`column_type` turns a :class:`~sfsync.core.schema.FieldSpec` into the SQLAlchemy
  type a column gets in each dialect (the table in ``docs/sql-sink.md`` is this function).
* :func:`converter` returns, once per column, the function that turns an event's value (as a
  source delivers it: JSON-ish text, numbers, booleans, dicts) into what the DB driver binds.
  It runs on the bulk path, so it does the least work that is still exact: ``fromisoformat``
  for timestamps (it accepts Salesforce's ``+0000`` on 3.11), no regexes, no ``strptime``.

A value the converter cannot read (``"abc"`` for an integer) raises :class:`ValueError` naming
the problem; the sink turns that into a REJECTED outcome for that one event. Range and length
limits are left to the database, which knows its own column (the sink explains them on
failure with :func:`explain_rejection`).

Dialects are named ``"postgresql"``, ``"mysql"`` (MySQL and MariaDB) and ``"sqlite"``.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql

from sfsync.core.schema import FieldKind, FieldSpec

Dialect = Literal["postgresql", "mysql", "sqlite"]
Converter = Callable[[object], object]

# Keys and references without a declared length: wide enough for any source's key, and still
# short enough for an InnoDB primary-key index (255 x 4 bytes < 3072).
DEFAULT_KEY_LENGTH = 255
# MySQL counts every VARCHAR's maximum against a 65,535-byte row limit; longer strings go to
# TEXT-family columns, which do not count (and do not enforce the length).
MYSQL_MAX_VARCHAR = 255


def column_type(spec: FieldSpec, dialect: Dialect) -> sa.types.TypeEngine[Any]:
    """The column type for ``spec`` in ``dialect`` (see the module docstring)."""
    kind = spec.kind
    if dialect == "sqlite":
        return _sqlite_type(kind)
    if kind in (FieldKind.ID, FieldKind.REFERENCE):
        return sa.String(spec.length or DEFAULT_KEY_LENGTH)
    if kind is FieldKind.STRING:
        if dialect == "postgresql":
            return sa.String(spec.length) if spec.length else sa.Text()
        if 0 < spec.length <= MYSQL_MAX_VARCHAR:
            return sa.String(spec.length)
        return _mysql_text(spec.length)
    if kind is FieldKind.TEXT:
        return sa.Text() if dialect == "postgresql" else mysql.LONGTEXT()
    if kind is FieldKind.BOOLEAN:
        return sa.Boolean()
    if kind is FieldKind.INTEGER:
        return sa.BigInteger()
    if kind is FieldKind.DECIMAL:
        if spec.precision:
            return sa.Numeric(spec.precision, spec.scale)
        # No declared precision: PostgreSQL's numeric holds anything; MySQL needs digits.
        return sa.Numeric() if dialect == "postgresql" else sa.Numeric(38, 10)
    if kind is FieldKind.FLOAT:
        return postgresql.DOUBLE_PRECISION() if dialect == "postgresql" else mysql.DOUBLE()
    if kind is FieldKind.DATE:
        return sa.Date()
    if kind is FieldKind.DATETIME:
        # MySQL has no zone-aware type: the sink stores UTC; 6 digits so nothing is truncated.
        return sa.DateTime(timezone=True) if dialect == "postgresql" else mysql.DATETIME(fsp=6)
    if kind is FieldKind.TIME:
        return sa.Time() if dialect == "postgresql" else mysql.TIME(fsp=6)
    if kind is FieldKind.JSON:
        return postgresql.JSONB() if dialect == "postgresql" else sa.JSON()
    if kind is FieldKind.BINARY:
        return postgresql.BYTEA() if dialect == "postgresql" else mysql.LONGBLOB()
    raise AssertionError(f"unmapped field kind {kind}")


def _sqlite_type(kind: FieldKind) -> sa.types.TypeEngine[Any]:
    # SQLite's type affinity: timestamps, dates and times are canonical ISO text (which sorts
    # in time order), booleans 0/1, decimals NUMERIC, JSON text.
    if kind in (FieldKind.BOOLEAN, FieldKind.INTEGER):
        return sa.Integer()
    if kind is FieldKind.DECIMAL:
        return sa.Numeric()
    if kind is FieldKind.FLOAT:
        return sa.Float()
    if kind is FieldKind.BINARY:
        return sa.LargeBinary()
    return sa.Text()


def _mysql_text(length: int) -> sa.types.TypeEngine[Any]:
    if length and length <= 16_383:  # TEXT holds 65,535 bytes = 16,383 utf8mb4 characters
        return mysql.TEXT()
    return mysql.MEDIUMTEXT() if length and length <= 4_194_303 else mysql.LONGTEXT()


def type_label(spec: FieldSpec) -> str:
    """How a field's type is named in notices: ``string(80)``, ``decimal(18,2)``, ``date``."""
    if spec.kind is FieldKind.STRING and spec.length:
        return f"string({spec.length})"
    if spec.kind is FieldKind.DECIMAL and spec.precision:
        return f"decimal({spec.precision},{spec.scale})"
    return spec.kind.value


# --- values -------------------------------------------------------------------------------


def parse_datetime(value: object) -> datetime:
    """A timezone-aware UTC datetime from ISO text or a datetime (naive means UTC)."""
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, str):
        dt = datetime.fromisoformat(value)
    else:
        raise ValueError(f"expected an ISO timestamp, got {type(value).__name__}")
    if dt.tzinfo is None:
        return dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def sqlite_datetime_text(dt: datetime) -> str:
    """The canonical SQLite text of a UTC timestamp: fixed width, so text order is time order."""
    return dt.isoformat(timespec="microseconds")


def _to_text(value: object) -> object:
    return value if isinstance(value, str) else str(value)


def _to_bool(value: object) -> object:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
        return value.lower() in ("true", "1")
    raise ValueError(f"{value!r} is not a boolean")


def _to_int(value: object) -> object:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            pass
    raise ValueError(f"{value!r} is not an integer")


def _to_decimal(value: object) -> Decimal:
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number")
    try:
        number = Decimal(value) if isinstance(value, (str, int, Decimal)) else None
        if number is None and isinstance(value, float):
            number = Decimal(repr(value))  # the shortest text of the float, not its binary
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite():
        raise ValueError(f"{value!r} is not a finite decimal number")
    return number


def _to_float(value: object) -> object:
    if isinstance(value, float):
        return value
    if isinstance(value, (int, str)) and not isinstance(value, bool):
        try:
            return float(value)
        except ValueError:
            pass
    raise ValueError(f"{value!r} is not a number")


def _to_date(value: object) -> date:
    if isinstance(value, datetime):
        return parse_datetime(value).date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        return date.fromisoformat(value[:10]) if "T" in value else date.fromisoformat(value)
    raise ValueError(f"{value!r} is not a date")


def _to_time(value: object) -> time:
    if isinstance(value, time):
        return value
    if isinstance(value, str):
        return time.fromisoformat(value.rstrip("Z"))
    raise ValueError(f"{value!r} is not a time of day")


def _to_json(value: object) -> object:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _to_bytes(value: object) -> object:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str):  # Salesforce sends base64 fields as base64 text
        return base64.b64decode(value, validate=True)
    raise ValueError(f"{type(value).__name__} is not binary data")


def _nullable(convert: Converter) -> Converter:
    def run(value: object) -> object:
        return None if value is None else convert(value)

    return run


TEXT_KINDS = frozenset({FieldKind.ID, FieldKind.REFERENCE, FieldKind.STRING, FieldKind.TEXT})


def ready_class(kind: FieldKind, dialect: Dialect) -> type:
    """The class whose values the driver takes for ``kind`` as they are (exact class, no
    subclasses: ``bool`` is an ``int`` but not an integer value), or ``NoneType`` if none."""
    if kind in TEXT_KINDS:
        return str
    if kind is FieldKind.BOOLEAN:
        return bool
    if kind is FieldKind.INTEGER:
        return int
    if kind is FieldKind.FLOAT:
        return float
    if kind is FieldKind.DECIMAL and dialect != "sqlite":
        return Decimal
    return type(None)


def converter(kind: FieldKind, dialect: Dialect, *, nullable: bool = True) -> Converter:
    """The function turning an event value of ``kind`` into the driver value for ``dialect``.

    With ``nullable`` ``None`` stays ``None``; without, the caller handles ``None`` itself (the
    bulk path, which saves a call per value). Raises :class:`ValueError` (or a subclass) for
    unreadable values.
    """
    convert: Converter
    if kind in TEXT_KINDS:
        convert = _to_text
    elif kind is FieldKind.BOOLEAN:
        convert = _to_bool
    elif kind is FieldKind.INTEGER:
        convert = _to_int
    elif kind is FieldKind.DECIMAL:
        convert = _to_decimal
        if dialect == "sqlite":  # exact text; NUMERIC affinity stores it as a number
            convert = _compose(_to_decimal, str)
    elif kind is FieldKind.FLOAT:
        convert = _to_float
    elif kind is FieldKind.DATETIME:
        if dialect == "postgresql":
            convert = parse_datetime
        elif dialect == "mysql":
            convert = _compose(parse_datetime, _naive)
        else:
            convert = _compose(parse_datetime, sqlite_datetime_text)
    elif kind is FieldKind.DATE:
        convert = _compose(_to_date, date.isoformat) if dialect == "sqlite" else _to_date
    elif kind is FieldKind.TIME:
        convert = _compose(_to_time, time.isoformat) if dialect == "sqlite" else _to_time
    elif kind is FieldKind.JSON:
        convert = _to_json
    else:
        convert = _to_bytes
    return _nullable(convert) if nullable else convert


ColumnConverter = Callable[[Sequence[object]], Sequence[object]]


def column_converter(kind: FieldKind, dialect: Dialect) -> ColumnConverter | None:
    """A converter of a whole column of non-``None``-or-``None`` values, for the kinds where
    one is much cheaper than :func:`converter` per value; ``None`` for the other kinds.

    It gives exactly what ``converter(kind, dialect)`` gives value by value (``None`` stays
    ``None``) and raises the same errors for unreadable values. It inlines the common case
    (Salesforce's ISO text for timestamps, floats for decimals) and hands anything else to
    the per-value converter.
    """
    if dialect != "postgresql":
        return None
    if kind is FieldKind.DATETIME:
        return _datetime_column
    if kind is FieldKind.DECIMAL:
        return _decimal_column
    return None


def _datetime_column(values: Sequence[object]) -> Sequence[object]:
    parse = datetime.fromisoformat
    out = [
        v if v is None else parse(v) if v.__class__ is str else parse_datetime(v) for v in values
    ]
    # fromisoformat keeps the offset it read: only UTC ones (Salesforce's "+0000", "Z") are
    # already what parse_datetime gives; anything else goes through it.
    if any(d is not None and d.tzinfo is not UTC for d in out):
        out = [None if v is None else parse_datetime(v) for v in values]
    return out


def _decimal_column(values: Sequence[object]) -> Sequence[object]:
    number, finite = Decimal, math.isfinite
    return [
        v
        if v is None or v.__class__ is Decimal
        else number(repr(v))
        if v.__class__ is float and finite(v)
        else _to_decimal(v)
        for v in values
    ]


def _naive(dt: datetime) -> datetime:
    return dt.replace(tzinfo=None)


def _compose(first: Callable[[Any], object], then: Callable[[Any], object]) -> Converter:
    # Typed loosely on purpose: each pair is checked by the tests of its dialect.
    def run(value: object) -> object:
        return then(first(value))

    return run


def comparable_version(value: object) -> object:
    """A database version value in a form that orders correctly in Python.

    MySQL returns naive datetimes (stored as UTC); SQLite returns ISO text, which already sorts
    in time order because the sink writes it in one canonical width. Everything else compares
    as it comes.
    """
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def canonical_version_text(version: str) -> str:
    """How ``_sfsync_version`` stores a version when the schema has no version field.

    ISO timestamps become canonical UTC text (so text order is time order); other versions
    (sequence numbers rendered as text) are stored as they are and compared as text.
    """
    try:
        return sqlite_datetime_text(parse_datetime(version))
    except ValueError:
        return version


def explain_rejection(specs: Mapping[str, FieldSpec], values: Mapping[str, object]) -> list[str]:
    """Which of ``values`` break their declared limits, in words (for a rejected row's error).

    Databases often say "value too long for type character varying(5)" without naming the
    column; this names it.
    """
    problems: list[str] = []
    for name, value in values.items():
        spec = specs.get(name)
        if spec is None or value is None:
            continue
        if spec.kind in (FieldKind.STRING, FieldKind.ID, FieldKind.REFERENCE) and spec.length:
            if isinstance(value, str) and len(value) > spec.length:
                problems.append(
                    f"field {name!r} has {len(value)} characters, its column allows {spec.length}"
                )
        elif spec.kind is FieldKind.DECIMAL and spec.precision and value is not None:
            try:
                number = _to_decimal(value)
            except ValueError:
                continue
            digits = len(number.as_tuple().digits) + int(number.as_tuple().exponent)
            if digits > spec.precision - spec.scale:
                problems.append(
                    f"field {name!r} = {number} needs more than the "
                    f"{spec.precision - spec.scale} integer digits of decimal"
                    f"({spec.precision},{spec.scale})"
                )
    return problems
