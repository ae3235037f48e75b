"""The plugin API: what a connector implements and what the engine gives it.

Connector authors import from here and from :mod:`sfsync.core`, nothing else of sfsync.
"""

from sfsync.spi.clock import Clock, SystemClock
from sfsync.spi.registry import Registry, UnknownConnectorError
from sfsync.spi.sink import Outcome, OutcomeKind, Sink, SinkCapabilities, SinkContext
from sfsync.spi.source import Source, SourceCapabilities, SourceContext
from sfsync.spi.spec import ConnectorRequest, ConnectorSpec, EntitySelection

__all__ = [
    "Clock",
    "ConnectorRequest",
    "ConnectorSpec",
    "EntitySelection",
    "Outcome",
    "OutcomeKind",
    "Registry",
    "Sink",
    "SinkCapabilities",
    "SinkContext",
    "Source",
    "SourceCapabilities",
    "SourceContext",
    "SystemClock",
    "UnknownConnectorError",
]
