"""Which API writes a group of rows: sObject Collections or a Bulk API 2.0 ingest job.

The rule, per object and operation in one batch (``rows`` rows), in this order:

1. **Collections** when the Bulk API cannot do it or cannot do it safely: inserts without an
   external id (Bulk result files are not in input order and such a row has no key to match
   its result by, so a created Id could not be recorded: the duplicate check on retry needs
   it), and undeletes (no Bulk operation).
2. **Bulk** when ``rows >= bulk_threshold``: volume. A Bulk job costs about
   :data:`BULK_CALLS` API calls whatever its size (create, upload, close, polls, two result
   files, delete) and the platform applies it server-side in parallel chunks; Collections
   costs one call per ``collections_size`` rows.
3. **Bulk** when the org's API budget is under pressure and Bulk needs fewer calls: the share
   of the daily allocation in use (``Sforce-Limit-Info``, read from every response) is at
   least ``budget_pressure``, or the Collections calls would not fit in what is left.
4. **Collections** otherwise: lower latency (no job to poll), results in order.

Before any response has told the client the org's usage, rule 3 cannot apply.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from sfsync.connectors.salesforce.usage import ApiUsage

BULK_CALLS = 8
"""API calls one Bulk ingest job costs: create, upload, close, about two polls, the
successful and failed result files, delete."""


class Api(enum.Enum):
    COLLECTIONS = "collections"
    BULK = "bulk"


@dataclass(frozen=True, slots=True)
class Route:
    """The chosen API and why (logged, and shown by tests and the bench)."""

    api: Api
    reason: str


def collections_calls(rows: int, size: int = 200) -> int:
    """API calls to write ``rows`` rows over Collections, ``size`` a call."""
    return math.ceil(rows / size)


def choose_api(
    rows: int,
    *,
    bulk_capable: bool,
    usage: ApiUsage | None,
    bulk_threshold: int,
    budget_pressure: float,
    collections_size: int = 200,
) -> Route:
    """The API for ``rows`` rows of one object and operation (see the module docstring)."""
    if not bulk_capable:
        return Route(Api.COLLECTIONS, "the Bulk API cannot apply this operation safely")
    if rows >= bulk_threshold:
        return Route(Api.BULK, f"{rows} rows >= bulk_threshold {bulk_threshold}")
    calls = collections_calls(rows, collections_size)
    if usage is not None and calls > BULK_CALLS:
        if usage.fraction_used >= budget_pressure:
            return Route(
                Api.BULK,
                f"API budget {usage.used}/{usage.limit} used: {BULK_CALLS} Bulk calls "
                f"instead of {calls}",
            )
        if calls > usage.remaining:
            return Route(Api.BULK, f"{calls} Collections calls exceed the {usage.remaining} left")
    return Route(Api.COLLECTIONS, f"{rows} rows < bulk_threshold {bulk_threshold}")
