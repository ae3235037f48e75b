"""The compiled form of a query: every name resolved against the schema, every literal
checked and normalised. Plans are immutable and independent of the data and of the time;
:mod:`.predicates`, :mod:`.render` and :mod:`.executor` turn them into closures per run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal as Lit

from sfsync.emulator.schema.model import FieldDef, FieldType, WireValue


@dataclass(frozen=True, slots=True)
class Path:
    """A field reached from the queried object by following ``lookups`` (lookup field names,
    declared casing, outermost first), then reading ``field``."""

    lookups: tuple[str, ...]
    field: FieldDef

    @property
    def key(self) -> tuple[str, ...]:
        """Identity of the path, for GROUP BY matching and duplicate detection."""
        return (*(name.lower() for name in self.lookups), self.field.name.lower())


@dataclass(frozen=True, slots=True)
class Operand:
    """A path, optionally wrapped in a date function (``CALENDAR_YEAR``...); ``type`` is the
    type of the resulting value."""

    path: Path
    func: str | None
    type: FieldType
    case_sensitive: bool = False


# -- conditions -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Fixed:
    """A literal in the comparable wire form of its operand (text lower-cased unless the
    field is case-sensitive; ids in their exact 18-character form; dates ``YYYY-MM-DD``;
    datetimes ``YYYY-MM-DDTHH:MM:SS.mmm+0000``; numbers; booleans; ``None``)."""

    value: WireValue


@dataclass(frozen=True, slots=True)
class Relative:
    """A relative date literal, resolved to a range when the query runs."""

    name: str
    n: int | None


BoundLiteral = Fixed | Relative

CompareOp = Lit["=", "!=", "<", "<=", ">", ">=", "LIKE"]
ListOp = Lit["IN", "NOT IN", "INCLUDES", "EXCLUDES"]


@dataclass(frozen=True, slots=True)
class BCompare:
    operand: Operand
    op: str
    literal: BoundLiteral


@dataclass(frozen=True, slots=True)
class BInList:
    operand: Operand
    op: str
    literals: tuple[BoundLiteral, ...]


@dataclass(frozen=True, slots=True)
class BSemiJoin:
    """``operand [NOT] IN (SELECT path FROM object WHERE where)``."""

    operand: Operand
    object_name: str
    path: Path
    where: BoundCondition | None
    negated: bool


@dataclass(frozen=True, slots=True)
class BAnd:
    items: tuple[BoundCondition, ...]


@dataclass(frozen=True, slots=True)
class BOr:
    items: tuple[BoundCondition, ...]


@dataclass(frozen=True, slots=True)
class BNot:
    item: BoundCondition


BoundCondition = BCompare | BInList | BSemiJoin | BAnd | BOr | BNot


@dataclass(frozen=True, slots=True)
class SortKey:
    operand: Operand
    descending: bool
    nulls_first: bool


# -- rendering ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FieldEntry:
    """A field read as is; with ``labels`` (``toLabel()``), picklist values become labels."""

    key: str
    field: str
    labels: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class CompoundEntry:
    """A compound field (``BillingAddress``) rendered as an object of its components:
    ``parts`` are (JSON key, component field) pairs in key order."""

    key: str
    parts: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class ParentEntry:
    """A parent relationship (``Account``): the lookup to follow and what to show of it."""

    key: str
    lookup: str
    node: RenderNode


@dataclass(frozen=True, slots=True)
class ChildEntry:
    """A child subquery (``Contacts``)."""

    key: str
    plan: ChildPlan


@dataclass(frozen=True, slots=True)
class TypeofEntry:
    """A polymorphic relationship selected with TYPEOF: ``nodes`` maps an id prefix to what
    to render for that type; ``fallback`` is the ELSE branch (None: attributes only)."""

    key: str
    lookup: str
    nodes: tuple[tuple[str, RenderNode], ...]
    fallback: RenderNode | None
    types: tuple[tuple[str, str], ...]  # (id prefix, object name) of every target


Entry = FieldEntry | CompoundEntry | ParentEntry | ChildEntry | TypeofEntry


@dataclass(frozen=True, slots=True)
class RenderNode:
    """What to render of one record. ``type_name`` is the declared object name; for
    polymorphic parents ``by_prefix`` maps id prefixes to the object name to report."""

    type_name: str
    entries: tuple[Entry, ...]
    by_prefix: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class ChildPlan:
    object_name: str
    lookup: str
    where: BoundCondition | None
    order: tuple[SortKey, ...]
    limit: int | None
    offset: int | None
    node: RenderNode


# -- aggregates -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Measure:
    """One aggregate expression (``SUM(Amount)``); ``path`` is None for ``COUNT()``."""

    func: str
    path: Path | None
    slot: str


@dataclass(frozen=True, slots=True)
class AggregatePlan:
    """GROUP BY evaluation. Each group becomes a synthetic record keyed by slot names
    (``__g0``... for grouped values, ``__m0``... for measures) so that HAVING and ORDER BY
    reuse the ordinary predicate and sort machinery; ``output`` maps JSON keys to slots."""

    groups: tuple[tuple[Operand, str], ...]
    measures: tuple[Measure, ...]
    output: tuple[tuple[str, str], ...]
    having: BoundCondition | None
    order: tuple[SortKey, ...]
    #: Which GROUP BY expressions each grouping set keeps (``ROLLUP(a, b)``: (0, 1), (0,),
    #: (); plain GROUP BY: one set with all of them).
    grouping_sets: tuple[tuple[int, ...], ...] = ()
    #: ``GROUPING(f)`` outputs: (slot, index of f among the GROUP BY expressions).
    grouping_flags: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True, slots=True)
class QueryPlan:
    """A whole bound top-level query."""

    object_name: str
    node: RenderNode
    where: BoundCondition | None
    order: tuple[SortKey, ...]
    limit: int | None
    offset: int | None
    all_rows: bool
    count_only: bool
    aggregate: AggregatePlan | None
