"""Bulk API 2.0 CSV, both ways: the job's upload built from record writes, and the key, Id and
flag (or error) read back from a result file.

Upload (:func:`build_csv`)
    The key column first (the external id field, or ``Id``), then the union of the rows'
    fields; a row without a field leaves its cell empty, which Bulk reads as "leave
    unchanged"; cells as :func:`~.records.csv_cell` writes them (``#N/A`` for a null). Each row
    is one joined line unless a cell holds a comma, a quote or a line break, which the csv
    module then quotes: most rows never reach it.

Results (:func:`read_results`)
    ``successfulResults`` and ``failedResults`` repeat the uploaded columns after ``sf__Id``
    and ``sf__Created`` (or ``sf__Error``), every cell quoted. Only the three leading cells of
    a row are needed, and only they are split off; rows that are not that simple go through
    the csv module.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from sfsync.connectors.salesforce.records import NULL_CELL, csv_cell
from sfsync.connectors.salesforce.writeplan import RowWrite

_NATIVE = frozenset({str, int, float})
"""Cell types the csv module writes as Bulk reads them (``str`` of an int or float is its
shortest exact form); any other type goes through :func:`~.records.csv_cell`."""
_NATIVE_OR_NULL = frozenset({str, int, float, type(None)})


def build_csv(rows: Sequence[RowWrite], key_column: str, *, with_values: bool) -> bytes:
    """The job's CSV: ``key_column`` first, then every field any row sets."""
    names: tuple[str, ...] = ()
    if with_values:
        shapes = dict.fromkeys(tuple(row.values) for row in rows)  # in order of appearance
        columns: dict[str, None] = {}
        for shape in shapes:
            columns.update(dict.fromkeys(shape))
        # Keep the first row's order when it has every column (the usual case).
        first = tuple(rows[0].values) if rows else ()
        names = first if len(first) == len(columns) else tuple(columns)
    lines = [",".join((key_column, *names))]
    append = lines.append
    cell = csv_cell
    native, native_or_null, null = _NATIVE, _NATIVE_OR_NULL, NULL_CELL
    commas = len(names)
    quoted = io.StringIO()
    # A "\r\n" terminator makes the writer quote a cell holding either character (it quotes
    # only the terminator's characters); each row's terminator is cut off below.
    quote = csv.writer(quoted, lineterminator="\r\n").writerow
    for row in rows:
        values = row.values
        if len(values) == commas and tuple(values) == names:
            cells: list[object] = [row.key, *values.values()]
        else:  # absent -> empty: the field is left unchanged
            get = values.get
            cells = [row.key, *[get(name, "") for name in names]]
        types = set(map(type, cells))
        if not types <= native:
            if types <= native_or_null:
                cells = [null if c is None else c for c in cells]
            else:
                cells = [c if type(c) is str else cell(c) for c in cells]
        line = ",".join(map(str, cells))
        if line.count(",") != commas or '"' in line or "\n" in line or "\r" in line:
            # A cell holds a comma, a quote or a line break: let the csv module quote it.
            quoted.seek(0)
            quoted.truncate()
            quote(cells)
            line = quoted.getvalue()[:-2]
        append(line)
    append("")
    return "\n".join(lines).encode("utf-8")


def read_results(text: str, key_column: str, extra: str) -> dict[str, tuple[str, str]]:
    """Key -> ``(sf__Id, extra column)`` of a result file (``extra`` is ``sf__Created`` or
    ``sf__Error``); only the columns needed are picked out of each row."""
    text = text.replace("\x00", "")
    head, _, body = text.partition("\n")
    header = next(csv.reader([head]), None)
    if header is None or key_column not in header:
        return {}
    k, i, x = header.index(key_column), header.index("sf__Id"), header.index(extra)
    width = len(header)
    if "\r" in text or (k, i, x) != (2, 0, 1):
        reader = csv.reader(io.StringIO(body))
        return {row[k]: (row[i], row[x]) for row in reader if len(row) == width}
    # The usual layout (sf__Id, the extra column, then the key, which the job's CSV put first)
    # and LF line endings: only the three leading cells of a row are split off, several times
    # cheaper than the csv module splitting every cell. Salesforce quotes every cell of a
    # result file ("001...","true","K-1",...): a quote inside a cell is doubled, so a piece
    # between '","' separators that holds no quote is a whole cell. A line with unbalanced
    # quotes (a quoted line break) is joined with the next ones; anything unusual goes
    # through the csv module.
    out: dict[str, tuple[str, str]] = {}
    pending: str | None = None
    for line in body.split("\n"):
        if pending is not None:
            line = pending = f"{pending}\n{line}"
            if line.count('"') % 2:
                continue
            pending = None
        elif not line:
            continue
        elif line.count('"') % 2:
            pending = line
            continue
        elif line[0] == '"':
            cells = line.split('","', 3)
            if len(cells) == 3 and cells[2].endswith('"'):
                cells[2] = cells[2][:-1]
            if len(cells) >= 3 and '"' not in f"{cells[0][1:]}{cells[1]}{cells[2]}":
                out[cells[2]] = (cells[0][1:], cells[1])
                continue
        elif '"' not in line:
            if line.count(",") == width - 1:
                cells = line.split(",", 3)
                out[cells[2]] = (cells[0], cells[1])
            continue
        row = next(csv.reader([line]))
        if len(row) == width:
            out[row[k]] = (row[i], row[x])
    return out
