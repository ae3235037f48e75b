"""How a connector declares itself to the engine."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from sfsync.spi.sink import Sink
from sfsync.spi.source import Source


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectorSpec:
    """A connector's name, its configuration model and its factories.

    Attributes:
        name: the ``type`` users write in a connection section (``salesforce``, ``postgres``).
        summary: one line for ``sfsync connectors`` and the docs.
        config: the pydantic model that validates a connection section of this type.
        source: builds a :class:`Source` from a validated config, or ``None`` if this
            connector cannot be read from.
        sink: builds a :class:`Sink` from a validated config, or ``None`` if it cannot be
            written to.

    Factories should import heavy dependencies inside themselves, so that listing and
    validating connectors stays cheap.
    """

    name: str
    summary: str
    config: type[BaseModel]
    source: Callable[[Any], Source] | None = None
    sink: Callable[[Any], Sink] | None = None

    @property
    def roles(self) -> tuple[str, ...]:
        """``("source", "sink")``, or the subset this connector implements."""
        return tuple(
            role for role, factory in (("source", self.source), ("sink", self.sink)) if factory
        )
