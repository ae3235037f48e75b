"""The composition root: the one place that wires configuration, connectors and stores.

Shells (the CLI, the admin server) call these functions; nothing below the shells imports
this module.
"""

from __future__ import annotations

from sfsync.spi.registry import Registry


def default_registry() -> Registry:
    """Every connector installed in this environment (the ``sfsync.connectors`` entry points)."""
    return Registry.from_entry_points()
