"""CSV as the Bulk APIs speak it (section 4.4 of the wire reference).

Reading (ingest uploads): UTF-8, a header row of field names, the job's column delimiter, and
the job's line ending, which must match the data: an ``LF`` job whose data has ``CRLF`` line
breaks (or the reverse) fails as Salesforce fails it, with ``ClientInputError : LineEnding is
invalid on user data. Current LineEnding setting is LF``. Values are not trimmed; a quoted
value may contain the delimiter, line breaks and doubled ``""`` quotes.

Writing (results and query output): every value double-quoted, ``"`` doubled, the job's
delimiter and line ending. Salesforce's rendering of a null in query results is UNCONFIRMED;
the emulator writes an empty quoted value (``""``), which every client reads as empty.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence

from sfsync.emulator.errors import ApiError

DELIMITERS: dict[str, str] = {
    "COMMA": ",",
    "TAB": "\t",
    "PIPE": "|",
    "SEMICOLON": ";",
    "CARET": "^",
    "BACKQUOTE": "`",
}
"""``columnDelimiter`` names -> the character."""

LINE_ENDINGS: dict[str, str] = {"LF": "\n", "CRLF": "\r\n"}
"""``lineEnding`` names -> the characters."""


_QUOTED = re.compile(r'"[^"]*"')


class CsvInputError(ValueError):
    """Uploaded data the job cannot read; ``str()`` is the job's ``errorMessage``."""


def parse_csv(
    data: bytes, *, delimiter: str = "COMMA", line_ending: str = "LF"
) -> tuple[list[str], list[list[str]]]:
    """Split an upload into its header and rows (each row as many values as the header).

    Raises :class:`CsvInputError` for data that is not UTF-8, has no header, has rows of the
    wrong width, or uses the other line ending than the job declares.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise CsvInputError("ClientInputError : Data is not valid UTF-8") from None
    _check_line_ending(text, line_ending)
    reader = csv.reader(
        io.StringIO(text, newline=""),
        delimiter=DELIMITERS[delimiter],
        quotechar='"',
        doublequote=True,
        strict=True,
    )
    try:
        rows = [row for row in reader if row]
    except csv.Error as exc:
        raise CsvInputError(f"ClientInputError : CSV could not be parsed: {exc}") from None
    if not rows:
        raise CsvInputError("ClientInputError : No header row found in the data")
    header, body = rows[0], rows[1:]
    for number, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise CsvInputError(
                f"ClientInputError : Row {number} has {len(row)} columns; "
                f"the header has {len(header)}"
            )
    return header, body


def _check_line_ending(text: str, line_ending: str) -> None:
    if '"' not in text:
        # Fast path: without quotes every line break is a row break.
        crlf = "\r\n" in text
        bare_lf = text.count("\n") > text.count("\r\n")
        _raise_if_mismatched(line_ending, crlf=crlf, bare_lf=bare_lf)
        return
    # Only line breaks outside quoted values count: a value may itself contain either kind.
    # Each quoted run becomes one NUL, so the character before a line break stays what it
    # was (a quote is not a CR); an unclosed quote runs to the end, as in the reader.
    outside = _QUOTED.sub("\0", text)
    quote = outside.find('"')
    if quote >= 0:
        outside = outside[:quote]
    crlf = "\r\n" in outside
    bare_lf = outside.count("\n") > outside.count("\r\n")
    _raise_if_mismatched(line_ending, crlf=crlf, bare_lf=bare_lf)


def _raise_if_mismatched(line_ending: str, *, crlf: bool, bare_lf: bool) -> None:
    if (line_ending == "LF" and crlf) or (line_ending == "CRLF" and bare_lf):
        raise CsvInputError(
            "ClientInputError : LineEnding is invalid on user data. "
            f"Current LineEnding setting is {line_ending}"
        )


def quote(value: str) -> str:
    """``value`` double-quoted with inner quotes doubled."""
    return '"' + value.replace('"', '""') + '"'


def render_rows(
    rows: Iterable[Sequence[str]], *, delimiter: str = "COMMA", line_ending: str = "LF"
) -> str:
    """Rows of already-textual values, every value quoted, each row ended by the line ending."""
    sep = DELIMITERS[delimiter]
    end = LINE_ENDINGS[line_ending]
    between = '"' + sep + '"'
    out: list[str] = []
    append = out.append
    # Joined whole rather than quoted cell by cell: only a row holding a quote needs its
    # values escaped (a result file is a row per record, and this is most of its cost).
    for row in rows:
        if not row:
            append(end)
        elif '"' in sep.join(row):
            append('"' + between.join([v.replace('"', '""') for v in row]) + '"' + end)
        else:
            append('"' + between.join(row) + '"' + end)
    return "".join(out)


def validate_format(body: dict[str, object]) -> tuple[str, str]:
    """The job body's ``columnDelimiter`` and ``lineEnding`` (defaults COMMA and LF), or 400
    ``INVALIDJOB``-style errors naming the bad value (error code UNCONFIRMED)."""
    delimiter = body.get("columnDelimiter") or "COMMA"
    line_ending = body.get("lineEnding") or "LF"
    if not isinstance(delimiter, str) or delimiter not in DELIMITERS:
        raise ApiError.of(400, "INVALIDJOB", f"Invalid value for columnDelimiter: {delimiter}")
    if not isinstance(line_ending, str) or line_ending not in LINE_ENDINGS:
        raise ApiError.of(400, "INVALIDJOB", f"Invalid value for lineEnding: {line_ending}")
    content_type = body.get("contentType") or "CSV"
    if content_type != "CSV":
        raise ApiError.of(400, "INVALIDJOB", f"Invalid value for contentType: {content_type}")
    return delimiter, line_ending
