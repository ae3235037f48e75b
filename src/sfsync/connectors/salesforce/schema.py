"""From Salesforce describe to :class:`~sfsync.core.schema.EntitySchema`: one table, tested.

The mapping of Salesforce field types to portable kinds is documented here and in
docs/salesforce-source.md. Compound fields (``BillingAddress``) are left out: their
components (``BillingCity``...) are ordinary fields, and the Bulk API cannot read compounds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

from sfsync.core.errors import ConfigError
from sfsync.core.schema import EntitySchema, FieldKind, FieldSpec

# Salesforce describe `type` -> portable kind.
TYPE_MAP: Mapping[str, FieldKind] = MappingProxyType(
    {
        "id": FieldKind.ID,
        "reference": FieldKind.REFERENCE,
        "string": FieldKind.STRING,
        "picklist": FieldKind.STRING,
        "multipicklist": FieldKind.STRING,
        "combobox": FieldKind.STRING,
        "email": FieldKind.STRING,
        "phone": FieldKind.STRING,
        "url": FieldKind.STRING,
        "encryptedstring": FieldKind.STRING,
        "textarea": FieldKind.TEXT,
        "boolean": FieldKind.BOOLEAN,
        "int": FieldKind.INTEGER,
        "long": FieldKind.INTEGER,
        "double": FieldKind.DECIMAL,
        "currency": FieldKind.DECIMAL,
        "percent": FieldKind.DECIMAL,
        "date": FieldKind.DATE,
        "datetime": FieldKind.DATETIME,
        "time": FieldKind.TIME,
        "base64": FieldKind.BINARY,
        "address": FieldKind.JSON,
        "location": FieldKind.JSON,
        "anyType": FieldKind.TEXT,
        "complexvalue": FieldKind.JSON,
    }
)

COMPOUND_TYPES = frozenset({"address", "location"})
VERSION_FIELDS = ("SystemModstamp", "LastModifiedDate", "CreatedDate")


def field_spec(describe: Mapping[str, Any]) -> FieldSpec:
    """The portable spec of one field from its describe entry."""
    sf_type = str(describe["type"])
    kind = TYPE_MAP.get(sf_type, FieldKind.TEXT)
    length = int(describe.get("length") or 0)
    if kind is FieldKind.STRING and sf_type in ("picklist", "multipicklist") and length == 0:
        length = 4099 if sf_type == "multipicklist" else 255
    precision = int(describe.get("precision") or 0)
    scale = int(describe.get("scale") or 0)
    if kind is FieldKind.DECIMAL and precision == 0:
        # Salesforce reports digits for number fields; a zero means "unspecified": use a
        # float rather than an exact type we would have to guess the size of.
        kind = FieldKind.FLOAT
    if kind is FieldKind.INTEGER and sf_type == "int":
        precision = int(describe.get("digits") or 9)
    return FieldSpec(
        name=str(describe["name"]),
        kind=kind,
        length=length if kind is FieldKind.STRING else 0,
        precision=precision if kind is FieldKind.DECIMAL else 0,
        scale=scale if kind is FieldKind.DECIMAL else 0,
        nullable=bool(describe.get("nillable", True)),
        source_type=sf_type,
        label=str(describe.get("label") or ""),
    )


def entity_schema(
    describe: Mapping[str, Any],
    *,
    include: Sequence[str] | None = None,
    exclude: Sequence[str] = (),
) -> EntitySchema:
    """The schema of one object from its full describe, with the configured field selection.

    Args:
        describe: ``GET /sobjects/{Obj}/describe``.
        include: the fields to sync (``None`` = every field the user can read). ``Id`` and the
            version and delete markers are always added: the sync cannot work without them.
        exclude: fields to leave out.

    Raises:
        ConfigError: a configured field does not exist (the message lists near names).
    """
    name = str(describe["name"])
    by_name = {str(f["name"]).lower(): f for f in describe["fields"]}
    version = next((v for v in VERSION_FIELDS if v.lower() in by_name), None)
    deleted = "IsDeleted" if "isdeleted" in by_name else None
    excluded = {e.lower() for e in exclude}
    if include is None:
        chosen = [
            f
            for f in describe["fields"]
            if f["type"] not in COMPOUND_TYPES and str(f["name"]).lower() not in excluded
        ]
    else:
        missing = [f for f in include if f.lower() not in by_name]
        if missing:
            raise ConfigError(
                f"{name} has no field {', '.join(repr(m) for m in missing)}",
                hint=_near(missing[0], list(by_name)),
            )
        chosen = [by_name[f.lower()] for f in include if f.lower() not in excluded]
    required = ["id", *(x.lower() for x in (version, deleted) if x)]
    names = {str(f["name"]).lower() for f in chosen}
    chosen = [by_name[r] for r in required if r not in names] + chosen
    specs = [field_spec(f) for f in chosen]
    return EntitySchema.of(name, "Id", specs, version_field=version, deleted_field=deleted)


def _near(name: str, candidates: list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(name.lower(), candidates, n=3)
    if close:
        return f"did you mean {', '.join(close)}? (names are as in describe; custom end in __c)"
    return "check the field name in Setup > Object Manager; custom fields end in __c"
