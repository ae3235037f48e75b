"""Relative date literals (``TODAY``, ``LAST_N_DAYS:30`` ...) as half-open day ranges.

Each literal stands for a range of whole days ``[start, end)``, computed from the org's
``now`` in UTC (the emulator's users all live in UTC, so "00:00 in the user's time zone" is
00:00 UTC). Comparisons act on the range: ``=`` means inside it, ``<`` before its start,
``>`` after its end, ``<=`` before its end, ``>=`` from its start.

Choices where Salesforce depends on org settings: weeks start on Sunday (the en_US locale);
the fiscal year is the calendar year (the org default), so ``*_FISCAL_*`` literals equal
their calendar counterparts; ``LAST_N_DAYS:n`` and ``LAST_90_DAYS`` include all of today.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

DayRange = tuple[date, date]


def _month_start(day: date, months: int = 0) -> date:
    """The first day of the month ``months`` after ``day``'s month (negative: before)."""
    index = day.year * 12 + (day.month - 1) + months
    return date(index // 12, index % 12 + 1, 1)


def _quarter_start(day: date) -> date:
    return date(day.year, (day.month - 1) // 3 * 3 + 1, 1)


def _week_start(day: date) -> date:
    # date.weekday(): Monday is 0 .. Sunday is 6; weeks start on Sunday.
    return day - timedelta(days=(day.weekday() + 1) % 7)


def _days(start: date, count: int) -> DayRange:
    return start, start + timedelta(days=count)


def _months(start: date, shift: int, count: int) -> DayRange:
    return _month_start(start, shift), _month_start(start, shift + count)


def relative_range(name: str, n: int | None, now: datetime) -> DayRange:
    """The ``[start, end)`` day range of the relative literal ``name`` (``n`` its parameter).

    ``now`` must be timezone-aware; it is read in UTC.
    """
    today = now.astimezone(UTC).date()
    name = name.replace("_FISCAL", "")
    count = n if n is not None else 0
    week = _week_start(today)
    month = _month_start(today)
    quarter = _quarter_start(today)
    year = date(today.year, 1, 1)
    fixed: dict[str, DayRange] = {
        "TODAY": _days(today, 1),
        "YESTERDAY": _days(today - timedelta(days=1), 1),
        "TOMORROW": _days(today + timedelta(days=1), 1),
        "THIS_WEEK": _days(week, 7),
        "LAST_WEEK": _days(week - timedelta(days=7), 7),
        "NEXT_WEEK": _days(week + timedelta(days=7), 7),
        "LAST_90_DAYS": (today - timedelta(days=90), today + timedelta(days=1)),
        "NEXT_90_DAYS": _days(today + timedelta(days=1), 90),
        "LAST_N_DAYS": (today - timedelta(days=count), today + timedelta(days=1)),
        "NEXT_N_DAYS": _days(today + timedelta(days=1), count),
        "N_DAYS_AGO": _days(today - timedelta(days=count), 1),
        "LAST_N_WEEKS": (week - timedelta(days=7 * count), week),
        "NEXT_N_WEEKS": _days(week + timedelta(days=7), 7 * count),
        "N_WEEKS_AGO": _days(week - timedelta(days=7 * count), 7),
        "THIS_MONTH": _months(month, 0, 1),
        "LAST_MONTH": _months(month, -1, 1),
        "NEXT_MONTH": _months(month, 1, 1),
        "LAST_N_MONTHS": _months(month, -count, count),
        "NEXT_N_MONTHS": _months(month, 1, count),
        "N_MONTHS_AGO": _months(month, -count, 1),
        "THIS_QUARTER": _months(quarter, 0, 3),
        "LAST_QUARTER": _months(quarter, -3, 3),
        "NEXT_QUARTER": _months(quarter, 3, 3),
        "LAST_N_QUARTERS": _months(quarter, -3 * count, 3 * count),
        "NEXT_N_QUARTERS": _months(quarter, 3, 3 * count),
        "N_QUARTERS_AGO": _months(quarter, -3 * count, 3),
        "THIS_YEAR": _months(year, 0, 12),
        "LAST_YEAR": _months(year, -12, 12),
        "NEXT_YEAR": _months(year, 12, 12),
        "LAST_N_YEARS": _months(year, -12 * count, 12 * count),
        "NEXT_N_YEARS": _months(year, 12, 12 * count),
        "N_YEARS_AGO": _months(year, -12 * count, 12),
    }
    return fixed[name]
