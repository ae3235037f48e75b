"""SQL errors, classified once into the engine's taxonomy.

:func:`classify` reads the driver's own code (PostgreSQL's SQLSTATE, MySQL/MariaDB's error
number, SQLite's extended result name) and answers with a :mod:`sfsync.core.errors` class:

* the connection dropped, a deadlock, a serialization failure, a lock timeout:
  :class:`RetryableError` (the runtime retries the batch; the sink applies idempotently);
* one row's value or a constraint: :class:`SkippableError` (that event is REJECTED, the rest
  of the batch is applied);
* bad credentials, a missing database or schema: :class:`ConfigError` with a hint;
* missing privileges, a table dropped under the sink, a full disk, anything unknown:
  :class:`FatalError` with a hint.

Every answer keeps the driver's code in ``code`` so logs and dead letters say more than a class.
"""

from __future__ import annotations

import sqlite3

import psycopg
import pymysql
import sqlalchemy.exc

from sfsync.core.errors import ConfigError, FatalError, RetryableError, SkippableError, SyncError


class RowValueError(Exception):
    """A value the driver could not encode on a bulk path; some row of the batch is bad."""


DATABASE_ERRORS: tuple[type[Exception], ...] = (
    sqlalchemy.exc.DBAPIError,
    psycopg.Error,
    RowValueError,
)
"""What a statement can raise: SQLAlchemy's wrapper, psycopg's own error from ``COPY``, or
:class:`RowValueError` from a bulk path."""

# PostgreSQL SQLSTATE classes (first two characters) and single codes.
_PG_RETRY_CLASSES = frozenset({"08", "53", "57", "58"})  # connection, resources, operator, system
_PG_RETRY_CODES = frozenset({"40001", "40P01", "55P03", "25P02"})
_PG_ROW_CLASSES = frozenset({"22", "23"})  # data exception, integrity constraint violation
_PG_CONFIG_CODES = {
    "28000": "check the user and password in the connection url",
    "28P01": "check the user and password in the connection url",
    "3D000": "create the database or fix its name in the connection url",
    "3F000": "create the schema or fix `schema` in the connection settings",
}
_PG_FATAL_CODES = {
    "42501": "grant the sync user CREATE on the schema and INSERT/UPDATE/DELETE on its tables",
    "42P01": "a synced table was dropped while the sync ran; restart the sync to recreate it",
    "42703": "a synced column was dropped while the sync ran; restart the sync to recreate it",
}

# MySQL / MariaDB error numbers.
_MY_RETRY = frozenset({1040, 1205, 1213, 1927, 2002, 2003, 2006, 2013, 2055, 4031})
_MY_ROW = frozenset(
    {1048, 1062, 1264, 1265, 1292, 1366, 1367, 1406, 1416, 1451, 1452, 1690, 3140, 4025}
)
_MY_CONFIG = {
    1044: "grant the sync user access to the database",
    1045: "check the user and password in the connection url",
    1049: "create the database or fix its name in the connection url",
}
_MY_FATAL = {
    1142: "grant the sync user CREATE, ALTER, INSERT, UPDATE and DELETE on the database",
    1143: "grant the sync user INSERT and UPDATE on the synced columns",
    1146: "a synced table was dropped while the sync ran; restart the sync to recreate it",
    1054: "a synced column was dropped while the sync ran; restart the sync to recreate it",
}

# SQLite extended result names (sqlite3 exceptions carry them as ``sqlite_errorname``).
_SQLITE_RETRY = frozenset({"SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_BUSY_SNAPSHOT"})
_SQLITE_ROW_PREFIXES = ("SQLITE_CONSTRAINT", "SQLITE_MISMATCH", "SQLITE_TOOBIG", "SQLITE_RANGE")
_SQLITE_CONFIG = frozenset({"SQLITE_CANTOPEN", "SQLITE_NOTADB", "SQLITE_AUTH"})


