"""The statements that apply pending row operations to one table, fastest path per dialect.

* PostgreSQL, many full rows: binary ``COPY`` (text ``COPY`` after a refused batch, or when a
  field's kind differs from its column's) into a temporary staging table, then one
  ``INSERT ... SELECT ... ON CONFLICT (key) DO UPDATE ... WHERE <guard>`` (the measured best
  path, see ``docs/sql-sink.md``). Partial rows (only the changed fields), per set of columns:
  one upsert of arrays (:mod:`.partial`). Few full rows, and the row-by-row fallback:
  ``executemany`` of the same upsert with ``VALUES`` (psycopg pipelines it).
* PostgreSQL, a CSV page of new records (:meth:`TableWriter.copy_page`): the page's text
  straight into ``COPY ... (FORMAT csv)``; the database parses it, no Python per record.
* SQLite: ``executemany`` of ``INSERT ... ON CONFLICT DO UPDATE ... WHERE <guard>``.
* MySQL/MariaDB: ``executemany`` of ``INSERT ... ON DUPLICATE KEY UPDATE`` (PyMySQL folds it
  into multi-row statements) with the guard inside each assignment:
  ``c = IF(<guard>, VALUES(c), c)``; the version column is assigned last, because MySQL
  evaluates the assignments left to right and the guard must see the old version.

The guard is ``stored version IS NULL OR new version IS NULL OR stored <= new``: the planner has
already dropped stale events, and the guard keeps that true even if another writer got in
between. Every statement is built once per column set and cached.
"""

from __future__ import annotations

import struct
from collections import defaultdict
from collections.abc import Sequence

from psycopg.types.json import Jsonb

from sfsync.connectors.sql.client import SqlClient
from sfsync.connectors.sql.ddl import DELETED, SYNCED_AT, VERSION, TableState
from sfsync.connectors.sql.errors import RowValueError
from sfsync.connectors.sql.partial import PG_TYPES, apply_arrays, array_select
from sfsync.connectors.sql.plan import Pending
from sfsync.connectors.sql.types import comparable_version
from sfsync.core.schema import FieldKind

COPY_THRESHOLD = 100
"""Full rows from which PostgreSQL uses COPY + merge instead of executemany."""

TEXT_LOADABLE = frozenset(FieldKind) - {FieldKind.JSON, FieldKind.BINARY}
"""Field kinds whose CSV text (as Salesforce writes it: ``true``/``false``, ISO 8601 dates and
times, plain or exponent numbers) PostgreSQL's input functions read as the column's type."""

_READ_CHUNK = 500


