"""Shadows of two-way syncs in the state store (SQLite or PostgreSQL, one schema for both).

Table ``sfsync_shadows``: one row per ``(sync, entity, key)`` with the last synced values
(tagged JSON, see :mod:`sfsync.stores.shadow_sql`), the Salesforce Id and external key that pair
the two copies (each indexed: CDC events carry the Id, the external side its own key), and
each side's version stamp.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from datetime import datetime

from sfsync.core.review import Shadow
from sfsync.stores.shadow_sql import (
    Row,
    StateDb,
    dump_values,
    load_values,
    placeholders,
    stamp,
)

TABLE = "sfsync_shadows"
_COLUMNS = (
    "sync, entity, key, shadow_values, salesforce_id, external_key, salesforce_version,"
    " external_version, synced_at"
)
# Lookups by a list of keys go in chunks: both backends cap the number of parameters.
_CHUNK = 500
_ANALYZE_AFTER = 1000


def _chunks(items: Collection[str]) -> Iterator[list[str]]:
    ordered = sorted(set(items))
    for start in range(0, len(ordered), _CHUNK):
        yield ordered[start : start + _CHUNK]


def _row(s: Shadow) -> tuple[object, ...]:
    return (
        s.sync,
        s.entity,
        s.key,
        dump_values(s.values),
        s.salesforce_id,
        s.external_key,
        s.salesforce_version,
        s.external_version,
        stamp(s.synced_at),
    )


def _shadow(row: Row) -> Shadow:
    synced_at = datetime.fromisoformat(str(row[8]))
    return Shadow(
        sync=str(row[0]),
        entity=str(row[1]),
        key=str(row[2]),
        values=load_values(row[3]) or {},
        salesforce_id=None if row[4] is None else str(row[4]),
        external_key=None if row[5] is None else str(row[5]),
        salesforce_version=None if row[6] is None else str(row[6]),
        external_version=None if row[7] is None else str(row[7]),
        synced_at=synced_at,
    )


class SqlShadowStore:
    """A :class:`~sfsync.core.review.ShadowStore` on a :class:`StateDb`.

    Open with :meth:`open`, which creates the table and its indexes when missing.
    """

    def __init__(self, db: StateDb) -> None:
        self._db = db
        self._table = db.table(TABLE)
        # Rows put since the planner's statistics were last refreshed, and in all by then.
        self._unanalyzed = 0
        self._analyzed = 0

    @classmethod
    async def open(cls, db: StateDb) -> SqlShadowStore:
        store = cls(db)
        t = store._table
        await db.execute(
            f"CREATE TABLE IF NOT EXISTS {t} ("
            " sync TEXT NOT NULL, entity TEXT NOT NULL, key TEXT NOT NULL,"
            " shadow_values TEXT NOT NULL, salesforce_id TEXT, external_key TEXT,"
            " salesforce_version TEXT, external_version TEXT, synced_at TEXT NOT NULL,"
            " PRIMARY KEY (key, entity, sync))"
        )
        # Every index leads with the column looked up by a list of values. Led by (sync,
        # entity), a planner without statistics yet (right after the first run's bulk insert)
        # matches the list by filtering every shadow of the object instead of probing the
        # index: seen on PostgreSQL, 3 s a lookup of 500 keys at 100,000 shadows.
        await db.execute(f"CREATE INDEX IF NOT EXISTS {TABLE}_by_sf_id ON {t} (salesforce_id)")
        await db.execute(f"CREATE INDEX IF NOT EXISTS {TABLE}_by_ext_key ON {t} (external_key)")
        return store

    async def put(self, shadows: Collection[Shadow]) -> None:
        if not shadows:
            return
        await self._db.many(
            f"INSERT INTO {self._table} ({_COLUMNS}) VALUES ({placeholders(9)}) "
            "ON CONFLICT (key, entity, sync) DO UPDATE SET "
            "shadow_values = excluded.shadow_values, salesforce_id = excluded.salesforce_id, "
            "external_key = excluded.external_key, "
            "salesforce_version = excluded.salesforce_version, "
            "external_version = excluded.external_version, synced_at = excluded.synced_at",
            [_row(s) for s in shadows],
        )
        # Without statistics PostgreSQL plans list lookups on the id columns as a scan of every
        # shadow (600 ms a lookup of 500 Ids at 20,000 shadows). Autovacuum analyzes late for
        # a first run that puts and looks up at once, so refresh them whenever the table may
        # have doubled: a few ANALYZEs in all, each sampling at most 30,000 rows.
        self._unanalyzed += len(shadows)
        if self._unanalyzed >= max(_ANALYZE_AFTER, self._analyzed):
            await self._db.analyze(self._table)
            self._analyzed += self._unanalyzed
            self._unanalyzed = 0

    async def _lookup(
        self, column: str, sync: str, entity: str, values: Collection[str]
    ) -> list[Shadow]:
        found: list[Shadow] = []
        for chunk in _chunks(values):
            rows = await self._db.fetch(
                f"SELECT {_COLUMNS} FROM {self._table} WHERE sync = ? AND entity = ? "
                f"AND {column} IN ({placeholders(len(chunk))})",
                (sync, entity, *chunk),
            )
            found.extend(_shadow(r) for r in rows)
        return found

    async def get(self, sync: str, entity: str, keys: Collection[str]) -> dict[str, Shadow]:
        return {s.key: s for s in await self._lookup("key", sync, entity, keys)}

    async def by_salesforce_id(
        self, sync: str, entity: str, ids: Collection[str]
    ) -> dict[str, Shadow]:
        found = await self._lookup("salesforce_id", sync, entity, ids)
        return {s.salesforce_id: s for s in found if s.salesforce_id is not None}

    async def by_external_key(
        self, sync: str, entity: str, keys: Collection[str]
    ) -> dict[str, Shadow]:
        found = await self._lookup("external_key", sync, entity, keys)
        return {s.external_key: s for s in found if s.external_key is not None}

    async def delete(self, sync: str, entity: str, keys: Collection[str]) -> None:
        chunks: Sequence[list[str]] = list(_chunks(keys))
        for chunk in chunks:
            await self._db.execute(
                f"DELETE FROM {self._table} WHERE sync = ? AND entity = ? "
                f"AND key IN ({placeholders(len(chunk))})",
                (sync, entity, *chunk),
            )

    async def forget(self, sync: str) -> int:
        return await self._db.execute(f"DELETE FROM {self._table} WHERE sync = ?", (sync,))

    async def count(self, sync: str | None = None) -> int:
        where, args = ("WHERE sync = ?", (sync,)) if sync is not None else ("", ())
        rows = await self._db.fetch(f"SELECT count(*) FROM {self._table} {where}", args)
        return int(str(rows[0][0]))

    async def aclose(self) -> None:
        await self._db.aclose()
