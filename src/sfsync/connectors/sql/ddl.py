"""Creating and evolving target tables from entity schemas, without ever losing data.

The sink remembers, per table, the schema it last prepared and which column holds which field,
in a bookkeeping table ``_sfsync_tables`` in the target database (JSON text, next to the data,
so the memory and the table cannot disagree after a crash). :func:`prepare_table` compares a
new :class:`~sfsync.core.schema.EntitySchema` with that memory and acts:

* no table: create it (primary key = ``schema.key``; every other column nullable, because a
  partial event may insert a row with only some fields and a retired field is never written);
* a new field: ``ALTER TABLE ... ADD COLUMN`` and carry on;
* a field gone from the source: keep its column and its values; it is simply not written any
  more (a notice says so);
* a widening change (:func:`~sfsync.core.schema.is_widening`): alter the column type in place
  (nothing to do on SQLite, whose columns take any value);
* an incompatible change: quarantine the field: the old column keeps the old values and the new
  values go to a new column ``<field>__<newkind>``; a notice names both and what to do.

Drift never raises: it returns notices (human-readable strings) for the operator.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa

from sfsync.connectors.sql.client import SqlClient
from sfsync.connectors.sql.types import column_type, type_label
from sfsync.core.errors import FatalError
from sfsync.core.schema import EntitySchema, FieldKind, FieldSpec, diff_schemas, is_widening

TABLES_TABLE = "_sfsync_tables"
CHECKPOINTS_TABLE = "_sfsync_checkpoints"
SYNCED_AT = "_sfsync_synced_at"
DELETED = "_sfsync_deleted"
VERSION = "_sfsync_version"

_BOOKKEEPING = {
    SYNCED_AT: FieldSpec(name=SYNCED_AT, kind=FieldKind.DATETIME),
    DELETED: FieldSpec(name=DELETED, kind=FieldKind.BOOLEAN),
    VERSION: FieldSpec(name=VERSION, kind=FieldKind.STRING, length=64),
}


@dataclass
class TableState:
    """What the sink knows about one target table.

    Attributes:
        table: the table name.
        schema: the entity schema last prepared.
        columns: every column the sink made (bookkeeping and retired ones included), with the
            spec its type was made from.
        field_columns: for each field of ``schema``, the column its values go to (its own
            name, or ``<field>__<kind>`` while quarantined).
        soft_delete: deletes set ``_sfsync_deleted`` instead of removing the row.
        server_defaults: the bookkeeping columns fill themselves (PostgreSQL): a row loaded
            without them (a CSV page COPYed as it is) gets ``_sfsync_synced_at`` = the
            statement's time and ``_sfsync_deleted`` = false. Not stored: checked at prepare.
    """

    table: str
    schema: EntitySchema
    columns: dict[str, FieldSpec] = field(default_factory=dict)
    field_columns: dict[str, str] = field(default_factory=dict)
    soft_delete: bool = False
    server_defaults: bool = False

    @property
    def key_column(self) -> str:
        return self.field_columns[self.schema.key]

    @property
    def version_column(self) -> str:
        """The column compared to refuse stale events."""
        vf = self.schema.version_field
        return self.field_columns[vf] if vf is not None else VERSION

    def to_json(self) -> str:
        return json.dumps(
            {
                "entity": self.schema.name,
                "key": self.schema.key,
                "version_field": self.schema.version_field,
                "deleted_field": self.schema.deleted_field,
                "fields": [_spec_to_dict(f) for f in self.schema],
                "columns": {name: _spec_to_dict(spec) for name, spec in self.columns.items()},
                "field_columns": self.field_columns,
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, table: str, text: str, *, soft_delete: bool) -> TableState:
        data = json.loads(text)
        schema = EntitySchema.of(
            data["entity"],
            data["key"],
            [_spec_from_dict(f) for f in data["fields"]],
            version_field=data["version_field"],
            deleted_field=data["deleted_field"],
        )
        return cls(
            table=table,
            schema=schema,
            columns={name: _spec_from_dict(s) for name, s in data["columns"].items()},
            field_columns=dict(data["field_columns"]),
            soft_delete=soft_delete,
        )


def _spec_to_dict(spec: FieldSpec) -> dict[str, object]:
    return {
        "name": spec.name,
        "kind": spec.kind.value,
        "length": spec.length,
        "precision": spec.precision,
        "scale": spec.scale,
        "nullable": spec.nullable,
        "source_type": spec.source_type,
        "label": spec.label,
    }


def _spec_from_dict(data: dict[str, object]) -> FieldSpec:
    return FieldSpec(
        name=str(data["name"]),
        kind=FieldKind(data["kind"]),
        length=int(str(data["length"])),
        precision=int(str(data["precision"])),
        scale=int(str(data["scale"])),
        nullable=bool(data["nullable"]),
        source_type=str(data["source_type"]),
        label=str(data["label"]),
    )


# --- bookkeeping tables -------------------------------------------------------------------


def create_bookkeeping_tables(client: SqlClient) -> None:
    """Create the schema (PostgreSQL), ``_sfsync_tables`` and ``_sfsync_checkpoints`` if missing."""
    conn = client.conn
    if client.schema is not None:
        exists = conn.exec_driver_sql(
            "SELECT 1 FROM pg_namespace WHERE nspname = %s", (client.schema,)
        ).first()
        if exists is None:
            conn.exec_driver_sql(f"CREATE SCHEMA {client.quote(client.schema)}")
    stamp = {"postgresql": "timestamptz", "mysql": "DATETIME(6)", "sqlite": "TEXT"}[client.dialect]
    suffix = " CHARACTER SET utf8mb4 COLLATE utf8mb4_bin" if client.dialect == "mysql" else ""
    for table, first, second in (
        (TABLES_TABLE, "table_name", "state"),
        (CHECKPOINTS_TABLE, "sync_id", "checkpoint"),
    ):
        conn.exec_driver_sql(
            f"CREATE TABLE IF NOT EXISTS {client.table_ref(table)} ("
            f"{first} VARCHAR(255) NOT NULL PRIMARY KEY, "
            f"{second} {'LONGTEXT' if client.dialect == 'mysql' else 'TEXT'} NOT NULL, "
            f"updated_at {stamp} NOT NULL){suffix}"
        )


def _load_state(client: SqlClient, table: str, *, soft_delete: bool) -> TableState | None:
    row = client.conn.exec_driver_sql(
        f"SELECT state FROM {client.table_ref(TABLES_TABLE)} "
        f"WHERE table_name = {client.placeholder}",
        (table,),
    ).first()
    if row is None:
        return None
    return TableState.from_json(table, str(row[0]), soft_delete=soft_delete)


def _save_state(client: SqlClient, state: TableState, now: datetime) -> None:
    ph = client.placeholder
    ref = client.table_ref(TABLES_TABLE)
    stamp: object = now.isoformat() if client.dialect == "sqlite" else now
    if client.dialect == "mysql":
        stamp = now.replace(tzinfo=None)
    params = (state.table, state.to_json(), stamp)
    if client.dialect == "mysql":
        sql = (
            f"INSERT INTO {ref} (table_name, state, updated_at) VALUES ({ph}, {ph}, {ph}) "
            "ON DUPLICATE KEY UPDATE state = VALUES(state), updated_at = VALUES(updated_at)"
        )
    else:
        sql = (
            f"INSERT INTO {ref} (table_name, state, updated_at) VALUES ({ph}, {ph}, {ph}) "
            "ON CONFLICT (table_name) DO UPDATE SET state = excluded.state, "
            "updated_at = excluded.updated_at"
        )
    client.conn.exec_driver_sql(sql, params)


# --- preparing a table --------------------------------------------------------------------


def prepare_table(
    client: SqlClient, schema: EntitySchema, table: str, *, soft_delete: bool, now: datetime
) -> tuple[TableState, list[str]]:
    """Create or evolve ``table`` for ``schema`` (blocking); returns its state and notices.

    Raises:
        FatalError: the key field changed (the table cannot be keyed two ways).
    """
    state = _load_state(client, table, soft_delete=soft_delete)
    notices: list[str] = []
    if state is None:
        existing = _existing_columns(client, table)
        state = TableState(table=table, schema=schema, soft_delete=soft_delete)
        if existing is None:
            _create(client, state, schema)
        else:
            # A table the sink did not record (made by hand, or its memory was lost): adopt the
            # columns that are there by name and add the missing ones.
            state.columns = {
                name: schema.fields.get(name, _BOOKKEEPING.get(name, _unknown(name)))
                for name in existing
            }
            for spec in schema:
                if spec.name not in existing:
                    _add_column(client, state, spec.name, spec)
                state.field_columns[spec.name] = spec.name
            notices.append(
                f"{schema.name}: adopted the existing table {table!r}; its column types were "
                "not checked against the source schema"
            )
    else:
        if state.schema.key != schema.key:
            raise FatalError(
                f"{schema.name}: the key field changed from {state.schema.key!r} to "
                f"{schema.key!r}; table {table!r} cannot be keyed both ways",
                hint=f"sync into a new table (set its name) or drop {table!r} to resync",
            )
        notices = _evolve(client, state, schema)
    state.soft_delete = soft_delete
    _ensure_bookkeeping(client, state)
    _save_state(client, state, now)
    return state, notices


def _unknown(name: str) -> FieldSpec:
    return FieldSpec(name=name, kind=FieldKind.TEXT)


def _existing_columns(client: SqlClient, table: str) -> list[str] | None:
    inspector = sa.inspect(client.conn)
    if not inspector.has_table(table, schema=client.schema):
        return None
    return [str(c["name"]) for c in inspector.get_columns(table, schema=client.schema)]


def _create(client: SqlClient, state: TableState, schema: EntitySchema) -> None:
    columns = {spec.name: spec for spec in schema}
    columns[SYNCED_AT] = _BOOKKEEPING[SYNCED_AT]
    if schema.version_field is None:
        columns[VERSION] = _BOOKKEEPING[VERSION]
    if state.soft_delete:
        columns[DELETED] = _BOOKKEEPING[DELETED]
    sa_table = sa.Table(
        state.table,
        sa.MetaData(schema=client.schema),
        *(
            sa.Column(
                name,
                column_type(spec, client.dialect),
                primary_key=name == schema.key,
                nullable=name != schema.key,
                quote=True,
            )
            for name, spec in columns.items()
        ),
        quote=True,
        mysql_engine="InnoDB",
        mysql_charset="utf8mb4",
        # Binary collation: Salesforce Ids (and most keys) are case-sensitive.
        mysql_collate="utf8mb4_bin",
    )
    sa_table.create(client.conn)
    state.columns = columns
    state.field_columns = {spec.name: spec.name for spec in schema}


def _ensure_bookkeeping(client: SqlClient, state: TableState) -> None:
    wanted = [SYNCED_AT]
    if state.schema.version_field is None:
        wanted.append(VERSION)
    if state.soft_delete:
        wanted.append(DELETED)
    for name in wanted:
        if name not in state.columns:
            _add_column(client, state, name, _BOOKKEEPING[name])
    if client.dialect == "postgresql":
        _ensure_server_defaults(client, state)


_SERVER_DEFAULTS = {SYNCED_AT: "statement_timestamp()", DELETED: "false"}


def _ensure_server_defaults(client: SqlClient, state: TableState) -> None:
    """Give the bookkeeping columns their defaults (see ``TableState.server_defaults``).

    The catalog is read first: ``ALTER TABLE`` waits for every reader of the table, so it is
    only run on a table that lacks a default (made by an earlier version, or by hand).
    """
    wanted = {name: sql for name, sql in _SERVER_DEFAULTS.items() if name in state.columns}
    ref = client.table_ref(state.table)
    rows = client.conn.exec_driver_sql(
        "SELECT a.attname FROM pg_attribute a JOIN pg_attrdef d "
        "ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
        "WHERE a.attrelid = to_regclass(%s) AND a.attname = ANY(%s)",
        (ref, list(wanted)),
    )
    present = {str(name) for (name,) in rows}
    for name, sql in wanted.items():
        if name not in present:
            client.conn.exec_driver_sql(
                f"ALTER TABLE {ref} ALTER COLUMN {client.quote(name)} SET DEFAULT {sql}"
            )
    state.server_defaults = True


def _ddl_type(client: SqlClient, spec: FieldSpec) -> str:
    return str(column_type(spec, client.dialect).compile(dialect=client.conn.dialect))


def _add_column(client: SqlClient, state: TableState, column: str, spec: FieldSpec) -> None:
    client.conn.exec_driver_sql(
        f"ALTER TABLE {client.table_ref(state.table)} "
        f"ADD COLUMN {client.quote(column)} {_ddl_type(client, spec)}"
    )
    state.columns[column] = spec


def _widen(client: SqlClient, state: TableState, column: str, spec: FieldSpec) -> bool:
    """Alter ``column`` to ``spec``'s type; False if the DDL type did not change."""
    old = state.columns[column]
    new_type = _ddl_type(client, spec)
    state.columns[column] = spec
    if _ddl_type(client, old) == new_type:
        return False
    if client.dialect != "sqlite":  # SQLite columns take any value: nothing to alter
        ref, col = client.table_ref(state.table), client.quote(column)
        if client.dialect == "postgresql":
            sql = f"ALTER TABLE {ref} ALTER COLUMN {col} TYPE {new_type} USING {col}::{new_type}"
        else:
            not_null = " NOT NULL" if column == state.key_column else ""
            sql = f"ALTER TABLE {ref} MODIFY COLUMN {col} {new_type}{not_null}"
        client.conn.exec_driver_sql(sql)
    return True


