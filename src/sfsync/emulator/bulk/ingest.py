"""Bulk API 2.0 ingest jobs: the job, and how its CSV is applied to the org (section 4.1).

Processing (:func:`process_ingest`, run by the bulk worker once the job is UploadComplete):

1. the job goes ``InProgress``; the uploads are parsed with the job's delimiter and line
   ending (a mismatch fails the job with Salesforce's ``ClientInputError`` message);
2. every header column must name a field of the object, or a relationship through a parent's
   external id (``Account.Ext__c``; polymorphic ``Owner:User.Email``), else the job fails with
   ``InvalidBatch : Field name not found : <column>``;
3. the rows are charged to the daily allocations (records and 10,000-record batches; the job
   fails with ``LIMIT_EXCEEDED`` when they are spent);
4. rows are applied in chunks of 200, each chunk one store transaction (so Change Data Capture
   sees bulk changes in transactions of up to 200 records, as the platform commits them),
   inserts, updates and upserts through the store's batch writer
   (:mod:`~sfsync.emulator.store_batch`: the single-record checks and errors, a failing row
   rolled back alone), deletes through the store's single-record calls. All writes are
   tagged ``call_context(api="bulkapi", client_id=<the creator's Sforce-Call-Options
   client>, api_version=<the job's>)`` and attributed to the job's creator.

No path skips validation or the change listeners: Change Data Capture sees bulk writes too.
``bench/bench_emulator_ingest.py`` measures the throughput.

Values: an empty value is left out (on update: "leave unchanged"; on insert: null); ``#N/A``
sets the field to null. A failed row's ``sf__Error`` is ``CODE:message:Field1,Field2 --``
(``CODE:message:--`` without fields), from the store's validation error. Choices where the
reference is UNCONFIRMED: an unknown or other-object id on update/delete fails with
``INVALID_CROSS_REFERENCE_KEY:invalid cross reference id:--``; an upsert row without a key value
with ``MISSING_ARGUMENT:<Field> not specified:--``; a key matching several records with
``DUPLICATE_EXTERNAL_ID``. Abort while InProgress stops between chunks; rows not reached are the
job's unprocessed records.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from sfsync.emulator.bulk.csvcodec import CsvInputError, parse_csv, render_rows
from sfsync.emulator.bulk.jobs import Allocations, BulkJob
from sfsync.emulator.clock import OrgClock
from sfsync.emulator.errors import ApiError
from sfsync.emulator.faults import ROW_LOCK_MESSAGE, RowFaults
from sfsync.emulator.ids import normalise
from sfsync.emulator.schema.model import ObjectDef, Schema
from sfsync.emulator.store_changes import call_context

_log = logging.getLogger(__name__)

OPERATIONS = ("insert", "update", "upsert", "delete", "hardDelete")
CHUNK_ROWS = 200
"""Rows per store transaction (the platform's DML chunk)."""

TERMINAL_STATES = frozenset({"JobComplete", "Failed", "Aborted"})
NULL = "#N/A"
"""The CSV value that sets a field to null (an empty value leaves it out)."""


_CREATED, _UPDATED, _FAILED = 1, 0, 2


@dataclass(eq=False)
class JobOutcomes:
    """What became of each processed row of a job, compactly: a job keeps its results for
    seven days, and a row kept as parsed values would cost a list object and the values'
    strings per row (and garbage-collector work on every list). The rows themselves are read
    again from the job's uploads when results are asked for.

    ``ids[n]`` is row ``n``'s ``sf__Id`` (the record's id, shared with the store; for a failed
    row the id it named, or ""), ``flags[n]`` whether it created, updated or failed, ``errors``
    the ``sf__Error`` of each failed row by row number; rows from ``unprocessed_from`` on were
    never processed (an aborted or refused job)."""

    ids: list[str] = field(default_factory=list)
    flags: bytearray = field(default_factory=bytearray)
    errors: dict[int, str] = field(default_factory=dict)
    unprocessed_from: int | None = None


@dataclass(eq=False)
class IngestJob(BulkJob):
    """A Bulk API 2.0 ingest job (``kind == "ingest"``)."""

    external_id_field: str | None = None
    line_ending: str = "LF"
    delimiter: str = "COMMA"
    assignment_rule_id: str | None = None
    uploads: list[bytes] = field(default_factory=list)
    upload_bytes: int = 0
    header: list[str] = field(default_factory=list)
    outcomes: JobOutcomes = field(default_factory=JobOutcomes)
    processed: int = 0
    failed: int = 0
    processing_ms: int = 0
    error_message: str | None = None
    row_faults: RowFaults | None = None
    """The fault plan's per-record faults, taken from the request that closed the job."""
    parsed: list[list[str]] | None = field(default=None, repr=False)
    """The uploads' rows as parsed for processing, kept for the results of a small job of
    one of the last :data:`PARSED_KEPT` jobs processed (clients read results right after);
    otherwise the results parse the uploads again."""

    def finish(self, state: str, clock: OrgClock, error: str | None = None) -> None:
        """Move to a terminal state (from which the retention period counts)."""
        with self.lock:
            self.state = state
            if error is not None:
                self.error_message = error
            self.terminal_at = clock.time()
            self.touch(clock)

    def results_csv(self, which: str) -> str:
        """``successfulResults``, ``failedResults`` or ``unprocessedrecords`` as CSV text.

        The rows are read again from the uploads (kept for this; see :class:`JobOutcomes`)."""
        with self.lock:
            header = list(self.header)
            outcomes = self.outcomes
            ids, flags, errors = list(outcomes.ids), bytes(outcomes.flags), dict(outcomes.errors)
            unprocessed_from = outcomes.unprocessed_from
            uploads = list(self.uploads) if ids or unprocessed_from is not None else []
        parsed = self.parsed
        if parsed is not None and uploads:
            data = parsed
        else:
            data = _parse_uploads(self, uploads)[1] if uploads else []
        if which == "successfulResults":
            rows: list[Sequence[str]] = [["sf__Id", "sf__Created", *header]]
            rows += [
                [ids[n], "true" if flag == _CREATED else "false", *data[n]]
                for n, flag in enumerate(flags)
                if flag != _FAILED
            ]
        elif which == "failedResults":
            rows = [["sf__Id", "sf__Error", *header]]
            rows += [[ids[n], error, *data[n]] for n, error in errors.items()]
        else:
            rows = [header] if header else []
            if unprocessed_from is not None:
                rows += data[unprocessed_from:]
        return render_rows(rows, delimiter=self.delimiter, line_ending=self.line_ending)


@dataclass(frozen=True, slots=True)
class _Column:
    """One CSV column: a field (``field``) or a parent external id (``relationship``)."""

    field: str | None = None
    relationship: str | None = None
    parent_type: str | None = None
    parent_field: str | None = None


def resolve_columns(obj: ObjectDef, schema: Schema, header: Sequence[str]) -> list[_Column]:
    """Map header names to fields; :class:`CsvInputError` for a name that is neither a field
    nor ``Relationship.ExternalIdField`` (``Relationship:Type.Field`` for polymorphic ones)."""
    columns: list[_Column] = []
    seen: set[str] = set()
    for name in header:
        if name.lower() in seen:
            raise CsvInputError(f"InvalidBatch : Duplicate field name: {name}")
        seen.add(name.lower())
        f = obj.field(name)
        if f is not None:
            columns.append(_Column(field=f.name))
            continue
        rel_part, dot, parent_field = name.partition(".")
        rel_name, _, parent_type = rel_part.partition(":")
        rel = obj.relationship(rel_name) if dot else None
        target = schema.object(parent_type or (rel.reference_to[0] if rel else ""))
        if rel is None or target is None or target.field(parent_field) is None:
            raise CsvInputError(f"InvalidBatch : Field name not found : {name}")
        columns.append(
            _Column(
                relationship=rel.relationship_name or rel_name,
                parent_type=parent_type or None,
                parent_field=parent_field,
            )
        )
    return columns


def row_values(columns: Sequence[_Column], row: Sequence[str], obj: ObjectDef) -> dict[str, Any]:
    """A CSV row as store write values: empty values left out, ``#N/A`` as null."""
    values: dict[str, Any] = {}
    for column, raw in zip(columns, row, strict=True):
        if raw == "":
            continue
        value = None if raw == NULL else raw
        if column.field is not None:
            values[column.field] = value
            continue
        assert column.relationship is not None
        assert column.parent_field is not None
        if value is None:
            lookup = obj.relationship(column.relationship)
            if lookup is not None:
                values[lookup.name] = None
            continue
        spec: dict[str, Any] = {column.parent_field: value}
        if column.parent_type:
            spec["attributes"] = {"type": column.parent_type}
        values[column.relationship] = spec
    return values


def format_error(error: ApiError) -> str:
    """``sf__Error``: ``CODE:message:Field1,Field2 --`` (``CODE:message:--`` without fields)."""
    detail = error.details[0]
    fields = ",".join(detail.fields)
    if detail.code == "MULTIPLE_CHOICES":
        return "DUPLICATE_EXTERNAL_ID:more than one record found for external id field:--"
    return f"{detail.code}:{detail.message}:{fields + ' ' if fields else ''}--"


def _cross_reference() -> ApiError:
    return ApiError.of(400, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")


class WriteJob(Protocol):
    """What applying a row needs to know of its job (Bulk 2.0 and 1.0 jobs both have it)."""

    @property
    def operation(self) -> str: ...

    @property
    def external_id_field(self) -> str | None: ...

    @property
    def created_by(self) -> str: ...


class RowApplier:
    """Applies the rows of a job to the store, a chunk at a time: inside :meth:`chunk`,
    :attr:`apply` takes one row and returns ``(id, created)`` or raises ApiError (the row then
    left no trace; the chunk goes on)."""

    def __init__(self, job: WriteJob, obj: ObjectDef, store: Any) -> None:
        self.job = job
        self.obj = obj
        self.store = store
        self.writer: Any = store
        ops: dict[str, Callable[[dict[str, Any]], tuple[str, bool]]] = {
            "insert": self._insert,
            "update": self._update,
            "upsert": self._upsert,
            "delete": self._delete,
            "hardDelete": self._hard_delete,
        }
        self.apply = ops[job.operation]
        self._text: tuple[object, Callable[[Any], TextRows]] | None = None

    @contextmanager
    def chunk(self, rows: int) -> Iterator[None]:
        """One store transaction for the next ``rows`` rows: the store's batch writer when it
        has one (same checks and errors per row, a fraction of the cost), else the store's
        single-record calls inside a transaction (each of them a nested transaction)."""
        batch = getattr(self.store, "batch", None)
        if batch is None or self.job.operation not in ("insert", "update", "upsert"):
            with self.store.transaction():
                yield
            return
        hint = rows if self.job.operation == "insert" else 0
        with batch(self.obj.name, user_id=self.job.created_by, size_hint=hint) as writer:
            self.writer = writer
            try:
                yield
            finally:
                self.writer = self.store

    def text_rows(self, columns: Sequence[_Column]) -> TextRows | None:
        """Inside :meth:`chunk` of an insert or upsert (by an external id) job: a function
        writing CSV rows as they are through the batch writer (``insert_text`` /
        ``upsert_text`` of :mod:`~sfsync.emulator.store_batch`: no dict per row, the same
        checks and errors), or ``None`` when rows go through :meth:`apply` (another
        operation, a store without a batch writer, a relationship column or one the
        writer's plan does not cover)."""
        writer = self.writer
        operation = self.job.operation
        if writer is self.store or operation not in ("insert", "upsert"):
            return None
        if any(c.field is None for c in columns):
            return None
        names = [c.field for c in columns if c.field is not None]
        plan = getattr(writer, "plan", None)
        if self._text is not None and self._text[0] is plan:
            return self._text[1](writer)
        make: Callable[[Any], TextRows] | None = None
        if operation == "insert":
            inserts = writer.text_columns(names, NULL)
            if inserts is not None:
                make = lambda w: _inserting(w, inserts)  # noqa: E731
        else:
            key = self.obj.field(self.job.external_id_field or "Id")
            assert key is not None  # checked when the job was created
            if key.name != "Id" and key.name in names:
                at = names.index(key.name)
                rest = names[:at] + names[at + 1 :]
                changes = writer.text_columns(rest, NULL, creating=False)
                creates = writer.text_columns([*rest, key.name], NULL)
                if changes is not None and creates is not None:
                    make = lambda w: _upserting(w, key.name, at, changes, creates)  # noqa: E731
        if make is None:
            return None
        self._text = (plan, make)
        return make(writer)

    def known_id(self, values: dict[str, Any]) -> str:
        """The row's record id when it names one (``sf__Id`` of a failed update/delete)."""
        raw = values.get("Id")
        if isinstance(raw, str):
            try:
                return normalise(raw)
            except ValueError:
                return ""
        return ""

    def _id(self, values: dict[str, Any]) -> str:
        raw = values.pop("Id", None)
        if not isinstance(raw, str):
            raise ApiError.of(400, "MISSING_ARGUMENT", "Id not specified in an update call")
        try:
            rid = normalise(raw)
        except ValueError:
            raise ApiError.of(
                400, "MALFORMED_ID", f"{self.obj.label} ID: id value of incorrect type: {raw}",
                ("Id",),
            ) from None  # fmt: skip
        if rid[:3] != self.obj.key_prefix:
            raise _cross_reference()
        return rid

    def _insert(self, values: dict[str, Any]) -> tuple[str, bool]:
        writer = self.writer
        if writer is self.store:
            return self.store.insert(self.obj.name, values, user_id=self.job.created_by), True
        return writer.insert(values), True

    def _update(self, values: dict[str, Any]) -> tuple[str, bool]:
        rid = self._id(values)
        try:
            if self.writer is self.store:
                self.store.update(self.obj.name, rid, values, user_id=self.job.created_by)
            else:
                self.writer.update(rid, values)
        except ApiError as error:
            raise _not_found_as_cross_reference(error) from None
        return rid, False

    def _upsert(self, values: dict[str, Any]) -> tuple[str, bool]:
        key_field = self.obj.field(self.job.external_id_field or "Id")
        assert key_field is not None  # checked when the job was created
        key = values.pop(key_field.name, None)
        if key_field.name == "Id":
            key = key or ""
        elif not isinstance(key, str):
            raise ApiError.of(400, "MISSING_ARGUMENT", f"{key_field.name} not specified")
        if self.writer is self.store:
            rid, created = self.store.upsert(
                self.obj.name, key_field.name, key, values, user_id=self.job.created_by
            )
        else:
            rid, created = self.writer.upsert(key_field.name, key, values)
        return str(rid), bool(created)

    def _delete(self, values: dict[str, Any]) -> tuple[str, bool]:
        rid = self._id(values)
        try:
            self.store.delete(rid, user_id=self.job.created_by)
        except ApiError as error:
            raise _not_found_as_cross_reference(error) from None
        return rid, False

    def _hard_delete(self, values: dict[str, Any]) -> tuple[str, bool]:
        rid = self._id(values)
        try:
            self.store.hard_delete(rid)
        except ApiError as error:
            raise _not_found_as_cross_reference(error) from None
        return rid, False


def _not_found_as_cross_reference(error: ApiError) -> ApiError:
    if error.details and error.details[0].code == "NOT_FOUND":
        return _cross_reference()
    return error


def process_ingest(
    job: IngestJob,
    schema: Schema,
    store: Any,
    allocations: Allocations,
    kept: ParsedRows | None = None,
) -> None:
    """Run an UploadComplete job to JobComplete, Failed or Aborted (see the module docstring).

    An unexpected exception (a store that cannot persist, a bug) fails the job with
    ``UNKNOWN_EXCEPTION : <text>`` instead of leaving it InProgress for ever."""
    try:
        _process(job, schema, store, allocations, kept)
    except Exception as error:
        _log.exception("bulk ingest job %s failed", job.id)
        job.finish("Failed", allocations.clock, f"UNKNOWN_EXCEPTION : {error}")


def _process(
    job: IngestJob, schema: Schema, store: Any, allocations: Allocations, kept: ParsedRows | None
) -> None:
    clock: OrgClock = allocations.clock
    with job.lock:
        if job.state != "UploadComplete":
            return
        job.state = "InProgress"
        job.touch(clock)
        # The uploads stay: results are read from them again (see JobOutcomes).
        uploads = list(job.uploads)
    started = time.perf_counter()
    obj = schema.object(job.object)
    assert obj is not None  # checked when the job was created
    try:
        header, rows = _parse_uploads(job, uploads)
        job.header = header
        columns = resolve_columns(obj, schema, header)
    except CsvInputError as error:
        job.finish("Failed", clock, str(error))
        return
    refused = allocations.take_ingest(len(rows))
    if refused is not None:
        job.outcomes.unprocessed_from = 0
        job.finish("Failed", clock, refused)
        return
    if kept is not None:
        kept.keep(job, rows)
    applier = RowApplier(job, obj, store)
    with call_context(api="bulkapi", client_id=job.client_id, api_version=job.api_version):
        for start in range(0, len(rows), CHUNK_ROWS):
            if job.state == "Aborted":
                with job.lock:
                    job.outcomes.unprocessed_from = start
                break
            _apply_chunk(job, applier, columns, rows[start : start + CHUNK_ROWS], store)
            job.processing_ms = int((time.perf_counter() - started) * 1000)
    job.processing_ms = max(1, int((time.perf_counter() - started) * 1000))
    if job.state != "Aborted":
        job.finish("JobComplete", clock)


PARSED_ROWS = 20_000
"""Jobs of at most this many rows keep their parsed rows for their results (see below)."""
PARSED_KEPT = 4
"""How many jobs' parsed rows are kept at once: memory stays bounded (at most 80,000 rows)
whatever clients do, and a client that reads its results soon after a job completes (as
sync tools do, for per-row outcomes) is served without parsing its uploads again."""


class ParsedRows:
    """The jobs of one org whose parsed rows are kept for their results: the last
    :data:`PARSED_KEPT` small jobs processed (one instance per org's Bulk service)."""

    def __init__(self) -> None:
        self._jobs: deque[IngestJob] = deque()
        self._lock = threading.Lock()

    def keep(self, job: IngestJob, rows: list[list[str]]) -> None:
        if len(rows) > PARSED_ROWS:
            return
        with self._lock:
            job.parsed = rows
            self._jobs.append(job)
            while len(self._jobs) > PARSED_KEPT:
                self._jobs.popleft().parsed = None


def _parse_uploads(job: IngestJob, uploads: Sequence[bytes]) -> tuple[list[str], list[list[str]]]:
    """Every upload of the job (each with its header row, all headers equal) as one table.

    A job closed without any data fails (message UNCONFIRMED)."""
    if not uploads:
        raise CsvInputError("ClientInputError : No data was uploaded for this job")
    header: list[str] | None = None
    rows: list[list[str]] = []
    for data in uploads:
        this_header, body = parse_csv(data, delimiter=job.delimiter, line_ending=job.line_ending)
        if header is not None and this_header != header:
            raise CsvInputError("InvalidBatch : All uploads of a job must have the same header")
        header = this_header
        rows.extend(body)
    assert header is not None
    return header, rows


def _apply_chunk(
    job: IngestJob,
    applier: RowApplier,
    columns: Sequence[_Column],
    chunk: Sequence[Sequence[str]],
    store: Any,
) -> None:
    ids: list[str] = []
    flags = bytearray()
    errors: dict[int, str] = {}
    locks = job.row_faults
    with applier.chunk(len(chunk)):
        text = applier.text_rows(columns)
        if text is not None:
            for row in chunk:
                if locks is not None and locks.lock():
                    errors[len(ids)] = _LOCKED
                    ids.append("")
                    flags.append(_FAILED)
                    continue
                try:
                    rid, created = text(row)
                except ApiError as error:
                    errors[len(ids)] = format_error(error)
                    ids.append("")
                    flags.append(_FAILED)
                else:
                    ids.append(rid)
                    flags.append(_CREATED if created else _UPDATED)
            chunk = ()
        for row in chunk:
            values = row_values(columns, row, applier.obj)
            known = applier.known_id(values)
            if locks is not None and locks.lock():
                errors[len(ids)] = _LOCKED
                ids.append(known)
                flags.append(_FAILED)
                continue
            try:
                # A failing row rolls back alone and the chunk goes on.
                rid, created = applier.apply(values)
            except ApiError as error:
                errors[len(ids)] = format_error(error)
                ids.append(known)
                flags.append(_FAILED)
            else:
                ids.append(rid)
                flags.append(_CREATED if created else _UPDATED)
    # Results become visible only once the chunk is committed, as its records do.
    with job.lock:
        outcomes = job.outcomes
        first = len(outcomes.ids)
        outcomes.ids += ids
        outcomes.flags += flags
        outcomes.errors.update((first + n, error) for n, error in errors.items())
        job.processed += len(ids)
        job.failed += len(errors)


_LOCKED = "UNABLE_TO_LOCK_ROW:" + ROW_LOCK_MESSAGE.format(id="001000000000000AAA") + ":--"
"""``sf__Error`` of a row the fault plan locks (:mod:`sfsync.emulator.faults`, ``row_lock``)."""

TextRows = Callable[[Sequence[str]], tuple[str, bool]]
"""Writes one CSV row as it is: ``(id, created)``, or ApiError (the row left no trace)."""


def _inserting(writer: Any, columns: Any) -> TextRows:
    insert = writer.insert_text
    return lambda row: (insert(columns, row), True)


def _upserting(writer: Any, key: str, at: int, changes: Any, creates: Any) -> TextRows:
    upsert = writer.upsert_text

    def apply(row: Sequence[str]) -> tuple[str, bool]:
        value = row[at]
        if value == "" or value == NULL:
            raise ApiError.of(400, "MISSING_ARGUMENT", f"{key} not specified")
        return upsert(key, value, changes, creates, [*row[:at], *row[at + 1 :]])  # type: ignore[no-any-return]

    return apply
