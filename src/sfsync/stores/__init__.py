"""Durable state of syncs: checkpoints (and later key maps, shadows, dead letters, audit).

:func:`open_checkpoint_store` picks the backend from a URL: ``sqlite:///path`` (the embedded
default) or ``postgresql://...`` (production).
"""

from sfsync.stores.checkpoints import StateStores, open_checkpoint_store, open_state
from sfsync.stores.postgres import PostgresCheckpointStore
from sfsync.stores.sqlite import SqliteCheckpointStore

__all__ = [
    "PostgresCheckpointStore",
    "SqliteCheckpointStore",
    "StateStores",
    "open_checkpoint_store",
    "open_state",
]
