"""The org's daily API request allocation, counted as Salesforce counts it.

Salesforce meters API calls over a **rolling 24-hour window**: every authenticated REST (and
Bulk, SOAP data) call counts one, a composite request counts one however many sub-requests it
carries, and OAuth token / SOAP ``login()`` calls count nothing. When the allocation is spent
the org answers ``403 REQUEST_LIMIT_EXCEEDED`` / ``TotalRequests Limit exceeded.``. Every REST
response carries ``Sforce-Limit-Info: api-usage=<used>/<max>``.

The window runs on the :class:`~sfsync.emulator.clock.OrgClock`, so a test can spend the
allocation, advance the clock 24 hours and see it recover. Calls are kept in one-minute
buckets (not one entry per call), so memory stays flat at any allocation size.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from collections.abc import Callable

from sfsync.emulator.clock import OrgClock
from sfsync.emulator.errors import ApiError

DEVELOPER_EDITION_DAILY_REQUESTS = 15_000
"""The ``DailyApiRequests`` allocation of a Developer Edition org (section 8)."""

ENTERPRISE_DAILY_REQUESTS = 100_000
"""The base allocation of a production org before per-license adders."""

WINDOW_SECONDS = 24 * 60 * 60
_BUCKET_SECONDS = 60


def limit_exceeded() -> ApiError:
    """The error Salesforce answers once the daily allocation is spent."""
    return ApiError.of(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")


class ApiLimits:
    """Counts API calls in a rolling 24 h window and refuses calls past ``daily_max``.

    Thread-safe. :meth:`consume` is the one call the request path makes: it refuses (raises)
    without counting when the allocation is spent, as Salesforce does not meter refused calls.
    """

    def __init__(self, clock: OrgClock, daily_max: int = DEVELOPER_EDITION_DAILY_REQUESTS) -> None:
        if daily_max < 0:
            raise ValueError("daily_max must be >= 0")
        self._clock = clock
        self._lock = threading.Lock()
        self._daily_max = daily_max
        # (bucket start in org seconds, calls in that bucket), oldest first.
        self._buckets: deque[tuple[int, int]] = deque()
        self._used = 0

    @property
    def daily_max(self) -> int:
        return self._daily_max

    @daily_max.setter
    def daily_max(self, value: int) -> None:
        if value < 0:
            raise ValueError("daily_max must be >= 0")
        with self._lock:
            self._daily_max = value

    def _expire(self, now: float) -> None:
        # A bucket leaves the window once its last possible call is more than 24 h old.
        horizon = now - WINDOW_SECONDS
        while self._buckets and self._buckets[0][0] + _BUCKET_SECONDS <= horizon:
            _, count = self._buckets.popleft()
            self._used -= count

    def consume(self, calls: int = 1) -> int:
        """Count ``calls`` API calls; return the usage after them.

        Raises ``ApiError`` 403 ``REQUEST_LIMIT_EXCEEDED`` (counting nothing) when the window
        already holds ``daily_max`` calls.
        """
        now = self._clock.time()
        with self._lock:
            self._expire(now)
            if self._used + calls > self._daily_max:
                raise limit_exceeded()
            bucket = int(now // _BUCKET_SECONDS) * _BUCKET_SECONDS
            if self._buckets and self._buckets[-1][0] == bucket:
                self._buckets[-1] = (bucket, self._buckets[-1][1] + calls)
            else:
                self._buckets.append((bucket, calls))
            self._used += calls
            return self._used

    def used(self) -> int:
        """Calls counted in the current 24 h window."""
        now = self._clock.time()
        with self._lock:
            self._expire(now)
            return self._used

    def remaining(self) -> int:
        return max(0, self._daily_max - self.used())

    def header_value(self) -> str:
        """The ``Sforce-Limit-Info`` value: ``api-usage=<used>/<max>``."""
        return f"api-usage={self.used()}/{self._daily_max}"

    def reset(self) -> None:
        """Forget all counted calls (the admin ``reset``)."""
        with self._lock:
            self._buckets.clear()
            self._used = 0

    def snapshot(self) -> dict[str, dict[str, object]]:
        """The ``/limits`` resource body: limit name -> ``{"Max": n, "Remaining": n}``.

        ``DailyApiRequests`` is live; the other entries are the Developer Edition allocations
        (section 2.11/8) reported as untouched, because the emulator meters only API requests.
        ``DailyApiRequests`` carries the per-app sub-objects real orgs show.
        """
        remaining = self.remaining()
        body: dict[str, dict[str, object]] = {
            name: {"Max": limit, "Remaining": limit} for name, limit in _STATIC_LIMITS
        }
        body["DailyApiRequests"] = {
            "Max": self._daily_max,
            "Remaining": remaining,
            "Ant Migration Tool": {"Max": 0, "Remaining": 0},
            "Dataloader Bulk": {"Max": 0, "Remaining": 0},
            "Dataloader Partner": {"Max": 0, "Remaining": 0},
            "Salesforce CLI": {"Max": 0, "Remaining": 0},
        }
        return dict(sorted(body.items()))


LONG_RUNNING_SECONDS = 20.0
"""A call counts as long-running once it has been in flight this long (section 8)."""

DEVELOPER_EDITION_LONG_RUNNING = 5
"""Concurrent long-running calls a Developer Edition org allows (25 in production)."""


def concurrency_exceeded() -> ApiError:
    return ApiError.of(
        403,
        "REQUEST_LIMIT_EXCEEDED",
        "ConcurrentRequests (Concurrent API Requests) Limit exceeded.",
    )


class LongRunningGate:
    """The concurrent long-running request limit: refuse a new API call while ``max_long``
    calls have each been in flight for ``threshold`` seconds or more.

    Durations are real elapsed time (``monotonic``, injectable for tests), not org-clock time:
    advancing the org clock must not make in-flight calls look slow. Thread-safe.
    """

    def __init__(
        self,
        max_long: int = DEVELOPER_EDITION_LONG_RUNNING,
        threshold: float = LONG_RUNNING_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_long = max_long
        self.threshold = threshold
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._ids = itertools.count()
        self._started: dict[int, float] = {}

    def enter(self) -> int:
        """Admit a call (returns its ticket for :meth:`leave`) or raise 403."""
        now = self._monotonic()
        with self._lock:
            long_running = sum(1 for t in self._started.values() if now - t >= self.threshold)
            if long_running >= self.max_long:
                raise concurrency_exceeded()
            ticket = next(self._ids)
            self._started[ticket] = now
            return ticket

    def leave(self, ticket: int) -> None:
        with self._lock:
            self._started.pop(ticket, None)

    def in_flight(self) -> int:
        with self._lock:
            return len(self._started)


_STATIC_LIMITS: tuple[tuple[str, int], ...] = (
    ("ActiveScratchOrgs", 3),
    ("ConcurrentAsyncGetReportInstances", 200),
    ("ConcurrentSyncReportRuns", 20),
    ("DailyAnalyticsDataflowJobExecutions", 60),
    ("DailyAnalyticsUploadedFilesSizeMB", 51200),
    ("DailyAsyncApexExecutions", 250000),
    ("DailyAsyncApexTests", 500),
    ("DailyBulkApiBatches", 15000),
    ("DailyBulkV2QueryFileStorageMB", 976562),
    ("DailyBulkV2QueryJobs", 10000),
    ("DailyDeliveredPlatformEvents", 10000),
    ("DailyDurableGenericStreamingApiEvents", 10000),
    ("DailyDurableStreamingApiEvents", 10000),
    ("DailyGenericStreamingApiEvents", 10000),
    ("DailyScratchOrgs", 6),
    ("DailyStandardVolumePlatformEvents", 10000),
    ("DailyStreamingApiEvents", 10000),
    ("DailyWorkflowEmails", 405),
    ("DataStorageMB", 5),
    ("DurableStreamingApiConcurrentClients", 20),
    ("FileStorageMB", 20),
    ("HourlyAsyncReportRuns", 1200),
    ("HourlyDashboardRefreshes", 200),
    ("HourlyDashboardResults", 5000),
    ("HourlyDashboardStatuses", 999999999),
    ("HourlyLongTermIdMapping", 100000),
    ("HourlyODataCallout", 10000),
    ("HourlyPublishedPlatformEvents", 50000),
    ("HourlyPublishedStandardVolumePlatformEvents", 1000),
    ("HourlyShortTermIdMapping", 100000),
    ("HourlySyncReportRuns", 500),
    ("HourlyTimeBasedWorkflow", 50),
    ("MassEmail", 10),
    ("MonthlyPlatformEventsUsageEntitlement", 0),
    ("Package2VersionCreates", 6),
    ("PermissionTypes", 1000000),
    ("SingleEmail", 15),
    ("StreamingApiConcurrentClients", 20),
)
