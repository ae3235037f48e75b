"""Reading the change log in commit order, and writing outcomes back to it (blocking).

A change's ``seq`` is taken when the row changes, not when its transaction commits, so reading
"every row after the last ``seq`` seen" would lose a change whose transaction committed after
a later one had been read. Each dialect closes that hole its own way:

PostgreSQL: transaction snapshots (the method of PgQ, the queue behind Skype's replication).
    A read takes ``txid_current_snapshot()`` and returns the log rows of transactions visible
    in it but not in the previous read's snapshot, in ``seq`` order: every committed
    transaction is read exactly once, whatever order transactions commit in. A position is
    the snapshot the reading reached (``xmin:xmax:xip,...``); within a window that needs
    several pages it is ``previous/current/seq``.
MariaDB/MySQL: holes wait. Rows are read in ``seq`` order up to the first hole in the
    sequence. A hole is a transaction still open, or one rolled back. It is passed once
    ``information_schema.INNODB_TRX`` shows no transaction that started before the hole was
    first seen (its owner has ended; if it had committed, the row would be there), or, where
    that table cannot be read (it needs the PROCESS privilege), after ``capture_gap_timeout``
    seconds. A position is the ``seq`` below which everything was read or passed.
SQLite: one writer at a time, so ``seq`` order is commit order. A position is a ``seq``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from sfsync.connectors.sql.capture.holes import Hole, walk
from sfsync.connectors.sql.capture.statements import CHANGES_TABLE, qualified
from sfsync.connectors.sql.types import Dialect

PG_START = "1:1:"
"""The PostgreSQL position before every transaction: the whole log is after it."""

_COLUMNS = "seq, table_name, op, row_key, {after}, {before}, {changed}, changed_at, txid, origin"


@dataclass(frozen=True, slots=True)
class LogRow:
    """One row of the change log, decoded."""

    seq: int
    table: str
    op: str
    key: str | None
    after: Mapping[str, Any] | None
    before: Mapping[str, Any] | None
    changed: tuple[str, ...]
    changed_at: datetime
    txid: int | None
    origin: str | None


@dataclass(frozen=True, slots=True)
class PgToken:
    """A PostgreSQL position: the snapshot reached, or a window being paged through."""

    start: str
    end: str | None = None
    seq: int = 0

    def encode(self) -> str:
        return self.start if self.end is None else f"{self.start}/{self.end}/{self.seq}"

    @classmethod
    def parse(cls, token: str) -> PgToken:
        parts = token.split("/")
        if len(parts) == 1:
            return cls(parts[0])
        if len(parts) == 3:
            return cls(parts[0], parts[1], int(parts[2]))
        raise ValueError(f"not a change log position: {token!r}")


def seq_of(token: str) -> int:
    """The ``seq`` of the change an event's position token points at."""
    return int(token.rsplit("/", 1)[-1])


