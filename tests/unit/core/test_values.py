"""Canonical values: what two systems hold for the same field compares equal, and only then."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sfsync.core.schema import FieldKind
from sfsync.core.values import canonical, canonical_record

K = FieldKind
SAME = [
    # (kind, as Salesforce's JSON has it, as a database driver has it)
    (K.STRING, "Acme", "Acme"),
    (K.STRING, None, ""),  # Salesforce stores empty text as null
    (K.BOOLEAN, True, 1),  # MariaDB and SQLite booleans
    (K.BOOLEAN, False, 0),
    (K.BOOLEAN, "true", True),
    (K.INTEGER, 42.0, 42),
    (K.INTEGER, "42", Decimal("42")),
    (K.DECIMAL, 0.1, Decimal("0.10")),  # a float's shortest text, scale does not matter
    (K.DECIMAL, 1234.5, Decimal("1234.50")),
    (K.FLOAT, 5, Decimal("5.0")),
    (K.DATE, "2026-05-01", date(2026, 5, 1)),
    (K.DATE, "2026-05-01", datetime(2026, 5, 1, 12, 0)),
    (K.DATETIME, "2026-05-01T10:00:00.000+0000", datetime(2026, 5, 1, 10, 0, tzinfo=UTC)),
    (K.DATETIME, "2026-05-01T10:00:00.123Z", datetime(2026, 5, 1, 10, 0, 0, 123456)),
    (
        K.DATETIME,
        "2026-05-01T12:00:00+02:00",
        datetime(2026, 5, 1, 10, 0, tzinfo=UTC),
    ),
    (K.TIME, "10:30:00.000Z", time(10, 30)),
]
DIFFERENT = [
    (K.STRING, "Acme", "acme"),
    (K.DECIMAL, 0.1, Decimal("0.11")),
    (K.BOOLEAN, True, 0),
    (K.DATE, "2026-05-01", date(2026, 5, 2)),
    (K.DATETIME, "2026-05-01T10:00:00.000Z", datetime(2026, 5, 1, 10, 0, 1, tzinfo=UTC)),
    (K.INTEGER, 42, 43),
    (K.STRING, None, " "),  # a blank is a value
]


@pytest.mark.parametrize(("kind", "salesforce", "database"), SAME)
def test_the_same_value_from_two_systems_is_equal(
    kind: FieldKind, salesforce: object, database: object
) -> None:
    assert canonical(kind, salesforce) == canonical(kind, database)


@pytest.mark.parametrize(("kind", "salesforce", "database"), DIFFERENT)
def test_different_values_stay_different(
    kind: FieldKind, salesforce: object, database: object
) -> None:
    assert canonical(kind, salesforce) != canonical(kind, database)


def test_a_value_that_does_not_fit_its_kind_is_kept_as_it_is() -> None:
    assert canonical(K.DECIMAL, "not a number") == "not a number"
    assert canonical(K.DATE, "someday") == "someday"
    assert canonical(K.BOOLEAN, "maybe") == "maybe"


def test_a_record_keeps_the_fields_asked_for_and_matches_kinds_without_case() -> None:
    kinds = {"Score__c": K.DECIMAL, "Name": K.STRING}
    record = {"score__c": 1.5, "Name": "", "Other": 1}
    assert canonical_record(kinds, record, ["score__c", "Name", "Missing"]) == {
        "score__c": Decimal("1.5"),
        "Name": None,
    }


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_a_float_equals_its_decimal_text(value: float) -> None:
    assert canonical(K.DECIMAL, value) == canonical(K.DECIMAL, Decimal(repr(value)))


@given(
    st.datetimes(timezones=st.just(UTC)),
    st.integers(min_value=-12, max_value=12),
)
def test_a_moment_is_equal_in_every_zone_and_text(moment: datetime, hours: int) -> None:
    zone = timezone(timedelta(hours=hours))
    other = moment.astimezone(zone) if moment.year > 1 and moment.year < 9999 else moment
    assert canonical(K.DATETIME, moment) == canonical(K.DATETIME, other.isoformat())
