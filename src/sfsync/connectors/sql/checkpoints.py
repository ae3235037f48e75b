"""The checkpoint row of a sync, kept in the target database next to the data.

Table ``_sfsync_checkpoints(sync_id primary key, checkpoint text, updated_at)`` (created by
:func:`~sfsync.connectors.sql.ddl.create_bookkeeping_tables`). :func:`store` writes inside the
caller's open transaction, so the commit that makes a batch durable makes its checkpoint
durable too, or neither. The text is :meth:`Checkpoint.to_json`; nothing here looks inside it.
"""

from __future__ import annotations

from datetime import datetime

from sfsync.connectors.sql.client import SqlClient
from sfsync.connectors.sql.ddl import CHECKPOINTS_TABLE
from sfsync.connectors.sql.types import sqlite_datetime_text
from sfsync.core.checkpoint import Checkpoint
from sfsync.core.errors import FatalError


def store(client: SqlClient, sync_id: str, checkpoint: Checkpoint, now: datetime) -> None:
    """Insert or replace ``sync_id``'s checkpoint, in the open transaction (blocking)."""
    ph, ref = client.placeholder, client.table_ref(CHECKPOINTS_TABLE)
    stamp: object = now
    if client.dialect == "mysql":
        stamp = now.replace(tzinfo=None)  # DATETIME holds UTC without a zone
    elif client.dialect == "sqlite":
        stamp = sqlite_datetime_text(now)
    insert = f"INSERT INTO {ref} (sync_id, checkpoint, updated_at) VALUES ({ph}, {ph}, {ph})"
    if client.dialect == "mysql":
        sql = (
            f"{insert} ON DUPLICATE KEY UPDATE checkpoint = VALUES(checkpoint), "
            "updated_at = VALUES(updated_at)"
        )
    else:
        sql = (
            f"{insert} ON CONFLICT (sync_id) DO UPDATE SET checkpoint = excluded.checkpoint, "
            "updated_at = excluded.updated_at"
        )
    client.conn.exec_driver_sql(sql, (sync_id, checkpoint.to_json(), stamp))


def load(client: SqlClient, sync_id: str) -> Checkpoint | None:
    """``sync_id``'s stored checkpoint, or ``None`` (blocking).

    Raises:
        FatalError: the stored text is not a checkpoint (the hint says how to start over).
    """
    row = client.conn.exec_driver_sql(
        f"SELECT checkpoint FROM {client.table_ref(CHECKPOINTS_TABLE)} "
        f"WHERE sync_id = {client.placeholder}",
        (sync_id,),
    ).first()
    if row is None:
        return None
    try:
        return Checkpoint.from_json(str(row[0]))
    except ValueError as exc:
        raise FatalError(
            f"the checkpoint of sync {sync_id!r} in {CHECKPOINTS_TABLE} is unreadable",
            hint=f"delete its row from {CHECKPOINTS_TABLE} to resync from the start",
        ) from exc


def forget(client: SqlClient, sync_id: str) -> None:
    """Delete ``sync_id``'s checkpoint in the open transaction (blocking): the next run of the
    sync starts with a full snapshot."""
    client.conn.exec_driver_sql(
        f"DELETE FROM {client.table_ref(CHECKPOINTS_TABLE)} WHERE sync_id = {client.placeholder}",
        (sync_id,),
    )