class ChangeLog:
    """The change log of one database, read through one connection.

    Args:
        conn: an open connection (every method ends its transaction, so each read sees the
            latest commits).
        dialect: the database family.
        schema: the schema holding the log (PostgreSQL).
        gap_timeout: MariaDB: seconds a hole is waited for when ``INNODB_TRX`` is unreadable.
    """

    def __init__(
        self,
        conn: sa.Connection,
        dialect: Dialect,
        schema: str | None,
        *,
        gap_timeout: float = 300.0,
    ) -> None:
        self.conn = conn
        self.dialect = dialect
        self.table = qualified(dialect, schema, CHANGES_TABLE)
        self.gap_timeout = gap_timeout
        self.gaps: dict[int, Hole] = {}
        self._trx_readable = True

    # --- positions -------------------------------------------------------------------

    def now_token(self) -> str:
        """The position of "now": reading from it returns only later commits."""
        try:
            if self.dialect == "postgresql":
                return str(
                    self.conn.execute(sa.text("SELECT txid_current_snapshot()::text")).scalar()
                )
            value = self.conn.execute(sa.text(f"SELECT MAX(seq) FROM {self.table}")).scalar()
            return str(value or 0)
        finally:
            self.conn.rollback()

    # --- PostgreSQL ------------------------------------------------------------------

    def pg_snapshot(self) -> str:
        """The current transaction snapshot (the end of the next window)."""
        try:
            return str(self.conn.execute(sa.text("SELECT txid_current_snapshot()::text")).scalar())
        finally:
            self.conn.rollback()

    def pg_lower_bound(self, start: str) -> int | None:
        """The lowest ``seq`` a window after the snapshot ``start`` can hold (``None``: the
        log has no row of a transaction that ``start`` saw running or not yet begun).

        Every such row has a ``txid`` of at least ``start``'s xmin. Paging a window from
        here walks the primary key instead of sorting the whole window for every page.
        """
        query = sa.text(
            f"SELECT MIN(seq) FROM {self.table} "
            "WHERE txid >= txid_snapshot_xmin(CAST(:start AS txid_snapshot))"
        )
        try:
            value = self.conn.execute(query, {"start": start}).scalar()
        finally:
            self.conn.rollback()
        return None if value is None else int(value)

    def pg_window(
        self, tables: Sequence[str], start: str, end: str, after: int, limit: int
    ) -> list[LogRow]:
        """Rows of ``tables`` from transactions visible in ``end`` but not in ``start``, with
        ``seq`` above ``after`` (start from :meth:`pg_lower_bound`), in ``seq`` order, at
        most ``limit``."""
        query = sa.text(
            f"SELECT {_COLUMNS.format(after='after_row::text', before='before_row::text', changed='changed_columns::text')} "  # noqa: E501
            f"FROM {self.table} "
            "WHERE seq > :after AND table_name IN :tables "
            "AND NOT txid_visible_in_snapshot(txid, CAST(:start AS txid_snapshot)) "
            "AND txid_visible_in_snapshot(txid, CAST(:end AS txid_snapshot)) "
            "ORDER BY seq LIMIT :limit"
        ).bindparams(sa.bindparam("tables", expanding=True))
        try:
            # The planner cannot estimate the visibility tests and, guessing few rows, sorts
            # every row above `after` (with their JSON) for each page. Walking the primary
            # key in order and stopping at `limit` rows is what paging needs.
            self.conn.execute(sa.text("SET LOCAL enable_sort = off"))
            rows = self.conn.execute(
                query,
                {
                    "tables": list(tables),
                    "start": start,
                    "end": end,
                    "after": after,
                    "limit": limit,
                },
            ).all()
        finally:
            self.conn.rollback()
        return [_decode(r) for r in rows]

    # --- MariaDB and SQLite ----------------------------------------------------------

    def read_after(self, watermark: int, limit: int, monotonic: float) -> SeqPage:
        """Rows of every table after ``watermark``, in ``seq`` order, up to the first hole
        that must still be waited for (MariaDB; see the module docstring).

        Args:
            watermark: every ``seq`` up to this was read or passed.
            limit: rows to fetch at most.
            monotonic: the caller's monotonic clock, for hole timeouts.
        """
        columns = _COLUMNS.format(after="after_row", before="before_row", changed="changed_columns")
        try:
            ended = self._owners_ended() if self.dialect == "mysql" and self.gaps else set()
            # A fresh transaction: its rows must be read after the owners were seen gone.
            self.conn.rollback()
            rows = self.conn.execute(
                sa.text(f"SELECT {columns} FROM {self.table} WHERE seq > :w ORDER BY seq LIMIT :n"),
                {"w": watermark, "n": limit},
            ).all()
            seen_at = None
            if self.dialect == "mysql":
                seen_at = self.conn.execute(sa.text("SELECT NOW()")).scalar()
        finally:
            self.conn.rollback()
        page = SeqPage(watermark=watermark, full=len(rows) >= limit)
        if self.dialect != "mysql":
            # SQLite: one writer at a time; a missing seq is a purged row, never an open one.
            page.rows = [_decode(r) for r in rows]
            page.watermark = int(rows[-1][0]) if rows else watermark
            return page
        walked = walk(
            [int(r[0]) for r in rows],
            watermark,
            self.gaps,
            ended,
            seen_at=seen_at,
            monotonic=monotonic,
            timeout=self.gap_timeout,
        )
        self.gaps = walked.holes
        page.rows = [_decode(r) for r in rows[: walked.deliver]]
        page.watermark = walked.watermark
        page.blocked = walked.blocked
        page.passed = walked.passed
        return page

    def _owners_ended(self) -> set[int]:
        """Holes whose owners have ended: no transaction that started before the hole was
        seen is still running. Empty where ``INNODB_TRX`` cannot be read."""
        if not self._trx_readable:
            return set()
        try:
            oldest = self.conn.execute(
                sa.text(
                    "SELECT MIN(trx_started) FROM information_schema.INNODB_TRX "
                    "WHERE trx_mysql_thread_id <> CONNECTION_ID()"
                )
            ).scalar()
        except sa.exc.DBAPIError:
            # No PROCESS privilege: holes are passed after the timeout only.
            self._trx_readable = False
            self.conn.rollback()
            return set()
        # trx_started and NOW() have whole seconds: a transaction that started in the second
        # the hole was seen may own it, hence the strict comparison.
        return {
            start
            for start, gap in self.gaps.items()
            if gap.seen_at is not None and (oldest is None or oldest > gap.seen_at)
        }

    @property
    def waiting(self) -> int:
        """How many holes in the sequence are being waited for (MariaDB)."""
        return len(self.gaps)

    # --- outcomes --------------------------------------------------------------------

    def record(self, outcomes: Sequence[Outcome], synced_at: datetime) -> None:
        """Write each outcome on its change log row, in one transaction."""
        if not outcomes:
            return
        stamp: object = synced_at
        if self.dialect == "sqlite":
            stamp = synced_at.astimezone(UTC).isoformat()
        elif self.dialect == "mysql":
            stamp = synced_at.astimezone(UTC).replace(tzinfo=None)
        query = sa.text(
            f"UPDATE {self.table} SET sync_status = :status, sync_error = :error, "
            "target_key = COALESCE(:target_key, target_key), synced_at = :synced_at "
            "WHERE seq = :seq"
        )
        params = [
            {
                "status": o.status,
                "error": o.error,
                "target_key": o.target_key,
                "synced_at": stamp,
                "seq": o.seq,
            }
            for o in outcomes
        ]
        if self.conn.in_transaction():
            self.conn.rollback()
        with self.conn.begin():
            self.conn.execute(query, params)

    def statuses(self, seqs: Sequence[int]) -> dict[int, tuple[str, str | None, str | None]]:
        """``seq -> (sync_status, sync_error, target_key)``, for tests and operators."""
        query = sa.text(
            f"SELECT seq, sync_status, sync_error, target_key FROM {self.table} WHERE seq IN :seqs"
        ).bindparams(sa.bindparam("seqs", expanding=True))
        try:
            rows = self.conn.execute(query, {"seqs": list(seqs)}).all()
        finally:
            self.conn.rollback()
        return {int(r[0]): (str(r[1]), r[2], r[3]) for r in rows}


