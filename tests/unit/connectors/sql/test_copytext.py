"""The text COPY encoding of a column: what PostgreSQL's text format reads back as the value."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from sfsync.connectors.sql.copytext import text_column


def test_nulls_text_and_booleans() -> None:
    assert text_column([None, None]) == ["\\N", "\\N"]
    assert text_column(["a", None, ""]) == ["a", "\\N", ""]  # an empty string is not NULL
    assert text_column([True, None, False]) == ["t", "\\N", "f"]


def test_text_with_separators_and_backslashes_is_escaped() -> None:
    assert text_column(["tab\there", "line\nbreak\r", "back\\slash", None, "plain"]) == [
        "tab\\there",
        "line\\nbreak\\r",
        "back\\\\slash",
        "\\N",
        "plain",
    ]


def test_other_values_are_their_text() -> None:
    at = datetime(2024, 2, 29, 23, 59, 59, 123000, tzinfo=UTC)
    assert text_column([1.5, 10**20, None, Decimal("1E+2")]) == ["1.5", str(10**20), "\\N", "1E+2"]
    assert text_column([at, date(2024, 2, 29)]) == [str(at), "2024-02-29"]
    # JSON text next to nothing: escaped like any text.
    assert text_column(['{"a":"x\\\\y"}', None]) == ['{"a":"x\\\\\\\\y"}', "\\N"]
