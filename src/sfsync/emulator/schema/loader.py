"""The emulator's schema file: custom objects, custom fields, validation rules and platform
events declared in YAML and merged over the standard objects.

The format is documented in ``docs/emulator-schema.md`` (example:
``examples/emulator-schema.yaml``). In short::

    objects:
      Invoice__c:                       # a custom object (name ends in __c)
        label: Invoice
        fields:
          Amount__c: {type: currency, precision: 16, scale: 2, required: true}
          Account__c: {type: lookup, reference_to: Account, child_relationship_name: Invoices__r}
        validation_rules:
          - {name: Positive, condition: "Amount__c < 0", message: "Must be positive",
             error_field: Amount__c}
      Account:                          # a standard object: add custom fields and rules
        fields:
          Customer_Number__c: {type: string, length: 20, external_id: true, unique: true}
    events:
      Order_Shipped__e:                 # a platform event (name ends in __e)
        fields:
          Order_Number__c: {type: string, length: 40}

Every mistake raises :class:`SchemaFileError` naming the file, the object, the field or rule,
what is wrong and how to fix it. Custom objects get key prefixes ``a00``, ``a01``, … and events
``e01``, ``e02``, … in file order, so ids stay stable as long as entries are only appended.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from sfsync.emulator.ids import custom_key_prefix
from sfsync.emulator.schema.model import (
    FieldDef,
    FieldType,
    ObjectDef,
    PicklistValue,
    Schema,
    ValidationRule,
)
from sfsync.emulator.schema.standard import (
    assemble_schema,
    auto_number,
    field,
    make_object,
    standard_objects,
)

T = FieldType

_TYPE_ALIASES: dict[str, FieldType] = {
    **{t.value: t for t in FieldType if t not in (T.ID, T.ADDRESS, T.LOCATION)},
    "text": T.STRING,
    "checkbox": T.BOOLEAN,
    "number": T.DOUBLE,
    "integer": T.INT,
    "longtextarea": T.TEXTAREA,
    "lookup": T.REFERENCE,
    "master_detail": T.REFERENCE,
    "auto_number": T.STRING,
}
_FIELD_KEYS = {
    "type",
    "label",
    "length",
    "precision",
    "scale",
    "required",
    "unique",
    "external_id",
    "case_sensitive",
    "values",
    "restricted",
    "default",
    "reference_to",
    "relationship_name",
    "child_relationship_name",
    "format",
    "description",
}
_OBJECT_KEYS = {"label", "label_plural", "fields", "validation_rules", "name_field", "description"}
_RULE_KEYS = {"name", "condition", "message", "error_field", "active", "description"}
_MAX_TEXT = 131072


class SchemaFileError(ValueError):
    """A mistake in the schema file; the message says where and how to fix it."""


class _Context:
    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, where: str, problem: str, fix: str) -> SchemaFileError:
        return SchemaFileError(f"{self.path}: {where}: {problem}. {fix}")


def load_schema(path: Path | None = None) -> Schema:
    """The standard schema, with the schema file at ``path`` (if any) merged over it."""
    objects = {o.name.lower(): o for o in standard_objects()}
    if path is None:
        return assemble_schema(objects.values())
    ctx = _Context(path)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise SchemaFileError(f"{path}: cannot read the schema file: {error}") from error
    except yaml.YAMLError as error:
        raise SchemaFileError(f"{path}: not valid YAML: {error}") from error
    if document is None:
        return assemble_schema(objects.values())
    if not isinstance(document, dict):
        raise ctx.fail("top level", "expected a mapping", "Start the file with 'objects:'")
    unknown = set(document) - {"objects", "events"}
    if unknown:
        raise ctx.fail(
            "top level",
            f"unknown section(s) {sorted(unknown)}",
            "Use only 'objects:' and 'events:'",
        )
    custom_index = 0
    for name, spec in _mapping(ctx, "objects", document.get("objects")).items():
        where = f"object '{name}'"
        body = _mapping(ctx, where, spec)
        existing = objects.get(str(name).lower())
        if existing is not None:
            objects[existing.name.lower()] = _extend(ctx, existing, body)
            continue
        if not str(name).endswith("__c"):
            raise ctx.fail(
                where,
                "unknown standard object and not a custom object name",
                f"Custom object names end in '__c' (e.g. '{name}__c'); standard "
                f"objects are {', '.join(sorted(o.name for o in objects.values()))}",
            )
        objects[str(name).lower()] = _custom_object(
            ctx, str(name), body, custom_key_prefix(custom_index)
        )
        custom_index += 1
    for index, (name, spec) in enumerate(
        _mapping(ctx, "events", document.get("events")).items(), start=1
    ):
        where = f"event '{name}'"
        if not str(name).endswith("__e"):
            raise ctx.fail(
                where, "platform event names must end in '__e'", f"Rename it to '{name}__e'"
            )
        if str(name).lower() in objects:
            raise ctx.fail(where, "declared twice", "Keep one declaration")
        objects[str(name).lower()] = _event(
            ctx, str(name), _mapping(ctx, where, spec), custom_key_prefix(index, first="e")
        )
    _check_links(ctx, objects)
    schema = assemble_schema(objects.values())
    _check_conditions(ctx, schema)
    return schema


def _mapping(ctx: _Context, where: str, value: object) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ctx.fail(
            where,
            f"expected a mapping, got {type(value).__name__}",
            "Write it as 'key: value' lines indented under it",
        )
    return {str(k): v for k, v in value.items()}


def _check_keys(ctx: _Context, where: str, body: Mapping[str, Any], allowed: set[str]) -> None:
    unknown = set(body) - allowed
    if unknown:
        raise ctx.fail(
            where,
            f"unknown key(s) {sorted(unknown)}",
            f"Allowed keys: {', '.join(sorted(allowed))}",
        )


def _custom_object(ctx: _Context, name: str, body: dict[str, Any], prefix: str) -> ObjectDef:
    where = f"object '{name}'"
    _check_keys(ctx, where, body, _OBJECT_KEYS)
    label = str(body.get("label") or name.removesuffix("__c").replace("_", " "))
    plural = str(body.get("label_plural") or f"{label}s")
    fields = _fields(ctx, name, _mapping(ctx, f"{where} fields", body.get("fields")), set())
    detail = any(f.cascade_delete for f in fields)
    name_spec = _mapping(ctx, f"{where} name_field", body.get("name_field"))
    _check_keys(ctx, f"{where} name_field", name_spec, {"label", "type", "format", "length"})
    name_label = str(name_spec.get("label") or f"{label} Name")
    formats: dict[str, str] = {}
    if name_spec.get("type") == "auto_number":
        name_field_def = auto_number("Name", name_label)
        formats["Name"] = str(name_spec.get("format") or "{0}")
    elif name_spec.get("type", "text") in ("text", "string"):
        length = _int(ctx, f"{where} name_field", name_spec, "length", 80, 1, 255)
        name_field_def = replace(
            field("Name", T.STRING, name_label, length=length, name_field=True), nillable=False
        )
    else:
        raise ctx.fail(
            f"{where} name_field",
            f"type must be 'text' or 'auto_number', not {name_spec.get('type')!r}",
            "Use 'type: text' or 'type: auto_number'",
        )
    formats.update(_auto_formats(fields, body, ctx, name))
    extra = {"auto_number_formats": MappingProxyType(formats)} if formats else {}
    obj = make_object(
        name,
        label,
        plural,
        [name_field_def, *fields],
        owned=not detail,
        key_prefix=prefix,
        extra=MappingProxyType(extra),
    )
    return replace(obj, validation_rules=_rules(ctx, obj, body.get("validation_rules")))


def _auto_formats(
    fields: list[FieldDef], body: dict[str, Any], ctx: _Context, name: str
) -> dict[str, str]:
    """Display formats of the auto-number fields among ``fields`` (default ``{0}``)."""
    specs = _mapping(ctx, f"object '{name}' fields", body.get("fields"))
    return {
        f.name: str(specs[f.name].get("format") or "{0}")
        for f in fields
        if f.auto_number and isinstance(specs.get(f.name), dict)
    }


def _event(ctx: _Context, name: str, body: dict[str, Any], prefix: str) -> ObjectDef:
    where = f"event '{name}'"
    _check_keys(ctx, where, body, {"label", "label_plural", "fields", "description"})
    label = str(body.get("label") or name.removesuffix("__e").replace("_", " "))
    fields = _fields(ctx, name, _mapping(ctx, f"{where} fields", body.get("fields")), set())
    replay = replace(
        field("ReplayId", T.STRING, "Replay ID", length=255), createable=False, updateable=False
    )
    uuid_field = replace(
        field("EventUuid", T.STRING, "Event UUID", length=36), createable=False, updateable=False
    )
    return make_object(
        name,
        label,
        str(body.get("label_plural") or label),
        [replay, uuid_field, *fields],
        owned=False,
        key_prefix=prefix,
        platform_event=True,
        queryable=False,
        updateable=False,
        deletable=False,
        undeletable=False,
        replicateable=False,
    )


def _extend(ctx: _Context, obj: ObjectDef, body: dict[str, Any]) -> ObjectDef:
    where = f"object '{obj.name}'"
    _check_keys(ctx, where, body, {"fields", "validation_rules"})
    new = _fields(
        ctx, obj.name, _mapping(ctx, f"{where} fields", body.get("fields")), set(obj.fields)
    )
    # Custom fields go before the trailing audit fields, as describe lists them.
    ordered = list(obj.fields.values())
    cut = next(i for i, f in enumerate(ordered) if f.name in ("OwnerId", "CreatedDate"))
    merged = [*ordered[:cut], *new, *ordered[cut:]]
    grown = replace(obj, fields=MappingProxyType({f.name.lower(): f for f in merged}))
    formats = _auto_formats(new, body, ctx, obj.name)
    if formats:
        known = obj.extra.get("auto_number_formats")
        merged_formats = {**(known if isinstance(known, Mapping) else {}), **formats}
        extra = {**obj.extra, "auto_number_formats": MappingProxyType(merged_formats)}
        grown = replace(grown, extra=MappingProxyType(extra))
    rules = _rules(ctx, grown, body.get("validation_rules"))
    return replace(grown, validation_rules=(*obj.validation_rules, *rules))


def _fields(ctx: _Context, obj_name: str, specs: dict[str, Any], taken: set[str]) -> list[FieldDef]:
    out = []
    seen = set(taken)
    for name, spec in specs.items():
        where = f"object '{obj_name}', field '{name}'"
        if not name.endswith("__c"):
            raise ctx.fail(
                where, "custom field names must end in '__c'", f"Rename it to '{name}__c'"
            )
        if name.lower() in seen:
            raise ctx.fail(
                where,
                "the object already has a field with this name",
                "Pick another name or remove the duplicate",
            )
        seen.add(name.lower())
        out.append(_field(ctx, where, name, _mapping(ctx, where, spec)))
    return out


def _int(
    ctx: _Context, where: str, spec: Mapping[str, Any], key: str, default: int, low: int, high: int
) -> int:
    value = spec.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ctx.fail(
            where,
            f"'{key}' must be a whole number from {low} to {high}, not {value!r}",
            f"Set '{key}: {default}' or another value in range",
        )
    return value


def _field(ctx: _Context, where: str, name: str, spec: dict[str, Any]) -> FieldDef:
    _check_keys(ctx, where, spec, _FIELD_KEYS)
    kind_name = str(spec.get("type", "")).lower()
    kind = _TYPE_ALIASES.get(kind_name)
    if kind is None:
        raise ctx.fail(
            where,
            f"unknown type {spec.get('type')!r}",
            f"Use one of: {', '.join(sorted(_TYPE_ALIASES))}",
        )
    label = str(spec.get("label") or name.removesuffix("__c").replace("_", " "))
    kw: dict[str, Any] = {
        "unique": bool(spec.get("unique", False)),
        "external_id": bool(spec.get("external_id", False)),
        "case_sensitive": bool(spec.get("case_sensitive", False)),
        "nillable": not bool(spec.get("required", False)),
    }
    if kind_name == "auto_number":
        return replace(auto_number(name, label), name_field=False)
    if kind.is_text and kind is not T.REFERENCE:
        limit = 32768 if kind_name == "longtextarea" else 255
        top = _MAX_TEXT if kind in (T.TEXTAREA,) else 255
        kw["length"] = _int(ctx, where, spec, "length", limit, 1, top)
    if kind.is_number:
        kw["precision"] = _int(ctx, where, spec, "precision", 18, 1, 18)
        kw["scale"] = _int(ctx, where, spec, "scale", 0 if kind is T.INT else 2, 0, kw["precision"])
    if kind in (T.PICKLIST, T.MULTIPICKLIST):
        values = spec.get("values")
        if not isinstance(values, list) or not values:
            raise ctx.fail(
                where,
                "a picklist needs a non-empty list of 'values'",
                "Add e.g. 'values: [Draft, Sent, Paid]'",
            )
        default = spec.get("default")
        kw["picklist"] = tuple(
            PicklistValue(str(v), str(v), default=(v == default)) for v in values
        )
        kw["restricted_picklist"] = bool(spec.get("restricted", False))
        if default is not None and default not in values:
            raise ctx.fail(
                where,
                f"default {default!r} is not one of the values",
                "Make 'default' one of 'values'",
            )
    if "default" in spec and spec["default"] is not None:
        kw["defaulted_on_create"] = True
        kw["default"] = spec["default"]
    if kind is T.REFERENCE:
        targets = spec.get("reference_to")
        if isinstance(targets, str):
            targets = [targets]
        if not isinstance(targets, list) or not targets:
            raise ctx.fail(
                where,
                "a lookup needs 'reference_to' (the parent object)",
                "Add e.g. 'reference_to: Account'",
            )
        kw["reference_to"] = tuple(str(t) for t in targets)
        kw["relationship_name"] = str(
            spec.get("relationship_name") or name.removesuffix("__c") + "__r"
        )
        child = spec.get("child_relationship_name")
        kw["child_relationship_name"] = str(child) if child else None
        if kind_name == "master_detail":
            kw["cascade_delete"] = True
            kw["nillable"] = False
    return field(name, kind, label, **kw)


def _rules(ctx: _Context, obj: ObjectDef, specs: object) -> tuple[ValidationRule, ...]:
    if specs is None:
        return ()
    where = f"object '{obj.name}' validation_rules"
    if not isinstance(specs, list):
        raise ctx.fail(where, "expected a list", "Write each rule as a '- name: ...' item")
    rules = []
    for position, spec in enumerate(specs, start=1):
        body = _mapping(ctx, f"{where} item {position}", spec)
        rule_where = f"object '{obj.name}', validation rule '{body.get('name', position)}'"
        _check_keys(ctx, rule_where, body, _RULE_KEYS)
        for key in ("name", "condition", "message"):
            if isinstance(body.get(key), bool):
                raise ctx.fail(
                    rule_where,
                    f"'{key}' was read as a boolean (YAML reads unquoted yes/no/on/off so)",
                    f'Quote it, e.g. {key}: "{"On" if body[key] else "Off"}"',
                )
            if not isinstance(body.get(key), str) or not body[key].strip():
                raise ctx.fail(
                    rule_where, f"'{key}' is missing or empty", f"Give the rule a '{key}' (text)"
                )
        error_field = body.get("error_field")
        if error_field is not None and obj.field(str(error_field)) is None:
            raise ctx.fail(
                rule_where,
                f"error_field '{error_field}' is not a field of {obj.name}",
                "Name an existing field or leave error_field out",
            )
        declared = obj.field(str(error_field)) if error_field else None
        rules.append(
            ValidationRule(
                body["name"],
                body["condition"],
                body["message"],
                declared.name if declared else None,
                bool(body.get("active", True)),
            )
        )
    return tuple(rules)


def _check_links(ctx: _Context, objects: Mapping[str, ObjectDef]) -> None:
    children: dict[tuple[str, str], str] = {}
    for obj in objects.values():
        for f in obj.fields.values():
            if f.type is not T.REFERENCE:
                continue
            for target in f.reference_to:
                if target.lower() not in objects:
                    raise ctx.fail(
                        f"object '{obj.name}', field '{f.name}'",
                        f"reference_to names unknown object '{target}'",
                        "Declare that object in this file or point at an existing one",
                    )
                if f.child_relationship_name is None:
                    continue
                key = (target.lower(), f.child_relationship_name.lower())
                if key in children:
                    raise ctx.fail(
                        f"object '{obj.name}', field '{f.name}'",
                        f"child_relationship_name '{f.child_relationship_name}' is already "
                        f"used on {target} by {children[key]}",
                        "Pick a unique child relationship name (e.g. ending in '__r')",
                    )
                children[key] = f"{obj.name}.{f.name}"


def _check_conditions(ctx: _Context, schema: Schema) -> None:
    """Compile every rule now when the SOQL engine is present, so that a bad condition fails
    at load time with the rule's name rather than on the first save."""
    try:
        module = importlib.import_module("sfsync.emulator.soql")
    except ImportError:
        return
    compile_condition = getattr(module, "compile_condition", None)
    if compile_condition is None:
        return
    for obj in schema:
        for rule in obj.validation_rules:
            try:
                compile_condition(rule.condition, obj, schema)
            except Exception as error:  # the engine raises ApiError; any failure is the file's
                raise ctx.fail(
                    f"object '{obj.name}', validation rule '{rule.name}'",
                    f"condition {rule.condition!r} is not a valid SOQL WHERE expression: {error}",
                    "Fix the condition (it is a SOQL WHERE clause over this object's fields)",
                ) from error
