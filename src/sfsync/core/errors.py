"""The error taxonomy, named for what the engine does with each error.

Connectors classify foreign errors (HTTP statuses, Salesforce error codes, SQLSTATEs) into
these classes once, at their edge, and chain the original with ``raise ... from``::

    SyncError
    ├── ConfigError          refuse to start; CLI exit code 2; never retried
    ├── RetryableError       back off and retry the same call (5xx, timeouts, UNABLE_TO_LOCK_ROW)
    │   └── RateLimitError   retry no sooner than ``retry_after`` (REQUEST_LIMIT_EXCEEDED, 429)
    ├── SkippableError       this event only: dead-letter it with the reason and carry on
    ├── ConflictError        both sides changed; park the event for review
    └── FatalError           stop the pipeline as FAILED; the message says why and how to fix it

Every error carries a ``hint`` (how to fix it) and an optional ``code`` (the source system's own
error code, e.g. ``"INVALID_FIELD"``), so logs and the dead-letter store say more than a class name.
"""

from __future__ import annotations


class SyncError(Exception):
    """Root of every error sfsync raises on purpose.

    Args:
        message: what went wrong, in the user's terms.
        hint: how to fix it; shown after the message.
        code: the source system's own error code, where it has one.
    """

    def __init__(self, message: str, *, hint: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.code = code

    def __str__(self) -> str:
        text = f"[{self.code}] {self.message}" if self.code else self.message
        return f"{text} (fix: {self.hint})" if self.hint else text

    def __reduce__(self) -> tuple[object, ...]:
        # Keep keyword-only attributes across pickling (process pools, dead-letter payloads).
        return (_rebuild, (type(self), self.message, self.hint, self.code, self.__dict__))


def _rebuild(
    cls: type[SyncError], message: str, hint: str | None, code: str | None, state: dict[str, object]
) -> SyncError:
    err = cls.__new__(cls)
    SyncError.__init__(err, message, hint=hint, code=code)
    err.__dict__.update(state)
    return err


class ConfigError(SyncError):
    """The configuration cannot work; refuse to start. Never retried."""


class RetryableError(SyncError):
    """A transient failure: the same call may succeed later."""


class RateLimitError(RetryableError):
    """The remote side asked us to slow down.

    Args:
        retry_after: seconds to wait at least before the next attempt, when the remote said so.
    """

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        hint: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint, code=code)
        self.retry_after = retry_after


class SkippableError(SyncError):
    """This one event cannot be applied (bad value, validation rule); dead-letter it, go on."""


class ConflictError(SyncError):
    """Both sides changed the record since the last sync and policy says a human decides."""


class FatalError(SyncError):
    """The pipeline cannot go on (credentials rejected after refresh, object gone)."""
