"""Building SOQL: pure functions, table-tested.

Every query sfsync sends is built here, from field lists, a user's row filter and cursors,
with literals quoted as SOQL requires. Nothing here talks to Salesforce.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)*$")
_ESCAPES = {
    "\\": "\\\\",
    "'": "\\'",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\b": "\\b",
    "\f": "\\f",
}
_SF_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?(Z|[+-]\d{2}:?\d{2})$")


def quote_string(value: str) -> str:
    """A SOQL string literal: ``O'Brien`` -> ``'O\\'Brien'``."""
    return "'" + "".join(_ESCAPES.get(ch, ch) for ch in value) + "'"


def datetime_literal(value: str | datetime) -> str:
    """A SOQL datetime literal (unquoted, UTC with ``Z``) from a datetime or SF wire text.

    Raises:
        ValueError: ``value`` is not a datetime.
    """
    if isinstance(value, str):
        if not _SF_DATETIME.match(value):
            raise ValueError(f"not a Salesforce datetime: {value!r}")
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        raise ValueError("datetime literals need a timezone")
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def check_name(name: str) -> str:
    """``name`` if it is a plain field or object name (or a dotted path), else ValueError."""
    if not _NAME.match(name):
        raise ValueError(f"{name!r} is not a valid Salesforce field or object name")
    return name


@dataclass(frozen=True, slots=True)
class Cursor:
    """A tie-safe position in ``(SystemModstamp, Id)`` order.

    Two records may share a ``SystemModstamp`` (bulk loads commit thousands in one
    millisecond); ordering and resuming by the pair never skips or repeats one of them.
    """

    modstamp: str
    record_id: str

    def token(self) -> str:
        return f"{self.modstamp}|{self.record_id}"

    @classmethod
    def parse(cls, token: str) -> Cursor:
        modstamp, sep, record_id = token.partition("|")
        if not sep or not modstamp:
            raise ValueError(f"not a cursor token: {token!r}")
        datetime_literal(modstamp)  # validates
        return cls(modstamp, record_id)


def select(
    sobject: str,
    fields: Sequence[str],
    *,
    where: Sequence[str] = (),
    order_by: Sequence[str] = (),
    limit: int | None = None,
) -> str:
    """``SELECT fields FROM sobject [WHERE a AND b] [ORDER BY ...] [LIMIT n]``.

    ``where`` parts are ANDed, each parenthesised, so a user filter with ``OR`` keeps its
    meaning next to our cursor conditions.
    """
    if not fields:
        raise ValueError("a query needs at least one field")
    text = f"SELECT {', '.join(check_name(f) for f in fields)} FROM {check_name(sobject)}"
    if where:
        text += " WHERE " + " AND ".join(f"({w})" for w in where)
    if order_by:
        text += " ORDER BY " + ", ".join(order_by)
    if limit is not None:
        text += f" LIMIT {int(limit)}"
    return text


def snapshot_query(
    sobject: str,
    fields: Sequence[str],
    *,
    row_filter: str | None = None,
    after_id: str | None = None,
    id_below: str | None = None,
    id_from: str | None = None,
) -> str:
    """A full read of ``sobject`` in ``Id`` order, resumable after ``after_id``.

    ``id_from`` and ``id_below`` bound a chunk (``Id >= id_from``, ``Id < id_below``) so that
    large objects can be read as consecutive Id ranges.
    """
    where: list[str] = []
    if row_filter:
        where.append(row_filter)
    if after_id:
        where.append(f"Id > {quote_string(after_id)}")
    if id_from:
        where.append(f"Id >= {quote_string(id_from)}")
    if id_below:
        where.append(f"Id < {quote_string(id_below)}")
    return select(sobject, fields, where=where, order_by=["Id"])


def changes_query(
    sobject: str,
    fields: Sequence[str],
    *,
    since: Cursor | None,
    overlap_from: str | None = None,
    row_filter: str | None = None,
    version_field: str = "SystemModstamp",
) -> str:
    """Records changed after ``since`` in ``(version_field, Id)`` order.

    Args:
        since: the last record already delivered; ``None`` reads from the beginning.
        overlap_from: when given, read from this earlier time instead (inclusive), to catch
            transactions that committed late with an older modstamp; the caller drops what
            it has already seen.
        row_filter: the user's filter. Deleted rows are always included (``queryAll``) so
            they can be turned into deletes, whatever the filter says of their values.
    """
    where: list[str] = []
    if overlap_from is not None:
        where.append(f"{version_field} >= {datetime_literal(overlap_from)}")
    elif since is not None:
        stamp = datetime_literal(since.modstamp)
        where.append(
            f"{version_field} > {stamp} OR "
            f"({version_field} = {stamp} AND Id > {quote_string(since.record_id)})"
        )
    if row_filter:
        where.append(f"({row_filter}) OR IsDeleted = true")
    return select(sobject, fields, where=where, order_by=[version_field, "Id"])


def exits_query(
    sobject: str,
    *,
    since: Cursor | None,
    overlap_from: str | None,
    row_filter: str,
    version_field: str = "SystemModstamp",
) -> str:
    """Records changed after ``since`` that no longer match ``row_filter``.

    A record edited out of a filtered sync must leave the target too, or the target keeps a
    row the user asked not to have; the caller turns these into deletes.
    """
    base = changes_query(
        sobject,
        ["Id", version_field],
        since=since,
        overlap_from=overlap_from,
        version_field=version_field,
    )
    head, _, order = base.partition(" ORDER BY ")
    joiner = " AND " if " WHERE " in head else " WHERE "
    return f"{head}{joiner}(NOT ({row_filter})) ORDER BY {order}"
