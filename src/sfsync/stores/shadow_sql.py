"""The SQL shared by the shadow store and the conflict queue, on SQLite or PostgreSQL.

Both stores keep the same schema on both backends (text columns, timestamps as ISO 8601 UTC
text, values as tagged JSON text), so one implementation of each store serves both: a
:class:`StateDb` runs the statements, written with ``?`` placeholders, on either. Values keep
their Python types through the store (:func:`dump_values` / :func:`load_values`): a
``Decimal`` read back is a ``Decimal``, so a shadow compares equal to the record it came from.
"""

from __future__ import annotations

import base64
import json
import math
import sqlite3
import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Protocol, TypeVar

import anyio.to_thread
import psycopg

from sfsync.core.conflicts import Values
from sfsync.core.errors import ConfigError, RetryableError
from sfsync.stores.postgres import IDENTIFIER

T = TypeVar("T")
Row = tuple[object, ...]

# Tags of values JSON has no type for. A mapping with one of these as its only key is a
# tagged value; a real mapping of that shape is escaped with "$map".
_TAGS = ("$datetime", "$date", "$time", "$decimal", "$bytes", "$float", "$map")


def _tag(value: object) -> object:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        # JSON has no NaN or infinity.
        return value if math.isfinite(value) else {"$float": repr(value)}
    if isinstance(value, datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    if isinstance(value, time):
        return {"$time": value.isoformat()}
    if isinstance(value, Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$bytes": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, list | tuple):
        return [_tag(v) for v in value]
    if isinstance(value, dict):
        inner = {str(k): _tag(v) for k, v in value.items()}
        return {"$map": inner} if len(inner) == 1 and next(iter(inner)) in _TAGS else inner
    raise TypeError(
        f"a {type(value).__name__} value cannot be kept in the state store; map it to text, "
        "a number, a date or time, bytes, a list or a mapping first"
    )


def _untag(node: object) -> object:
    if isinstance(node, list):
        return [_untag(v) for v in node]
    if not isinstance(node, dict):
        return node
    if len(node) == 1:
        ((tag, raw),) = node.items()
        if tag == "$datetime":
            return datetime.fromisoformat(str(raw))
        if tag == "$date":
            return date.fromisoformat(str(raw))
        if tag == "$time":
            return time.fromisoformat(str(raw))
        if tag == "$decimal":
            return Decimal(str(raw))
        if tag == "$bytes":
            return base64.b64decode(str(raw))
        if tag == "$float":
            return float(str(raw))
        if tag == "$map":
            return {k: _untag(v) for k, v in dict(raw).items()}
    return {k: _untag(v) for k, v in node.items()}


def dump_values(values: Values | None) -> str | None:
    """Field values as tagged JSON text (``None`` stays ``None``).

    Raises:
        TypeError: a value of a type the store cannot keep.
    """
    if values is None:
        return None
    return json.dumps({k: _tag(v) for k, v in values.items()}, ensure_ascii=False)


def load_values(text: object) -> dict[str, object] | None:
    """The values :func:`dump_values` wrote."""
    if text is None:
        return None
    loaded = _untag(json.loads(str(text)))
    if not isinstance(loaded, dict):
        raise ValueError("stored values are not a mapping")
    return loaded


def stamp(at: datetime | None) -> str | None:
    """A timestamp as stored: ISO 8601 text (UTC when aware), so text order is time order."""
    return None if at is None else at.isoformat()


def unstamp(text: object) -> datetime | None:
    return None if text is None else datetime.fromisoformat(str(text))


class StateDb(Protocol):
    """Statements with ``?`` placeholders, run on SQLite or PostgreSQL.

    ``table(name)`` is the name to write in statements (schema-qualified on PostgreSQL);
    ``serial`` is the column type of an auto-numbered primary key.
    """

    serial: str

    def table(self, name: str) -> str: ...

    async def execute(self, statement: str, args: Sequence[object] = ()) -> int:
        """Run one statement; the number of rows it changed."""
        ...

    async def fetch(self, statement: str, args: Sequence[object] = ()) -> list[Row]: ...

    async def many(self, statement: str, rows: Iterable[Sequence[object]]) -> None:
        """Run one statement per row, all in one transaction."""
        ...

    async def analyze(self, table: str) -> None:
        """Refresh the planner's statistics of ``table`` (after a bulk insert)."""
        ...

    async def aclose(self) -> None: ...


class SqliteStateDb:
    """A :class:`StateDb` on an SQLite file; calls run in a worker thread, one at a time."""

    serial = "INTEGER PRIMARY KEY AUTOINCREMENT"

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute("PRAGMA busy_timeout=10000")

    def table(self, name: str) -> str:
        return name

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def locked() -> T:
            with self._lock:
                return fn(self._conn)

        return await anyio.to_thread.run_sync(locked)

    async def execute(self, statement: str, args: Sequence[object] = ()) -> int:
        return await self._run(lambda c: c.execute(statement, tuple(args)).rowcount)

    async def fetch(self, statement: str, args: Sequence[object] = ()) -> list[Row]:
        return await self._run(lambda c: [tuple(r) for r in c.execute(statement, tuple(args))])

    async def many(self, statement: str, rows: Iterable[Sequence[object]]) -> None:
        batch = [tuple(r) for r in rows]

        def run(c: sqlite3.Connection) -> None:
            c.execute("BEGIN IMMEDIATE")
            try:
                c.executemany(statement, batch)
            except BaseException:
                c.execute("ROLLBACK")
                raise
            c.execute("COMMIT")

        await self._run(run)

    async def analyze(self, table: str) -> None:
        # SQLite's planner probes an index for `column IN (...)` without statistics.
        return

    async def aclose(self) -> None:
        await self._run(lambda c: c.close())


class PostgresStateDb:
    """A :class:`StateDb` on PostgreSQL; open with :meth:`open`."""

    serial = "bigserial PRIMARY KEY"

    def __init__(self, conn: psycopg.AsyncConnection[Row], schema: str) -> None:
        self._conn = conn
        self.schema = schema

    @classmethod
    async def open(cls, url: str, *, schema: str = "public") -> PostgresStateDb:
        """Connect to ``url`` and make sure ``schema`` exists.

        Raises:
            ConfigError: a bad schema name, or the server refused the credentials.
            RetryableError: the server could not be reached.
        """
        if not IDENTIFIER.match(schema):
            raise ConfigError(
                f"{schema!r} is not a plain SQL identifier",
                hint="use letters, digits and underscores, starting with a letter",
            )
        try:
            conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
        except psycopg.OperationalError as exc:
            text = str(exc).strip()
            if "authentication" in text or "does not exist" in text:
                raise ConfigError(
                    f"PostgreSQL refused the state store connection: {text}",
                    hint="check the user, password and database in state.url",
                ) from exc
            raise RetryableError(f"PostgreSQL is unreachable: {text}") from exc
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        return cls(conn, schema)

    def table(self, name: str) -> str:
        return f'"{self.schema}".{name}'

    @staticmethod
    def _sql(statement: str) -> str:
        # Our statements hold no literal '?' or '%': placeholders are the only ones.
        return statement.replace("?", "%s")

    async def execute(self, statement: str, args: Sequence[object] = ()) -> int:
        cur = await self._conn.execute(self._sql(statement), tuple(args))
        return cur.rowcount

    async def fetch(self, statement: str, args: Sequence[object] = ()) -> list[Row]:
        cur = await self._conn.execute(self._sql(statement), tuple(args))
        return list(await cur.fetchall())

    async def many(self, statement: str, rows: Iterable[Sequence[object]]) -> None:
        async with self._conn.transaction(), self._conn.cursor() as cur:
            await cur.executemany(self._sql(statement), [tuple(r) for r in rows])

    async def analyze(self, table: str) -> None:
        await self._conn.execute(f"ANALYZE {table}")

    async def aclose(self) -> None:
        await self._conn.close()


def placeholders(count: int) -> str:
    """``?, ?, ?`` for ``count`` values."""
    return ", ".join("?" * count)