@dataclass(frozen=True, slots=True)
class Outcome:
    """What to write on one change log row."""

    seq: int
    status: str
    error: str | None = None
    target_key: str | None = None


@dataclass(slots=True)
class SeqPage:
    """One read of a ``seq``-ordered log.

    Attributes:
        rows: the rows read, every table's.
        watermark: the highest ``seq`` read or passed.
        full: the read hit its limit (more may follow).
        blocked: reading stopped at a hole that is still waited for.
        passed: holes given up on, as ``(first, last)`` seq ranges.
    """

    watermark: int
    full: bool
    rows: list[LogRow] = field(default_factory=list)
    blocked: bool = False
    passed: list[tuple[int, int]] = field(default_factory=list)


def _decode(raw: Any) -> LogRow:
    seq, table, op, key, after, before, changed, changed_at, txid, origin = raw
    return LogRow(
        seq=int(seq),
        table=str(table),
        op=str(op).strip(),
        key=None if key is None else str(key),
        after=_json(after),
        before=_json(before),
        changed=tuple(_json(changed) or ()),
        changed_at=_utc(changed_at),
        txid=None if txid is None else int(txid),
        origin=origin,
    )


# One decoder for every row (json.loads with parse_float builds a new one per call).
_DECODER = json.JSONDecoder(parse_float=Decimal)


def _json(text: Any) -> Any:
    if text is None:
        return None
    if not isinstance(text, str):
        return text
    return _DECODER.decode(text)


def _utc(value: Any) -> datetime:
    stamp: datetime = datetime.fromisoformat(value) if isinstance(value, str) else value
    if stamp.tzinfo is None:
        return stamp.replace(tzinfo=UTC)
    return stamp.astimezone(UTC)
