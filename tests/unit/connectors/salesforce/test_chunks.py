"""Id arithmetic and the sizing of Id ranges for chunked Bulk snapshots."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sfsync.connectors.salesforce.chunks import IdRange, IdRanges, id_number, id_text
from sfsync.emulator.ids import ID_ALPHABET, to_18

ids15 = st.text(alphabet=ID_ALPHABET, min_size=15, max_size=15)


@given(ids15)
def test_an_id_and_its_number_round_trip_with_the_salesforce_suffix(short: str) -> None:
    # The emulator's suffix is the reference (written from the published algorithm).
    assert id_text(id_number(short)) == to_18(short)
    assert id_number(to_18(short)) == id_number(short)


@given(ids15, ids15)
def test_number_order_is_id_text_order(a: str, b: str) -> None:
    assert (id_number(a) < id_number(b)) == (to_18(a) < to_18(b))


@pytest.mark.parametrize("bad", ["001", "001xx000000001!", "001xx0000000001AAAA"])
def test_a_value_that_is_no_id_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="Salesforce Id"):
        id_number(bad)


def _all(ranges: IdRanges, counts: list[int]) -> list[IdRange]:
    given_ranges = []
    while (chunk := ranges.next()) is not None:
        given_ranges.append(chunk)
        ranges.observe(counts.pop(0) if counts else 0)
    return given_ranges


def test_ranges_are_consecutive_open_at_both_ends_and_sized_from_the_count() -> None:
    first, last = (
        id_text(id_number("001xx0000000000") + 1),
        id_text(id_number("001xx0000000000") + 1000),
    )
    ranges = IdRanges(first, last, 1000, target=300, first_target=100, growth=2.0)

    chunks = _all(ranges, [100, 200, 300, 300])

    assert chunks[0].start is None  # nothing below the first Id is left out
    assert chunks[-1].end is None  # nor anything created above the last one meanwhile
    for before, after in itertools.pairwise(chunks):
        assert before.end == after.start  # no gap, no overlap
    widths = [id_number(c.end) - id_number(c.start or first) for c in chunks[:-1] if c.end]
    assert widths[:3] == [100, 200, 300]  # growing twofold up to the target
    assert len(chunks) == 5


def test_the_next_range_follows_the_density_observed() -> None:
    base = id_number("001xx0000000000")
    # The count says 1 record per Id number; the first range turns out 10 times sparser.
    ranges = IdRanges(
        id_text(base), id_text(base + 100_000), 100_000, target=1000, first_target=1000
    )
    first = ranges.next()
    assert first is not None
    assert first.end is not None
    ranges.observe(100)
    second = ranges.next()
    assert second is not None
    assert second.start is not None
    assert second.end is not None
    # Four times wider at most per step: one odd range does not make the next absurd.
    assert id_number(second.end) - id_number(second.start) == 4000


def test_a_small_object_is_one_open_range() -> None:
    ranges = IdRanges("001xx0000000001AAA", "001xx0000000009AAA", 9, target=100, first_target=50)
    assert ranges.next() == IdRange(None, None)
    assert ranges.next() is None
