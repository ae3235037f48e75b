from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sfsync.core.errors import (
    ConfigError,
    FatalError,
    RateLimitError,
    RetryableError,
    SkippableError,
)
from sfsync.core.retry import GiveUp, RetryPolicy, Wait


def _rand(value: float):  # type: ignore[no-untyped-def]
    return lambda: value


def test_first_retry_is_within_base_delay() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=30.0)
    assert policy.decide(1, RetryableError("x"), rand=_rand(0.5)) == Wait(0.5)
    assert policy.decide(1, RetryableError("x"), rand=_rand(0.999)) == Wait(0.999)


def test_range_doubles_then_caps() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=10.0, multiplier=2.0, max_attempts=100)
    ceilings = [policy.ceiling(n) for n in range(1, 7)]
    assert ceilings == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert policy.ceiling(10_000) == 10.0  # no overflow


@pytest.mark.parametrize(
    "error", [ConfigError("bad"), FatalError("dead"), SkippableError("one"), ValueError("bug")]
)
def test_non_retryable_errors_give_up_at_once(error: BaseException) -> None:
    decision = RetryPolicy().decide(1, error, rand=_rand(0.5))
    assert isinstance(decision, GiveUp)
    assert "not retryable" in decision.reason


def test_attempts_run_out() -> None:
    policy = RetryPolicy(max_attempts=3)
    assert isinstance(policy.decide(2, RetryableError("x"), rand=_rand(0.1)), Wait)
    decision = policy.decide(3, RetryableError("x"), rand=_rand(0.1))
    assert decision == GiveUp("gave up after 3 attempts")


def test_retry_after_is_a_floor_even_past_the_cap() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=5.0)
    err = RateLimitError("slow down", retry_after=120.0)
    assert policy.decide(1, err, rand=_rand(0.2)) == Wait(120.0)
    assert policy.decide(1, RateLimitError("no hint"), rand=_rand(0.2)) == Wait(0.2)


def test_deadline_gives_up_instead_of_overshooting() -> None:
    policy = RetryPolicy(base_delay=10.0, deadline=30.0)
    assert isinstance(policy.decide(1, RetryableError("x"), elapsed=25.0, rand=_rand(0.9)), GiveUp)
    assert policy.decide(1, RetryableError("x"), elapsed=25.0, rand=_rand(0.4)) == Wait(4.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_attempts": 0}, "max_attempts"),
        ({"base_delay": -1.0}, "negative"),
        ({"multiplier": 0.5}, "multiplier"),
        ({"deadline": -1.0}, "deadline"),
    ],
)
def test_invalid_policies_are_refused(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_attempt_must_count_from_one() -> None:
    with pytest.raises(ValueError, match="starts at 1"):
        RetryPolicy().decide(0, RetryableError("x"), rand=_rand(0.1))


@given(
    base=st.floats(min_value=0.0, max_value=10.0),
    cap=st.floats(min_value=0.0, max_value=600.0),
    multiplier=st.floats(min_value=1.0, max_value=4.0),
    attempt=st.integers(min_value=1, max_value=1000),
    seed=st.integers(),
    retry_after=st.none() | st.floats(min_value=0.0, max_value=3600.0),
)
def test_schedule_stays_in_bounds(
    base: float, cap: float, multiplier: float, attempt: int, seed: int, retry_after: float | None
) -> None:
    policy = RetryPolicy(base_delay=base, max_delay=cap, multiplier=multiplier, max_attempts=10_000)
    err: RetryableError = (
        RateLimitError("x", retry_after=retry_after)
        if retry_after is not None
        else RetryableError("x")
    )
    decision = policy.decide(attempt, err, rand=random.Random(seed).random)
    assert isinstance(decision, Wait)
    ceiling = min(cap, base * multiplier ** min(attempt - 1, 64))
    assert decision.seconds >= 0.0
    if retry_after is None:
        assert decision.seconds <= ceiling
    else:
        assert decision.seconds >= retry_after
        assert decision.seconds <= max(ceiling, retry_after)


@given(seed=st.integers(), attempt=st.integers(min_value=1, max_value=20))
def test_same_seed_same_schedule(seed: int, attempt: int) -> None:
    policy = RetryPolicy(max_attempts=100)
    a = policy.decide(attempt, RetryableError("x"), rand=random.Random(seed).random)
    b = policy.decide(attempt, RetryableError("x"), rand=random.Random(seed).random)
    assert a == b