class TableWriter:
    """Applies :class:`Pending` operations to one prepared table (blocking calls).

    Args:
        client: the open connection.
        state: the table, as :func:`~sfsync.connectors.sql.ddl.prepare_table` left it.
    """

    def __init__(self, client: SqlClient, state: TableState) -> None:
        self.client = client
        self.state = state
        self._ref = client.table_ref(state.table)
        self._key = state.key_column
        self._version = state.version_column
        key = state.key_column
        columns = [key] + [c for c in state.field_columns.values() if c != key]
        if state.schema.version_field is None:
            columns.append(VERSION)
        if state.soft_delete:
            columns.append(DELETED)
        columns.append(SYNCED_AT)
        self.full_columns: tuple[str, ...] = tuple(columns)
        self._order = {c: i for i, c in enumerate(self.full_columns)}
        self._sql: dict[tuple[str, tuple[str, ...]], str] = {}
        # A partial row's columns in table order, by the order its values came in: a stream
        # repeats the same few sets of changed fields.
        self._partial_orders: dict[tuple[str, ...], tuple[str, ...]] = {}
        self._staging: str | None = None
        self._binary_types = _binary_copy_types(state, self.full_columns)
        # Partial rows as typed arrays only where every field's values are of its column's
        # type (as for binary COPY): after a narrowing, say, the row-by-row statement lets the
        # server convert each value.
        self._arrays = client.dialect == "postgresql" and self._binary_types is not None
        self._json_positions = [
            i for i, c in enumerate(self.full_columns) if state.columns[c].kind is FieldKind.JSON
        ]

    def forget_staging(self) -> None:
        """The staging table was rolled back with a savepoint: make it again next time.

        Also the moment to stop using binary COPY: a refused batch may be one whose values the
        binary format did not fit (a column changed by hand, say); text COPY lets the server
        cast, and the row-by-row fallback names the bad rows either way.
        """
        self._staging = None
        self._binary_types = None

    # --- reading ----------------------------------------------------------------------------

    def read_versions(self, keys: Sequence[object]) -> dict[str, object]:
        """Stored versions (comparable form, ``None`` if unversioned) of the existing ``keys``."""
        client, q = self.client, self.client.quote
        select = f"SELECT {q(self._key)}, {q(self._version)} FROM {self._ref} WHERE {q(self._key)}"
        found: dict[str, object] = {}
        if client.dialect == "postgresql":
            rows = client.conn.exec_driver_sql(f"{select} = ANY(%s)", (list(keys),))
            found.update((str(k), comparable_version(v)) for k, v in rows)
            return found
        for start in range(0, len(keys), _READ_CHUNK):
            chunk = keys[start : start + _READ_CHUNK]
            marks = ", ".join([client.placeholder] * len(chunk))
            rows = client.conn.exec_driver_sql(f"{select} IN ({marks})", tuple(chunk))
            found.update((str(k), comparable_version(v)) for k, v in rows)
        return found

    # --- writing ----------------------------------------------------------------------------

    def apply(self, pending: Sequence[Pending], *, bulk: bool = True) -> None:
        """Apply every operation; ``bulk=False`` avoids COPY (for the row-by-row fallback)."""
        full: list[tuple[object, ...]] = []
        partial: dict[tuple[str, ...], list[tuple[object, ...]]] = defaultdict(list)
        guarded_deletes: list[tuple[object, ...]] = []
        plain_deletes: list[tuple[object, ...]] = []
        columns = self.full_columns
        width = len(columns)
        orders = self._partial_orders
        for op in pending:
            if op.delete or op.delete_first:
                version = op.delete_version
                if version is None:
                    plain_deletes.append((op.key,))
                else:
                    guarded_deletes.append((op.key, version))
            if op.delete:
                continue
            if op.partial:
                values = op.values
                names = tuple(values)
                cols = orders.get(names)
                if cols is None:
                    if len(orders) >= 1024:
                        orders.clear()  # bounded: the sets are few, but never trust a stream
                    cols = orders[names] = tuple(sorted(names, key=self._position))
                partial[cols].append(tuple([values[c] for c in cols]))
            elif len(op.values) == width:  # built from the template: already in column order
                full.append(tuple(op.values.values()))
            else:
                values = op.values
                full.append(tuple([values.get(c) for c in columns]))
        conn = self.client.conn
        if plain_deletes:
            conn.exec_driver_sql(self._delete_sql(guarded=False), plain_deletes)
        if guarded_deletes:
            conn.exec_driver_sql(self._delete_sql(guarded=True), guarded_deletes)
        if full:
            if bulk and self.client.dialect == "postgresql" and len(full) >= COPY_THRESHOLD:
                self._copy_merge(full)
            else:
                conn.exec_driver_sql(self._upsert_sql(columns), full)
        arrays = bulk and self._arrays
        for cols, rows in partial.items():
            # One statement may not touch a row twice: keys that differ as events' keys but
            # not as the column's values ("01" and "1" for an integer key) go row by row. The
            # key is a partial row's first column.
            if arrays and len(rows) > 1 and len({row[0] for row in rows}) == len(rows):
                apply_arrays(self.client.driver_connection(), self._array_upsert_sql(cols), rows)
            else:
                conn.exec_driver_sql(self._upsert_sql(cols), rows)

    def apply_rows(self, rows: list[tuple[object, ...]], *, new_keys: bool) -> None:
        """Insert-or-update full rows (values in ``full_columns`` order, one per key).

        ``new_keys`` says none of the keys had a row when the batch was planned: on PostgreSQL
        the rows are then copied straight into the table, with no staging table and no merge
        (half the database's work). Should another writer have inserted one of those keys
        meanwhile, the COPY fails on the primary key and the caller applies the batch again
        through the guarded path.
        """
        if not rows:
            return
        if self.client.dialect == "postgresql" and len(rows) >= COPY_THRESHOLD:
            if new_keys:
                self._copy(self._ref, rows)
            else:
                self._copy_merge(rows)
        else:
            self.client.conn.exec_driver_sql(self._upsert_sql(self.full_columns), rows)

    def _position(self, column: str) -> int:
        # Retired columns never appear here: the planner only writes current field columns.
        return self._order.get(column, len(self._order))

    def _copy_merge(self, rows: list[tuple[object, ...]]) -> None:
        conn = self.client.conn
        if self._staging is None:
            staging = self.client.quote(f"_sfsync_stage_{self.state.table}"[:63])
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS pg_temp.{staging}")
            conn.exec_driver_sql(f"CREATE TEMP TABLE {staging} (LIKE {self._ref})")
            self._staging = staging
        else:
            conn.exec_driver_sql(f"TRUNCATE {self._staging}")
        self._copy(self._staging, rows)
        conn.exec_driver_sql(self._merge_sql())

    def _copy(self, table: str, rows: list[tuple[object, ...]]) -> None:
        """``COPY table (full_columns) FROM STDIN``: binary when the types allow, else text."""
        q, columns = self.client.quote, self.full_columns
        names = ", ".join(q(c) for c in columns)
        types = self._binary_types
        sql = f"COPY {table} ({names}) FROM STDIN"
        if types is not None:
            # Binary COPY: a third of text COPY's client CPU per row (measured), since values
            # are packed, not formatted as text. JSON text is passed through as it is.
            sql += " (FORMAT BINARY)"
            rows = self._wrap_json(rows) if self._json_positions else rows
        try:
            with self.client.driver_connection().cursor() as cursor, cursor.copy(sql) as copy:
                if types is not None:
                    copy.set_types(types)
                write = copy.write_row
                for row in rows:
                    write(row)
        except (ValueError, TypeError, OverflowError, struct.error) as exc:
            # A value the binary dumper cannot pack: treat it as the row's problem, so the
            # sink falls back to row by row and the database names the bad rows.
            raise RowValueError(str(exc)) from exc

    def _wrap_json(self, rows: list[tuple[object, ...]]) -> list[tuple[object, ...]]:
        wrapped = []
        for row in rows:
            values = list(row)
            for i in self._json_positions:
                if values[i] is not None:
                    values[i] = Jsonb(values[i], dumps=_as_is)
            wrapped.append(tuple(values))
        return wrapped

    # --- CSV pages --------------------------------------------------------------------------

    def page_copy_sql(self, columns: Sequence[str]) -> str | None:
        """The ``COPY`` that loads a CSV page whose header names ``columns`` (fields) into the
        table as it is, or ``None`` when such a page cannot be loaded as text.

        It can when every name is a field with a column of its own kind that PostgreSQL
        reads from text (:data:`TEXT_LOADABLE`), the key and version fields are among them,
        and the bookkeeping columns fill themselves (``TableState.server_defaults``). Field
        columns the page lacks are left NULL, as a full row without them writes them. Every
        column is ``FORCE_NULL``: an empty cell, quoted or not, is a null, as Bulk CSV means.
        """
        state = self.state
        if self.client.dialect != "postgresql" or not state.server_defaults:
            return None
        if len(set(columns)) != len(columns):
            return None
        fields = state.schema.fields
        targets: list[str] = []
        for name in columns:
            spec, column = fields.get(name), state.field_columns.get(name)
            if spec is None or column is None:
                return None
            if spec.kind not in TEXT_LOADABLE or state.columns[column].kind is not spec.kind:
                return None
            targets.append(column)
        if self._key not in targets or self._version not in targets:
            return None
        names = ", ".join(map(self.client.quote, targets))
        return (
            f"COPY {self._ref} ({names}) FROM STDIN (FORMAT csv, HEADER true, FORCE_NULL ({names}))"
        )

    def is_empty(self) -> bool:
        """Whether the table holds no row (one index probe)."""
        found = self.client.conn.exec_driver_sql(f"SELECT 1 FROM {self._ref} LIMIT 1").first()
        return found is None

    def copy_page(self, sql: str, data: bytes) -> int:
        """Run ``sql`` (from :meth:`page_copy_sql`) with the page's CSV ``data`` (header line
        first); returns how many rows the database loaded.

        Only for records none of which is stored: a stored key fails the COPY on the primary
        key (the caller rolls back and applies the records through the guarded path).
        """
        with self.client.driver_connection().cursor() as cursor:
            with cursor.copy(sql) as copy:
                copy.write(data)
            return int(cursor.rowcount)

    # --- statements -------------------------------------------------------------------------

    def _guard(self, new: str, old: str) -> str:
        return f"{old} IS NULL OR {new} IS NULL OR {old} <= {new}"

    def _merge_sql(self) -> str:
        cache_key = ("merge", self.full_columns)
        sql = self._sql.get(cache_key)
        if sql is None:
            q = self.client.quote
            names = ", ".join(q(c) for c in self.full_columns)
            sql = (
                f"INSERT INTO {self._ref} AS tgt ({names}) SELECT {names} FROM {self._staging}"
                + self._on_conflict(self.full_columns)
            )
            self._sql[cache_key] = sql
        return sql

    def _on_conflict(self, columns: Sequence[str]) -> str:
        q = self.client.quote
        updates = [c for c in columns if c != self._key]
        sets = ", ".join(f"{q(c)} = excluded.{q(c)}" for c in updates)
        clause = f" ON CONFLICT ({q(self._key)}) DO UPDATE SET {sets}"
        if self._version in columns:
            v = q(self._version)
            clause += f" WHERE {self._guard(f'excluded.{v}', f'tgt.{v}')}"
        return clause

    def _upsert_sql(self, columns: Sequence[str]) -> str:
        cache_key = ("upsert", tuple(columns))
        sql = self._sql.get(cache_key)
        if sql is not None:
            return sql
        q, ph = self.client.quote, self.client.placeholder
        names = ", ".join(q(c) for c in columns)
        marks = ", ".join([ph] * len(columns))
        if self.client.dialect == "mysql":
            sql = f"INSERT INTO {self._ref} ({names}) VALUES ({marks})" + self._on_duplicate(
                columns
            )
        else:
            sql = f"INSERT INTO {self._ref} AS tgt ({names}) VALUES ({marks})"
            sql += self._on_conflict(columns)
        self._sql[cache_key] = sql
        return sql

    def _array_upsert_sql(self, columns: Sequence[str]) -> str:
        cache_key = ("arrays", tuple(columns))
        sql = self._sql.get(cache_key)
        if sql is None:
            names = ", ".join(self.client.quote(c) for c in columns)
            sql = f"INSERT INTO {self._ref} AS tgt ({names}) " + array_select(self.state, columns)
            sql += self._on_conflict(columns)
            self._sql[cache_key] = sql
        return sql

    def _on_duplicate(self, columns: Sequence[str]) -> str:
        q = self.client.quote
        updates = [c for c in columns if c not in (self._key, self._version)]
        guarded = self._version in columns
        if guarded:
            updates.append(self._version)  # last: the guard must read the old version
            v = q(self._version)
            guard = self._guard(f"VALUES({v})", v)
            sets = [f"{q(c)} = IF({guard}, VALUES({q(c)}), {q(c)})" for c in updates]
        else:
            sets = [f"{q(c)} = VALUES({q(c)})" for c in updates]
        return " ON DUPLICATE KEY UPDATE " + ", ".join(sets)

    def _delete_sql(self, *, guarded: bool) -> str:
        cache_key = ("delete", ("guarded",) if guarded else ())
        sql = self._sql.get(cache_key)
        if sql is None:
            q, ph = self.client.quote, self.client.placeholder
            sql = f"DELETE FROM {self._ref} WHERE {q(self._key)} = {ph}"
            if guarded:
                v = q(self._version)
                sql += f" AND ({v} IS NULL OR {v} <= {ph})"
            self._sql[cache_key] = sql
        return sql


def _binary_copy_types(state: TableState, columns: Sequence[str]) -> list[str] | None:
    """The binary COPY types of ``columns``, or ``None`` where binary COPY is not safe.

    Binary values must match the column's type exactly; the converters produce the field's
    kind. So binary is used only on PostgreSQL and only when every field's kind is its
    column's kind (not, say, a date field kept in a timestamp column after a narrowing).
    """
    if state.schema.fields and not all(
        state.columns[state.field_columns[f.name]].kind is f.kind
        for f in state.schema
        if f.name in state.field_columns
    ):
        return None
    types = []
    for column in columns:
        spec = state.columns[column]
        if spec.kind is FieldKind.STRING:
            types.append("varchar" if spec.length else "text")
        else:
            types.append(PG_TYPES[spec.kind])
    return types


def _as_is(text: object) -> str:
    return str(text)
