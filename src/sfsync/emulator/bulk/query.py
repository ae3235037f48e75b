"""Bulk API 2.0 query jobs: what a job may select, how it runs, and its results as CSV.

A query job is checked when it is created (section 4.3): the SOQL must compile, and Bulk 2.0
refuses aggregates, ``COUNT()``, ``GROUP BY``, ``OFFSET``, ``TYPEOF``, compound fields and
parent-to-child subqueries (400 ``API_ERROR``; the exact codes and texts are UNCONFIRMED apart
from ``Selecting compound data not supported in Bulk Query``). Running it (in the background)
counts the matching records (``numberRecordsProcessed``) at the job's moment (``now`` is fixed
when the job is created, so relative date literals do not drift between result pages).

Results are never built whole: :meth:`QueryJob.page` re-runs the compiled query lazily and
renders CSV lines as they are consumed, in chunks, so a million-row download keeps memory
flat. A locator is the base64 text of a row offset (``MTAwMDA`` = ``10000``, the shape real
locators have), so locators are stable and reusable for the job's life; the iterator where a
page ended is kept (up to :data:`MAX_CURSORS` per job), so reading pages in order, or several
page sequences in parallel, scans the data once; any other locator re-runs the query and skips
to its offset. If records change between
pages, later pages reflect the change (Salesforce serves a snapshot; UNCONFIRMED whether a
client could tell).

CSV (section 4.4): header row of column names (``Account.Name`` for parent fields), every value
double-quoted, nulls as ``""``, booleans ``true``/``false``, datetimes ``…T09:30:00.000Z``.
"""

from __future__ import annotations

import base64
import csv
import io
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from operator import itemgetter
from typing import Any

from sfsync.emulator.bulk.csvcodec import DELIMITERS, LINE_ENDINGS
from sfsync.emulator.bulk.jobs import BulkJob
from sfsync.emulator.clock import OrgClock
from sfsync.emulator.errors import ApiError
from sfsync.emulator.schema.model import FieldType, Schema
from sfsync.emulator.soql import CompiledQuery
from sfsync.emulator.soql import plan as p

_log = logging.getLogger(__name__)

CHUNK_ROWS = 2000
"""Rows rendered per streamed chunk."""

MAX_CURSORS = 8
"""Open result iterators kept per job, keyed by the offset they stand at: clients that read
several result pages in parallel (``resultPages``) each continue where they left off."""

PK_CHUNKING_OBJECTS = frozenset(
    {
        "Account", "Campaign", "CampaignMember", "Case", "Contact", "Lead", "LoginHistory",
        "Opportunity", "Task", "User",
    }
)  # fmt: skip
"""Objects PK chunking supports (section 4.6), besides custom objects."""

Column = tuple[tuple[str, ...], str]
"""A CSV column: the path into a rendered record (``("Account", "Name")``) and its kind
(``"text"``, ``"boolean"`` or ``"datetime"``: how the value becomes CSV text)."""


def unsupported(message: str) -> ApiError:
    return ApiError.of(400, "API_ERROR", message)


def csv_columns(compiled: CompiledQuery, schema: Schema) -> list[Column]:
    """The CSV columns of a query: (path into the rendered record, value-to-text), or 400
    for what Bulk 2.0 query does not support."""
    plan = compiled.plan
    if compiled.is_count_only or compiled.is_aggregate:
        raise unsupported("Aggregate queries (including COUNT() and GROUP BY) are not supported "
                          "in Bulk API 2.0 query")  # fmt: skip
    if plan.offset is not None:
        raise unsupported("OFFSET is not supported in Bulk API 2.0 query")
    return _node_columns(plan.node, (), schema)


_KINDS = {FieldType.BOOLEAN: "boolean", FieldType.DATETIME: "datetime"}


def _node_columns(node: p.RenderNode, prefix: tuple[str, ...], schema: Schema) -> list[Column]:
    obj = schema.object(node.type_name)
    columns: list[Column] = []
    for entry in node.entries:
        if isinstance(entry, p.FieldEntry):
            f = obj.field(entry.field) if obj is not None else None
            kind = _KINDS.get(f.type, "text") if f is not None else "text"
            columns.append(((*prefix, entry.key), kind))
        elif isinstance(entry, p.ParentEntry):
            columns.extend(_node_columns(entry.node, (*prefix, entry.key), schema))
        elif isinstance(entry, p.CompoundEntry):
            raise unsupported("Selecting compound data not supported in Bulk Query")
        elif isinstance(entry, p.TypeofEntry):
            raise unsupported("TYPEOF is not supported in Bulk API 2.0 query")
        else:
            raise unsupported("Parent-to-child subqueries are not supported in Bulk API 2.0 query")
    return columns


def encode_locator(offset: int) -> str:
    return base64.b64encode(str(offset).encode()).decode().rstrip("=")


