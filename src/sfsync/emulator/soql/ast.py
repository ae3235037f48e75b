"""The typed syntax tree of a SOQL statement, as the parser builds it.

Nothing here knows the schema: names are kept as written (with their source positions, so
that the binder can point its errors at them), literals are already decoded (string escapes
undone, dates parsed). Every node is a frozen dataclass, so a parsed query is a value that
can be cached and shared.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime


@dataclass(frozen=True, slots=True)
class Pos:
    """A 1-based source position (``ERROR at Row:line:Column:column``)."""

    line: int
    column: int


@dataclass(frozen=True, slots=True)
class FieldRef:
    """A field name or a relationship path (``Name``, ``Account.Owner.Name``), as written."""

    path: tuple[str, ...]
    pos: Pos

    @property
    def text(self) -> str:
        return ".".join(self.path)


@dataclass(frozen=True, slots=True)
class FuncCall:
    """A function applied to at most one argument: ``COUNT()``, ``MAX(Amount)``,
    ``CALENDAR_YEAR(CreatedDate)``, ``FIELDS(ALL)``. ``name`` is upper-cased."""

    name: str
    arg: FieldRef | FuncCall | None
    pos: Pos

    @property
    def text(self) -> str:
        inner = "" if self.arg is None else self.arg.text
        return f"{self.name}({inner})"


Operand = FieldRef | FuncCall


# -- literals -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StringLit:
    """A quoted string with escapes undone, except ``\\%`` and ``\\_`` which are kept as
    two characters so that LIKE can tell a literal ``%`` from a wildcard."""

    value: str
    pos: Pos


@dataclass(frozen=True, slots=True)
class NumberLit:
    value: int | float
    pos: Pos


@dataclass(frozen=True, slots=True)
class BoolLit:
    value: bool
    pos: Pos


@dataclass(frozen=True, slots=True)
class NullLit:
    pos: Pos


@dataclass(frozen=True, slots=True)
class DateLit:
    value: date
    pos: Pos


@dataclass(frozen=True, slots=True)
class DateTimeLit:
    """A datetime literal, converted to an aware UTC datetime."""

    value: datetime
    pos: Pos


@dataclass(frozen=True, slots=True)
class TimeLit:
    """A time literal (``09:30:00.000Z``), normalised to the wire form ``HH:MM:SS.mmmZ``."""

    value: str
    pos: Pos


@dataclass(frozen=True, slots=True)
class RelativeDateLit:
    """``TODAY``, ``LAST_N_DAYS:30`` ...: ``name`` upper-cased, ``n`` the parameter or None."""

    name: str
    n: int | None
    pos: Pos


Literal = (
    StringLit | NumberLit | BoolLit | NullLit | DateLit | DateTimeLit | TimeLit | RelativeDateLit
)


# -- conditions -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Compare:
    """``left op value`` where op is one of ``= != < <= > >= LIKE`` (``<>`` becomes ``!=``)."""

    left: Operand
    op: str
    value: Literal


@dataclass(frozen=True, slots=True)
class InList:
    """``left [NOT] IN (...)`` and ``left INCLUDES/EXCLUDES (...)``; ``op`` is one of
    ``IN``, ``NOT IN``, ``INCLUDES``, ``EXCLUDES``."""

    left: Operand
    op: str
    values: tuple[Literal, ...]


@dataclass(frozen=True, slots=True)
class SemiJoin:
    """``left IN (SELECT ...)`` or, with ``negated``, ``left NOT IN (SELECT ...)``."""

    left: Operand
    query: Query
    negated: bool


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class Not:
    item: Condition


Condition = Compare | InList | SemiJoin | And | Or | Not


# -- statement ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SelectField:
    ref: FieldRef


@dataclass(frozen=True, slots=True)
class SelectFunc:
    call: FuncCall
    alias: str | None


@dataclass(frozen=True, slots=True)
class SelectSubquery:
    query: Query
    pos: Pos


@dataclass(frozen=True, slots=True)
class TypeofWhen:
    """``WHEN type THEN fields`` of a TYPEOF."""

    type_name: str
    pos: Pos
    fields: tuple[FieldRef, ...]


@dataclass(frozen=True, slots=True)
class SelectTypeof:
    """``TYPEOF What WHEN Account THEN Name, Phone ... ELSE Name END``: per-type field lists
    for a polymorphic relationship."""

    ref: FieldRef
    whens: tuple[TypeofWhen, ...]
    else_fields: tuple[FieldRef, ...]

    @property
    def pos(self) -> Pos:
        return self.ref.pos


SelectItem = SelectField | SelectFunc | SelectSubquery | SelectTypeof


@dataclass(frozen=True, slots=True)
class OrderItem:
    """One ORDER BY key. ``nulls_first`` is None when the statement leaves it to the default."""

    expr: Operand
    descending: bool
    nulls_first: bool | None


@dataclass(frozen=True, slots=True)
class Query:
    """A whole SELECT statement (top level, child subquery or semi-join subquery)."""

    select: tuple[SelectItem, ...]
    object_name: str
    object_pos: Pos
    alias: str | None
    where: Condition | None
    group_by: tuple[Operand, ...]
    having: Condition | None
    order_by: tuple[OrderItem, ...]
    limit: int | None
    limit_pos: Pos | None
    offset: int | None
    offset_pos: Pos | None
    all_rows: bool
    pos: Pos
    group_kind: str = "PLAIN"  # PLAIN, ROLLUP or CUBE
