"""Installing and removing capture on a live database: look at the tables, then run the SQL.

Every function here is blocking and takes an open SQLAlchemy connection (see :func:`connect`).
``sfsync db install-capture`` and ``remove-capture`` call them; so does the source, to check at
open that capture is installed.

Which column holds the key: an object's ``key`` is a Salesforce field (``Ext_Id__c``); its
column is, in this order, the one named for the table in the connection's
``capture_key_columns``, the column of exactly that name, or the column of that name in lower
case (``ext_id__c``). Anything else is a configuration error that says which columns exist.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.pool import NullPool

from sfsync.connectors.sql.capture.statements import (
    CHANGES_TABLE,
    PG_TRIGGER,
    TRIGGER_PREFIX,
    CapturedTable,
    install_statements,
    remove_statements,
)
from sfsync.connectors.sql.client import ConnectionSettings, dialect_of, engine_url
from sfsync.connectors.sql.config import PostgresConnection
from sfsync.connectors.sql.errors import classify
from sfsync.connectors.sql.types import Dialect
from sfsync.core.errors import ConfigError
from sfsync.spi.spec import EntitySelection


@dataclass(frozen=True, slots=True, kw_only=True)
class CaptureObject:
    """One configured object read from a table.

    Attributes:
        entity: the Salesforce object the rows become (events carry it as ``entity``).
        table: the SQL table.
        key: the object's key field (``Ext_Id__c``); see the module docstring for its column.
        fields: the columns to carry (matched without regard to case), ``None`` for all.
        exclude: columns to leave out (matched without regard to case).
    """

    entity: str
    table: str
    key: str
    fields: tuple[str, ...] | None = None
    exclude: tuple[str, ...] = ()


def capture_objects(entities: Sequence[EntitySelection]) -> list[CaptureObject]:
    """The objects a sync reads from its SQL source connection.

    Raises:
        ConfigError: an object has a ``where`` filter (a SQL source reads whole tables).
    """
    objects = []
    for e in entities:
        if e.where:
            raise ConfigError(
                f"object {e.name}: `where` filters rows read from Salesforce; a SQL source "
                "reads every row of its table",
                hint="remove `where`; to carry only some rows, poll a view that filters them "
                "with `capture: updated_at`",
            )
        objects.append(
            CaptureObject(
                entity=e.name,
                table=e.target or e.name.lower(),
                key=e.key,
                fields=e.fields,
                exclude=e.exclude,
            )
        )
    return objects


def schema_of(settings: ConnectionSettings) -> str | None:
    """The schema holding the tables (PostgreSQL), or ``None``."""
    return settings.db_schema if isinstance(settings, PostgresConnection) else None


def connect(settings: ConnectionSettings) -> tuple[sa.Engine, sa.Connection]:
    """An engine and a connection for installing and reading capture (blocking).

    Unlike the sink's client this changes nothing on connect: no journal mode, and a SQLite
    file that does not exist is an error rather than created empty.

    Raises:
        ConfigError: no such SQLite file, bad credentials, unknown database.
        RetryableError: the server cannot be reached.
    """
    dialect = dialect_of(settings)
    url = engine_url(settings)
    args: dict[str, Any] = {}
    if dialect == "sqlite":
        database = url.database or ""
        if database not in ("", ":memory:") and not Path(database).exists():
            raise ConfigError(
                f"the SQLite file {database} does not exist",
                hint="check the connection's url (sqlite:///relative/path.db or "
                "sqlite:////absolute/path.db)",
            )
        args = {"timeout": settings.connect_timeout, "check_same_thread": False}
    else:
        args = {"connect_timeout": max(1, int(settings.connect_timeout))}
        if dialect == "postgresql":
            args["application_name"] = "sfsync-capture"
    engine = sa.create_engine(url, poolclass=NullPool, connect_args=args)
    if dialect == "sqlite":
        _explicit_sqlite_transactions(engine)
    else:
        _utc_sessions(engine, dialect)
    try:
        conn = engine.connect()
    except sa.exc.SQLAlchemyError as exc:
        engine.dispose()
        raise classify(exc, during=f"connecting to {settings.display_url}") from exc
    return engine, conn


@contextmanager
def connected(settings: ConnectionSettings) -> Iterator[sa.Connection]:
    """:func:`connect`, closed and disposed of on the way out (for one-off commands)."""
    engine, conn = connect(settings)
    try:
        yield conn
    finally:
        conn.close()
        engine.dispose()


def _utc_sessions(engine: sa.Engine, dialect: Dialect) -> None:
    # On every new connection, also the one SQLAlchemy opens after a lost one.
    statement = "SET SESSION time_zone = '+00:00'" if dialect == "mysql" else "SET TIME ZONE 'UTC'"

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        with dbapi_connection.cursor() as cursor:
            cursor.execute(statement)
        dbapi_connection.commit()


def _explicit_sqlite_transactions(engine: sa.Engine) -> None:
    # pysqlite commits implicitly before DDL; hand transactions to SQLAlchemy so that an
    # install is one transaction there as on PostgreSQL.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql("BEGIN")


def key_column(
    obj: CaptureObject, columns: Sequence[str], overrides: Mapping[str, str] | None = None
) -> str:
    """The column holding ``obj``'s key (the rule is in the module docstring).

    Raises:
        ConfigError: no such column.
    """
    wanted = (overrides or {}).get(obj.table)
    if wanted is not None:
        if wanted in columns:
            return wanted
        raise ConfigError(
            f"capture_key_columns names column {wanted!r} for table {obj.table!r}, "
            "which has no such column",
            hint=f"its columns: {', '.join(columns)}",
        )
    for candidate in (obj.key, obj.key.lower()):
        if candidate in columns:
            return candidate
    raise ConfigError(
        f"table {obj.table!r} (object {obj.entity}) has no column for its key field "
        f"{obj.key!r} (looked for {obj.key!r} and {obj.key.lower()!r})",
        hint=f"set the object's `key` to the external id field its column holds, or map "
        f"the column in the connection's capture_key_columns: {{{obj.table}: <column>}}; "
        f"its columns: {', '.join(columns)}",
    )


def reflect_columns(conn: sa.Connection, table: str, schema: str | None) -> list[dict[str, Any]]:
    """The columns of ``table`` as SQLAlchemy reflects them.

    Raises:
        ConfigError: no such table.
    """
    inspector = sa.inspect(conn)
    if not inspector.has_table(table, schema=schema):
        where = f" in schema {schema!r}" if schema else ""
        raise ConfigError(
            f"the table {table!r}{where} does not exist",
            hint="create it, or set the object's `table:` to the table that holds its rows",
        )
    return [dict(c) for c in inspector.get_columns(table, schema=schema)]


def captured_tables(
    conn: sa.Connection,
    settings: ConnectionSettings,
    objects: Sequence[CaptureObject],
) -> list[CapturedTable]:
    """What to install for ``objects``: each table once, with its key column and columns.

    Raises:
        ConfigError: a table or key column is missing, or two objects read one table
            through different key columns.
    """
    schema = schema_of(settings)
    found: dict[str, CapturedTable] = {}
    for obj in objects:
        columns = reflect_columns(conn, obj.table, schema)
        names = [c["name"] for c in columns]
        key = key_column(obj, names, settings.capture_key_columns)
        table = CapturedTable(
            table=obj.table,
            key_column=key,
            columns=tuple(names),
            binary_columns=frozenset(
                c["name"] for c in columns if isinstance(c["type"], sa.types._Binary)
            ),
        )
        previous = found.get(obj.table)
        if previous is not None and previous.key_column != key:
            raise ConfigError(
                f"table {obj.table!r} is read with two different key columns "
                f"({previous.key_column!r} and {key!r})",
                hint="give the objects that read it the same `key`",
            )
        found[obj.table] = table
    return list(found.values())


def installed_triggers(conn: sa.Connection, settings: ConnectionSettings) -> list[tuple[str, str]]:
    """The ``(table, trigger)`` pairs of sfsync's capture triggers in the database."""
    dialect = dialect_of(settings)
    if dialect == "postgresql":
        rows = conn.execute(
            sa.text(
                "SELECT c.relname, t.tgname FROM pg_trigger t "
                "JOIN pg_class c ON c.oid = t.tgrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = :schema AND t.tgname = :name AND NOT t.tgisinternal "
                "ORDER BY c.relname"
            ),
            {"schema": schema_of(settings), "name": PG_TRIGGER},
        )
    elif dialect == "mysql":
        rows = conn.execute(
            sa.text(
                "SELECT EVENT_OBJECT_TABLE, TRIGGER_NAME FROM information_schema.TRIGGERS "
                "WHERE TRIGGER_SCHEMA = DATABASE() AND TRIGGER_NAME LIKE :prefix "
                "ORDER BY EVENT_OBJECT_TABLE, TRIGGER_NAME"
            ),
            {"prefix": _like_prefix()},
        )
    else:
        rows = conn.execute(
            sa.text(
                "SELECT tbl_name, name FROM sqlite_master WHERE type = 'trigger' "
                "AND name LIKE :prefix ESCAPE '\\' ORDER BY tbl_name, name"
            ),
            {"prefix": _like_prefix()},
        )
    pairs = [(str(table), str(trigger)) for table, trigger in rows]
    conn.rollback()
    return pairs


