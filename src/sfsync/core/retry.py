"""A pure retry schedule: exponential backoff with full jitter, honouring retry-after.

:meth:`RetryPolicy.decide` is a function of the attempt number, the error and a random draw,
so it is testable without sleeping. The runtime's executor is the only code that sleeps,
on the injected clock, for the :class:`Wait` it is given.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sfsync.core.errors import RateLimitError, RetryableError


@dataclass(frozen=True, slots=True)
class Wait:
    """Retry after ``seconds``."""

    seconds: float


@dataclass(frozen=True, slots=True)
class GiveUp:
    """Do not retry; ``reason`` says why (for logs and dead letters)."""

    reason: str


Decision = Wait | GiveUp


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """When and how long to wait before trying a failed call again.

    The delay before attempt ``n + 1`` (``attempt`` counts failures so far, from 1) is drawn
    uniformly from ``[0, min(max_delay, base_delay * multiplier ** (attempt - 1))]``: AWS's
    "full jitter", which spreads retrying clients apart better than equal or no jitter.
    A :class:`~sfsync.core.errors.RateLimitError` with ``retry_after`` never waits less than
    that, even past ``max_delay``: the remote side's word wins over our cap.

    Attributes:
        max_attempts: total attempts including the first; ``attempt >= max_attempts`` gives up.
        base_delay: seconds; the cap of the first retry's jitter range.
        max_delay: seconds; no jitter range grows past this.
        multiplier: growth of the range per attempt.
        deadline: seconds since the first attempt after which we give up, or ``None``.
    """

    max_attempts: int = 8
    base_delay: float = 0.5
    max_delay: float = 60.0
    multiplier: float = 2.0
    deadline: float | None = None

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base_delay < 0 or self.max_delay < 0:
            raise ValueError("delays must not be negative")
        if self.multiplier < 1:
            raise ValueError("multiplier must be at least 1")
        if self.deadline is not None and self.deadline < 0:
            raise ValueError("deadline must not be negative")

    def ceiling(self, attempt: int) -> float:
        """The upper bound of the jitter range after ``attempt`` failures."""
        # Cap the exponent first so that a large attempt count cannot overflow a float.
        exponent = min(attempt - 1, 64)
        return min(self.max_delay, self.base_delay * self.multiplier**exponent)

    def decide(
        self,
        attempt: int,
        error: BaseException,
        *,
        elapsed: float = 0.0,
        rand: Callable[[], float],
    ) -> Decision:
        """Decide what to do after the ``attempt``-th failure.

        Args:
            attempt: how many attempts have failed so far (1 after the first failure).
            error: the failure. Only :class:`RetryableError` is ever retried.
            elapsed: seconds since the first attempt started.
            rand: a source of uniform floats in ``[0, 1)``; inject ``random.Random(seed).random``.
        """
        if attempt < 1:
            raise ValueError("attempt counts failures and starts at 1")
        if not isinstance(error, RetryableError):
            return GiveUp(f"{type(error).__name__} is not retryable")
        if attempt >= self.max_attempts:
            return GiveUp(f"gave up after {attempt} attempts")
        delay = rand() * self.ceiling(attempt)
        if isinstance(error, RateLimitError) and error.retry_after is not None:
            delay = max(delay, error.retry_after)
        if self.deadline is not None and elapsed + delay > self.deadline:
            return GiveUp(f"retrying would pass the {self.deadline:g}s deadline")
        return Wait(delay)
