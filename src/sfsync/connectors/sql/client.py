"""One database connection per sink, set up the same way on every dialect.

:class:`SqlClient` owns a SQLAlchemy engine (no pool: the sink holds exactly one connection,
which is also its one open transaction) and makes each dialect behave the way the sink's
contract needs:

* PostgreSQL through psycopg 3; the raw connection is exposed for ``COPY``.
* MySQL/MariaDB through PyMySQL, with ``utf8mb4``, a UTC session time zone and strict SQL mode
  (without it MariaDB silently truncates too-long values instead of refusing them, which would
  be silent data loss).
* SQLite through the standard library, in WAL mode, with the pysqlite transaction quirks
  switched off so that DDL, savepoints and ``BEGIN`` behave as on the servers (the recipe from
  the SQLAlchemy documentation).

Every method here is blocking; the sink calls them on a worker thread via :meth:`run`, one at a
time (a capacity limiter of one), so the connection is never used by two threads at once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import anyio.to_thread
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.pool import NullPool

from sfsync.connectors.sql.config import MySqlConnection, PostgresConnection, SqliteConnection
from sfsync.connectors.sql.errors import classify
from sfsync.connectors.sql.types import Dialect

T = TypeVar("T")

ConnectionSettings = PostgresConnection | MySqlConnection | SqliteConnection

_MYSQL_SQL_MODE = (
    "STRICT_ALL_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,"
    "NO_ENGINE_SUBSTITUTION"
)


def engine_url(settings: ConnectionSettings) -> sa.URL:
    """The SQLAlchemy URL for ``settings``, with the driver sfsync uses and the password set."""
    url = sa.make_url(settings.url)
    if isinstance(settings, PostgresConnection):
        url = url.set(drivername="postgresql+psycopg")
    elif isinstance(settings, MySqlConnection):
        url = url.set(drivername="mysql+pymysql")
        url = url.update_query_dict({"charset": "utf8mb4"})
    else:
        url = url.set(drivername="sqlite")
    password = getattr(settings, "password", None)  # SQLite has none
    if password is not None:
        url = url.set(password=password.get_secret_value())
    return url


def dialect_of(settings: ConnectionSettings) -> Dialect:
    """The dialect family of ``settings``."""
    if isinstance(settings, PostgresConnection):
        return "postgresql"
    if isinstance(settings, MySqlConnection):
        return "mysql"
    return "sqlite"


class SqlClient:
    """The sink's connection and transaction.

    Args:
        settings: the connection section.
        application_name: how the session names itself to PostgreSQL (``pg_stat_activity``),
            so an operator can tell which sync holds a connection.
    """

    def __init__(self, settings: ConnectionSettings, *, application_name: str = "sfsync") -> None:
        self.settings = settings
        self.application_name = application_name[:63]
        self.dialect: Dialect = dialect_of(settings)
        self.schema: str | None = (
            settings.db_schema if isinstance(settings, PostgresConnection) else None
        )
        self._engine: sa.Engine | None = None
        self._conn: sa.Connection | None = None
        self._limiter = anyio.CapacityLimiter(1)
        self.placeholder = "?" if self.dialect == "sqlite" else "%s"

    # --- running --------------------------------------------------------------------------

    async def run(self, func: Callable[..., T], *args: Any) -> T:
        """Run blocking ``func(*args)`` on a worker thread, one call at a time."""
        return await anyio.to_thread.run_sync(func, *args, limiter=self._limiter)

    # --- connection -----------------------------------------------------------------------

    @property
    def conn(self) -> sa.Connection:
        """The open connection (call :meth:`connect` first)."""
        if self._conn is None:
            raise RuntimeError("the SQL sink is not open")
        return self._conn

    @property
    def connected(self) -> bool:
        return self._conn is not None

    def connect(self) -> None:
        """Open the connection and set the session up (blocking).

        Raises:
            ConfigError: bad credentials, unknown database, unopenable file.
            RetryableError: the server cannot be reached.
        """
        if self._engine is None:
            self._engine = self._make_engine()
        try:
            self._conn = self._engine.connect()
            self._setup_session(self._conn)
        except sa.exc.SQLAlchemyError as exc:
            self._conn = None
            raise classify(exc, during=f"connecting to {self.settings.display_url}") from exc

    def _make_engine(self) -> sa.Engine:
        timeout = self.settings.connect_timeout
        args: dict[str, Any]
        if self.dialect == "postgresql":
            args = {
                "connect_timeout": max(1, int(timeout)),
                "application_name": self.application_name,
            }
        elif self.dialect == "mysql":
            args = {"connect_timeout": max(1, int(timeout))}
        else:
            args = {"timeout": timeout, "check_same_thread": False}
        engine = sa.create_engine(engine_url(self.settings), poolclass=NullPool, connect_args=args)
        if self.dialect == "sqlite":
            _fix_sqlite_transactions(engine)
        return engine

    def _setup_session(self, conn: sa.Connection) -> None:
        if self.dialect == "mysql":
            conn.exec_driver_sql(f"SET SESSION sql_mode = '{_MYSQL_SQL_MODE}'")
            conn.exec_driver_sql("SET SESSION time_zone = '+00:00'")
        elif self.dialect == "postgresql":
            conn.exec_driver_sql("SET TIME ZONE 'UTC'")
        conn.commit()

    def reconnect(self) -> None:
        """Drop the connection (its transaction is lost) and open a new one (blocking)."""
        self.close()
        self.connect()

    def close(self) -> None:
        """Roll back whatever is open and close the connection (blocking, idempotent)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            # If the connection is already gone there is nothing left to roll back.
            with contextlib.suppress(sa.exc.SQLAlchemyError):
                conn.rollback()
            conn.close()

    def dispose(self) -> None:
        """Close the connection and the engine (blocking, idempotent)."""
        self.close()
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    # --- SQL text -------------------------------------------------------------------------

    def quote(self, name: str) -> str:
        """``name`` as a quoted identifier of this dialect (always quoted: names are exact)."""
        return self.conn.dialect.identifier_preparer.quote_identifier(name)

    def table_ref(self, table: str) -> str:
        """The quoted, schema-qualified name of ``table``."""
        if self.schema:
            return f"{self.quote(self.schema)}.{self.quote(table)}"
        return self.quote(table)

    def driver_connection(self) -> Any:
        """The DB-API connection under SQLAlchemy (psycopg's, for ``COPY``)."""
        return self.conn.connection.driver_connection


def _fix_sqlite_transactions(engine: sa.Engine) -> None:
    # pysqlite commits implicitly before DDL and never emits BEGIN for SELECT; this hands
    # transaction control to SQLAlchemy so that savepoints and transactional DDL work.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        # WAL lets readers see the last commit while the sink writes the next batch; it must be
        # set outside a transaction, hence here.
        dbapi_connection.execute("PRAGMA journal_mode=WAL")

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql("BEGIN")
