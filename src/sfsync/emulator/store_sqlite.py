"""Durable copy of the org's records in one SQLite file, for :class:`~.store.OrgStore`.

The in-memory store is the truth while the org runs; this file makes it survive a restart.
Every committed store transaction is written here in one SQLite transaction (WAL journal,
``synchronous=NORMAL``: a committed change survives the emulator process dying; a power cut
may lose the last few commits, which is acceptable for a development org).

Tables:

``records(id, object, layout, data)``
    one row per record, live or in the recycle bin; ``data`` is the JSON array of the
    record's values in the order of its ``layout``.
``layouts(id, object, names)``
    the field names (JSON array) a record's values line up with. A schema that gains or
    loses fields between runs gets a new layout; old rows are remapped by name on load, so
    nothing needs migrating. Arrays instead of name-keyed objects make loading a million
    records several times faster.
``deletions(id, object, deleted_date, cascade_root)``
    the delete log the ``deleted`` replication resource reads; ``cascade_root`` is the record
    whose deletion took this one with it (undelete restores them together).
``counters(name, value)``
    auto-number counters.
``cleared_lookups(deleted_id, child_id, field)``
    lookups nulled because their target went to the recycle bin (undelete restores them).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

import orjson

from sfsync.emulator.schema.model import WireValue

Values = tuple[WireValue, ...]
DeletionEntry = tuple[str, str, str | None]  # object, deleted date, cascade root

_DDL = """
CREATE TABLE IF NOT EXISTS records (
    id TEXT PRIMARY KEY, object TEXT NOT NULL, layout INTEGER NOT NULL, data BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS layouts (
    id INTEGER PRIMARY KEY, object TEXT NOT NULL, names TEXT NOT NULL, UNIQUE (object, names)
);
CREATE TABLE IF NOT EXISTS deletions (
    id TEXT PRIMARY KEY, object TEXT NOT NULL, deleted_date TEXT NOT NULL, cascade_root TEXT
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS cleared_lookups (
    deleted_id TEXT NOT NULL, child_id TEXT NOT NULL, field TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS cleared_lookups_by_deleted ON cleared_lookups (deleted_id);
"""


class SqliteRecordFile:
    """The SQLite side of the store. Not thread-safe by itself: the store serialises calls."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        # A big page cache roughly halves bulk-load time (the id index stays in memory).
        self._db.execute("PRAGMA cache_size=-131072")
        self._db.executescript(_DDL)
        self._lock = threading.Lock()
        self._layouts: dict[tuple[str, tuple[str, ...]], int] = {}
        self._names: dict[int, tuple[str, ...]] = {}
        self._objects: dict[int, str] = {}
        for lid, obj, names in self._db.execute("SELECT id, object, names FROM layouts"):
            key = (obj, tuple(orjson.loads(names)))
            self._layouts[key] = lid
            self._names[lid] = key[1]
            self._objects[lid] = obj

    def layout(self, object_name: str, names: tuple[str, ...]) -> int:
        """The id of the layout ``names`` of ``object_name`` (registered on first use)."""
        key = (object_name, names)
        lid = self._layouts.get(key)
        if lid is None:
            with self._lock:
                cur = self._db.execute(
                    "INSERT INTO layouts (object, names) VALUES (?, ?)",
                    (object_name, orjson.dumps(list(names)).decode()),
                )
                lid = int(cur.lastrowid or 0)
                self._layouts[key] = lid
                self._names[lid] = names
                self._objects[lid] = object_name
        return lid

    def records(self) -> Iterator[tuple[str, str, tuple[str, ...], list[WireValue]]]:
        """Every stored record as (id, object name, layout names, values in layout order)."""
        names = self._names
        query = "SELECT id, object, layout, data FROM records"
        for rid, obj, lid, data in self._db.execute(query):
            yield rid, obj, names[lid], orjson.loads(data)

    def deletions(self) -> Iterator[tuple[str, DeletionEntry]]:
        rows = self._db.execute("SELECT id, object, deleted_date, cascade_root FROM deletions")
        for rid, obj, when, root in rows:
            yield rid, (obj, when, root)

    def cleared_lookups(self) -> dict[str, tuple[tuple[str, str], ...]]:
        out: dict[str, list[tuple[str, str]]] = {}
        query = "SELECT deleted_id, child_id, field FROM cleared_lookups ORDER BY rowid"
        for rid, child, field_name in self._db.execute(query):
            out.setdefault(rid, []).append((child, field_name))
        return {rid: tuple(entries) for rid, entries in out.items()}

    def counters(self) -> dict[str, int]:
        return dict(self._db.execute("SELECT name, value FROM counters").fetchall())

    def commit(
        self,
        records: Iterable[tuple[str, int, Values | None]],
        deletions: Iterable[tuple[str, DeletionEntry | None]],
        counters: dict[str, int],
        cleared: Iterable[tuple[str, tuple[tuple[str, str], ...] | None]] = (),
    ) -> None:
        """Write one store commit: (id, layout, values) per record and (id, entry) per delete-log
        entry; ``None`` values or entry mean "remove"."""
        with self._lock:
            cur = self._db.cursor()
            cur.execute("BEGIN")
            try:
                for rid, lid, values in records:
                    if values is None:
                        cur.execute("DELETE FROM records WHERE id = ?", (rid,))
                    else:
                        cur.execute(
                            "INSERT OR REPLACE INTO records VALUES (?, ?, ?, ?)",
                            (rid, self._objects[lid], lid, orjson.dumps(values)),
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
                for rid, entries in cleared:
                    cur.execute("DELETE FROM cleared_lookups WHERE deleted_id = ?", (rid,))
                    cur.executemany(
                        "INSERT INTO cleared_lookups VALUES (?, ?, ?)",
                        ((rid, child, field_name) for child, field_name in entries or ()),
                    )
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise

    def bulk_insert(self, lid: int, rows: Iterable[tuple[str, Values]]) -> None:
        """Append many new records of one layout in one transaction."""
        obj = self._objects[lid]
        with self._lock:
            cur = self._db.cursor()
            cur.execute("BEGIN")
            try:
                cur.executemany(
                    "INSERT OR REPLACE INTO records VALUES (?, ?, ?, ?)",
                    ((rid, obj, lid, orjson.dumps(values)) for rid, values in rows),
                )
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise

    def close(self) -> None:
        with self._lock:
            self._db.close()
