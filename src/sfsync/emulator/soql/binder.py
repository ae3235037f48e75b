"""Semantic binding: resolve a parsed query against the schema into a :class:`QueryPlan`.

Every object, field and relationship name is looked up case-insensitively and replaced by
its declared casing; literals are checked against the type of what they are compared with
and normalised to the comparable wire form (see :class:`~.plan.Fixed`). Errors carry the
position of the offending name and come out in Salesforce's codes and wording.

Choices where Salesforce's behaviour is UNCONFIRMED (documented here, tested in the suite):

* A literal of the wrong type for its field is ``INVALID_FIELD`` with the observed text
  ``value of filter criterion for field 'X' must be of type T and should [not] be enclosed in
  quotes`` (observed for string fields; assumed for the others). This includes a datetime
  literal against a date field and a date literal against a datetime field.
* LIKE on a non-text field, INCLUDES/EXCLUDES on a non-multipicklist field, aggregates in
  WHERE and a non-grouped field next to aggregates are ``MALFORMED_QUERY``.
* ``ALL ROWS`` (Apex syntax) is accepted and makes the query include deleted rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeAlias

from sfsync.emulator.clock import format_datetime
from sfsync.emulator.schema.model import FieldDef, FieldType, ObjectDef, Schema

from . import ast as a
from . import plan as p
from .ids import to_18
from .messages import (
    INVALID_FIELD,
    INVALID_QUERY_FILTER_OPERATOR,
    NUMBER_OUTSIDE_VALID_RANGE,
    SoqlSyntaxError,
    malformed,
    no_such_column,
    unknown_child_relationship,
    unknown_object,
    unknown_relationship,
    wrong_literal_type,
)

AGGREGATES = frozenset({"COUNT", "COUNT_DISTINCT", "SUM", "AVG", "MIN", "MAX"})

_DATE_TYPES = (FieldType.DATE, FieldType.DATETIME)
#: Date functions usable in WHERE / GROUP BY: name -> (result type, datetime-only).
DATE_FUNCTIONS: dict[str, tuple[FieldType, bool]] = {
    "CALENDAR_YEAR": (FieldType.INT, False),
    "CALENDAR_QUARTER": (FieldType.INT, False),
    "CALENDAR_MONTH": (FieldType.INT, False),
    "DAY_IN_MONTH": (FieldType.INT, False),
    "DAY_IN_WEEK": (FieldType.INT, False),
    "DAY_IN_YEAR": (FieldType.INT, False),
    "WEEK_IN_MONTH": (FieldType.INT, False),
    "WEEK_IN_YEAR": (FieldType.INT, False),
    "FISCAL_YEAR": (FieldType.INT, False),
    "FISCAL_QUARTER": (FieldType.INT, False),
    "FISCAL_MONTH": (FieldType.INT, False),
    "DAY_ONLY": (FieldType.DATE, True),
    "HOUR_IN_DAY": (FieldType.INT, True),
}
_VALUE_FUNCTIONS = frozenset({"TOLABEL", "FORMAT", "CONVERTCURRENCY"})
_UNFILTERABLE = (FieldType.ADDRESS, FieldType.LOCATION, FieldType.BASE64)
_MAX_OFFSET = 2000
_FIELDS_LIMIT = 200


@dataclass(frozen=True, slots=True)
class _Resolved:
    """A resolved path plus what rendering needs: the relationship hops taken."""

    path: p.Path
    hops: tuple[tuple[FieldDef, ObjectDef], ...]
    owner: ObjectDef  # the object the final field belongs to


@dataclass(slots=True)
class _NodeBuilder:
    """A render node under construction: parent relationships merge as paths arrive."""

    type_name: str
    by_prefix: tuple[tuple[str, str], ...] = ()
    entries: list[p.Entry | tuple[str, str, _NodeBuilder]] = field(default_factory=list)
    parents: dict[str, _NodeBuilder] = field(default_factory=dict)

    def build(self) -> p.RenderNode:
        entries: list[p.Entry] = []
        for entry in self.entries:
            if isinstance(entry, tuple):
                key, lookup, child = entry
                entries.append(p.ParentEntry(key, lookup, child.build()))
            else:
                entries.append(entry)
        return p.RenderNode(self.type_name, tuple(entries), self.by_prefix)


_Scope: TypeAlias = tuple[ObjectDef, str | None]


class Binder:
    """Binds queries against one schema. Stateless apart from the schema; reusable."""

    def __init__(self, schema: Schema) -> None:
        self._schema = schema

    # -- entry points ---------------------------------------------------------------------

    def bind_query(self, query: a.Query) -> p.QueryPlan:
        obj = self._object(query.object_name, query.object_pos)
        scope: _Scope = (obj, query.alias)
        self._check_offset(query)
        where = self.bind_condition(query.where, scope) if query.where is not None else None
        functions = [i for i in query.select if isinstance(i, a.SelectFunc)]
        aggregate_calls = [i for i in functions if i.call.name in AGGREGATES]
        count_only = any(i.call.name == "COUNT" and i.call.arg is None for i in aggregate_calls)
        if count_only and not query.group_by:
            if len(query.select) > 1:
                raise malformed(query.pos, "COUNT() must be the only element in the SELECT list")
            if query.order_by:
                raise malformed(query.order_by[0].expr.pos, "ORDER BY is not allowed with COUNT()")
            return p.QueryPlan(
                obj.name, p.RenderNode(obj.name, ()), where, (), query.limit, query.offset,
                query.all_rows, count_only=True, aggregate=None,
            )  # fmt: skip
        if aggregate_calls or query.group_by:
            aggregate = self._bind_aggregate(query, scope)
            return p.QueryPlan(
                obj.name, p.RenderNode("AggregateResult", ()), where, (), query.limit,
                query.offset, query.all_rows, count_only=False, aggregate=aggregate,
            )  # fmt: skip
        if query.having is not None:
            raise malformed(query.pos, "HAVING requires GROUP BY or an aggregate function")
        node = self._bind_select(query, scope, allow_children=True)
        order = tuple(self._sort_key(item, scope) for item in query.order_by)
        return p.QueryPlan(
            obj.name, node, where, order, query.limit, query.offset, query.all_rows,
            count_only=False, aggregate=None,
        )  # fmt: skip

    def bind_condition(self, cond: a.Condition, scope: _Scope) -> p.BoundCondition:
        """Bind a WHERE expression evaluated against records of ``scope``'s object."""
        if isinstance(cond, a.And):
            return p.BAnd(tuple(self.bind_condition(c, scope) for c in cond.items))
        if isinstance(cond, a.Or):
            return p.BOr(tuple(self.bind_condition(c, scope) for c in cond.items))
        if isinstance(cond, a.Not):
            return p.BNot(self.bind_condition(cond.item, scope))
        if isinstance(cond, a.SemiJoin):
            return self._semi_join(cond, scope)
        operand = self._where_operand(cond.left, scope)
        if isinstance(cond, a.Compare):
            return p.BCompare(operand, cond.op, self._compare_literal(operand, cond, cond.left))
        return self._in_list(operand, cond, cond.left)

    # -- names ----------------------------------------------------------------------------

    def _object(self, name: str, pos: a.Pos) -> ObjectDef:
        obj = self._schema.object(name)
        if obj is None or not obj.queryable:
            raise unknown_object(pos, name)
        return obj

    def resolve(self, ref: a.FieldRef, scope: _Scope) -> _Resolved:
        obj, alias = scope
        parts = list(ref.path)
        if (len(parts) > 1 and alias is not None and parts[0].lower() == alias.lower()) or (
            len(parts) > 1
            and parts[0].lower() == obj.name.lower()
            and obj.relationship(parts[0]) is None
        ):
            parts = parts[1:]
        hops: list[tuple[FieldDef, ObjectDef]] = []
        current = obj
        for index, segment in enumerate(parts[:-1]):
            lookup = current.relationship(segment)
            if lookup is None:
                raise unknown_relationship(ref.pos, segment)
            current = self._target(lookup, parts[index + 1], ref.pos, segment)
            hops.append((lookup, current))
        found = current.field(parts[-1])
        if found is None:
            raise no_such_column(ref.pos, parts[-1], current.name)
        path = p.Path(tuple(lookup.name for lookup, _ in hops), found)
        return _Resolved(path, tuple(hops), current)

    def _target(self, lookup: FieldDef, next_name: str, pos: a.Pos, segment: str) -> ObjectDef:
        """The object a lookup leads to; for polymorphic lookups, the first target that has
        the next name (Salesforce limits those paths to fields common to the targets)."""
        targets = [t for t in (self._schema.object(n) for n in lookup.reference_to) if t]
        if not targets:
            raise unknown_relationship(pos, segment)
        for target in targets:
            if target.field(next_name) is not None or target.relationship(next_name):
                return target
        return targets[0]

    def _prefixes(self, lookup: FieldDef) -> tuple[tuple[str, str], ...]:
        if len(lookup.reference_to) < 2:
            return ()
        found = (self._schema.object(name) for name in lookup.reference_to)
        return tuple((t.key_prefix, t.name) for t in found if t is not None)

    # -- select list ----------------------------------------------------------------------

    def _bind_select(self, query: a.Query, scope: _Scope, *, allow_children: bool) -> p.RenderNode:
        obj = scope[0]
        root = _NodeBuilder(obj.name)
        seen: set[tuple[str, ...]] = set()
        for item in query.select:
            if isinstance(item, a.SelectField):
                resolved = self.resolve(item.ref, scope)
                if resolved.path.key in seen:
                    raise malformed(item.ref.pos, f"duplicate field selected: {item.ref.text}")
                seen.add(resolved.path.key)
                self._add_path(root, resolved)
            elif isinstance(item, a.SelectSubquery):
                if not allow_children:
                    raise malformed(item.pos, "Nested subqueries are not supported here")
                root.entries.append(self._child(item, obj))
            elif isinstance(item, a.SelectTypeof):
                root.entries.append(self._typeof(item, obj))
            elif item.call.name == "FIELDS":
                for f in self._fields_function(item.call, query, obj):
                    key = (f.name.lower(),)
                    if key not in seen:
                        seen.add(key)
                        self._add_path(root, _Resolved(p.Path((), f), (), obj))
            elif item.call.name in _VALUE_FUNCTIONS:
                self._value_function(root, item, scope, seen)
            elif item.call.name in AGGREGATES:  # pragma: no cover - routed to aggregates
                raise malformed(item.call.pos, "Aggregate in a non-aggregate query")
            else:
                raise malformed(item.call.pos, f"unexpected token: '{item.call.name}'")
        return root.build()

    def _value_function(
        self, root: _NodeBuilder, item: a.SelectFunc, scope: _Scope, seen: set[tuple[str, ...]]
    ) -> None:
        """``toLabel(f)``, ``FORMAT(f)``, ``convertCurrency(f)`` on a field of the queried
        object: rendered under the alias or the field name. The org has one currency and the
        en_US locale, so FORMAT and convertCurrency return the value unchanged (a documented
        simplification); toLabel maps picklist values to their labels."""
        call = item.call
        if not isinstance(call.arg, a.FieldRef):
            raise malformed(call.pos, f"{call.name} requires a field")
        resolved = self.resolve(call.arg, scope)
        if resolved.hops:
            raise malformed(call.pos, f"{call.name} is only supported on fields of {scope[0].name}")
        f = resolved.path.field
        key = item.alias or f.name
        if (key.lower(),) in seen:
            raise malformed(call.pos, f"duplicate field selected: {key}")
        seen.add((key.lower(),))
        labels = tuple((v.value, v.label) for v in f.picklist) if call.name == "TOLABEL" else ()
        root.entries.append(p.FieldEntry(key, f.name, labels))

    def _typeof(self, item: a.SelectTypeof, obj: ObjectDef) -> p.TypeofEntry:
        """Bind ``TYPEOF rel WHEN T THEN fields ... [ELSE fields] END`` (``rel`` must be a
        polymorphic lookup of the queried object; each ``T`` one of its targets)."""
        if len(item.ref.path) != 1:
            raise malformed(item.ref.pos, "TYPEOF requires a relationship of the queried object")
        lookup = obj.relationship(item.ref.path[0])
        if lookup is None:
            raise unknown_relationship(item.ref.pos, item.ref.path[0])
        targets = {name.lower(): name for name in lookup.reference_to}
        nodes: list[tuple[str, p.RenderNode]] = []
        for when in item.whens:
            target = self._schema.object(when.type_name)
            if target is None or target.name.lower() not in targets:
                raise malformed(
                    when.pos,
                    f"TYPEOF: '{when.type_name}' is not a type of relationship "
                    f"'{lookup.relationship_name}'",
                )
            nodes.append((target.key_prefix, self._typeof_node(target, when.fields)))
        fallback: p.RenderNode | None = None
        if item.else_fields:
            first = self._schema.object(lookup.reference_to[0])
            if first is None:
                raise unknown_relationship(item.ref.pos, item.ref.path[0])
            fallback = self._typeof_node(first, item.else_fields)
        key = lookup.relationship_name or lookup.name
        found = (self._schema.object(name) for name in lookup.reference_to)
        types = tuple((t.key_prefix, t.name) for t in found if t is not None)
        return p.TypeofEntry(key, lookup.name, tuple(nodes), fallback, types)

    def _typeof_node(self, target: ObjectDef, fields: tuple[a.FieldRef, ...]) -> p.RenderNode:
        node = _NodeBuilder(target.name)
        for ref in fields:
            self._add_path(node, self.resolve(ref, (target, None)))
        return node.build()

    def _fields_function(self, call: a.FuncCall, query: a.Query, obj: ObjectDef) -> list[FieldDef]:
        arg = call.arg
        kind = arg.path[0].upper() if isinstance(arg, a.FieldRef) and len(arg.path) == 1 else ""
        if kind not in ("ALL", "STANDARD", "CUSTOM"):
            raise malformed(call.pos, "FIELDS() takes ALL, STANDARD or CUSTOM")
        if kind != "STANDARD" and (query.limit is None or query.limit > _FIELDS_LIMIT):
            raise malformed(
                call.pos, f"The SOQL FIELDS function must have a LIMIT of at most {_FIELDS_LIMIT}"
            )
        return [f for f in obj.fields.values() if kind == "ALL" or (kind == "CUSTOM") == f.custom]

    def _add_path(self, root: _NodeBuilder, resolved: _Resolved) -> None:
        node = root
        for lookup, target in resolved.hops:
            key = (lookup.relationship_name or lookup.name).lower()
            child = node.parents.get(key)
            if child is None:
                child = _NodeBuilder(target.name, self._prefixes(lookup))
                node.parents[key] = child
                node.entries.append((lookup.relationship_name or lookup.name, lookup.name, child))
            node = child
        final = resolved.path.field
        if final.type in (FieldType.ADDRESS, FieldType.LOCATION):
            node.entries.append(p.CompoundEntry(final.name, _compound_parts(resolved.owner, final)))
        else:
            node.entries.append(p.FieldEntry(final.name, final.name))

    def _child(self, item: a.SelectSubquery, parent: ObjectDef) -> p.ChildEntry:
        sub = item.query
        relationship = parent.child_relationship(sub.object_name)
        child = self._schema.object(relationship.child_object) if relationship else None
        if relationship is None or child is None:
            raise unknown_child_relationship(sub.object_pos, sub.object_name)
        scope: _Scope = (child, sub.alias)
        if sub.group_by or any(
            isinstance(i, a.SelectFunc) and i.call.name in AGGREGATES for i in sub.select
        ):
            raise malformed(sub.pos, "Aggregate functions are not supported in subqueries")
        self._check_offset(sub)
        where = self.bind_condition(sub.where, scope) if sub.where is not None else None
        node = self._bind_select(sub, scope, allow_children=True)
        order = tuple(self._sort_key(o, scope) for o in sub.order_by)
        plan = p.ChildPlan(
            child.name, relationship.field, where, order, sub.limit, sub.offset, node
        )
        return p.ChildEntry(relationship.name, plan)

    def _check_offset(self, query: a.Query) -> None:
        if query.offset is not None and query.offset > _MAX_OFFSET and query.offset_pos:
            raise SoqlSyntaxError(
                NUMBER_OUTSIDE_VALID_RANGE,
                query.offset_pos,
                f"Maximum SOQL offset allowed is {_MAX_OFFSET}",
            )

    # -- WHERE ----------------------------------------------------------------------------

    def _where_operand(self, expr: a.Operand, scope: _Scope) -> p.Operand:
        if isinstance(expr, a.FieldRef):
            f = self.resolve(expr, scope).path
            self._check_filterable(f.field, expr.pos)
            return p.Operand(f, None, f.field.type, f.field.case_sensitive)
        if expr.name in AGGREGATES:
            raise malformed(expr.pos, "Aggregate functions are not supported in WHERE")
        return self.date_function(expr, scope)

    def date_function(self, call: a.FuncCall, scope: _Scope) -> p.Operand:
        spec = DATE_FUNCTIONS.get(call.name)
        if spec is None:
            raise malformed(call.pos, f"unexpected token: '{call.name}'")
        if not isinstance(call.arg, a.FieldRef):
            raise malformed(call.pos, f"{call.name} requires a date or datetime field")
        path = self.resolve(call.arg, scope).path
        result, datetime_only = spec
        allowed = (FieldType.DATETIME,) if datetime_only else _DATE_TYPES
        if path.field.type not in allowed:
            raise malformed(
                call.arg.pos,
                f"{call.name} can not be applied to field '{path.field.name}' of type "
                f"{path.field.type.value}",
            )
        return p.Operand(path, call.name, result)

    def _check_filterable(self, f: FieldDef, pos: a.Pos) -> None:
        long_text = f.type is FieldType.TEXTAREA and f.length > 255
        if f.type in _UNFILTERABLE or long_text:
            raise SoqlSyntaxError(
                INVALID_FIELD, pos, f"field '{f.name}' can not be filtered in a query call"
            )

    def _compare_literal(
        self, operand: p.Operand, cond: a.Compare, expr: a.Operand
    ) -> p.BoundLiteral:
        if cond.op == "LIKE":
            if not operand.type.is_text or operand.type in (FieldType.ID, FieldType.REFERENCE):
                raise malformed(
                    expr.pos,
                    f"invalid operator on field '{operand.path.field.name}': LIKE is only valid "
                    "on text fields",
                )
            if not isinstance(cond.value, a.StringLit):
                raise wrong_literal_type(expr.pos, operand.path.field.name, "string", True)
            return p.Fixed(cond.value.value)
        if operand.type is FieldType.MULTIPICKLIST and isinstance(cond.value, a.StringLit):
            return p.Fixed(cond.value.value)  # compared as a set of values, see predicates
        literal = self.literal(operand, cond.value, expr.pos)
        if isinstance(literal, p.Fixed) and literal.value is None and cond.op not in ("=", "!="):
            raise malformed(cond.value.pos, "null can only be compared with = or !=")
        return literal

    def _in_list(self, operand: p.Operand, cond: a.InList, expr: a.Operand) -> p.BInList:
        if cond.op in ("INCLUDES", "EXCLUDES"):
            if operand.type is not FieldType.MULTIPICKLIST:
                raise malformed(
                    expr.pos,
                    f"{cond.op} operator is only valid on multi-select picklist fields: "
                    f"'{operand.path.field.name}'",
                )
            terms: list[p.BoundLiteral] = []
            for value in cond.values:
                if not isinstance(value, a.StringLit):
                    raise wrong_literal_type(expr.pos, operand.path.field.name, "string", True)
                terms.append(p.Fixed(value.value))
            return p.BInList(operand, cond.op, tuple(terms))
        return p.BInList(
            operand, cond.op, tuple(self.literal(operand, v, expr.pos) for v in cond.values)
        )

    def literal(self, operand: p.Operand, lit: a.Literal, field_pos: a.Pos) -> p.BoundLiteral:
        """``lit`` checked against ``operand``'s type and put in comparable form."""
        if isinstance(lit, a.NullLit):
            return p.Fixed(None)
        kind = operand.type
        name = operand.path.field.name
        if kind in (FieldType.ID, FieldType.REFERENCE):
            if not isinstance(lit, a.StringLit):
                raise wrong_literal_type(field_pos, name, "id", True)
            wide = to_18(lit.value)
            if wide is None:
                raise SoqlSyntaxError(
                    INVALID_QUERY_FILTER_OPERATOR, lit.pos, f"invalid ID field: {lit.value}"
                )
            return p.Fixed(wide.lower())
        if kind.is_text or kind is FieldType.TIME:
            if not isinstance(lit, a.StringLit):
                raise wrong_literal_type(field_pos, name, "string", True)
            text = lit.value.replace("\\%", "%").replace("\\_", "_")
            return p.Fixed(text if operand.case_sensitive else text.lower())
        if kind.is_number:
            if not isinstance(lit, a.NumberLit):
                type_name = "integer" if kind is FieldType.INT else "double"
                raise wrong_literal_type(field_pos, name, type_name, False)
            return p.Fixed(lit.value)
        if kind is FieldType.BOOLEAN:
            if not isinstance(lit, a.BoolLit):
                raise wrong_literal_type(field_pos, name, "boolean", False)
            return p.Fixed(lit.value)
        if kind is FieldType.DATE:
            if isinstance(lit, a.RelativeDateLit):
                return p.Relative(lit.name, lit.n)
            if not isinstance(lit, a.DateLit):
                raise wrong_literal_type(field_pos, name, "date", False)
            return p.Fixed(lit.value.isoformat())
        if kind is FieldType.DATETIME:
            if isinstance(lit, a.RelativeDateLit):
                return p.Relative(lit.name, lit.n)
            if not isinstance(lit, a.DateTimeLit):
                raise wrong_literal_type(field_pos, name, "dateTime", False)
            return p.Fixed(format_datetime(lit.value))
        raise SoqlSyntaxError(  # pragma: no cover - unfilterable types are rejected earlier
            INVALID_FIELD, field_pos, f"field '{name}' can not be filtered in a query call"
        )

    def _semi_join(self, cond: a.SemiJoin, scope: _Scope) -> p.BSemiJoin:
        if not isinstance(cond.left, a.FieldRef):
            raise malformed(cond.left.pos, "Semi-join left operand must be an Id or lookup field")
        left = self.resolve(cond.left, scope)
        sub = cond.query
        sub_obj = self._object(sub.object_name, sub.object_pos)
        if sub_obj.name == scope[0].name:
            raise malformed(
                sub.object_pos, "The inner and outer selects should not be on the same object type"
            )
        sub_scope: _Scope = (sub_obj, sub.alias)
        item = sub.select[0]
        if len(sub.select) != 1 or not isinstance(item, a.SelectField):
            raise malformed(sub.pos, "Semi-join subquery must select exactly one Id field")
        right = self.resolve(item.ref, sub_scope)
        for resolved, pos in ((left, cond.left.pos), (right, item.ref.pos)):
            if resolved.path.field.type not in (FieldType.ID, FieldType.REFERENCE):
                raise malformed(
                    pos,
                    f"The selected field '{resolved.path.field.name}' in the semi-join must be "
                    "an Id or reference field",
                )
        if not _targets(left) & _targets(right):
            raise malformed(
                cond.left.pos,
                f"The selected field '{right.path.field.name}' in the subquery and the left "
                f"operand field in the where expression in the outer query "
                f"'{left.path.field.name}' should point to the same object type",
            )
        where = self.bind_condition(sub.where, sub_scope) if sub.where is not None else None
        operand = p.Operand(left.path, None, left.path.field.type)
        return p.BSemiJoin(operand, sub_obj.name, right.path, where, cond.negated)

    # -- ORDER BY -------------------------------------------------------------------------

    def _sort_key(self, item: a.OrderItem, scope: _Scope) -> p.SortKey:
        if isinstance(item.expr, a.FuncCall):
            operand = self.date_function(item.expr, scope)
        else:
            path = self.resolve(item.expr, scope).path
            if path.field.type in (*_UNFILTERABLE, FieldType.MULTIPICKLIST):
                raise malformed(
                    item.expr.pos, f"field '{path.field.name}' can not be sorted in a query call"
                )
            operand = p.Operand(path, None, path.field.type, path.field.case_sensitive)
        nulls_first = item.nulls_first if item.nulls_first is not None else not item.descending
        return p.SortKey(operand, item.descending, nulls_first)

    # -- aggregates -----------------------------------------------------------------------

    def _bind_aggregate(self, query: a.Query, scope: _Scope) -> p.AggregatePlan:
        from .aggregate_binding import bind_aggregate

        return bind_aggregate(self, query, scope)


