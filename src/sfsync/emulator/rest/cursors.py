"""Query locators: the server-side state behind ``nextRecordsUrl``.

A cursor holds the query's *lazy* record iterator and the position reached in it, never a
materialised result, so paging a million rows keeps memory flat: each page pulls
``batch_size`` records from the iterator and renders them with orjson.

Locators live 2 days on the org clock (section 2.10); after that, or for a locator never
issued, a page request is 400 INVALID_QUERY_LOCATOR. A page asked for again (a client retrying
after a dropped connection) is answered from the last page's bytes; a page at any other offset
re-runs the query and skips to it, as a real locator's ``-offset`` suffix allows.

Abandoned cursors (a client that stops after page one) would otherwise pin their iterators,
and whatever the store snapshotted for them, for two days. So only the most recently used
``max_live`` cursors keep an iterator; an older one keeps just its query and position, and is
re-run and skipped forward if it is ever continued. The locator stays valid either way.
"""

from __future__ import annotations

import itertools
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

import orjson

from sfsync.emulator.errors import ApiError
from sfsync.emulator.rest.seams import CompiledQuery, RecordStore

LOCATOR_LIFETIME_SECONDS = 2 * 24 * 3600
DEFAULT_BATCH_SIZE = 2000
MIN_BATCH_SIZE = 200
MAX_BATCH_SIZE = 2000
DEFAULT_MAX_LIVE = 64
# Finished cursors are kept only so that a retried last page can still be answered; bound
# how many so that many small queries do not accumulate page bytes.
_FINISHED_KEPT = 32

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def id18(id15: str) -> str:
    """The 18-character form of a 15-character id (section 2.4 checksum)."""
    suffix = ""
    for chunk in range(3):
        bits = 0
        for j, char in enumerate(id15[chunk * 5 : chunk * 5 + 5]):
            if "A" <= char <= "Z":
                bits |= 1 << j
        suffix += _SUFFIX[bits]
    return id15 + suffix


def batch_size_from(header: str | None) -> int:
    """The page size asked for in ``Sforce-Query-Options: batchSize=N``, clamped to 200..2000."""
    if not header:
        return DEFAULT_BATCH_SIZE
    for option in header.split(","):
        key, _, value = option.partition("=")
        if key.strip().lower() == "batchsize":
            try:
                size = int(value.strip())
            except ValueError:
                return DEFAULT_BATCH_SIZE
            return max(MIN_BATCH_SIZE, min(MAX_BATCH_SIZE, size))
    return DEFAULT_BATCH_SIZE


def invalid_locator() -> ApiError:
    return ApiError.of(400, "INVALID_QUERY_LOCATOR", "invalid query locator")


@dataclass
class Cursor:
    """One open query: enough to continue it, or to re-run it from any offset."""

    locator: str
    owner: int
    compiled: CompiledQuery
    source: RecordStore
    now: datetime
    include_deleted: bool
    version: str
    resource: str  # "query" or "queryAll": the path its nextRecordsUrl uses
    total_size: int
    batch_size: int
    expires_at: float
    records: Iterator[dict[str, object]] | None
    position: int = 0
    last_page: tuple[int, bytes] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_url(self, offset: int) -> str:
        return f"/services/data/v{self.version}/{self.resource}/{self.locator}-{offset}"

    def page(self, offset: int) -> tuple[bytes, bool]:
        """The rendered page starting at ``offset`` and whether it is the last one."""
        with self.lock:
            if self.last_page is not None and self.last_page[0] == offset:
                return self.last_page[1], self._finished_at(offset)
            if self.records is None or offset != self.position:
                self._rewind(offset)
            body, done = render_page(self, offset)
            self.last_page = (offset, body)
            return body, done

    def _finished_at(self, offset: int) -> bool:
        return self.position >= self.total_size or self.position - offset < self.batch_size

    def release(self) -> bool:
        """Drop the iterator (not the locator) unless a page is being rendered right now."""
        if not self.lock.acquire(blocking=False):
            return False
        try:
            self.records = None
            return True
        finally:
            self.lock.release()

    def _rewind(self, offset: int) -> None:
        if offset < 0 or offset > self.total_size:
            raise invalid_locator()
        result = self.compiled.run(
            self.source,
            now=self.now,
            include_deleted=self.include_deleted,
            api_version=self.version,
        )
        self.records = itertools.islice(result.records, offset, None)
        self.position = offset


def render_page(cursor: Cursor, offset: int) -> tuple[bytes, bool]:
    """Pull the next batch from the cursor and render it; advances ``cursor.position``."""
    wanted = min(cursor.batch_size, cursor.total_size - offset)
    records = cursor.records if cursor.records is not None else iter(())
    batch = list(itertools.islice(records, wanted)) if wanted > 0 else []
    cursor.position = offset + len(batch)
    done = len(batch) < cursor.batch_size or cursor.position >= cursor.total_size
    body: dict[str, object] = {"totalSize": cursor.total_size, "done": done}
    if not done:
        body["nextRecordsUrl"] = cursor.next_url(cursor.position)
    body["records"] = batch
    return orjson.dumps(body), done


class CursorRegistry:
    """Open locators of the orgs served by one set of REST routes."""

    def __init__(self, *, max_live: int = DEFAULT_MAX_LIVE) -> None:
        self._lock = threading.Lock()
        self._max_live = max_live
        self._open: OrderedDict[str, Cursor] = OrderedDict()  # least recently used first
        self._finished: OrderedDict[str, Cursor] = OrderedDict()
        self._counter = itertools.count(1)

    def new_locator(self) -> str:
        n = next(self._counter)
        digits = ""
        for _ in range(9):
            n, rem = divmod(n, 62)
            digits = _BASE62[rem] + digits
        return id18("0r8xx0" + digits)

    def add(self, cursor: Cursor, now: float) -> None:
        with self._lock:
            self._purge(now)
            self._open[cursor.locator] = cursor
            self._release_idle()

    def get(self, locator: str, owner: int, now: float) -> Cursor:
        """The live cursor ``locator`` of org ``owner``, else INVALID_QUERY_LOCATOR."""
        with self._lock:
            self._purge(now)
            cursor = self._open.get(locator) or self._finished.get(locator)
            if cursor is not None and locator in self._open:
                self._open.move_to_end(locator)
        if cursor is None or cursor.owner != owner:
            raise invalid_locator()
        return cursor

    def finish(self, cursor: Cursor) -> None:
        """The last page was served: drop the iterator, keep the page for a retry."""
        with self._lock:
            cursor.records = iter(())
            self._open.pop(cursor.locator, None)
            self._finished[cursor.locator] = cursor
            while len(self._finished) > _FINISHED_KEPT:
                self._finished.popitem(last=False)

    def __len__(self) -> int:
        with self._lock:
            return len(self._open)

    def live_count(self) -> int:
        """How many open cursors hold an iterator (at most ``max_live`` once settled)."""
        with self._lock:
            return sum(1 for c in self._open.values() if c.records is not None)

    def _release_idle(self) -> None:
        live = [c for c in self._open.values() if c.records is not None]
        for cursor in live[: max(0, len(live) - self._max_live)]:
            cursor.release()

    def _purge(self, now: float) -> None:
        # Lifetimes are equal, so insertion order is expiry order unless the clock was moved
        # back; scanning from the front until a live one is enough.
        for table in (self._open, self._finished):
            while table:
                first = next(iter(table.values()))
                if first.expires_at > now:
                    break
                table.popitem(last=False)