def _place(client: SqlClient, state: TableState, spec: FieldSpec) -> tuple[str, str]:
    """Choose (and make ready) the column for ``spec``: ``(column, action)``.

    The field's own column is used when it already holds every value of the new type
    (``"kept"``: a shorter string, date into datetime) or can be widened to (``"widened"``);
    else a ``<field>__<kind>`` column that can, else that column is created
    (``"quarantined"``). A field without any column gets its own (``"added"``).
    """
    quarantine = f"{spec.name}__{spec.kind.value}"
    for column in (spec.name, quarantine):
        current = state.columns.get(column)
        if current is None:
            continue
        if is_widening(spec, current):
            return column, "kept" if column == spec.name else "quarantined"
        if is_widening(current, spec):
            altered = _widen(client, state, column, spec)
            if column != spec.name:
                return column, "quarantined"
            return column, "widened" if altered else "kept"
    if spec.name not in state.columns:
        _add_column(client, state, spec.name, spec)
        return spec.name, "added"
    if quarantine in state.columns:
        # Neither column can take the new type (a second incompatible change): stop syncing
        # the field, loudly, rather than guess.
        raise _UnplaceableError(quarantine)
    _add_column(client, state, quarantine, spec)
    return quarantine, "quarantined"


class _UnplaceableError(Exception):
    pass


