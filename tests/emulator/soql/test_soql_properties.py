"""Property tests: the executor against a deliberately simple reference evaluator.

Random records of one object and random WHERE / ORDER BY / LIMIT / OFFSET; the reference
evaluates the same query written as Python (no regexes, no closures, no shared code with
the engine: LIKE by recursion, relative dates by hand, null rules spelled out).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from types import MappingProxyType
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from soql_testdata import f, rid

from sfsync.emulator.schema.model import FieldType, ObjectDef, Schema, WireValue
from sfsync.emulator.soql import MemorySource, compile_query

T = FieldType
NOW = datetime(2024, 3, 15, 12, 0, tzinfo=UTC)
TODAY = NOW.date()

ITEM = ObjectDef(
    name="Item__c",
    label="Item",
    label_plural="Items",
    key_prefix="a01",
    fields=MappingProxyType(
        {
            x.name.lower(): x
            for x in [
                f("Id", T.ID),
                f("IsDeleted", T.BOOLEAN),
                f("Name", T.STRING),
                f("Num__c", T.INT),
                f("Amount__c", T.DOUBLE),
                f("Flag__c", T.BOOLEAN),
                f("Day__c", T.DATE),
                f("Stamp__c", T.DATETIME),
                f("Tags__c", T.MULTIPICKLIST),
            ]
        }
    ),
)
SCHEMA = Schema(MappingProxyType({"item__c": ITEM}))

Row = dict[str, Any]
Ref = Callable[[Row], bool]

NAMES = ["alpha", "Alpha", "beta", "BETA", "al%pha", "a_b", "ab", ""]
DAYS = [TODAY + timedelta(days=d) for d in range(-40, 5)]
STAMPS = [
    datetime(2024, 3, 15, 12, 0, tzinfo=UTC) + timedelta(hours=h, milliseconds=ms)
    for h in (-60, -30, -13, -12, -1, 0, 5, 20)
    for ms in (0, 999)
]


def wire(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def parse_wire(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z")


records = st.lists(
    st.fixed_dictionaries(
        {
            "Name": st.sampled_from([*NAMES, None]),
            "Num__c": st.one_of(st.none(), st.integers(-3, 3)),
            "Amount__c": st.sampled_from([None, -1.5, 0.0, 2.5, 10.0]),
            "Flag__c": st.booleans(),
            "Day__c": st.one_of(st.none(), st.sampled_from(DAYS)),
            "Stamp__c": st.one_of(st.none(), st.sampled_from(STAMPS)),
            "Tags__c": st.one_of(st.none(), st.sets(st.sampled_from("abc"), min_size=1)),
        }
    ),
    max_size=25,
)


def to_wire(i: int, row: Row) -> dict[str, WireValue]:
    out: dict[str, WireValue] = {"Id": rid("a01", i), "IsDeleted": False}
    for key, value in row.items():
        if isinstance(value, datetime):
            out[key] = wire(value)
        elif isinstance(value, date):
            out[key] = value.isoformat()
        elif isinstance(value, set):
            out[key] = ";".join(sorted(value))
        else:
            out[key] = value
    return out


# -- the reference ----------------------------------------------------------------------------


def like(value: str, pattern: str) -> bool:
    """Case-insensitive LIKE by plain recursion; ``\\%`` and ``\\_`` are literal."""
    value, pattern = value.lower(), pattern.lower()

    @functools.cache
    def match(i: int, j: int) -> bool:
        if j == len(pattern):
            return i == len(value)
        char = pattern[j]
        if char == "\\" and j + 1 < len(pattern):
            return i < len(value) and value[i] == pattern[j + 1] and match(i + 1, j + 2)
        if char == "%":
            return match(i, j + 1) or (i < len(value) and match(i + 1, j))
        if char == "_":
            return i < len(value) and match(i + 1, j + 1)
        return i < len(value) and value[i] == char and match(i + 1, j + 1)

    return match(0, 0)


def compare(op: str, value: Any, literal: Any) -> bool:
    """SOQL's comparison with a non-null literal: != is true for null, the rest false."""
    if value is None:
        return op == "!="
    if isinstance(value, str):
        value, literal = value.lower(), literal.lower()
    return bool(
        {
            "=": value == literal,
            "!=": value != literal,
            "<": value < literal,
            "<=": value <= literal,
            ">": value > literal,
            ">=": value >= literal,
        }[op]
    )


