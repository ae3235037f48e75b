"""The Salesforce connector: REST, Bulk API 2.0 and Change Data Capture, against a real org or
the emulator.

Its connection section is
:class:`~sfsync.connectors.salesforce.config.SalesforceConnection`; :data:`SPEC` registers it
(entry point ``sfsync.connectors: salesforce``).
"""

from __future__ import annotations

from typing import Any

from sfsync.connectors.salesforce.config import SalesforceConnection
from sfsync.spi.sink import Sink
from sfsync.spi.source import Source
from sfsync.spi.spec import ConnectorRequest, ConnectorSpec


def _source(conn: Any, request: ConnectorRequest) -> Source:
    from sfsync.connectors.salesforce.factory import build_source

    return build_source(conn, request)


def _sink(conn: Any, request: ConnectorRequest) -> Sink:
    from sfsync.connectors.salesforce.factory import build_sink

    return build_sink(conn, request)


SPEC = ConnectorSpec(
    name="salesforce",
    summary="Salesforce orgs (and the local emulator): REST snapshot and incremental polling",
    config=SalesforceConnection,
    source=_source,
    sink=_sink,
)
