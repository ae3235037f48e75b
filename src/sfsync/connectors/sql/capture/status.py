"""What ``sfsync db capture-status`` shows: per captured table, whether its triggers are the
ones ``install-capture`` would create now, and how many changes have each write-back status,
with the last rejection's reason (blocking)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa

from sfsync.connectors.sql.capture import install
from sfsync.connectors.sql.capture.install import CaptureObject, schema_of
from sfsync.connectors.sql.capture.statements import CHANGES_TABLE, qualified
from sfsync.connectors.sql.client import ConnectionSettings, dialect_of


@dataclass(frozen=True, slots=True)
class TableStatus:
    """Capture on one table.

    Attributes:
        table: the table.
        triggers: ``installed``, ``outdated`` (installed for another key column or other
            columns: run ``install-capture`` again) or ``missing``.
        counts: changes in the log by ``sync_status``.
        last_error: the reason of the latest rejected change, if any.
    """

    table: str
    triggers: str
    counts: Mapping[str, int] = field(default_factory=dict)
    last_error: str | None = None


def capture_status(
    conn: sa.Connection, settings: ConnectionSettings, objects: Sequence[CaptureObject]
) -> tuple[bool, list[TableStatus]]:
    """Whether the change log exists, and the status of each table ``objects`` read.

    Raises:
        ConfigError: a table or key column is missing.
    """
    tables = install.captured_tables(conn, settings, objects)
    has_log = install.log_exists(conn, settings)
    triggered = {t for t, _ in install.installed_triggers(conn, settings)}
    outdated = set(install.outdated_tables(conn, settings, tables))
    counts: dict[str, dict[str, int]] = {}
    errors: dict[str, str] = {}
    if has_log:
        log = qualified(dialect_of(settings), schema_of(settings), CHANGES_TABLE)
        try:
            for table, status, count in conn.execute(
                sa.text(
                    f"SELECT table_name, sync_status, COUNT(*) FROM {log} "
                    "GROUP BY table_name, sync_status"
                )
            ):
                counts.setdefault(str(table), {})[str(status)] = int(count)
            for t in tables:
                error = conn.execute(
                    sa.text(
                        f"SELECT sync_error FROM {log} WHERE table_name = :t "
                        "AND sync_status = 'rejected' ORDER BY seq DESC LIMIT 1"
                    ),
                    {"t": t.table},
                ).scalar()
                if error is not None:
                    errors[t.table] = str(error)
        finally:
            conn.rollback()
    statuses = [
        TableStatus(
            table=t.table,
            triggers="missing"
            if t.table not in triggered
            else ("outdated" if t.table in outdated else "installed"),
            counts=counts.get(t.table, {}),
            last_error=errors.get(t.table),
        )
        for t in tables
    ]
    return has_log, statuses
