"""The emulator's clock: real time by default, movable by tests.

Everything in the emulator that needs the time (system fields, token expiry, date literals,
event retention, locator expiry) asks one :class:`OrgClock`. Tests advance it through the
admin endpoint instead of sleeping.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta


class OrgClock:
    """Wall-clock time plus an adjustable offset; optionally frozen.

    Thread-safe: the server's event loop and background jobs read it concurrently.
    """

    def __init__(self, *, frozen_at: datetime | None = None) -> None:
        self._lock = threading.Lock()
        self._offset = 0.0
        self._frozen: float | None = frozen_at.timestamp() if frozen_at is not None else None

    def time(self) -> float:
        """Seconds since the epoch, as the org sees it."""
        with self._lock:
            if self._frozen is not None:
                return self._frozen
            return time.time() + self._offset

    def now(self) -> datetime:
        """The org's current time, timezone-aware UTC."""
        return datetime.fromtimestamp(self.time(), tz=UTC)

    def advance(self, seconds: float) -> None:
        """Move the clock forward (or back, with a negative value)."""
        with self._lock:
            if self._frozen is not None:
                self._frozen += seconds
            else:
                self._offset += seconds

    def freeze(self, at: datetime | None = None) -> None:
        """Stop the clock at ``at`` (default: now) until :meth:`unfreeze`."""
        with self._lock:
            current = self._frozen if self._frozen is not None else time.time() + self._offset
            self._frozen = at.timestamp() if at is not None else current

    @property
    def frozen(self) -> bool:
        """True while the clock is stopped (see :meth:`freeze`)."""
        with self._lock:
            return self._frozen is not None

    def unfreeze(self) -> None:
        """Let the clock run again from where it stood."""
        with self._lock:
            if self._frozen is not None:
                self._offset = self._frozen - time.time()
                self._frozen = None


def format_datetime(moment: datetime) -> str:
    """Salesforce's wire form of a datetime: ``2024-01-15T09:30:00.000+0000`` (always UTC)."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}+0000"


def after(moment: datetime, seconds: float) -> datetime:
    return moment + timedelta(seconds=seconds)