def _evolve(client: SqlClient, state: TableState, schema: EntitySchema) -> list[str]:
    notices: list[str] = []
    change = diff_schemas(state.schema, schema)
    entity = schema.name
    for spec in change.removed:
        column = state.field_columns.pop(spec.name, spec.name)
        notices.append(
            f"{entity}.{spec.name} is no longer in the source (deleted, or hidden from the "
            f"integration user): column {column!r} keeps the values synced so far and is no "
            "longer written; drop it by hand if it is not needed"
        )
    changed = [(None, spec) for spec in change.added] + list(change.retyped)
    for old, spec in changed:
        previous = state.field_columns.get(spec.name)
        try:
            column, action = _place(client, state, spec)
        except _UnplaceableError as exc:
            state.field_columns.pop(spec.name, None)
            notices.append(
                f"{entity}.{spec.name} changed to {type_label(spec)}, which neither column "
                f"{spec.name!r} nor {exc.args[0]!r} can hold: the field is not synced any more; "
                f"rename or drop {exc.args[0]!r} and restart to sync it again"
            )
            continue
        state.field_columns[spec.name] = column
        if action == "quarantined" and previous != column:
            was = type_label(old) if old is not None else type_label(state.columns[spec.name])
            notices.append(
                f"{entity}.{spec.name} changed type from {was} to {type_label(spec)}, which "
                f"column {spec.name!r} cannot hold: new values go to column {column!r}; "
                f"{spec.name!r} keeps the values synced before. To merge them, convert and copy "
                f"{spec.name!r} into {column!r} yourself, or drop the table to resync it"
            )
        elif action == "widened":
            was = type_label(old) if old is not None else "its old type"
            notices.append(
                f"{entity}.{spec.name} widened from {was} to {type_label(spec)}; "
                f"column {column!r} was altered in place"
            )
        elif action == "added":
            notices.append(f"{entity}.{spec.name} is new: added column {column!r}")
    state.schema = schema
    return notices