def in_range(op: str, day: date | None, lo: date, hi: date) -> bool:
    if day is None:
        return op == "!="
    inside = lo <= day < hi
    return {
        "=": inside, "!=": not inside, "<": day < lo, "<=": day < hi, ">": day >= hi,
        ">=": day >= lo,
    }[op]  # fmt: skip


def relative(name: str, n: int) -> tuple[str, date, date]:
    if name == "TODAY":
        return name, TODAY, TODAY + timedelta(days=1)
    if name == "YESTERDAY":
        return name, TODAY - timedelta(days=1), TODAY
    if name == "LAST_N_DAYS":
        return f"{name}:{n}", TODAY - timedelta(days=n), TODAY + timedelta(days=1)
    if name == "N_DAYS_AGO":
        return f"{name}:{n}", TODAY - timedelta(days=n), TODAY - timedelta(days=n - 1)
    first = TODAY.replace(day=1)
    return "THIS_MONTH", first, (first + timedelta(days=32)).replace(day=1)


# -- random conditions: (SOQL text, reference predicate) --------------------------------------

OPS = ["=", "!=", "<", "<=", ">", ">="]


@dataclass(frozen=True)
class Cond:
    text: str
    ref: Ref


def quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


@st.composite
def atoms(draw: st.DrawFn) -> Cond:
    kind = draw(st.sampled_from(["name", "like", "num", "amount", "flag", "day", "dayrel",
                                 "stamp", "stamprel", "null", "in", "tags"]))  # fmt: skip
    op = draw(st.sampled_from(OPS))
    if kind == "name":
        lit = draw(st.sampled_from([*NAMES, "alp", "zzz"]))
        return Cond(f"Name {op} {quote(lit)}", lambda r: compare(op, r["Name"], lit))
    if kind == "like":
        pattern = draw(st.sampled_from(["a%", "%a", "%A%", "al\\%%", "a\\_b", "a_b", "_", "%",
                                        "alpha", "%ta", "b%a"]))  # fmt: skip
        return Cond(
            f"Name LIKE {quote(pattern).replace(chr(92) * 2, chr(92))}",
            lambda r: r["Name"] is not None and like(r["Name"], pattern),
        )
    if kind == "num":
        num = draw(st.integers(-4, 4))
        return Cond(f"Num__c {op} {num}", lambda r: compare(op, r["Num__c"], num))
    if kind == "amount":
        amount = draw(st.sampled_from([-1.5, 0, 2.5, 3.75]))
        return Cond(f"Amount__c {op} {amount}", lambda r: compare(op, r["Amount__c"], amount))
    if kind == "flag":
        flag = draw(st.booleans())
        eq = draw(st.sampled_from(["=", "!="]))
        return Cond(
            f"Flag__c {eq} {str(flag).lower()}", lambda r: (r["Flag__c"] == flag) == (eq == "=")
        )
    if kind == "day":
        day = draw(st.sampled_from(DAYS))
        return Cond(f"Day__c {op} {day.isoformat()}", lambda r: compare(op, r["Day__c"], day))
    if kind in ("dayrel", "stamprel"):
        name = draw(st.sampled_from(["TODAY", "YESTERDAY", "LAST_N_DAYS", "N_DAYS_AGO",
                                     "THIS_MONTH"]))  # fmt: skip
        literal, lo, hi = relative(name, draw(st.integers(1, 20)))
        if kind == "dayrel":
            return Cond(f"Day__c {op} {literal}", lambda r: in_range(op, r["Day__c"], lo, hi))

        def stamp_day(r: Row) -> date | None:
            return r["Stamp__c"].date() if r["Stamp__c"] is not None else None

        return Cond(f"Stamp__c {op} {literal}", lambda r: in_range(op, stamp_day(r), lo, hi))
    if kind == "stamp":
        moment = draw(st.sampled_from(STAMPS)).replace(microsecond=0)
        style = draw(st.sampled_from(["Z", ".000Z", "+00:00", "+02:00", "-05:30"]))
        if style in ("Z", ".000Z"):
            text = moment.strftime("%Y-%m-%dT%H:%M:%S") + style
        else:
            sign = 1 if style[0] == "+" else -1
            delta = timedelta(hours=int(style[1:3]), minutes=int(style[4:6])) * sign
            text = (moment + delta).strftime("%Y-%m-%dT%H:%M:%S") + style
        return Cond(f"Stamp__c {op} {text}", lambda r: compare(op, r["Stamp__c"], moment))
    if kind == "null":
        field = draw(st.sampled_from(["Name", "Num__c", "Amount__c", "Day__c", "Stamp__c",
                                      "Tags__c"]))  # fmt: skip
        eq = draw(st.sampled_from(["=", "!="]))
        return Cond(f"{field} {eq} null", lambda r: (r[field] is None) == (eq == "="))
    if kind == "in":
        values = draw(st.lists(st.integers(-3, 3), min_size=1, max_size=4))
        negate = draw(st.booleans())
        text = f"Num__c {'NOT IN' if negate else 'IN'} ({', '.join(map(str, values))})"
        if negate:  # NOT IN leaves null rows out
            return Cond(text, lambda r: r["Num__c"] is not None and r["Num__c"] not in values)
        return Cond(text, lambda r: r["Num__c"] in values)
    wanted = draw(st.lists(st.sets(st.sampled_from("abc"), min_size=1), min_size=1, max_size=3))
    excludes = draw(st.booleans())
    text = ", ".join(quote(";".join(sorted(w))) for w in wanted)

    def tags(r: Row) -> bool:
        has = r["Tags__c"] is not None and any(w <= r["Tags__c"] for w in wanted)
        return not has if excludes else has

    return Cond(f"Tags__c {'EXCLUDES' if excludes else 'INCLUDES'} ({text})", tags)


