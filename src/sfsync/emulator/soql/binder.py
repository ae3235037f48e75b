"""Semantic binding: a parsed query plus the schema become a :class:`~.plan.QueryPlan`.

Layers: :mod:`.names` resolves names, :mod:`.condition_binding` binds WHERE expressions,
this module binds the statement (SELECT list, child subqueries, ORDER BY, OFFSET) and hands
aggregate queries to :mod:`.aggregate_binding`. Output keys keep the schema's declared
casing whatever the query's casing.

Choices where Salesforce's behaviour is UNCONFIRMED: ``ALL ROWS`` (Apex syntax) is accepted
and makes the query include deleted rows; a non-grouped field next to aggregates is
``MALFORMED_QUERY`` ``Field must be grouped or aggregated: X``; duplicate fields are
``MALFORMED_QUERY`` ``duplicate field selected: X``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sfsync.emulator.schema.model import FieldDef, FieldType, ObjectDef

from . import ast as a
from . import plan as p
from .condition_binding import AGGREGATES, UNFILTERABLE, ConditionBinder
from .messages import (
    NUMBER_OUTSIDE_VALID_RANGE,
    SoqlSyntaxError,
    malformed,
    unknown_child_relationship,
    unknown_relationship,
)
from .names import Resolved, Scope

_VALUE_FUNCTIONS = frozenset({"TOLABEL", "FORMAT", "CONVERTCURRENCY"})
_MAX_OFFSET = 2000
_FIELDS_LIMIT = 200


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


class Binder(ConditionBinder):
    """Binds queries against one schema. Stateless apart from the schema; reusable."""

    # -- entry points ---------------------------------------------------------------------

    def bind_query(self, query: a.Query) -> p.QueryPlan:
        """The plan of a whole statement; raises SoqlSyntaxError (position + reason)."""
        obj = self._object(query.object_name, query.object_pos)
        scope: Scope = (obj, query.alias)
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
        node = self._bind_select(query, scope)
        order = tuple(self._sort_key(item, scope) for item in query.order_by)
        return p.QueryPlan(
            obj.name, node, where, order, query.limit, query.offset, query.all_rows,
            count_only=False, aggregate=None,
        )  # fmt: skip

    # -- select list ----------------------------------------------------------------------

    def _bind_select(self, query: a.Query, scope: Scope) -> p.RenderNode:
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
                # Child subqueries nest (REST allows several levels since v58).
                root.entries.append(self._child(item, obj))
            elif isinstance(item, a.SelectTypeof):
                root.entries.append(self._typeof(item, obj))
            elif item.call.name == "FIELDS":
                for f in self._fields_function(item.call, query, obj):
                    key = (f.name.lower(),)
                    if key not in seen:
                        seen.add(key)
                        self._add_path(root, Resolved(p.Path((), f), (), obj))
            elif item.call.name in _VALUE_FUNCTIONS:
                self._value_function(root, item, scope, seen)
            elif item.call.name in AGGREGATES:  # pragma: no cover - routed to aggregates
                raise malformed(item.call.pos, "Aggregate in a non-aggregate query")
            else:
                raise malformed(item.call.pos, f"unexpected token: '{item.call.name}'")
        return root.build()

    def _value_function(
        self, root: _NodeBuilder, item: a.SelectFunc, scope: Scope, seen: set[tuple[str, ...]]
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

    def _add_path(self, root: _NodeBuilder, resolved: Resolved) -> None:
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
        scope: Scope = (child, sub.alias)
        if sub.group_by or any(
            isinstance(i, a.SelectFunc) and i.call.name in AGGREGATES for i in sub.select
        ):
            raise malformed(sub.pos, "Aggregate functions are not supported in subqueries")
        self._check_offset(sub)
        where = self.bind_condition(sub.where, scope) if sub.where is not None else None
        node = self._bind_select(sub, scope)
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

    # -- ORDER BY -------------------------------------------------------------------------

    def _sort_key(self, item: a.OrderItem, scope: Scope) -> p.SortKey:
        if isinstance(item.expr, a.FuncCall):
            operand = self.date_function(item.expr, scope)
        else:
            path = self.resolve(item.expr, scope).path
            if path.field.type in (*UNFILTERABLE, FieldType.MULTIPICKLIST):
                raise malformed(
                    item.expr.pos, f"field '{path.field.name}' can not be sorted in a query call"
                )
            operand = p.Operand(path, None, path.field.type, path.field.case_sensitive)
        nulls_first = item.nulls_first if item.nulls_first is not None else not item.descending
        return p.SortKey(operand, item.descending, nulls_first)

    # -- aggregates -----------------------------------------------------------------------

    def _bind_aggregate(self, query: a.Query, scope: Scope) -> p.AggregatePlan:
        from .aggregate_binding import bind_aggregate

        return bind_aggregate(self, query, scope)


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
