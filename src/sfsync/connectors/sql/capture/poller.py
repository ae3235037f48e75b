"""The ``updated_at`` poller: changed rows found by a timestamp column, for databases where
triggers are not allowed.

Rows are read in ``(updated_at, key)`` order after the last pair delivered. Ordering by the
pair makes the cursor tie-safe: thousands of rows sharing one timestamp (a bulk update) are
neither skipped nor repeated, however the pages fall. Only rows at least ``capture_settle``
seconds old are read, so that a transaction committing a little after the timestamp it wrote
is not passed by. What this mode cannot see: deletes (the row is gone), and a transaction
that stays open longer than ``capture_settle`` after writing its timestamp.

A column without a time zone is taken to hold UTC. SQLite compares through ``julianday`` so
that text timestamps in any ISO form order correctly.

A position token is the JSON pair ``[updated_at, key]`` of the last row delivered; a key of
``null`` means "from this time on, every key".
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from sfsync.connectors.sql.capture.statements import qualified
from sfsync.connectors.sql.capture.tables import ResolvedTable, poll_stream
from sfsync.connectors.sql.types import Dialect
from sfsync.core.events import ChangeEvent, Operation, Position

EPOCH_TOKEN = json.dumps([datetime.min.replace(tzinfo=UTC).isoformat(), None])
"""The position before every row."""


def token_at(moment: datetime) -> str:
    """The position of every row whose timestamp is ``moment`` or later."""
    return json.dumps([moment.isoformat(), None])


def poll_page(
    conn: sa.Connection,
    dialect: Dialect,
    schema: str | None,
    table: ResolvedTable,
    column: str,
    token: str,
    upper: datetime,
    limit: int,
) -> list[tuple[str, dict[str, Any]]]:
    """The next rows after ``token`` and at or before ``upper``, as ``(token, row)`` pairs
    (blocking)."""
    prep = conn.dialect.identifier_preparer
    q = prep.quote_identifier
    u, k = q(column), q(table.key_column)
    stamp, key = json.loads(token)
    params: dict[str, Any] = {"n": limit, "k": key}
    if dialect == "sqlite":
        u_expr, ts, up = f"julianday({u})", "julianday(:ts)", "julianday(:upper)"
        params["ts"] = stamp
        params["upper"] = upper.astimezone(UTC).isoformat()
    else:
        u_expr, ts, up = u, ":ts", ":upper"
        params["ts"] = _bind(datetime.fromisoformat(stamp), table.updated_at_tz)
        params["upper"] = _bind(upper, table.updated_at_tz)
    after = (
        f"{u_expr} >= {ts}"
        if key is None
        else f"({u_expr} > {ts} OR ({u_expr} = {ts} AND {k} > :k))"
    )
    cols = ", ".join(q(c) for c in dict.fromkeys((*table.columns, column)))
    sql = (
        f"SELECT {cols} FROM {qualified(dialect, schema, table.obj.table)} "
        f"WHERE {u} IS NOT NULL AND {k} IS NOT NULL AND {after} AND {u_expr} <= {up} "
        f"ORDER BY {u_expr}, {k} LIMIT :n"
    )
    try:
        rows = [dict(r) for r in conn.execute(sa.text(sql), params).mappings().all()]
    finally:
        conn.rollback()
    out = []
    for row in rows:
        value = row[column] if column in table.columns else row.pop(column)
        text = value.isoformat() if isinstance(value, datetime) else str(value)
        key_value = json.loads(json.dumps(row[table.key_column], default=str))
        out.append((json.dumps([text, key_value]), row))
    return out


def _bind(value: datetime, aware: bool) -> datetime:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value if aware else value.astimezone(UTC).replace(tzinfo=None)


def polled_event(
    table: ResolvedTable, row: Mapping[str, Any], token: str, now: datetime
) -> ChangeEvent:
    """The UPDATE event of a polled row (a poll cannot tell a new row from a changed one).

    ``committed_at`` and ``version`` are the row's timestamp (``now`` if SQLite holds one
    that is not ISO text).
    """
    try:
        committed = datetime.fromisoformat(json.loads(token)[0])
    except ValueError:
        committed = now
    if committed.tzinfo is None:
        committed = committed.replace(tzinfo=UTC)
    committed = committed.astimezone(UTC)
    return ChangeEvent(
        entity=table.obj.entity,
        key=str(row[table.key_column]),
        op=Operation.UPDATE,
        after=table.normalise(row),
        position=Position(poll_stream(table.obj.table), token),
        committed_at=committed,
        version=committed.isoformat(),
    )