def combine(children: st.SearchStrategy[Cond]) -> st.SearchStrategy[Cond]:
    def join(word: str, parts: list[Cond]) -> Cond:
        text = f" {word} ".join(f"({p.text})" for p in parts)
        if word == "AND":
            return Cond(text, lambda r: all(p.ref(r) for p in parts))
        return Cond(text, lambda r: any(p.ref(r) for p in parts))

    return st.one_of(
        st.lists(children, min_size=2, max_size=3).map(lambda ps: join("AND", ps)),
        st.lists(children, min_size=2, max_size=3).map(lambda ps: join("OR", ps)),
        children.map(lambda p: Cond(f"NOT ({p.text})", lambda r: not p.ref(r))),
    )


conditions = st.recursive(atoms(), combine, max_leaves=6)

SORTABLE = ["Name", "Num__c", "Amount__c", "Flag__c", "Day__c", "Stamp__c"]


OrderKey = tuple[str, bool, bool, bool | None]  # field, descending, nulls first, as written


@st.composite
def order_bys(draw: st.DrawFn) -> list[OrderKey]:
    keys = draw(st.lists(st.sampled_from(SORTABLE), max_size=2, unique=True))
    out: list[OrderKey] = []
    for key in keys:
        desc = draw(st.booleans())
        written = draw(st.sampled_from([None, True, False]))
        out.append((key, desc, (not desc) if written is None else written, written))
    return out


def order_text(keys: list[OrderKey]) -> str:
    parts = []
    for key, desc, _, written in keys:
        part = key + (" DESC" if desc else draw_asc(key))
        if written is not None:
            part += " NULLS FIRST" if written else " NULLS LAST"
        parts.append(part)
    return ", ".join([*parts, "Id"])


def draw_asc(key: str) -> str:
    return " ASC" if len(key) % 2 else ""  # both spellings of ascending get exercised


