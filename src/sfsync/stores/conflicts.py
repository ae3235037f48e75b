"""The conflict review queue in the state store (SQLite or PostgreSQL, one schema for both).

Table ``sfsync_conflicts``: one row per parked conflict, with both sides' values and commit
times, the base, the fields in conflict, the state (``open``/``resolved``), the resolution and
who chose it, and when the runtime applied it. A partial unique index keeps at most one open
conflict per record, so parking a record again refreshes its open conflict in one atomic
upsert.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Collection, Mapping
from datetime import datetime

from sfsync.core.conflicts import Side, Version
from sfsync.core.review import ParkedConflict, Resolution, ReviewState
from sfsync.stores.shadow_sql import (
    Row,
    StateDb,
    dump_values,
    load_values,
    placeholders,
    stamp,
    unstamp,
)

TABLE = "sfsync_conflicts"
SYNC_ACTOR = "sfsync"
"""``resolved_by`` of conflicts the sync closed itself."""
_CHUNK = 500
_PARKED = (
    "sync, entity, key, state, base_values, salesforce_values, salesforce_at,"
    " external_values, external_at, fields, parked_at, updated_at"
)
_COLUMNS = (
    f"id, {_PARKED}, resolution, custom_values, custom_base, resolved_by, resolved_at, applied_at"
)


def _conflict(row: Row) -> ParkedConflict:
    return ParkedConflict(
        id=int(str(row[0])),
        sync=str(row[1]),
        entity=str(row[2]),
        key=str(row[3]),
        state=ReviewState(str(row[4])),
        base=load_values(row[5]),
        salesforce=Version(
            side=Side.SALESFORCE, values=load_values(row[6]), committed_at=unstamp(row[7])
        ),
        external=Version(
            side=Side.EXTERNAL, values=load_values(row[8]), committed_at=unstamp(row[9])
        ),
        fields=tuple(json.loads(str(row[10]))),
        parked_at=datetime.fromisoformat(str(row[11])),
        updated_at=datetime.fromisoformat(str(row[12])),
        resolution=None if row[13] is None else Resolution(str(row[13])),
        custom=load_values(row[14]) or {},
        custom_base=Side(str(row[15])),
        resolved_by=None if row[16] is None else str(row[16]),
        resolved_at=unstamp(row[17]),
        applied_at=unstamp(row[18]),
    )


def _where(sync: str | None, state: ReviewState | None) -> tuple[str, tuple[object, ...]]:
    clauses, args = [], []
    if sync is not None:
        clauses.append("sync = ?")
        args.append(sync)
    if state is not None:
        clauses.append("state = ?")
        args.append(state.value)
    return ("WHERE " + " AND ".join(clauses) if clauses else ""), tuple(args)


class SqlConflictQueue:
    """A :class:`~sfsync.core.review.ConflictQueue` on a :class:`StateDb`.

    Open with :meth:`open`, which creates the table and its indexes when missing.
    """

    def __init__(self, db: StateDb) -> None:
        self._db = db
        self._table = db.table(TABLE)

    @classmethod
    async def open(cls, db: StateDb) -> SqlConflictQueue:
        queue = cls(db)
        t = queue._table
        await db.execute(
            f"CREATE TABLE IF NOT EXISTS {t} ("
            f" id {db.serial}, sync TEXT NOT NULL, entity TEXT NOT NULL, key TEXT NOT NULL,"
            " state TEXT NOT NULL, base_values TEXT, salesforce_values TEXT,"
            " salesforce_at TEXT, external_values TEXT, external_at TEXT, fields TEXT NOT NULL,"
            " parked_at TEXT NOT NULL, updated_at TEXT NOT NULL, resolution TEXT,"
            " custom_values TEXT, custom_base TEXT NOT NULL DEFAULT 'salesforce',"
            " resolved_by TEXT, resolved_at TEXT, applied_at TEXT)"
        )
        await db.execute(
            f"CREATE UNIQUE INDEX IF NOT EXISTS {TABLE}_open ON {t} (key, entity, sync)"
            " WHERE state = 'open'"
        )
        await db.execute(f"CREATE INDEX IF NOT EXISTS {TABLE}_state ON {t} (sync, state)")
        return queue

    async def park(self, conflict: ParkedConflict) -> int:
        rows = await self._db.fetch(
            f"INSERT INTO {self._table} ({_PARKED}) VALUES ({placeholders(12)}) "
            "ON CONFLICT (key, entity, sync) WHERE state = 'open' DO UPDATE SET "
            "base_values = excluded.base_values, "
            "salesforce_values = excluded.salesforce_values, "
            "salesforce_at = excluded.salesforce_at, "
            "external_values = excluded.external_values, external_at = excluded.external_at, "
            "fields = excluded.fields, updated_at = excluded.updated_at "
            "RETURNING id",
            (
                conflict.sync,
                conflict.entity,
                conflict.key,
                ReviewState.OPEN.value,
                dump_values(conflict.base),
                dump_values(conflict.salesforce.values),
                stamp(conflict.salesforce.committed_at),
                dump_values(conflict.external.values),
                stamp(conflict.external.committed_at),
                json.dumps(list(conflict.fields)),
                stamp(conflict.parked_at),
                stamp(conflict.updated_at),
            ),
        )
        return int(str(rows[0][0]))

    async def get(self, conflict_id: int) -> ParkedConflict | None:
        rows = await self._db.fetch(
            f"SELECT {_COLUMNS} FROM {self._table} WHERE id = ?", (conflict_id,)
        )
        return _conflict(rows[0]) if rows else None

    async def list(
        self, sync: str | None = None, state: ReviewState | None = None, *, limit: int = 100
    ) -> builtins.list[ParkedConflict]:
        where, args = _where(sync, state)
        rows = await self._db.fetch(
            f"SELECT {_COLUMNS} FROM {self._table} {where} ORDER BY id LIMIT ?", (*args, limit)
        )
        return [_conflict(r) for r in rows]

    async def count(self, sync: str | None = None, state: ReviewState | None = None) -> int:
        where, args = _where(sync, state)
        rows = await self._db.fetch(f"SELECT count(*) FROM {self._table} {where}", args)
        return int(str(rows[0][0]))

    async def resolve(
        self,
        conflict_id: int,
        resolution: Resolution,
        *,
        custom: Mapping[str, object] | None = None,
        custom_base: Side = Side.SALESFORCE,
        by: str,
        at: datetime,
    ) -> bool:
        changed = await self._db.execute(
            f"UPDATE {self._table} SET state = ?, resolution = ?, custom_values = ?,"
            " custom_base = ?, resolved_by = ?, resolved_at = ? WHERE id = ? AND state = ?",
            (
                ReviewState.RESOLVED.value,
                resolution.value,
                dump_values(custom) if custom else None,
                custom_base.value,
                by,
                stamp(at),
                conflict_id,
                ReviewState.OPEN.value,
            ),
        )
        return changed == 1

    async def pending(self, sync: str, *, limit: int = 100) -> builtins.list[ParkedConflict]:
        rows = await self._db.fetch(
            f"SELECT {_COLUMNS} FROM {self._table} WHERE sync = ? AND state = ?"
            " AND applied_at IS NULL ORDER BY id LIMIT ?",
            (sync, ReviewState.RESOLVED.value, limit),
        )
        return [_conflict(r) for r in rows]

    async def mark_applied(self, conflict_ids: Collection[int], at: datetime) -> None:
        ids = sorted(set(conflict_ids))
        if ids:
            await self._db.execute(
                f"UPDATE {self._table} SET applied_at = ? WHERE id IN ({placeholders(len(ids))})",
                (stamp(at), *ids),
            )

    async def open_for(
        self, sync: str, entity: str, keys: Collection[str]
    ) -> dict[str, ParkedConflict]:
        found: dict[str, ParkedConflict] = {}
        ordered = sorted(set(keys))
        for start in range(0, len(ordered), _CHUNK):
            chunk = ordered[start : start + _CHUNK]
            rows = await self._db.fetch(
                # A literal 'open', so that the planner may use the partial index.
                f"SELECT {_COLUMNS} FROM {self._table} WHERE sync = ? AND entity = ?"
                f" AND state = 'open' AND key IN ({placeholders(len(chunk))})",
                (sync, entity, *chunk),
            )
            found.update((c.key, c) for c in map(_conflict, rows))
        return found

    async def supersede(self, conflict_ids: Collection[int], at: datetime) -> None:
        ids = sorted(set(conflict_ids))
        if ids:
            await self._db.execute(
                f"UPDATE {self._table} SET state = ?, resolution = ?, resolved_by = ?,"
                f" resolved_at = ?, applied_at = ? WHERE state = ?"
                f" AND id IN ({placeholders(len(ids))})",
                (
                    ReviewState.RESOLVED.value,
                    Resolution.SUPERSEDED.value,
                    SYNC_ACTOR,
                    stamp(at),
                    stamp(at),
                    ReviewState.OPEN.value,
                    *ids,
                ),
            )

    async def aclose(self) -> None:
        await self._db.aclose()
