"""Binding of WHERE conditions: operands, literal type checks, semi-joins.

Literals are checked against the type of what they are compared with and normalised to the
comparable wire form (see :class:`~.plan.Fixed`): text lower-cased unless the field is
case-sensitive, ids widened to 18 characters and lower-cased, dates and datetimes in their
fixed-width wire strings (so that string order is time order).

Choices where Salesforce's behaviour is UNCONFIRMED:

* A literal of the wrong type for its field is ``INVALID_FIELD`` with the observed text
  ``value of filter criterion for field 'X' must be of type T and should [not] be enclosed in
  quotes`` (observed for string fields; assumed for the others). This includes a datetime
  literal against a date field and a plain date literal against a datetime field (the wire
  reference says both are errors); relative literals (``TODAY``) work on both.
* LIKE on a non-text field or an id, INCLUDES/EXCLUDES on a non-multipicklist field and
  aggregates in WHERE are ``MALFORMED_QUERY``.
* An id literal that is not 15 or 18 alphanumeric characters is
  ``INVALID_QUERY_FILTER_OPERATOR`` ``invalid ID field: <value>``.
"""

from __future__ import annotations

from sfsync.emulator.clock import format_datetime
from sfsync.emulator.schema.model import FieldDef, FieldType

from . import ast as a
from . import plan as p
from .ids import to_18
from .messages import (
    INVALID_FIELD,
    INVALID_QUERY_FILTER_OPERATOR,
    SoqlSyntaxError,
    malformed,
    wrong_literal_type,
)
from .names import NameResolver, Resolved, Scope

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
UNFILTERABLE = (FieldType.ADDRESS, FieldType.LOCATION, FieldType.BASE64)


class ConditionBinder(NameResolver):
    """Binds WHERE expressions (and the operands ORDER BY and GROUP BY share with them)."""

    def bind_condition(self, cond: a.Condition, scope: Scope) -> p.BoundCondition:
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

    def _where_operand(self, expr: a.Operand, scope: Scope) -> p.Operand:
        if isinstance(expr, a.FieldRef):
            f = self.resolve(expr, scope).path
            self._check_filterable(f.field, expr.pos)
            return p.Operand(f, None, f.field.type, f.field.case_sensitive)
        if expr.name in AGGREGATES:
            raise malformed(expr.pos, "Aggregate functions are not supported in WHERE")
        return self.date_function(expr, scope)

    def date_function(self, call: a.FuncCall, scope: Scope) -> p.Operand:
        """``CALENDAR_YEAR(CreatedDate)`` and the like. ``convertTimezone(f)`` inside is
        accepted and changes nothing: the org's users all live in UTC."""
        spec = DATE_FUNCTIONS.get(call.name)
        if spec is None:
            raise malformed(call.pos, f"unexpected token: '{call.name}'")
        inner = call.arg
        if isinstance(inner, a.FuncCall) and inner.name == "CONVERTTIMEZONE":
            call = a.FuncCall(call.name, inner.arg, call.pos)
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
        if f.type in UNFILTERABLE or long_text:
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
        if operand.type is FieldType.MULTIPICKLIST and operand.func is None:
            if cond.op not in ("=", "!="):
                raise malformed(
                    expr.pos,
                    f"invalid operator on multipicklist field '{operand.path.field.name}': "
                    f"{cond.op} (use =, !=, INCLUDES or EXCLUDES)",
                )
            if isinstance(cond.value, a.StringLit):
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
        kind = operand.type
        if isinstance(lit, a.NullLit):
            # SOQL guide: on a boolean field `= null` is `= false`, `!= null` is `= true`.
            return p.Fixed(False if kind is FieldType.BOOLEAN else None)
        name = operand.path.field.name
        if kind in (FieldType.ID, FieldType.REFERENCE):
            if not isinstance(lit, a.StringLit):
                raise wrong_literal_type(field_pos, name, "id", True)
            wide = to_18(lit.value)
            if wide is None:
                raise SoqlSyntaxError(
                    INVALID_QUERY_FILTER_OPERATOR, lit.pos, f"invalid ID field: {lit.value}"
                )
            return p.Fixed(wide)
        if kind is FieldType.TIME:
            if not isinstance(lit, a.TimeLit):
                raise wrong_literal_type(field_pos, name, "time", False)
            return p.Fixed(lit.value)
        if kind.is_text:
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

    def _semi_join(self, cond: a.SemiJoin, scope: Scope) -> p.BSemiJoin:
        if not isinstance(cond.left, a.FieldRef):
            raise malformed(cond.left.pos, "Semi-join left operand must be an Id or lookup field")
        left = self.resolve(cond.left, scope)
        sub = cond.query
        sub_obj = self._object(sub.object_name, sub.object_pos)
        if sub_obj.name == scope[0].name:
            raise malformed(
                sub.object_pos, "The inner and outer selects should not be on the same object type"
            )
        sub_scope: Scope = (sub_obj, sub.alias)
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


def _targets(resolved: Resolved) -> set[str]:
    f = resolved.path.field
    if f.type is FieldType.ID:
        return {resolved.owner.name.lower()}
    return {name.lower() for name in f.reference_to}
