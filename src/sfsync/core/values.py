"""One form for a field's value, whichever system it was read from.

A two-way sync compares the same record as two systems hold it: Salesforce's JSON (numbers as
floats, dates and times as text, ``+0000`` offsets) and a database's driver values (``Decimal``,
``datetime``, ``0``/``1`` booleans on MariaDB and SQLite). Compared as they come, equal records
look different, and every pass would see a change that never happened and write it back: a
ping-pong. :func:`canonical` brings a value to one form per :class:`~sfsync.core.schema.FieldKind`
so that equal means equal:

==========  ==================================================================================
kind        canonical value
==========  ==================================================================================
STRING,     ``str``; the empty string is ``None``, as Salesforce stores an empty text field as
TEXT, ID,   null (writing ``""`` into Salesforce and reading it back gives null)
REFERENCE
BOOLEAN     ``bool`` (``0``/``1``, ``"true"``/``"false"`` accepted)
INTEGER     ``int``
DECIMAL,    :class:`decimal.Decimal`, from the value's shortest text (``0.1`` stays ``0.1``);
FLOAT       ``Decimal("5.00") == Decimal("5")``, so scale does not matter
DATE        ISO text ``YYYY-MM-DD``
DATETIME    a UTC :class:`datetime.datetime`, truncated to milliseconds (Salesforce keeps
            milliseconds; a database may keep microseconds)
TIME        ISO text ``HH:MM:SS.mmm``
others      as they are
==========  ==================================================================================

A value that does not fit its kind (text in a number field) is returned as it is: comparing it
shows a difference, and the system that is written to refuses it with its own error.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation

from sfsync.core.schema import FieldKind

_TEXT = frozenset({FieldKind.STRING, FieldKind.TEXT, FieldKind.ID, FieldKind.REFERENCE})


def canonical(kind: FieldKind, value: object) -> object:
    """``value`` in the one form of ``kind`` (see the module docstring)."""
    if value is None:
        return None
    try:
        if kind in _TEXT:
            text = value if isinstance(value, str) else str(value)
            return text or None
        if kind is FieldKind.BOOLEAN:
            return _boolean(value)
        if kind is FieldKind.INTEGER:
            return _integer(value)
        if kind in (FieldKind.DECIMAL, FieldKind.FLOAT):
            return _decimal(value)
        if kind is FieldKind.DATE:
            return _date(value)
        if kind is FieldKind.DATETIME:
            return _datetime(value)
        if kind is FieldKind.TIME:
            return _time(value)
    except (ValueError, ArithmeticError, TypeError):
        return value
    return value


def canonical_record(
    kinds: Mapping[str, FieldKind], values: Mapping[str, object], fields: Iterable[str]
) -> dict[str, object]:
    """The ``fields`` of ``values`` that it holds, each in canonical form (kind from ``kinds``,
    looked up without regard to case; a field of unknown kind is kept as it is)."""
    lowered = {k.lower(): v for k, v in kinds.items()}
    out: dict[str, object] = {}
    for name in fields:
        if name in values:
            kind = lowered.get(name.lower())
            out[name] = values[name] if kind is None else canonical(kind, values[name])
    return out


def _boolean(value: object) -> object:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | Decimal | float):
        return value != 0
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    return value


def _integer(value: object) -> object:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    number = _decimal(value)
    if isinstance(number, Decimal) and number == number.to_integral_value():
        return int(number)
    return number


def _decimal(value: object) -> object:
    if isinstance(value, bool):
        return value
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, str):
        try:
            return Decimal(value.strip())
        except InvalidOperation:
            return value
    return value


def _date(value: object) -> object:
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        return date.fromisoformat(value.strip()[:10]).isoformat()
    return value


def _datetime(value: object) -> object:
    if isinstance(value, str):
        text = value.strip()
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        value = datetime.fromisoformat(text)
    if isinstance(value, datetime):
        if value.tzinfo is None:  # a column without a zone holds UTC (the capture rule)
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(microsecond=value.microsecond // 1000 * 1000)
    return value


def _time(value: object) -> object:
    if isinstance(value, str):
        value = time.fromisoformat(value.strip().rstrip("Z"))
    if isinstance(value, time):
        return value.replace(tzinfo=None).isoformat(timespec="milliseconds")
    return value
