"""The on-disk result spool of Bulk query jobs: any row range, exact bytes, any text."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from sfsync.emulator.bulk.query import CsvWriter, ResultSpool

COLUMNS = [(("Id",), "text"), (("Name",), "text"), (("IsDeleted",), "boolean")]

names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(st.tuples(names, st.booleans()), min_size=1, max_size=40),
    chunk=st.integers(min_value=1, max_value=9),
    first=st.integers(min_value=0, max_value=45),
    count=st.integers(min_value=0, max_value=45),
)
def test_any_row_range_reads_back_exactly(
    rows: list[tuple[str, bool]], chunk: int, first: int, count: int
) -> None:
    records = [{"Id": f"001{i:015d}", "Name": n, "IsDeleted": d} for i, (n, d) in enumerate(rows)]
    writer = CsvWriter(COLUMNS)
    spool = ResultSpool()
    lines: list[bytes] = []
    for start in range(0, len(records), chunk):
        batch = records[start : start + chunk]
        text, ends = writer.rows_with_ends(batch)
        spool.append(text, ends)
        previous = 0
        for end in ends:
            lines.append(text[previous:end].encode("utf-8"))
            previous = end
    spool.finish()
    try:
        assert spool.rows == len(records)
        assert b"".join(spool.read(first, count)) == b"".join(lines[first : first + count])
    finally:
        spool.close()


def test_rows_with_ends_match_rows() -> None:
    records = [{"Id": "1", "Name": 'Zürich "AG"\nline', "IsDeleted": False}]
    writer = CsvWriter(COLUMNS)
    text, ends = writer.rows_with_ends(records)
    assert text == CsvWriter(COLUMNS).rows(records)
    assert ends == [len(text)]
