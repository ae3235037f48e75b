"""Durations as people write them, and back."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic_core import PydanticCustomError

from sfsync.config.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (30, 30),
        (2.5, 2.5),
        ("30", 30),
        ("30s", 30),
        ("250ms", 0.25),
        ("5m", 300),
        ("1h", 3600),
        ("1h30m", 5400),
        ("1h 30m", 5400),
        ("2d", 172800),
        ("1.5h", 5400),
        ("10S", 10),
        (0, 0),
        (timedelta(minutes=2), 120),
        ("PT30S", 30),
        ("pt1h30m", 5400),
        ("P1D", 86400),
    ],
)
def test_parses(value: object, seconds: float) -> None:
    assert parse_duration(value) == timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("5 minutes", "'5 minutes' is not a duration"),
        ("5x", "is not a duration"),
        ("m5", "is not a duration"),
        ("", "cannot be empty"),
        (-1, "cannot be negative"),
        ("-5s", "is not a duration"),
        ("-5", "cannot be negative"),
        (True, "cannot be true or false"),
        ([1], "must be a number of seconds"),
        (float("nan"), "must be finite"),
        ("PXYZ", "is not an ISO 8601 duration"),
        (8.64e13, "longer than 10 years"),
        ("99999999999d", "longer than 10 years"),
    ],
)
def test_rejects_with_a_fix(value: object, message: str) -> None:
    with pytest.raises(PydanticCustomError) as caught:
        parse_duration(value)
    assert caught.value.type == "duration"
    assert message in caught.value.message()
    assert "30s" in str((caught.value.context or {})["fix"])


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (timedelta(0), "0s"),
        (timedelta(seconds=90), "1m30s"),
        (timedelta(milliseconds=250), "250ms"),
    ],
)
def test_formats(value: timedelta, text: str) -> None:
    assert format_duration(value) == text


@given(st.integers(min_value=0, max_value=10**10))
def test_format_reads_back(millis: int) -> None:
    value = timedelta(milliseconds=millis)
    assert parse_duration(format_duration(value)) == value
