"""Validation of record writes, the way Salesforce answers a bad insert or update.

The store calls these in order: :func:`prepare_values` turns the JSON-decoded request values
into wire form (unknown field, read-only field, wrong type, too long, bad picklist value, bad
email, malformed id), then, on the merged record, :func:`check_required`,
:func:`check_references` (the lookups point at live records of the right type),
:func:`check_unique` and :class:`RuleChecker` (validation rules from the schema file). Each
failure raises :class:`~sfsync.emulator.errors.ApiError` with status 400 and Salesforce's code.

Choices where the reference is UNCONFIRMED:

* A value of the wrong JSON type (``"abc"`` in a number field, ``{}`` anywhere) fails with
  ``JSON_PARSER_ERROR`` ``Cannot deserialize instance of <type> from VALUE_STRING value
  <v> or request may be missing a required field`` (real orgs add ``at [line:…, column:…]``,
  which we cannot know after decoding). Numeric strings in number fields and
  ``"true"``/``"false"`` in checkboxes are accepted, as the platform's JSON reader does.
* Messages name fields by label (``Account Name: data value too large: …``), except
  ``DUPLICATE_VALUE`` which names the API name.
* A lookup to a record of another object type fails with ``FIELD_INTEGRITY_EXCEPTION``
  ``<Label>: id value of incorrect type: <id>``; a malformed id with ``MALFORMED_ID`` and the
  same message; a well-formed id that matches nothing with ``INVALID_CROSS_REFERENCE_KEY``
  ``invalid cross reference id``; a record in the recycle bin with ``ENTITY_IS_DELETED``.
* Empty strings are stored as null, as on the platform.
"""

from __future__ import annotations

import importlib
import math
import re
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, time
from decimal import ROUND_HALF_UP, Decimal
from typing import Protocol, cast

from sfsync.emulator.clock import format_datetime
from sfsync.emulator.errors import ApiError
from sfsync.emulator.ids import normalise
from sfsync.emulator.schema.model import FieldDef, FieldType, ObjectDef, Schema, WireValue

T = FieldType
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_TIME = re.compile(r"^(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?Z?$")


class Lookups(Protocol):
    """What validation needs to read from the store."""

    def get(self, record_id: str) -> Mapping[str, WireValue] | None: ...

    def find_by_field(self, object_name: str, field_name: str, value: WireValue) -> list[str]: ...


Condition = Callable[[Mapping[str, WireValue], object, datetime], bool]
ConditionCompiler = Callable[[str, ObjectDef, Schema], Condition]


def _bad(code: str, message: str, *fields: str) -> ApiError:
    return ApiError.of(400, code, message, tuple(fields))


def _parser_error(f: FieldDef, raw: object) -> ApiError:
    token = "VALUE_STRING"
    if isinstance(raw, bool):
        token = "VALUE_TRUE" if raw else "VALUE_FALSE"
    elif isinstance(raw, int | float):
        token = "VALUE_NUMBER_INT" if isinstance(raw, int) else "VALUE_NUMBER_FLOAT"
    elif isinstance(raw, dict):
        token, raw = "START_OBJECT", "{"
    elif isinstance(raw, list):
        token, raw = "START_ARRAY", "["
    return _bad(
        "JSON_PARSER_ERROR",
        f"Cannot deserialize instance of {f.type.value} from {token} value {raw} "
        "or request may be missing a required field",
    )


def parse_datetime(text: str) -> datetime:
    """An ISO 8601 datetime (``Z``, ``+hh:mm`` or ``+hhmm``; no offset means UTC) or date."""
    moment = datetime.fromisoformat(text.strip())
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


