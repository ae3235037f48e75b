"""Rendering stored records as REST record JSON (``GET /sobjects/{Obj}/{id}`` and retrieve).

The store keeps only the writable component fields of a compound field (``BillingCity`` ...);
the REST representation also carries the compound itself (``BillingAddress``) as an object of
its components keyed ``street``, ``city``, ``state``, ``postalCode``, ``country``,
``latitude``, ``longitude``, ``geocodeAccuracy`` ... (section 2.5), or ``null`` when every
component is empty.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sfsync.emulator.errors import ApiError
from sfsync.emulator.rest.common import record_url
from sfsync.emulator.schema.model import FieldDef, FieldType, ObjectDef, WireValue

_COMPOUND_TYPES = (FieldType.ADDRESS, FieldType.LOCATION)


def compound_key(compound: FieldDef, component: FieldDef) -> str:
    """The key of ``component`` inside the compound value (``BillingPostalCode`` ->
    ``postalCode``): the component name minus the compound's prefix, first letter lowered."""
    base = compound.name
    for suffix in ("Address", "__c"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
            break
    rest = component.name[len(base) :] if component.name.startswith(base) else component.name
    rest = rest.removesuffix("__s")
    rest = rest.lstrip("_")
    return rest[:1].lower() + rest[1:]


def compound_value(
    obj: ObjectDef, compound: FieldDef, row: Mapping[str, WireValue]
) -> dict[str, WireValue] | None:
    """The compound field's object built from the components in ``row``."""
    parts = {
        compound_key(compound, f): row.get(f.name)
        for f in obj.fields.values()
        if f.compound_field_name == compound.name
    }
    if not parts or all(v is None for v in parts.values()):
        return None
    # Real payloads list the components alphabetically (city, country, geocodeAccuracy, ...).
    return dict(sorted(parts.items()))


def resolve_fields(obj: ObjectDef, names: Iterable[str]) -> list[FieldDef]:
    """Fields named in ``?fields=``; an unknown one is 400 INVALID_FIELD."""
    resolved = []
    for raw in names:
        name = raw.strip()
        if not name:
            continue
        field = obj.field(name)
        if field is None:
            raise ApiError.of(
                400,
                "INVALID_FIELD",
                f"No such column '{name}' on entity '{obj.name}'. If you are attempting to use "
                "a custom field, be sure to append the '__c' after the custom field name. "
                "Please reference your WSDL or the describe call for the appropriate names.",
            )
        resolved.append(field)
    return resolved


def render_record(
    obj: ObjectDef,
    row: Mapping[str, WireValue],
    version: str,
    fields: Iterable[FieldDef] | None = None,
) -> dict[str, Any]:
    """``row`` as a REST record: ``attributes`` first, then every field (or ``fields``) in
    declared order, ``null`` where empty."""
    record_id = str(row.get("Id"))
    out: dict[str, Any] = {
        "attributes": {"type": obj.name, "url": record_url(version, obj.name, record_id)}
    }
    for field in obj.fields.values() if fields is None else fields:
        if field.type in _COMPOUND_TYPES:
            out[field.name] = compound_value(obj, field, row)
        else:
            out[field.name] = row.get(field.name)
    return out