def _like_prefix() -> str:
    return TRIGGER_PREFIX.replace("_", "\\_") + "%"


def outdated_tables(
    conn: sa.Connection, settings: ConnectionSettings, tables: Sequence[CapturedTable]
) -> list[str]:
    """The tables whose capture triggers differ from what :func:`plan_install` would create
    now: the key column changed, or (MariaDB, SQLite, whose triggers name each column) the
    table's columns did. Their changes would be logged with a wrong key or without the new
    columns until capture is installed again."""
    dialect = dialect_of(settings)
    outdated = []
    for table in tables:
        expected = install_statements(dialect, schema_of(settings), [table])
        created = [s for s in expected if s.startswith("CREATE TRIGGER")]
        if dialect == "postgresql":
            found = conn.execute(
                sa.text(
                    "SELECT pg_get_triggerdef(t.oid) FROM pg_trigger t "
                    "JOIN pg_class c ON c.oid = t.tgrelid "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname = :schema AND c.relname = :table AND t.tgname = :name"
                ),
                {"schema": schema_of(settings), "table": table.table, "name": PG_TRIGGER},
            ).scalar()
            # The definition comes back normalised; its argument is the key column.
            key = created[0].rsplit("(", 1)[1]
            current = found is not None and str(found).endswith(f"({key}")
        elif dialect == "mysql":
            bodies: dict[str, str] = dict(
                conn.execute(
                    sa.text(
                        "SELECT TRIGGER_NAME, ACTION_STATEMENT FROM information_schema.TRIGGERS "
                        "WHERE TRIGGER_SCHEMA = DATABASE() AND EVENT_OBJECT_TABLE = :table"
                    ),
                    {"table": table.table},
                ).all()
            )
            current = all(
                bodies.get(_trigger_name(sql)) == sql.split(" FOR EACH ROW\n", 1)[1]
                for sql in created
            )
        else:
            texts = {
                str(sql)
                for (sql,) in conn.execute(
                    sa.text(
                        "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = :t"
                    ),
                    {"t": table.table},
                )
            }
            current = all(sql in texts for sql in created)
        if not current:
            outdated.append(table.table)
    conn.rollback()
    return outdated


