"""Table columns as portable fields, and row values in one form whichever way they were read.

A row reaches the source two ways: as native driver values (a snapshot, the ``updated_at``
poller) or as JSON written by a trigger (the change log), where each database renders
timestamps, booleans and bytes its own way. :func:`normaliser` turns both into the same
values, so an event never depends on the path it took:

==========  ===========================================================================
kind        value in ``ChangeEvent.after``
==========  ===========================================================================
DATETIME    ISO 8601 text in UTC (``2026-01-01T10:00:00.250000+00:00``); a column without
            a time zone is taken to hold UTC
DATE, TIME  ISO 8601 text
DECIMAL     :class:`decimal.Decimal` (never a float: no digit is lost)
INTEGER     ``int``;  FLOAT ``float``;  BOOLEAN ``bool`` (MariaDB's and SQLite's 0/1 too)
JSON        the decoded structure
BINARY      base64 text
others      text
==========  ===========================================================================
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from sfsync.core.schema import FieldKind, FieldSpec

Normaliser = Callable[[object], object]


def field_spec(name: str, column_type: Any, *, nullable: bool = True) -> FieldSpec:
    """The portable field for a reflected column of ``column_type``."""
    kind, length, precision, scale = _kind(column_type)
    return FieldSpec(
        name=name,
        kind=kind,
        length=length,
        precision=precision,
        scale=scale,
        nullable=nullable,
        source_type="" if isinstance(column_type, sa.types.NullType) else str(column_type).lower(),
    )


def _kind(t: Any) -> tuple[FieldKind, int, int, int]:
    # MariaDB has no boolean type: BOOLEAN is TINYINT(1).
    if isinstance(t, sa.Boolean) or (isinstance(t, mysql.TINYINT) and t.display_width == 1):
        return FieldKind.BOOLEAN, 0, 0, 0
    if isinstance(t, sa.Integer):
        return FieldKind.INTEGER, 0, 0, 0
    if isinstance(t, sa.Float):
        return FieldKind.FLOAT, 0, 0, 0
    if isinstance(t, sa.Numeric):
        return FieldKind.DECIMAL, 0, t.precision or 0, t.scale or 0
    if isinstance(t, sa.DateTime):
        return FieldKind.DATETIME, 0, 0, 0
    if isinstance(t, sa.Date):
        return FieldKind.DATE, 0, 0, 0
    if isinstance(t, sa.Time):
        return FieldKind.TIME, 0, 0, 0
    if isinstance(t, sa.JSON):
        return FieldKind.JSON, 0, 0, 0
    if isinstance(t, sa.types._Binary):
        return FieldKind.BINARY, 0, 0, 0
    if isinstance(t, sa.Text):
        return FieldKind.TEXT, 0, 0, 0
    if isinstance(t, sa.String):
        return (FieldKind.STRING, t.length, 0, 0) if t.length else (FieldKind.TEXT, 0, 0, 0)
    return FieldKind.STRING, 0, 0, 0


def normaliser(kind: FieldKind) -> Normaliser:
    """The function that brings a value of a ``kind`` column to its one form (table above).

    Raises (from the returned function):
        ValueError: the value cannot be read as ``kind``.
    """
    return _NORMALISERS.get(kind, _text)


class RowNormaliser:
    """Normalises the rows of one table: built once from its carried columns, applied to every
    row on the hot path. Columns that are not carried are left out of the result, the others
    come out under their field names; a value already in its form (text for text, ``int``
    for integers...) is kept without a call.

    Args:
        kinds: each carried column's kind.
        names: the field each column becomes (default: its own name).
    """

    __slots__ = ("_plan",)

    def __init__(
        self, kinds: Mapping[str, FieldKind], names: Mapping[str, str] | None = None
    ) -> None:
        self._plan = {
            column: (
                (names or {}).get(column, column),
                _READY.get(kind),
                _last_value_cached(normaliser(kind)) if kind in _CACHED else normaliser(kind),
            )
            for column, kind in kinds.items()
        }

    def __call__(self, row: Mapping[str, object]) -> dict[str, object]:
        plan = self._plan
        out: dict[str, object] = {}
        for column, value in row.items():
            entry = plan.get(column)
            if entry is None:
                continue
            name, ready, convert = entry
            out[name] = value if value is None or type(value) is ready else convert(value)
        return out


def _last_value_cached(convert: Normaliser) -> Normaliser:
    # Rows written together share values (a transaction's updated_at, a batch's date): the
    # last conversion is remembered, which spares most timestamp parsing on bulk changes.
    last: list[object] = [object(), None]

    def cached(value: object) -> object:
        if value == last[0] and type(value) is type(last[0]):
            return last[1]
        out = convert(value)
        last[0], last[1] = value, out
        return out

    return cached


def _text(value: object) -> object:
    if isinstance(value, str):
        return value
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, bytes | memoryview):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def _datetime(value: object) -> object:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        raise ValueError(f"{value!r} is not a timestamp")
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat()


def _date(value: object) -> object:
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return date.fromisoformat(str(value)[:10]).isoformat()


def _time(value: object) -> object:
    if isinstance(value, time):
        return value.isoformat()
    return time.fromisoformat(str(value)).isoformat()


def _decimal(value: object) -> object:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool):
        return Decimal(int(value))
    return Decimal(str(value))


def _integer(value: object) -> object:
    if isinstance(value, int):
        return int(value)
    return int(str(value))


def _float(value: object) -> object:
    return float(str(value)) if not isinstance(value, int | float) else float(value)


def _boolean(value: object) -> object:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | Decimal):
        return value != 0
    text = str(value).strip().lower()
    if text in ("1", "t", "true", "yes", "y"):
        return True
    if text in ("0", "f", "false", "no", "n"):
        return False
    raise ValueError(f"{value!r} is not a boolean")


def _json(value: object) -> object:
    if isinstance(value, str):
        return json.loads(value)
    return value


def _binary(value: object) -> object:
    if isinstance(value, bytes | memoryview):
        return base64.b64encode(bytes(value)).decode()
    # Triggers write bytes as hex: PostgreSQL's to_jsonb as \x..., MariaDB's and SQLite's
    # hex() without a prefix.
    text = str(value).removeprefix("\\x")
    return base64.b64encode(bytes.fromhex(text)).decode()


# The type a value of each kind already has in its one form (no conversion needed).
_READY: dict[FieldKind, type] = {
    FieldKind.ID: str,
    FieldKind.REFERENCE: str,
    FieldKind.STRING: str,
    FieldKind.TEXT: str,
    FieldKind.INTEGER: int,
    FieldKind.FLOAT: float,
    FieldKind.DECIMAL: Decimal,
    FieldKind.BOOLEAN: bool,
    FieldKind.JSON: dict,
}

# Kinds whose conversion is worth remembering (parsing) and whose results are immutable text.
_CACHED = frozenset({FieldKind.DATETIME, FieldKind.DATE, FieldKind.TIME})

_NORMALISERS: dict[FieldKind, Normaliser] = {
    FieldKind.DATETIME: _datetime,
    FieldKind.DATE: _date,
    FieldKind.TIME: _time,
    FieldKind.DECIMAL: _decimal,
    FieldKind.INTEGER: _integer,
    FieldKind.FLOAT: _float,
    FieldKind.BOOLEAN: _boolean,
    FieldKind.JSON: _json,
    FieldKind.BINARY: _binary,
}