def reference_sort(rows: list[tuple[str, Row]], keys: list[OrderKey]) -> list[str]:
    def cmp(a: tuple[str, Row], b: tuple[str, Row]) -> int:
        for key, desc, nulls_first, _ in keys:
            x, y = a[1][key], b[1][key]
            if isinstance(x, str):
                x = x.lower()
            if isinstance(y, str):
                y = y.lower()
            if x is None and y is None:
                continue
            if x is None:
                return -1 if nulls_first else 1
            if y is None:
                return 1 if nulls_first else -1
            if x == y:
                continue
            result = -1 if x < y else 1
            return -result if desc else result
        return (a[0] > b[0]) - (a[0] < b[0])

    return [rid_ for rid_, _ in sorted(rows, key=functools.cmp_to_key(cmp))]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=records,
    cond=st.one_of(st.none(), conditions),
    order=order_bys(),
    limit=st.one_of(st.none(), st.integers(0, 30)),
    offset=st.one_of(st.none(), st.integers(0, 30)),
)
def test_executor_matches_reference(
    data: list[Row],
    cond: Cond | None,
    order: list[OrderKey],
    limit: int | None,
    offset: int | None,
) -> None:
    source = MemorySource()
    for i, row in enumerate(data):
        source.put("Item__c", to_wire(i, row))
    soql = "SELECT Id, Name FROM Item__c"
    if cond is not None:
        soql += f" WHERE {cond.text}"
    ordered = bool(order)
    if ordered:
        soql += f" ORDER BY {order_text(order)}"
    if limit is not None:
        soql += f" LIMIT {limit}"
    if offset is not None:
        soql += f" OFFSET {offset}"

    result = compile_query(soql, SCHEMA).run(
        source, now=NOW, include_deleted=False, api_version="59.0"
    )
    got = [r["Id"] for r in result.records]

    matching = [(rid("a01", i), row) for i, row in enumerate(data) if cond is None or cond.ref(row)]
    expected = reference_sort(matching, order) if ordered else [i for i, _ in matching]
    start = offset or 0
    expected = expected[start : None if limit is None else start + limit]
    assert got == expected, soql
    assert result.total_size == len(expected)


@settings(max_examples=150, deadline=None)
@given(data=records, cond=st.one_of(st.none(), conditions))
def test_count_and_aggregates_match_reference(data: list[Row], cond: Cond | None) -> None:
    source = MemorySource()
    for i, row in enumerate(data):
        source.put("Item__c", to_wire(i, row))
    where = f" WHERE {cond.text}" if cond is not None else ""
    matching = [row for row in data if cond is None or cond.ref(row)]

    count = compile_query(f"SELECT COUNT() FROM Item__c{where}", SCHEMA).run(
        source, now=NOW, include_deleted=False, api_version="59.0"
    )
    assert count.total_size == len(matching)

    soql = (
        "SELECT Flag__c, COUNT(Id), COUNT(Num__c), SUM(Num__c), MIN(Amount__c), MAX(Day__c) "
        f"FROM Item__c{where} GROUP BY Flag__c ORDER BY Flag__c"
    )
    result = compile_query(soql, SCHEMA).run(
        source, now=NOW, include_deleted=False, api_version="59.0"
    )
    rows = list(result.records)
    expected = []
    for flag in (False, True):
        group = [r for r in matching if r["Flag__c"] == flag]
        if not group:
            continue
        nums = [r["Num__c"] for r in group if r["Num__c"] is not None]
        amounts = [r["Amount__c"] for r in group if r["Amount__c"] is not None]
        days = [r["Day__c"].isoformat() for r in group if r["Day__c"] is not None]
        expected.append(
            {
                "attributes": {"type": "AggregateResult"},
                "Flag__c": flag,
                "expr0": len(group),
                "expr1": len(nums),
                "expr2": sum(nums) if nums else None,
                "expr3": min(amounts) if amounts else None,
                "expr4": max(days) if days else None,
            }
        )
    assert rows == expected
