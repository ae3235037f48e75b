"""Bulk API 2.0 query jobs: what a job may select, how it runs, and its results as CSV.

A query job is checked when it is created (section 4.3): the SOQL must compile, and Bulk 2.0
refuses aggregates, ``COUNT()``, ``GROUP BY``, ``OFFSET``, ``TYPEOF``, compound fields and
parent-to-child subqueries (400 ``API_ERROR``; the exact codes and texts are UNCONFIRMED apart
from ``Selecting compound data not supported in Bulk Query``). Running it (in the background)
counts the matching records (``numberRecordsProcessed``) at the job's moment (``now`` is fixed
when the job is created, so relative date literals do not drift between result pages).

Results are rendered once, while the job runs (as Salesforce does: ``JobComplete`` means the
results are stored), into a CSV spool on disk with the byte offset of every row
(:class:`ResultSpool`). Downloads then stream byte ranges of that file, so a page costs what
sending its bytes costs, memory stays flat however many rows a job has, and every page is the
snapshot the job took. A locator is the base64 text of a row offset (``MTAwMDA`` = ``10000``,
the shape real locators have), so locators are stable and reusable for the job's life and any
offset can be served. A job whose spool is missing (it could not be written) falls back to
re-running the query lazily from the locator's offset.

CSV (section 4.4): header row of column names (``Account.Name`` for parent fields), every value
double-quoted, nulls as ``""``, booleans ``true``/``false``, datetimes ``…T09:30:00.000Z``.
"""

from __future__ import annotations

import base64
import csv
import io
import logging
import os
import sys
import tempfile
import threading
import time
from array import array
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


class ResultSpool:
    """A job's CSV rows on disk, with every row's byte offset, read back by ranges.

    Written once by the job's worker, then read concurrently by downloads: reads use
    ``os.pread`` on the file descriptor, so they share no file position. Both temporary files
    disappear when the spool is closed (or collected).
    """

    READ_CHUNK = 1 << 20

    def __init__(self) -> None:
        self._data = tempfile.TemporaryFile(prefix="sfsync-bulk-")  # noqa: SIM115 - owned
        self._offset_file = tempfile.TemporaryFile(prefix="sfsync-bulk-idx-")  # noqa: SIM115
        self._pending = array("Q")
        self._size = 0
        self.rows = 0
        self._lock = threading.Lock()

    def append(self, text: str, char_ends: Sequence[int]) -> None:
        """Add rows rendered as one ``text``; ``char_ends`` are each row's end in ``text``."""
        data = text.encode("utf-8")
        if len(data) == len(text):  # ASCII: character and byte offsets agree
            ends = [self._size + end for end in char_ends]
        else:
            ends, position, start = [], self._size, 0
            for end in char_ends:
                position += len(text[start:end].encode("utf-8"))
                ends.append(position)
                start = end
        self._data.write(data)
        self._size += len(data)
        self._pending.extend(ends)
        self.rows += len(char_ends)
        if len(self._pending) >= 65_536:
            self._spill()

    def _spill(self) -> None:
        self._pending.tofile(self._offset_file)
        self._pending = array("Q")

    def finish(self) -> None:
        """Make everything written readable."""
        self._spill()
        self._offset_file.flush()
        self._data.flush()

    def _row_start(self, row: int) -> int:
        if row <= 0:
            return 0
        raw = os.pread(self._offset_file.fileno(), 8, (row - 1) * 8)
        return int.from_bytes(raw, sys.byteorder)  # array.tofile writes native order

    def read(self, first: int, count: int) -> Iterator[bytes]:
        """The bytes of rows ``[first, first + count)``, in chunks."""
        last = min(self.rows, first + count)
        if first >= last:
            return
        start, end = self._row_start(first), self._row_start(last)
        fd = self._data.fileno()
        while start < end:
            chunk = os.pread(fd, min(self.READ_CHUNK, end - start), start)
            if not chunk:
                break
            start += len(chunk)
            yield chunk

    def close(self) -> None:
        self._data.close()
        self._offset_file.close()


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
    spool: ResultSpool | None = None
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
        spool = self.spool
        if spool is not None:
            yield from spool.read(offset, count)
            return
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
        return self._render(self._table(records))

    def rows_with_ends(self, records: Sequence[dict[str, object]]) -> tuple[str, list[int]]:
        """Like :meth:`rows`, with the end of each record's line in the text (for spools)."""
        ends: list[int] = []
        write, tell = self._writer.writerow, self._buffer.tell
        for row in self._table(records):
            write(row)
            ends.append(tell())
        text = self._buffer.getvalue()
        self._buffer.seek(0)
        self._buffer.truncate()
        return text, ends

    def _table(self, records: Sequence[dict[str, object]]) -> list[list[object]]:
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
        return table

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
    spool = _spool(job, result.records)
    with job.lock:
        job.total = spool.rows if spool is not None else result.total_size
        job.spool = spool
        job.processing_ms = max(1, int((time.perf_counter() - started) * 1000))
        if job.state == "Aborted":
            return
    job.finish("JobComplete", clock)


def _spool(job: QueryJob, records: Iterator[dict[str, object]]) -> ResultSpool | None:
    """Render every result row into a spool; ``None`` (lazy pages instead) if that fails."""
    writer = CsvWriter(job.columns, job.delimiter, job.line_ending)
    spool = ResultSpool()
    try:
        while True:
            batch = list(islice(records, CHUNK_ROWS))
            if not batch:
                break
            text, ends = writer.rows_with_ends(batch)
            spool.append(text, ends)
            if job.state == "Aborted":
                break
        spool.finish()
    except OSError:
        _log.exception("bulk query job %s: cannot spool results; serving them lazily", job.id)
        spool.close()
        return None
    return spool