def _trigger_name(create: str) -> str:
    quoted = create.split()[2]
    return quoted[1:-1].replace(quoted[0] * 2, quoted[0])


def log_exists(conn: sa.Connection, settings: ConnectionSettings) -> bool:
    """Whether the change log table exists."""
    exists = sa.inspect(conn).has_table(CHANGES_TABLE, schema=schema_of(settings))
    conn.rollback()
    return exists


def plan_install(
    conn: sa.Connection, settings: ConnectionSettings, objects: Sequence[CaptureObject]
) -> list[str]:
    """The statements :func:`install` would run for ``objects`` (nothing is changed)."""
    tables = captured_tables(conn, settings, objects)
    conn.rollback()
    return install_statements(dialect_of(settings), schema_of(settings), tables)


def plan_remove(conn: sa.Connection, settings: ConnectionSettings) -> list[str]:
    """The statements :func:`remove` would run (nothing is changed)."""
    return remove_statements(
        dialect_of(settings), schema_of(settings), installed_triggers(conn, settings)
    )


def execute(conn: sa.Connection, dialect: Dialect, statements: Sequence[str]) -> None:
    """Run ``statements`` in one transaction (MariaDB commits each DDL statement itself).

    Raises:
        ConfigError, RetryableError, FatalError: the database refused, classified.
    """
    try:
        with conn.begin():
            for statement in statements:
                conn.exec_driver_sql(_escape_percent(dialect, statement))
    except sa.exc.SQLAlchemyError as exc:
        raise classify(exc, during="installing change capture") from exc


def _escape_percent(dialect: Dialect, statement: str) -> str:
    # exec_driver_sql with no parameters still runs through the driver's paramstyle on
    # psycopg and PyMySQL, where a literal % must be doubled.
    if dialect == "sqlite":
        return statement
    return statement.replace("%", "%%")
