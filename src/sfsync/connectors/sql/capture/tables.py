"""Configured objects resolved against their live tables, and the names of their streams."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from sfsync.connectors.sql.capture import install
from sfsync.connectors.sql.capture.install import CaptureObject, schema_of
from sfsync.connectors.sql.capture.values import RowNormaliser, field_spec
from sfsync.connectors.sql.client import ConnectionSettings
from sfsync.core.errors import ConfigError
from sfsync.core.schema import EntitySchema


def log_stream(table: str) -> str:
    """The stream of ``table``'s changes read from the change log."""
    return f"sqllog:{table}"


def poll_stream(table: str) -> str:
    """The stream of ``table``'s changes read by its ``updated_at`` column."""
    return f"sqlpoll:{table}"


@dataclass(frozen=True, slots=True)
class ResolvedTable:
    """One configured object, resolved against its table.

    Attributes:
        obj: the configured object.
        key_column: the column holding the key.
        columns: the carried columns, key first.
        field_names: for each carried column, the field it becomes (see :func:`field_names`).
        schema: the carried columns as the entity's fields, under their field names.
        normalise: brings a row's carried columns to their one form, dropping the others.
        updated_at_tz: the ``updated_at`` column holds zone-aware timestamps.
    """

    obj: CaptureObject
    key_column: str
    columns: tuple[str, ...]
    field_names: Mapping[str, str]
    schema: EntitySchema
    normalise: RowNormaliser
    updated_at_tz: bool = False


def resolve_tables(
    conn: sa.Connection, settings: ConnectionSettings, objects: Sequence[CaptureObject]
) -> list[ResolvedTable]:
    """Each object with its key column, carried columns and fields (blocking).

    Raises:
        ConfigError: a table, key column, named field or ``updated_at`` column is missing.
    """
    resolved = []
    for obj in objects:
        columns = install.reflect_columns(conn, obj.table, schema_of(settings))
        names = [c["name"] for c in columns]
        key = install.key_column(obj, names, settings.capture_key_columns)
        carried = carried_columns(obj, names, key)
        renamed = field_names(obj, carried, key, settings.capture_columns.get(obj.table))
        by_name = {c["name"]: c for c in columns}
        specs = [
            field_spec(
                renamed[n], by_name[n]["type"], nullable=bool(by_name[n].get("nullable", True))
            )
            for n in carried
        ]
        tz = False
        if settings.capture == "updated_at":
            column = settings.updated_at_column
            if column not in by_name:
                raise ConfigError(
                    f"table {obj.table!r} has no column {column!r} to poll (capture: updated_at)",
                    hint="set updated_at_column in the connection section, or use "
                    "capture: triggers",
                )
            tz = bool(getattr(by_name[column]["type"], "timezone", False))
        resolved.append(
            ResolvedTable(
                obj=obj,
                key_column=key,
                columns=tuple(carried),
                field_names=renamed,
                schema=EntitySchema.of(obj.entity, obj.key, specs),
                normalise=RowNormaliser(
                    {n: s.kind for n, s in zip(carried, specs, strict=True)}, renamed
                ),
                updated_at_tz=tz,
            )
        )
    conn.rollback()
    return resolved


def field_names(
    obj: CaptureObject,
    carried: Sequence[str],
    key: str,
    renames: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The field each carried column becomes: the key column is named after the object's
    ``key`` field (``ext_id__c`` -> ``Ext_Id__c``); a column in ``renames`` (the connection's
    ``capture_columns`` for the table) takes the field given there (``account_ref`` ->
    ``Account.Ext_Id__c``, a parent reference); a column named in ``fields`` takes the
    spelling written there (``amount__c`` -> ``Amount__c``); any other keeps its SQL name.

    Raises:
        ConfigError: ``renames`` names a column that is not carried, or the key column; two
            columns would become the same field.
    """
    renames = renames or {}
    unknown = sorted(c for c in renames if c not in carried or c == key)
    if unknown:
        raise ConfigError(
            f"capture_columns for table {obj.table!r} renames {', '.join(unknown)}, which "
            "is not a carried column other than the key",
            hint=f"carried columns: {', '.join(c for c in carried if c != key)}; the key "
            "column is always named after the object's `key`",
        )
    spelled = {f.lower(): f for f in obj.fields or ()}
    names = {
        c: obj.key if c == key else renames.get(c) or spelled.get(c.lower(), c) for c in carried
    }
    seen: dict[str, str] = {}
    for column, name in names.items():
        if name in seen:
            raise ConfigError(
                f"table {obj.table!r}: columns {seen[name]!r} and {column!r} would both "
                f"become field {name!r}",
                hint="leave one of them out with exclude_fields",
            )
        seen[name] = column
    return names


def carried_columns(obj: CaptureObject, names: Sequence[str], key: str) -> list[str]:
    """The columns ``obj`` carries: its ``fields`` (all when ``None``) less ``exclude``,
    matched without regard to case, the key column always first; sfsync's own bookkeeping
    columns (``_sfsync_*``) never.

    Raises:
        ConfigError: ``fields`` or ``exclude`` names a column the table does not have.
    """
    wanted = None if obj.fields is None else {f.lower() for f in obj.fields}
    excluded = {f.lower() for f in obj.exclude}
    lowered = {n.lower() for n in names}
    unknown = sorted(f for f in (wanted or set()) | excluded if f not in lowered)
    if unknown:
        raise ConfigError(
            f"table {obj.table!r} (object {obj.entity}) has no column(s) {', '.join(unknown)}",
            hint=f"its columns: {', '.join(names)}",
        )
    kept = [
        n
        for n in names
        if n != key
        and not n.startswith("_sfsync_")
        and (wanted is None or n.lower() in wanted)
        and n.lower() not in excluded
    ]
    return [key, *kept]
