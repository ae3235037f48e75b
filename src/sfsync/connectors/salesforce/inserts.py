"""The sink's memory of inserts without an external id: what it created, and what it may have.

An insert keyed by ``Id`` cannot be made idempotent by the API. :class:`InsertLedger` keeps,
per ``(object, source key)``:

* the Id of every record the sink created, so that a later change of the same source row
  (before the new Id is written back to the source) or a replay of the insert updates that
  record instead of inserting again (the last :data:`LEDGER_SIZE`);
* the inserts whose call failed without an answer (:attr:`~.results.RowResult.call_failed`
  with a transient error): the insert may have landed. :meth:`InsertLedger.settle` looks for
  those records (:func:`~.landed.find_landed`) before they are sent again.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sfsync.connectors.salesforce.client import SalesforceClient
from sfsync.connectors.salesforce.landed import find_landed
from sfsync.connectors.salesforce.results import RowResult
from sfsync.connectors.salesforce.writeplan import RowWrite, WriteKind
from sfsync.core.errors import RetryableError

log = logging.getLogger("sfsync.salesforce.sink")

LEDGER_SIZE = 200_000
"""Created Ids remembered per sink (oldest forgotten first)."""

CLOCK_SKEW = timedelta(minutes=5)
"""How much earlier than our clock's attempt time the org may have stamped CreatedDate."""


@dataclass(frozen=True, slots=True)
class _Uncertain:
    since: datetime
    values: Mapping[str, object]


class InsertLedger:
    """Created Ids and unanswered inserts of one sink (see the module docstring)."""

    def __init__(self) -> None:
        self._created: OrderedDict[tuple[str, str], str] = OrderedDict()
        self._uncertain: dict[tuple[str, str], _Uncertain] = {}

    def remember(self, row: RowWrite, answer: RowResult, started: datetime) -> None:
        """Record the outcome of an insert attempt begun at ``started``."""
        if row.kind is not WriteKind.INSERT:
            return
        ident = (row.sobject, row.source_key)
        if answer.ok and answer.record_id:
            self._uncertain.pop(ident, None)
            self._adopt(ident, answer.record_id)
        elif answer.call_failed and isinstance(answer.error, RetryableError):
            previous = self._uncertain.get(ident)
            since = previous.since if previous is not None else started
            self._uncertain[ident] = _Uncertain(since, dict(row.values))

    def _adopt(self, ident: tuple[str, str], record_id: str) -> None:
        self._created[ident] = record_id
        self._created.move_to_end(ident)
        while len(self._created) > LEDGER_SIZE:
            self._created.popitem(last=False)

    async def settle(
        self,
        client: SalesforceClient,
        sobject: str,
        rows: list[RowWrite],
        *,
        marker: str | None,
    ) -> tuple[list[RowWrite], list[tuple[RowWrite, RowWrite]]]:
        """Split inserts into those to send and those whose record exists already (created
        by this sink, or by an earlier attempt whose answer was lost): ``(original, update)``.
        """
        fresh: list[RowWrite] = []
        known: list[tuple[RowWrite, RowWrite]] = []
        doubtful: list[RowWrite] = []
        for row in rows:
            ident = (sobject, row.source_key)
            created = self._created.get(ident)
            if created is not None:
                known.append((row, replace(row, kind=WriteKind.UPDATE, key=created)))
            elif ident in self._uncertain:
                doubtful.append(row)
            else:
                fresh.append(row)
        if not doubtful:
            return fresh, known
        attempts = {r.source_key: self._uncertain[(sobject, r.source_key)] for r in doubtful}
        found = await find_landed(
            client,
            sobject,
            {k: (a.since - CLOCK_SKEW, a.values) for k, a in attempts.items()},
            marker=marker,
        )
        for row in doubtful:
            record_id = found.get(row.source_key)
            self._uncertain.pop((sobject, row.source_key), None)
            if record_id is None:
                fresh.append(row)
                continue
            log.info("%s %s: a lost insert had landed as %s", sobject, row.source_key, record_id)
            self._adopt((sobject, row.source_key), record_id)
            known.append((row, replace(row, kind=WriteKind.UPDATE, key=record_id)))
        return fresh, known
