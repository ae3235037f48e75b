"""Which status each outcome writes on the change log row its event came from (pure).

==========  ==================  ==========================================
outcome     ``sync_status``     ``sync_error`` / ``target_key``
==========  ==================  ==========================================
APPLIED     ``applied``         the key the target gave the record, if any
STALE       ``stale``           (the target held newer data; nothing lost)
REJECTED    ``rejected``        the error, with its code and fix
CONFLICT    ``conflict``        why it was parked for review
RETRY       (left ``pending``)  not final: written by a later call
==========  ==================  ==========================================
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from sfsync.connectors.sql.capture.log import Outcome as LogOutcome
from sfsync.connectors.sql.capture.log import seq_of
from sfsync.core.errors import SyncError
from sfsync.core.events import ChangeEvent
from sfsync.spi.sink import Outcome, OutcomeKind

_STATUS = {
    OutcomeKind.APPLIED: "applied",
    OutcomeKind.STALE: "stale",
    OutcomeKind.REJECTED: "rejected",
    OutcomeKind.CONFLICT: "conflict",
}


def log_outcomes(
    events: Sequence[ChangeEvent],
    outcomes: Sequence[Outcome | SyncError],
    *,
    log_streams: Collection[str],
) -> list[LogOutcome]:
    """The change log updates for ``outcomes`` of ``events`` read from ``log_streams``.

    An error in place of an outcome (a write the runtime gave up retrying) is not final and
    is skipped, like RETRY. When one change appears more than once (a retried batch), its
    last outcome wins.
    """
    marks: dict[int, LogOutcome] = {}
    for event, outcome in zip(events, outcomes, strict=True):
        if not isinstance(outcome, Outcome):
            continue
        status = _STATUS.get(outcome.kind)
        if status is None or event.position.stream not in log_streams:
            continue
        seq = seq_of(event.position.token)
        error = None if outcome.error is None else str(outcome.error)
        marks.pop(seq, None)
        marks[seq] = LogOutcome(seq, status, error, outcome.target_key)
    return list(marks.values())
