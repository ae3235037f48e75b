"""How a connector declares itself to the engine."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel

from sfsync.spi.clock import Clock
from sfsync.spi.sink import Sink
from sfsync.spi.source import Source


@dataclass(frozen=True, slots=True, kw_only=True)
class EntitySelection:
    """One entity of a sync, as the configuration selects it.

    Attributes:
        name: the entity in the source (``"Account"``).
        fields: fields to sync, or ``None`` for all the source can read.
        exclude: fields to leave out.
        where: a row filter in the source's own condition language (SOQL for Salesforce).
        target: the entity's name on the side that is not Salesforce (the SQL table), whichever
            way the sync runs: the table a sink writes, or the table a SQL source reads when the
            sync writes into Salesforce (then ``name`` is the Salesforce object the rows become).
            ``None`` for the connector's default.
        deletes: how the target applies deletes.
        key: the field that identifies records across both sides.
    """

    name: str
    fields: tuple[str, ...] | None = None
    exclude: tuple[str, ...] = ()
    where: str | None = None
    target: str | None = None
    deletes: Literal["hard", "soft", "ignore"] = "hard"
    key: str = "Id"


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectorRequest:
    """What a source or sink factory gets besides its connection section.

    Attributes:
        sync_name: the sync being built.
        entities: what the sync moves, in order.
        clock: the engine's clock.
        options: connector-specific extras from the sync (documented by each connector).
    """

    sync_name: str
    entities: tuple[EntitySelection, ...]
    clock: Clock
    options: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectorSpec:
    """A connector's name, its configuration model and its factories.

    Attributes:
        name: the ``type`` users write in a connection section (``salesforce``, ``postgres``).
        summary: one line for ``sfsync connectors`` and the docs.
        config: the pydantic model that validates a connection section of this type.
        source: builds a :class:`Source` from a validated connection section and a
            :class:`ConnectorRequest`, or ``None`` if this connector cannot be read from.
        sink: the same for a :class:`Sink`, or ``None`` if it cannot be written to.

    Factories should import heavy dependencies inside themselves, so that listing and
    validating connectors stays cheap.
    """

    name: str
    summary: str
    config: type[BaseModel]
    source: Callable[[Any, ConnectorRequest], Source] | None = None
    sink: Callable[[Any, ConnectorRequest], Sink] | None = None

    @property
    def roles(self) -> tuple[str, ...]:
        """``("source", "sink")``, or the subset this connector implements."""
        return tuple(
            role for role, factory in (("source", self.source), ("sink", self.sink)) if factory
        )