def decode_locator(locator: str) -> int:
    """The row offset of a locator; 400 ``INVALID_QUERY_LOCATOR`` for anything else."""
    try:
        offset = int(base64.b64decode(locator + "=" * (-len(locator) % 4)).decode())
    except (ValueError, UnicodeDecodeError):
        offset = -1
    if offset < 0:
        raise ApiError.of(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
    return offset


@dataclass(eq=False)
class QueryJob(BulkJob):
    """A Bulk API 2.0 query job (``kind == "query"``)."""

    soql: str = ""
    compiled: CompiledQuery | None = None
    columns: list[Column] = field(default_factory=list)
    now: datetime | None = None
    line_ending: str = "LF"
    delimiter: str = "COMMA"
    total: int = 0
    processing_ms: int = 0
    error_message: str | None = None
    pk_chunking_supported: bool = False
    _cursors: dict[int, Iterator[dict[str, object]]] = field(default_factory=dict)

    @property
    def include_deleted(self) -> bool:
        return self.operation == "queryAll"

    def finish(self, state: str, clock: OrgClock, error: str | None = None) -> None:
        with self.lock:
            self.state = state
            if error is not None:
                self.error_message = error
            self.terminal_at = clock.time()
            self.touch(clock)

    def _records(self, source: Any, offset: int) -> Iterator[dict[str, object]]:
        """Rendered records from ``offset`` on (the kept iterator when it is there)."""
        with self.lock:
            cursor = self._cursors.pop(offset, None)
        if cursor is not None:
            return cursor
        assert self.compiled is not None
        assert self.now is not None
        result = self.compiled.run(
            source, now=self.now, include_deleted=self.include_deleted,
            api_version=self.api_version,
        )  # fmt: skip
        return islice(result.records, offset, None)

    def page(self, source: Any, offset: int, count: int) -> Iterator[bytes]:
        """The CSV of ``count`` records from ``offset`` (header first), as UTF-8 chunks."""
        writer = CsvWriter(self.columns, self.delimiter, self.line_ending)
        yield writer.header().encode("utf-8")
        records = self._records(source, offset)
        remaining = count
        while remaining > 0:
            batch = list(islice(records, min(CHUNK_ROWS, remaining)))
            if not batch:
                break
            remaining -= len(batch)
            yield writer.rows(batch).encode("utf-8")
        with self.lock:
            # Keep the iterator for the next page, so in-order paging scans the data once.
            self._cursors[offset + count] = records
            while len(self._cursors) > MAX_CURSORS:
                # Forget the oldest: a re-run costs time, never correctness.
                del self._cursors[next(iter(self._cursors))]


class CsvWriter:
    """Rendered records to Bulk CSV text, fast: the values of a batch of records are pulled
    with ``itemgetter`` and written by the C ``csv`` writer (every value quoted); only the
    boolean and datetime columns get per-value Python work."""

    def __init__(
        self, columns: Sequence[Column], delimiter: str = "COMMA", line_ending: str = "LF"
    ) -> None:
        self.columns = list(columns)
        self._buffer = io.StringIO()
        self._writer = csv.writer(
            self._buffer,
            delimiter=DELIMITERS[delimiter],
            lineterminator=LINE_ENDINGS[line_ending],
            quoting=csv.QUOTE_ALL,
        )
        paths = [path for path, _ in self.columns]
        self._flat = all(len(path) == 1 for path in paths) and bool(paths)
        self._get = itemgetter(*[path[0] for path in paths]) if self._flat else None
        self._booleans = [i for i, (_, kind) in enumerate(self.columns) if kind == "boolean"]
        self._datetimes = [i for i, (_, kind) in enumerate(self.columns) if kind == "datetime"]

    def header(self) -> str:
        return self._render([[".".join(path) for path, _ in self.columns]])

    def rows(self, records: Sequence[dict[str, object]]) -> str:
        """The CSV lines of ``records`` (REST-rendered records of the query)."""
        if self._get is not None:
            get = self._get
            if len(self.columns) == 1:
                table = [[get(r)] for r in records]
            else:
                table = [list(get(r)) for r in records]
        else:
            table = [[_at(r, path) for path, _ in self.columns] for r in records]
        for i in self._booleans:
            for row in table:
                value = row[i]
                if value is not None:
                    row[i] = "true" if value else "false"
        for i in self._datetimes:
            for row in table:
                value = row[i]
                # Wire datetimes are "2024-01-15T09:30:00.000+0000" (UTC): Bulk CSV writes "Z".
                if isinstance(value, str) and value.endswith("+0000"):
                    row[i] = value[:-5] + "Z"
        return self._render(table)

    def _render(self, table: Sequence[Sequence[object]]) -> str:
        self._writer.writerows(table)
        text = self._buffer.getvalue()
        self._buffer.seek(0)
        self._buffer.truncate()
        return text


def _at(record: dict[str, object], path: tuple[str, ...]) -> object:
    value: object = record
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def run_query_job(job: QueryJob, source: Any, clock: OrgClock) -> None:
    """UploadComplete -> InProgress -> JobComplete (or Failed): count the results.

    An unexpected exception fails the job (``UNKNOWN_EXCEPTION : <text>``)."""
    try:
        _run(job, source, clock)
    except Exception as error:
        _log.exception("bulk query job %s failed", job.id)
        job.finish("Failed", clock, f"UNKNOWN_EXCEPTION : {error}")


def _run(job: QueryJob, source: Any, clock: OrgClock) -> None:
    with job.lock:
        if job.state != "UploadComplete":
            return
        job.state = "InProgress"
        job.touch(clock)
    started = time.perf_counter()
    assert job.compiled is not None
    assert job.now is not None
    try:
        result = job.compiled.run(
            source, now=job.now, include_deleted=job.include_deleted, api_version=job.api_version
        )
    except ApiError as error:
        job.finish("Failed", clock, str(error))
        return
    with job.lock:
        job.total = result.total_size
        job.processing_ms = max(1, int((time.perf_counter() - started) * 1000))
        if job.state == "Aborted":
            return
    job.finish("JobComplete", clock)
