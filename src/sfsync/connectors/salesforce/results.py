"""One row's result from either write path, and its error classified for the engine.

Collections answer ``{"success": false, "errors": [{"statusCode", "message", "fields"}]}`` per
record; Bulk jobs ``sf__Error`` = ``CODE:message:Field1,Field2 --``. Both become a
:class:`RowResult` whose error is a :mod:`sfsync.core.errors` class carrying Salesforce's code
and message, so the dead-letter store and the change log's status columns show what
Salesforce said:

* transient row errors (``UNABLE_TO_LOCK_ROW``, ``ALL_OR_NONE_OPERATION_ROLLED_BACK``, the
  errors :func:`~.errors.classify` calls retryable) -> :class:`RetryableError`: the sink
  answers RETRY and only those rows are tried again;
* a parent reference whose external id matches no record (Salesforce says ``INVALID_FIELD``
  ``Foreign key external ID: ... not found``) -> :class:`SkippableError`: the row's data is
  wrong, not the configuration;
* errors that say the *configuration* is wrong for every row (a read-only or unknown field,
  no access to the object) -> :class:`FatalError`: the sync stops and says how to fix it,
  instead of dead-lettering every row;
* any other row error -> :class:`SkippableError` (validation rules, bad values, duplicates).
"""

from __future__ import annotations

from dataclasses import dataclass

from sfsync.connectors.salesforce.errors import classify
from sfsync.core.errors import FatalError, RetryableError, SkippableError, SyncError

_ROW_RETRYABLE = frozenset({"UNABLE_TO_LOCK_ROW", "ALL_OR_NONE_OPERATION_ROLLED_BACK"})


@dataclass(slots=True)
class RowResult:
    """The fate of one :class:`~.writeplan.RowWrite`. Never changed once made (one result may
    stand for every row of a failed call); not frozen only because a frozen dataclass costs
    four times as much to build, and a Bulk job's results make one per row.

    Attributes:
        record_id: the record's Salesforce Id, when known.
        created: the write created the record.
        error: why it failed; ``None`` on success.
        call_failed: the whole call failed (no per-row answer): whether the row was written
            is unknown if the error was transient (a lost response).
    """

    record_id: str | None = None
    created: bool = False
    error: SyncError | None = None
    call_failed: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None


def row_error(
    code: str, message: str, fields: list[str] | tuple[str, ...], *, what: str
) -> SyncError:
    """The engine error for one failed row (see the module docstring)."""
    named = f" (fields: {', '.join(fields)})" if fields else ""
    text = f"{message}{named}"
    if code in _ROW_RETRYABLE:
        return RetryableError(f"{what}: {text}", code=code)
    if code == "INVALID_FIELD" and "foreign key external id" in message.lower():
        return SkippableError(
            f"{what}: {text}",
            code=code,
            hint="the parent with this external id is not in Salesforce; write the parent "
            "first (its row is in dead letters if it failed) and replay this one",
        )
    classified = classify(400, code, text, what=what)
    if isinstance(classified, FatalError | RetryableError | SkippableError):
        return classified
    return SkippableError(f"{what} failed: {text}", code=code)


def whole_call(error: SyncError, count: int) -> list[RowResult]:
    """Every row of a call that failed as a whole shares its error (a transient one makes
    them all RETRY); a fatal error is raised by the caller instead."""
    return [RowResult(error=error, call_failed=True)] * count


def parse_bulk_error(text: str) -> tuple[str, str, tuple[str, ...]]:
    """``sf__Error`` -> ``(code, message, fields)``.

    ``REQUIRED_FIELD_MISSING:Required fields are missing: [Name]:Name --`` gives
    ``("REQUIRED_FIELD_MISSING", "Required fields are missing: [Name]", ("Name",))``; the
    message may itself hold colons, so the fields are split off the end.
    """
    body = text.strip()
    if body.endswith("--"):
        body = body[:-2].rstrip()
    code, sep, rest = body.partition(":")
    if not sep:
        return "UNKNOWN_EXCEPTION", text, ()
    message, sep, tail = rest.rpartition(":")
    if not sep:
        return code, rest, ()
    fields = tuple(f.strip() for f in tail.split(",") if f.strip())
    if tail and " " in tail.strip():  # not a field list: the colon belonged to the message
        return code, rest, ()
    return code, message, fields
