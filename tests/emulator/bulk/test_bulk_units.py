"""The bulk package's pure pieces: CSV codec, error format, allocations, job failure paths."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sfsync.emulator.bulk.csvcodec import CsvInputError, parse_csv, render_rows
from sfsync.emulator.bulk.ingest import IngestJob, format_error, process_ingest
from sfsync.emulator.bulk.jobs import Allocations
from sfsync.emulator.bulk.query import decode_locator, encode_locator
from sfsync.emulator.clock import OrgClock
from sfsync.emulator.errors import ApiError
from sfsync.emulator.schema.loader import load_schema


def test_line_breaks_inside_quotes_do_not_count_as_line_endings() -> None:
    header, rows = parse_csv(b'Name,Description\n"A","one\r\ntwo"\n', line_ending="LF")
    assert header == ["Name", "Description"]
    assert rows == [["A", "one\r\ntwo"]]
    with pytest.raises(CsvInputError, match="Current LineEnding setting is CRLF"):
        parse_csv(b"Name\r\nA\nB\r\n", line_ending="CRLF")


def test_ragged_rows_and_empty_uploads_are_refused() -> None:
    with pytest.raises(CsvInputError, match="Row 3 has 1 columns"):
        parse_csv(b"A,B\n1,2\n3\n")
    with pytest.raises(CsvInputError, match="No header"):
        parse_csv(b"")


cell = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00\r"))


@given(
    st.lists(st.lists(cell, min_size=2, max_size=2), min_size=1, max_size=5),
    st.sampled_from(["COMMA", "TAB", "PIPE", "SEMICOLON", "CARET", "BACKQUOTE"]),
    st.sampled_from(["LF", "CRLF"]),
)
def test_render_then_parse_round_trips(
    table: list[list[str]], delimiter: str, line_ending: str
) -> None:
    # Values without CR: a bare CR inside a quoted value is legal CSV but Salesforce's line
    # ending check (and ours) looks only at line breaks outside quotes anyway.
    text = render_rows([["H1", "H2"], *table], delimiter=delimiter, line_ending=line_ending)
    header, rows = parse_csv(text.encode(), delimiter=delimiter, line_ending=line_ending)
    assert header == ["H1", "H2"]
    assert rows == table


@given(st.integers(min_value=0, max_value=10**12))
def test_locators_round_trip(offset: int) -> None:
    assert decode_locator(encode_locator(offset)) == offset


def test_error_format() -> None:
    with_fields = ApiError.of(400, "REQUIRED_FIELD_MISSING", "Required fields are missing: [Name]",
                              ("Name",))  # fmt: skip
    assert format_error(with_fields) == (
        "REQUIRED_FIELD_MISSING:Required fields are missing: [Name]:Name --"
    )
    without = ApiError.of(400, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")
    assert format_error(without) == "INVALID_CROSS_REFERENCE_KEY:invalid cross reference id:--"


def test_allocations_roll_over_on_the_org_clock() -> None:
    clock = OrgClock()
    allocations = Allocations(clock, ingest_records=10, batches=2)
    assert allocations.take_ingest(10) is None
    refused = allocations.take_ingest(1)
    assert refused is not None
    assert refused.startswith("LIMIT_EXCEEDED")
    clock.advance(24 * 3600 + 1)
    assert allocations.take_ingest(10) is None
    allocations.take_batches(1)
    with pytest.raises(ApiError) as excinfo:
        allocations.take_batches(1)
    assert excinfo.value.status == 403


class BrokenStore:
    """A store whose transactions fail as a full disk would."""

    @contextmanager
    def transaction(self) -> Iterator[None]:
        if self.full:
            raise OSError("disk full")
        yield  # pragma: no cover

    full = True

    def insert(self, *args: Any, **kwargs: Any) -> str:  # pragma: no cover
        raise AssertionError("not reached")


def test_an_unexpected_failure_fails_the_job_instead_of_hanging() -> None:
    clock = OrgClock()
    job = IngestJob(
        id="750xx0000000001AAA", kind="ingest", object="Account", operation="insert",
        api_version="59.0", created_by="005xx0000000001AAA", client_id=None,
        created_date="", system_modstamp="", state="UploadComplete", created_at=clock.time(),
        uploads=[b"Name\nA\n"],
    )  # fmt: skip
    process_ingest(job, load_schema(None), BrokenStore(), Allocations(clock))
    assert job.state == "Failed"
    assert job.error_message == "UNKNOWN_EXCEPTION : disk full"
    assert job.terminal_at is not None