def _targets(resolved: _Resolved) -> set[str]:
    f = resolved.path.field
    if f.type is FieldType.ID:
        return {resolved.owner.name.lower()}
    return {name.lower() for name in f.reference_to}


_COMPOUND_KEYS = {
    "street": "street", "city": "city", "state": "state", "postalcode": "postalCode",
    "country": "country", "latitude": "latitude", "longitude": "longitude",
    "geocodeaccuracy": "geocodeAccuracy", "countrycode": "countryCode", "statecode": "stateCode",
}  # fmt: skip


def _compound_parts(obj: ObjectDef, compound: FieldDef) -> tuple[tuple[str, str], ...]:
    """The (JSON key, component field) pairs of ``compound``, sorted by key as Salesforce
    renders them. ``BillingCity`` -> ``city``; ``Loc__Latitude__s`` -> ``latitude``."""
    parts: list[tuple[str, str]] = []
    for f in obj.fields.values():
        if f.compound_field_name is None or f.compound_field_name.lower() != compound.name.lower():
            continue
        stem = f.name.removesuffix("__s").lower()
        # The longest known suffix wins: BillingStateCode is stateCode, not state.
        matches = [(len(s), j) for s, j in _COMPOUND_KEYS.items() if stem.endswith(s)]
        key = max(matches)[1] if matches else None
        if key is not None:
            parts.append((key, f.name))
    return tuple(sorted(parts))