def classify(exc: BaseException, *, during: str = "writing") -> SyncError:
    """The engine's error for a database failure ``exc`` (raise it ``from exc``).

    Args:
        exc: a SQLAlchemy error (its ``orig`` is inspected) or a driver error.
        during: what the sink was doing, for the message ("writing Account", "opening").
    """
    if isinstance(exc, SyncError):
        return exc
    invalidated = isinstance(exc, sqlalchemy.exc.DBAPIError) and exc.connection_invalidated
    orig: BaseException = exc
    if isinstance(exc, sqlalchemy.exc.DBAPIError) and exc.orig is not None:
        orig = exc.orig
    if invalidated:
        return RetryableError(f"database connection lost while {during}: {_first_line(orig)}")
    if isinstance(orig, psycopg.Error):
        return _classify_pg(orig, during)
    if isinstance(orig, pymysql.MySQLError):
        return _classify_mysql(orig, during)
    if isinstance(orig, sqlite3.Error):
        return _classify_sqlite(orig, during)
    if isinstance(orig, (TypeError, ValueError, OverflowError, RowValueError)):
        # A driver refused to bind a Python value: that row's problem.
        return SkippableError(f"the database driver cannot store a value: {orig}")
    if isinstance(orig, (ConnectionError, TimeoutError)):
        return RetryableError(f"database connection lost while {during}: {orig}")
    return FatalError(
        f"unexpected database error while {during}: {_first_line(orig)}",
        hint="report this with the log; the sync stopped without losing data",
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _classify_pg(exc: psycopg.Error, during: str) -> SyncError:
    state = exc.sqlstate or ""
    text = _first_line(exc)
    if isinstance(exc, psycopg.OperationalError) and not state:
        # Connection-level failures (refused, reset) come without a SQLSTATE.
        lowered = text.lower()
        if "authentication" in lowered or "password" in lowered:
            return ConfigError(
                f"PostgreSQL refused the login: {text}",
                hint=_PG_CONFIG_CODES["28P01"],
                code="28P01",
            )
        if "does not exist" in lowered:
            return ConfigError(f"PostgreSQL: {text}", hint=_PG_CONFIG_CODES["3D000"], code="3D000")
        return RetryableError(f"PostgreSQL connection failed while {during}: {text}")
    if not state and isinstance(exc, (psycopg.DataError, psycopg.ProgrammingError)):
        # Raised by psycopg itself when it cannot adapt a Python value: that row's problem.
        return SkippableError(f"PostgreSQL driver cannot send a value: {text}")
    if state in _PG_RETRY_CODES or state[:2] in _PG_RETRY_CLASSES:
        return RetryableError(f"PostgreSQL ({state}) while {during}: {text}", code=state)
    if state[:2] in _PG_ROW_CLASSES:
        diag = exc.diag
        where = [
            f"{label} {value!r}"
            for label, value in (
                ("column", diag.column_name),
                ("constraint", diag.constraint_name),
            )
            if value
        ]
        detail = f" ({', '.join(where)})" if where else ""
        return SkippableError(f"PostgreSQL refused the row: {text}{detail}", code=state)
    if state in _PG_CONFIG_CODES:
        return ConfigError(f"PostgreSQL: {text}", hint=_PG_CONFIG_CODES[state], code=state)
    hint = _PG_FATAL_CODES.get(state, "see the PostgreSQL message; the sync stopped safely")
    return FatalError(f"PostgreSQL ({state}) while {during}: {text}", hint=hint, code=state)


def _classify_mysql(exc: pymysql.MySQLError, during: str) -> SyncError:
    number = exc.args[0] if exc.args and isinstance(exc.args[0], int) else 0
    text = str(exc.args[1]) if len(exc.args) > 1 else _first_line(exc)
    code = str(number) if number else None
    if number in _MY_RETRY or (number == 0 and isinstance(exc, pymysql.OperationalError)):
        return RetryableError(f"MySQL ({number}) while {during}: {text}", code=code)
    if number in _MY_ROW:
        return SkippableError(f"MySQL refused the row: {text}", code=code)
    if number in _MY_CONFIG:
        return ConfigError(f"MySQL: {text}", hint=_MY_CONFIG[number], code=code)
    hint = _MY_FATAL.get(number, "see the MySQL message; the sync stopped safely")
    return FatalError(f"MySQL ({number}) while {during}: {text}", hint=hint, code=code)


def _classify_sqlite(exc: sqlite3.Error, during: str) -> SyncError:
    name: str = getattr(exc, "sqlite_errorname", "") or ""
    text = _first_line(exc)
    if name in _SQLITE_RETRY or "database is locked" in text:
        return RetryableError(f"SQLite is busy while {during}: {text}", code=name or None)
    if name.startswith(_SQLITE_ROW_PREFIXES) or isinstance(exc, sqlite3.IntegrityError):
        return SkippableError(f"SQLite refused the row: {text}", code=name or None)
    if isinstance(exc, (sqlite3.InterfaceError, sqlite3.ProgrammingError)) and "binding" in text:
        return SkippableError(f"SQLite cannot store a value: {text}", code=name or None)
    if name in _SQLITE_CONFIG:
        return ConfigError(
            f"SQLite cannot open the database: {text}",
            hint="check the path in the sqlite url and that its directory exists and is writable",
            code=name,
        )
    if name.startswith("SQLITE_FULL"):
        return FatalError(f"SQLite: {text}", hint="free disk space, then restart", code=name)
    if name.startswith(("SQLITE_READONLY", "SQLITE_PERM")):
        return FatalError(
            f"SQLite: {text}", hint="make the database file and its directory writable", code=name
        )
    return FatalError(
        f"SQLite error while {during}: {text}",
        hint="see the SQLite message; the sync stopped safely",
        code=name or None,
    )