def coerce_value(f: FieldDef, raw: object) -> WireValue:
    """``raw`` (a JSON-decoded value) as the wire value of field ``f``; ApiError when it does
    not fit (type, length, picklist, email, id format, numeric range)."""
    if raw is None or raw == "":
        return None
    if isinstance(raw, dict | list):
        raise _parser_error(f, raw)
    kind = f.type
    if kind is T.BOOLEAN:
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.lower() in ("true", "false"):
            return raw.lower() == "true"
        raise _parser_error(f, raw)
    if kind.is_number:
        return _coerce_number(f, raw)
    if isinstance(raw, bool) and kind in (T.DATE, T.DATETIME, T.TIME):
        raise _parser_error(f, raw)
    text = raw if isinstance(raw, str) else str(raw)
    if kind is T.DATE:
        try:
            day = date.fromisoformat(text) if len(text) == 10 else parse_datetime(text).date()
        except ValueError:
            raise _parser_error(f, raw) from None
        return day.isoformat()
    if kind is T.DATETIME:
        try:
            return format_datetime(parse_datetime(text))
        except ValueError:
            raise _parser_error(f, raw) from None
    if kind is T.TIME:
        match = _TIME.match(text)
        if match is None:
            raise _parser_error(f, raw)
        hh, mm, ss, ms = match.groups()
        try:
            t = time(int(hh), int(mm), int(ss or 0), int((ms or "0").ljust(3, "0")) * 1000)
        except ValueError:
            raise _parser_error(f, raw) from None
        return t.strftime("%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"
    if kind in (T.REFERENCE, T.ID):
        try:
            return normalise(text)
        except ValueError:
            raise _bad(
                "MALFORMED_ID", f"{f.label}: id value of incorrect type: {text}", f.name
            ) from None
    return _coerce_text(f, text)


def _coerce_number(f: FieldDef, raw: object) -> WireValue:
    if isinstance(raw, bool):
        raise _parser_error(f, raw)
    number: float
    if isinstance(raw, int | float):
        number = raw
    elif isinstance(raw, str):
        try:
            number = float(raw.strip())
        except ValueError:
            raise _parser_error(f, raw) from None
    else:
        raise _parser_error(f, raw)
    if math.isnan(number) or math.isinf(number):
        raise _parser_error(f, raw)
    scale = f.scale
    digits = (f.precision - scale) if f.precision else 18
    if abs(number) >= 10.0**digits:
        raise _bad(
            "NUMBER_OUTSIDE_VALID_RANGE",
            f"{f.label}: value outside of valid range on numeric field: {raw}",
            f.name,
        )
    if f.type is T.INT:
        if isinstance(number, float) and not number.is_integer():
            raise _parser_error(f, raw)
        return int(number)
    # The platform rounds half up to the field's scale (Python's round() would round half even).
    step = Decimal(1).scaleb(-scale)
    return float(Decimal(repr(number)).quantize(step, rounding=ROUND_HALF_UP))


def _coerce_text(f: FieldDef, text: str) -> WireValue:
    if f.length and len(text) > f.length:
        raise _bad(
            "STRING_TOO_LONG",
            f"{f.label}: data value too large: {text} (max length={f.length})",
            f.name,
        )
    if f.type is T.EMAIL and not _EMAIL.match(text):
        raise _bad("INVALID_EMAIL_ADDRESS", f"{f.label}: invalid email address: {text}", f.name)
    if f.restricted_picklist and f.type in (T.PICKLIST, T.MULTIPICKLIST):
        allowed = {p.value for p in f.picklist if p.active}
        chosen = text.split(";") if f.type is T.MULTIPICKLIST else [text]
        for value in chosen:
            if value not in allowed:
                raise _bad(
                    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                    f"{f.label}: bad value for restricted picklist field: {value}",
                    f.name,
                )
    return text


def prepare_values(
    obj: ObjectDef,
    schema: Schema,
    values: Mapping[str, object],
    *,
    creating: bool,
    lookups: Lookups,
    record_id: str | None = None,
) -> dict[str, WireValue]:
    """The request ``values`` coerced to wire form, keyed by declared field names.

    ``attributes`` is ignored; ``Id`` is ignored on update when it names the record being
    updated. A relationship name whose value is an object naming an external id field of the
    parent (``"Account": {"Ext__c": "A-1"}``) sets the lookup to the matching record.
    """
    out: dict[str, WireValue] = {}
    for key, raw in values.items():
        if key == "attributes":
            continue
        f = obj.field(key)
        if f is None:
            rel = obj.relationship(key)
            if rel is not None and isinstance(raw, Mapping):
                f, raw = rel, _resolve_foreign_key(rel, schema, raw, lookups)
            else:
                raise _bad("INVALID_FIELD", f"No such column '{key}' on sobject of type {obj.name}")
        same_record = isinstance(raw, str) and record_id is not None and _same_id(raw, record_id)
        if f.type is T.ID and not creating and same_record:
            continue
        writable = f.createable if creating else f.updateable
        if not writable or f.calculated or f.auto_number:
            raise _bad(
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                f"Unable to create/update fields: {f.name}. Please check the security settings "
                "of this field and verify that it is read/write for your profile or "
                "permission set.",
                f.name,
            )
        # A checkbox cannot be null: the platform stores null as false.
        value = coerce_value(f, raw)
        out[f.name] = False if value is None and f.type is T.BOOLEAN else value
    return out


def _same_id(a: str, b: str) -> bool:
    try:
        return normalise(a) == normalise(b)
    except ValueError:
        return False


def _resolve_foreign_key(
    rel: FieldDef, schema: Schema, spec: Mapping[str, object], lookups: Lookups
) -> str:
    attributes = spec.get("attributes")
    target_name = rel.reference_to[0]
    if isinstance(attributes, Mapping) and isinstance(attributes.get("type"), str):
        target_name = str(attributes["type"])
    target = schema.object(target_name)
    keys = [k for k in spec if k != "attributes"]
    if target is None or len(keys) != 1:
        raise _bad(
            "INVALID_FIELD", f"Invalid foreign key relationship name {rel.relationship_name}"
        )
    key_field = target.field(keys[0])
    if key_field is None or not key_field.id_lookup:
        raise _bad(
            "INVALID_FIELD",
            f"Field {keys[0]} is not an External ID or indexed field for {target.name}",
        )
    value = coerce_value(key_field, spec[keys[0]])
    if key_field.type is T.ID:
        row = lookups.get(str(value)) if value is not None else None
        matches = [str(value)] if row is not None else []
    else:
        matches = lookups.find_by_field(target.name, key_field.name, value)
    if not matches:
        raise _bad(
            "INVALID_FIELD",
            f"Foreign key external ID: {value} not found for field {key_field.name} in entity "
            f"{target.name}",
        )
    if len(matches) > 1:
        raise _bad(
            "DUPLICATE_EXTERNAL_ID",
            f"Foreign key external ID: {value} matched more than one record for field "
            f"{key_field.name} in entity {target.name}",
        )
    return matches[0]


def check_required(
    obj: ObjectDef, record: Mapping[str, WireValue], given: Mapping[str, object], *, creating: bool
) -> None:
    """REQUIRED_FIELD_MISSING, listing every missing field: on insert each required field the
    merged ``record`` lacks; on update each non-nillable field ``given`` sets to null."""
    missing = []
    for f in obj.fields.values():
        if creating:
            if f.required_on_create and record.get(f.name) is None:
                missing.append(f.name)
        elif f.name in given and given[f.name] is None and not f.nillable:
            missing.append(f.name)
    if missing:
        raise _bad(
            "REQUIRED_FIELD_MISSING",
            f"Required fields are missing: [{', '.join(missing)}]",
            *missing,
        )


def check_references(
    obj: ObjectDef, schema: Schema, values: Mapping[str, WireValue], lookups: Lookups
) -> None:
    """Every non-null lookup in ``values`` points at a live record of an allowed type."""
    for name, value in values.items():
        f = obj.field(name)
        if f is None or f.type is not T.REFERENCE or value is None:
            continue
        target = schema.by_prefix(str(value)[:3])
        if target is None:
            raise _bad("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", f.name)
        if target.name not in f.reference_to:
            raise _bad(
                "FIELD_INTEGRITY_EXCEPTION",
                f"{f.label}: id value of incorrect type: {value}",
                f.name,
            )
        row = lookups.get(str(value))
        if row is None:
            raise _bad("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", f.name)
        if row.get("IsDeleted") is True:
            raise _bad("ENTITY_IS_DELETED", "entity is deleted", f.name)


def check_unique(
    obj: ObjectDef, values: Mapping[str, WireValue], record_id: str, lookups: Lookups
) -> None:
    """DUPLICATE_VALUE when a unique field in ``values`` repeats another live record's value."""
    for f in obj.fields.values():
        if not f.unique:
            continue
        value = values.get(f.name)
        if value is None:
            continue
        others = [i for i in lookups.find_by_field(obj.name, f.name, value) if i != record_id]
        if others:
            raise _bad(
                "DUPLICATE_VALUE",
                f"duplicate value found: {f.name} duplicates value on record with id: {others[0]}",
            )


def _soql_compiler() -> ConditionCompiler:
    # Imported lazily: the SOQL engine depends on the schema model, and validation must not
    # make the store depend on the whole engine at import time.
    module = importlib.import_module("sfsync.emulator.soql")
    compiler = getattr(module, "compile_condition", None)
    if compiler is None:
        raise ApiError.of(
            500,
            "UNKNOWN_EXCEPTION",
            "validation rules need sfsync.emulator.soql.compile_condition, which is missing",
        )
    return cast(ConditionCompiler, compiler)


class RuleChecker:
    """Evaluates the active validation rules of an object on a record about to be saved.

    Conditions are SOQL WHERE expressions, compiled once per rule by ``compile_condition``
    (default: the SOQL engine's ``sfsync.emulator.soql.compile_condition``, loaded on first
    use). A true condition fails the save with FIELD_CUSTOM_VALIDATION_EXCEPTION, the rule's
    message and its error field; the first failing rule in declared order wins.
    """

    def __init__(self, schema: Schema, compile_condition: ConditionCompiler | None = None) -> None:
        self._schema = schema
        self._compile = compile_condition
        self._cache: dict[tuple[str, str], Condition] = {}

    def check(
        self, obj: ObjectDef, record: Mapping[str, WireValue], source: object, now: datetime
    ) -> None:
        for rule in obj.validation_rules:
            if not rule.active:
                continue
            key = (obj.name, rule.name)
            condition = self._cache.get(key)
            if condition is None:
                compiler = self._compile or _soql_compiler()
                condition = compiler(rule.condition, obj, self._schema)
                self._cache[key] = condition
            if condition(record, source, now):
                fields = (rule.error_field,) if rule.error_field else ()
                raise ApiError.of(400, "FIELD_CUSTOM_VALIDATION_EXCEPTION", rule.message, fields)
