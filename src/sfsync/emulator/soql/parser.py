"""Text to :mod:`.ast`: the lark LALR parser and the transformer that builds typed nodes.

The grammar (``grammar.lark``) is loaded once per process. The transformer runs inside the
LALR parse (no intermediate parse tree), decoding literals as it goes. Errors come out as
:class:`~.messages.SoqlSyntaxError` carrying the position; :func:`parse_query` turns them
into the ``MALFORMED_QUERY`` :class:`~sfsync.emulator.errors.ApiError` Salesforce answers with.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone
from importlib import resources
from typing import Any

from lark import Lark, Token, Transformer
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, VisitError

from . import ast as a
from .messages import SoqlSyntaxError, malformed, to_api_error, unexpected

#: Relative date literals without a parameter (``TODAY``) and with one (``LAST_N_DAYS:n``);
#: the ranges they stand for are computed in :mod:`.dates`.
RELATIVE_DATES = frozenset(
    {
        "YESTERDAY", "TODAY", "TOMORROW", "LAST_WEEK", "THIS_WEEK", "NEXT_WEEK", "LAST_MONTH",
        "THIS_MONTH", "NEXT_MONTH", "LAST_90_DAYS", "NEXT_90_DAYS", "THIS_QUARTER",
        "LAST_QUARTER", "NEXT_QUARTER", "THIS_YEAR", "LAST_YEAR", "NEXT_YEAR",
        "THIS_FISCAL_QUARTER", "LAST_FISCAL_QUARTER", "NEXT_FISCAL_QUARTER", "THIS_FISCAL_YEAR",
        "LAST_FISCAL_YEAR", "NEXT_FISCAL_YEAR",
    }
)  # fmt: skip
RELATIVE_DATES_N = frozenset(
    {
        "LAST_N_DAYS", "NEXT_N_DAYS", "N_DAYS_AGO", "LAST_N_WEEKS", "NEXT_N_WEEKS",
        "N_WEEKS_AGO", "LAST_N_MONTHS", "NEXT_N_MONTHS", "N_MONTHS_AGO", "LAST_N_QUARTERS",
        "NEXT_N_QUARTERS", "N_QUARTERS_AGO", "LAST_N_YEARS", "NEXT_N_YEARS", "N_YEARS_AGO",
        "LAST_N_FISCAL_QUARTERS", "NEXT_N_FISCAL_QUARTERS", "N_FISCAL_QUARTERS_AGO",
        "LAST_N_FISCAL_YEARS", "NEXT_N_FISCAL_YEARS", "N_FISCAL_YEARS_AGO",
    }
)  # fmt: skip

_ESCAPES = {"'": "'", '"': '"', "\\": "\\", "n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f"}
_ESCAPE_RE = re.compile(r"\\(u[0-9a-fA-F]{4}|.)", re.DOTALL)
_DATETIME_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:(Z)|([+-])(\d{2}):?(\d{2}))",
    re.IGNORECASE,
)


def _pos(token: Token) -> a.Pos:
    return a.Pos(token.line or 1, token.column or 1)


def unescape(body: str, pos: a.Pos) -> str:
    """Undo SOQL string escapes; ``\\%`` and ``\\_`` stay escaped for LIKE."""

    def replace(match: re.Match[str]) -> str:
        code = match.group(1)
        if code in ("%", "_"):
            return "\\" + code
        if code[0] == "u" and len(code) == 5:
            return chr(int(code[1:], 16))
        if code in _ESCAPES:
            return _ESCAPES[code]
        raise malformed(
            pos,
            f"Invalid string literal '{body}'. Illegal character sequence '\\{code}' in string "
            "literal.",
        )

    return _ESCAPE_RE.sub(replace, body)


def _parse_datetime(text: str, pos: a.Pos) -> datetime:
    match = _DATETIME_RE.fullmatch(text)
    if match is None:  # pragma: no cover - the terminal's regex is the same
        raise unexpected(pos, text)
    year, month, day, hour, minute, second, frac, zulu, sign, oh, om = match.groups()
    tz = UTC
    if not zulu:
        delta = timedelta(hours=int(oh), minutes=int(om))
        tz = timezone(-delta if sign == "-" else delta)
    micros = int((frac or "0")[:6].ljust(6, "0"))
    try:
        moment = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), micros, tz
        )
    except ValueError:
        raise unexpected(pos, text) from None
    return moment.astimezone(UTC)


def _tagged(tag: str, *values: object) -> tuple[object, ...]:
    return (tag, *values)


class _Builder(Transformer[Token, Any]):
    """Builds :mod:`.ast` nodes bottom-up; clauses come back as tagged tuples that
    :meth:`query` assembles."""

    # -- names and calls
    def field_ref(self, items: list[Token]) -> a.FieldRef:
        return a.FieldRef(tuple(str(t) for t in items), _pos(items[0]))

    def func_call(self, items: list[Any]) -> a.FuncCall:
        name = items[0]
        arg = items[1] if len(items) > 1 else None
        return a.FuncCall(str(name).upper(), arg, _pos(name))

    # -- literals
    def string(self, items: list[Token]) -> a.StringLit:
        pos = _pos(items[0])
        return a.StringLit(unescape(str(items[0])[1:-1], pos), pos)

    def number(self, items: list[Token]) -> a.NumberLit:
        text = str(items[0])
        value = int(text) if re.fullmatch(r"[+-]?\d+", text) else float(text)
        return a.NumberLit(value, _pos(items[0]))

    def datetime(self, items: list[Token]) -> a.DateTimeLit:
        pos = _pos(items[0])
        return a.DateTimeLit(_parse_datetime(str(items[0]), pos), pos)

    def time(self, items: list[Token]) -> a.TimeLit:
        pos = _pos(items[0])
        text = str(items[0])
        hours, minutes, rest = text[:-1].split(":")
        seconds, _, fraction = rest.partition(".")
        if int(hours) > 23 or int(minutes) > 59 or int(seconds) > 59:
            raise unexpected(pos, text)
        millis = (fraction + "000")[:3]
        return a.TimeLit(f"{hours}:{minutes}:{seconds}.{millis}Z", pos)

    def date(self, items: list[Token]) -> a.DateLit:
        pos = _pos(items[0])
        try:
            return a.DateLit(date.fromisoformat(str(items[0])), pos)
        except ValueError:
            raise unexpected(pos, str(items[0])) from None

    def date_n(self, items: list[Token]) -> a.RelativeDateLit:
        pos = _pos(items[0])
        name, _, n = str(items[0]).partition(":")
        if name.upper() not in RELATIVE_DATES_N:
            raise unexpected(pos, name)
        return a.RelativeDateLit(name.upper(), int(n.strip()), pos)

    def null(self, items: list[Token]) -> a.NullLit:
        return a.NullLit(_pos(items[0]))

    def word(self, items: list[Token]) -> a.Literal:
        pos = _pos(items[0])
        word = str(items[0]).upper()
        if word in ("TRUE", "FALSE"):
            return a.BoolLit(word == "TRUE", pos)
        if word in RELATIVE_DATES:
            return a.RelativeDateLit(word, None, pos)
        if word in RELATIVE_DATES_N:
            raise malformed(pos, f"Invalid date literal: {items[0]} requires a parameter")
        raise unexpected(pos, str(items[0]))

    def value_list(self, items: list[a.Literal]) -> tuple[a.Literal, ...]:
        return tuple(items)

    # -- conditions
    def compare(self, items: list[Any]) -> a.Compare:
        op = str(items[1])
        return a.Compare(items[0], "!=" if op == "<>" else op, items[2])

    def like(self, items: list[Any]) -> a.Compare:
        return a.Compare(items[0], "LIKE", items[1])

    def in_list(self, items: list[Any]) -> a.InList:
        return a.InList(items[0], "IN", items[1])

    def not_in_list(self, items: list[Any]) -> a.InList:
        return a.InList(items[0], "NOT IN", items[1])

    def includes(self, items: list[Any]) -> a.InList:
        return a.InList(items[0], "INCLUDES", items[1])

    def excludes(self, items: list[Any]) -> a.InList:
        return a.InList(items[0], "EXCLUDES", items[1])

    def semi_join(self, items: list[Any]) -> a.SemiJoin:
        return a.SemiJoin(items[0], items[1], negated=False)

    def anti_join(self, items: list[Any]) -> a.SemiJoin:
        return a.SemiJoin(items[0], items[1], negated=True)

    def and_chain(self, items: list[a.Condition]) -> a.Condition:
        return items[0] if len(items) == 1 else a.And(tuple(items))

    def or_chain(self, items: list[a.Condition]) -> a.Condition:
        return a.Or(tuple(items))

    def not_(self, items: list[a.Condition]) -> a.Not:
        return a.Not(items[0])

    def cond_start(self, items: list[a.Condition]) -> a.Condition:
        return items[0]

    # -- select list
    def select_field(self, items: list[a.FieldRef]) -> a.SelectField:
        return a.SelectField(items[0])

    def select_func(self, items: list[Any]) -> a.SelectFunc:
        return a.SelectFunc(items[0], str(items[1]) if len(items) > 1 else None)

    def select_subquery(self, items: list[a.Query]) -> a.SelectSubquery:
        return a.SelectSubquery(items[0], items[0].pos)

    def select_typeof(self, items: list[a.SelectTypeof]) -> a.SelectTypeof:
        return items[0]

    def typeof(self, items: list[Any]) -> a.SelectTypeof:
        whens = tuple(i for i in items[1:] if isinstance(i, a.TypeofWhen))
        rest = [i for i in items[1:] if isinstance(i, tuple)]
        return a.SelectTypeof(items[0], whens, rest[0] if rest else ())

    def typeof_when(self, items: list[Any]) -> a.TypeofWhen:
        return a.TypeofWhen(str(items[0]), _pos(items[0]), items[1])

    def typeof_else(self, items: list[Any]) -> tuple[a.FieldRef, ...]:
        return tuple(items[0])

    def field_list(self, items: list[a.FieldRef]) -> tuple[a.FieldRef, ...]:
        return tuple(items)

    def select_list(self, items: list[a.SelectItem]) -> tuple[a.SelectItem, ...]:
        return tuple(items)

    # -- clauses
    def from_clause(self, items: list[Token]) -> tuple[object, ...]:
        alias = str(items[1]) if len(items) > 1 else None
        return _tagged("from", str(items[0]), _pos(items[0]), alias)

    def using_scope(self, items: list[Token]) -> tuple[object, ...]:
        return _tagged("ignored")

    def with_clause(self, items: list[Token]) -> tuple[object, ...]:
        return _tagged("ignored")

    def where(self, items: list[a.Condition]) -> tuple[object, ...]:
        return _tagged("where", items[0])

    def having(self, items: list[a.Condition]) -> tuple[object, ...]:
        return _tagged("having", items[0])

    def group_by(self, items: list[Any]) -> tuple[object, ...]:
        kinds = [
            str(i).upper() for i in items if isinstance(i, Token) and i.type == "GROUPING_KIND"
        ]
        operands = tuple(i for i in items if not isinstance(i, Token))
        return _tagged("group_by", operands, kinds[0] if kinds else "PLAIN")

    def order_by(self, items: list[a.OrderItem]) -> tuple[object, ...]:
        return _tagged("order_by", tuple(items))

    def order_item(self, items: list[Any]) -> a.OrderItem:
        descending = False
        nulls_first: bool | None = None
        for extra in items[1:]:
            if extra[0] == "direction":
                descending = extra[1]
            else:
                nulls_first = extra[1]
        return a.OrderItem(items[0], descending, nulls_first)

    def direction(self, items: list[Token]) -> tuple[str, bool]:
        return ("direction", str(items[0]).upper() == "DESC")

    def nulls(self, items: list[Token]) -> tuple[str, bool]:
        return ("nulls", str(items[0]).upper() == "FIRST")

    def limit(self, items: list[Token]) -> tuple[object, ...]:
        return _tagged("limit", _non_negative_int(items[0]), _pos(items[0]))

    def offset(self, items: list[Token]) -> tuple[object, ...]:
        return _tagged("offset", _non_negative_int(items[0]), _pos(items[0]))

    def tail(self, items: list[Token]) -> tuple[object, ...]:
        words = " ".join(str(t).upper() for t in items)
        return _tagged("all_rows" if words == "ALL ROWS" else "ignored")

    def query(self, items: list[Any]) -> a.Query:
        select: tuple[a.SelectItem, ...] = items[0]
        clauses: dict[str, tuple[object, ...]] = {item[0]: item[1:] for item in items[1:]}
        name, object_pos, alias = clauses["from"]
        where = clauses.get("where", (None,))[0]
        having = clauses.get("having", (None,))[0]
        limit, limit_pos = clauses.get("limit", (None, None))
        offset, offset_pos = clauses.get("offset", (None, None))
        first = select[0]
        return a.Query(
            select=select,
            object_name=name,  # type: ignore[arg-type]
            object_pos=object_pos,  # type: ignore[arg-type]
            alias=alias,  # type: ignore[arg-type]
            where=where,  # type: ignore[arg-type]
            group_by=clauses.get("group_by", ((), "PLAIN"))[0],  # type: ignore[arg-type]
            group_kind=clauses.get("group_by", ((), "PLAIN"))[1],  # type: ignore[arg-type]
            having=having,  # type: ignore[arg-type]
            order_by=clauses.get("order_by", ((),))[0],  # type: ignore[arg-type]
            limit=limit,  # type: ignore[arg-type]
            limit_pos=limit_pos,  # type: ignore[arg-type]
            offset=offset,  # type: ignore[arg-type]
            offset_pos=offset_pos,  # type: ignore[arg-type]
            all_rows="all_rows" in clauses,
            pos=_select_pos(first),
        )

    def start(self, items: list[a.Query]) -> a.Query:
        return items[0]


def _select_pos(item: a.SelectItem) -> a.Pos:
    if isinstance(item, a.SelectField):
        return item.ref.pos
    if isinstance(item, a.SelectFunc):
        return item.call.pos
    return item.pos


def _non_negative_int(token: Token) -> int:
    text = str(token)
    if not re.fullmatch(r"\+?\d+", text):
        raise unexpected(_pos(token), text)
    return int(text)


def _load() -> Lark:
    grammar = resources.files(__package__).joinpath("grammar.lark").read_text(encoding="utf-8")
    return Lark(
        grammar,
        parser="lalr",
        lexer="contextual",
        start=["start", "cond_start"],
        transformer=_Builder(),
        maybe_placeholders=False,
    )


_PARSER = _load()


def _parse(text: str, start: str) -> Any:
    try:
        return _PARSER.parse(text, start=start)
    except SoqlSyntaxError:
        raise
    except VisitError as error:  # pragma: no cover - inline transformers raise directly
        if isinstance(error.orig_exc, SoqlSyntaxError):
            raise error.orig_exc from None
        raise
    except UnexpectedCharacters as error:
        at = error.pos_in_stream or 0
        bad = text[at] if at < len(text) else "<EOF>"
        raise unexpected(a.Pos(error.line, error.column), bad) from None
    except UnexpectedEOF:
        raise unexpected(_end_pos(text), "<EOF>") from None
    except UnexpectedInput as error:
        token = getattr(error, "token", None)
        if token is None or token.type == "$END":
            raise unexpected(_end_pos(text), "<EOF>") from None
        raise unexpected(_pos(token), str(token)) from None


def _end_pos(text: str) -> a.Pos:
    lines = text.rstrip().split("\n")
    return a.Pos(len(lines), len(lines[-1]) + 1)


def parse_query(soql: str) -> a.Query:
    """Parse a whole statement; raises ``ApiError`` 400 ``MALFORMED_QUERY`` on bad syntax."""
    try:
        query = _parse(soql, "start")
    except SoqlSyntaxError as error:
        raise to_api_error(error, soql) from None
    assert isinstance(query, a.Query)
    return query


def parse_condition(text: str) -> a.Condition:
    """Parse a bare WHERE expression (validation rules); errors as for :func:`parse_query`."""
    try:
        condition = _parse(text, "cond_start")
    except SoqlSyntaxError as error:
        raise to_api_error(error, text) from None
    return condition  # type: ignore[no-any-return]
