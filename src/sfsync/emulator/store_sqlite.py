"""Durable copy of the org's records in one SQLite file, for :class:`~.store.OrgStore`.

The in-memory store is the truth while the org runs; this file makes it survive a restart.
Every committed store transaction is written here in one SQLite transaction (WAL journal,
``synchronous=NORMAL``: a committed change survives the emulator process dying; a power cut
may lose the last few commits, which is acceptable for a development org).

Tables:

``records(id, object, data)``
    one row per record, live or in the recycle bin; ``data`` is the JSON object of the
    record's non-null fields by declared name (sparse, so that a schema that gains or loses
    fields between runs still loads).
``deletions(id, object, deleted_date, cascade_root)``
    the delete log the ``deleted`` replication resource reads; ``cascade_root`` is the record
    whose deletion took this one with it (undelete restores them together).
``counters(name, value)``
    auto-number counters.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

import orjson

from sfsync.emulator.schema.model import WireValue

RecordData = dict[str, WireValue]
DeletionEntry = tuple[str, str, str | None]  # object, deleted date, cascade root

_DDL = """
CREATE TABLE IF NOT EXISTS records (
    id TEXT PRIMARY KEY, object TEXT NOT NULL, data BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS deletions (
    id TEXT PRIMARY KEY, object TEXT NOT NULL, deleted_date TEXT NOT NULL, cascade_root TEXT
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


class SqliteRecordFile:
    """The SQLite side of the store. Not thread-safe by itself: the store serialises calls."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_DDL)
        self._lock = threading.Lock()

    def records(self) -> Iterator[tuple[str, str, RecordData]]:
        """Every stored record as (id, object name, non-null fields)."""
        for rid, obj, data in self._db.execute("SELECT id, object, data FROM records"):
            yield rid, obj, orjson.loads(data)

    def deletions(self) -> Iterator[tuple[str, DeletionEntry]]:
        rows = self._db.execute("SELECT id, object, deleted_date, cascade_root FROM deletions")
        for rid, obj, when, root in rows:
            yield rid, (obj, when, root)

    def counters(self) -> dict[str, int]:
        return dict(self._db.execute("SELECT name, value FROM counters").fetchall())

    def commit(
        self,
        records: Iterable[tuple[str, str, RecordData | None]],
        deletions: Iterable[tuple[str, DeletionEntry | None]],
        counters: dict[str, int],
    ) -> None:
        """Write one store commit: ``None`` data or entry means "remove"."""
        with self._lock:
            cur = self._db.cursor()
            cur.execute("BEGIN")
            try:
                for rid, obj, data in records:
                    if data is None:
                        cur.execute("DELETE FROM records WHERE id = ?", (rid,))
                    else:
                        cur.execute(
                            "INSERT OR REPLACE INTO records (id, object, data) VALUES (?, ?, ?)",
                            (rid, obj, orjson.dumps(data)),
                        )
                for rid, entry in deletions:
                    if entry is None:
                        cur.execute("DELETE FROM deletions WHERE id = ?", (rid,))
                    else:
                        cur.execute(
                            "INSERT OR REPLACE INTO deletions VALUES (?, ?, ?, ?)", (rid, *entry)
                        )
                cur.executemany(
                    "INSERT OR REPLACE INTO counters (name, value) VALUES (?, ?)",
                    counters.items(),
                )
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise

    def bulk_insert(self, obj: str, rows: Iterable[tuple[str, bytes]]) -> None:
        """Append many new records of one object (already JSON-encoded) in one transaction."""
        with self._lock:
            cur = self._db.cursor()
            cur.execute("BEGIN")
            try:
                cur.executemany(
                    "INSERT OR REPLACE INTO records (id, object, data) VALUES (?, ?, ?)",
                    ((rid, obj, data) for rid, data in rows),
                )
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise

    def close(self) -> None:
        with self._lock:
            self._db.close()
