"""The emulator's metadata: objects, fields, relationships and validation rules.

These frozen values are what describe renders, what validation enforces and what SOQL
resolves names against. Names are looked up case-insensitively, as Salesforce does, but
always rendered in their declared casing.

Record values are held in their JSON wire form (see :data:`WireValue`): datetimes as
``"2024-01-15T09:30:00.000+0000"`` strings (always UTC, fixed width, so that string order is
time order), dates as ``"2024-01-15"``, numbers, booleans, strings, ``None``.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

WireValue = str | int | float | bool | None


class FieldType(enum.Enum):
    """Salesforce describe ``type`` values the emulator supports."""

    ID = "id"
    STRING = "string"
    TEXTAREA = "textarea"
    PICKLIST = "picklist"
    MULTIPICKLIST = "multipicklist"
    COMBOBOX = "combobox"
    BOOLEAN = "boolean"
    INT = "int"
    DOUBLE = "double"
    CURRENCY = "currency"
    PERCENT = "percent"
    DATE = "date"
    DATETIME = "datetime"
    TIME = "time"
    EMAIL = "email"
    PHONE = "phone"
    URL = "url"
    REFERENCE = "reference"
    ADDRESS = "address"
    LOCATION = "location"
    BASE64 = "base64"
    ENCRYPTEDSTRING = "encryptedstring"

    @property
    def soap_type(self) -> str:
        """The describe ``soapType`` of this field type."""
        return _SOAP_TYPES[self]

    @property
    def is_text(self) -> bool:
        """String-valued types (compared case-insensitively by SOQL ``=`` and ``LIKE``)."""
        return self in _TEXT_TYPES

    @property
    def is_number(self) -> bool:
        return self in (FieldType.INT, FieldType.DOUBLE, FieldType.CURRENCY, FieldType.PERCENT)


_TEXT_TYPES = frozenset(
    {
        FieldType.ID,
        FieldType.STRING,
        FieldType.TEXTAREA,
        FieldType.PICKLIST,
        FieldType.MULTIPICKLIST,
        FieldType.COMBOBOX,
        FieldType.EMAIL,
        FieldType.PHONE,
        FieldType.URL,
        FieldType.REFERENCE,
        FieldType.ENCRYPTEDSTRING,
    }
)

_SOAP_TYPES = {
    FieldType.ID: "tns:ID",
    FieldType.REFERENCE: "tns:ID",
    FieldType.BOOLEAN: "xsd:boolean",
    FieldType.INT: "xsd:int",
    FieldType.DOUBLE: "xsd:double",
    FieldType.CURRENCY: "xsd:double",
    FieldType.PERCENT: "xsd:double",
    FieldType.DATE: "xsd:date",
    FieldType.DATETIME: "xsd:dateTime",
    FieldType.TIME: "xsd:time",
    FieldType.ADDRESS: "urn:address",
    FieldType.LOCATION: "urn:location",
    FieldType.BASE64: "xsd:base64Binary",
}
for _t in FieldType:
    _SOAP_TYPES.setdefault(_t, "xsd:string")


@dataclass(frozen=True, slots=True)
class PicklistValue:
    """One picklist entry."""

    value: str
    label: str
    active: bool = True
    default: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class FieldDef:
    """One field of an object, with the describe attributes that behaviour depends on.

    Attributes:
        name: API name in its declared casing (``"AnnualRevenue"``, ``"External_Id__c"``).
        type: the describe type.
        label: the human label (used in some error messages).
        length: max characters for text types (0 where not applicable).
        precision, scale: digits for numbers.
        nillable: may be null. A createable, non-nillable field that is not
            ``defaulted_on_create`` is required on insert (REQUIRED_FIELD_MISSING).
        createable, updateable: may be set on insert / update (else
            INVALID_FIELD_FOR_INSERT_UPDATE).
        defaulted_on_create: the org fills it when the insert omits it.
        default: the value filled in when ``defaulted_on_create`` and omitted.
        unique: no two records may share a non-null value (DUPLICATE_VALUE).
        external_id: usable as an upsert key; implies ``id_lookup``.
        case_sensitive: uniqueness and ``=`` compare exactly instead of ignoring case.
        picklist: allowed values for (multi)picklists.
        restricted_picklist: values outside ``picklist`` are rejected.
        reference_to: target object names of a lookup (several for polymorphic ones).
        relationship_name: the name used in SOQL paths (``"Account"``, ``"Parent__r"``).
        child_relationship_name: on the parent, the name of the child list (``"Contacts"``).
        cascade_delete: master-detail: deleting the parent deletes the children.
        compound_field_name: for components of a compound field, the compound's name
            (``BillingCity`` -> ``"BillingAddress"``).
        calculated: formula or roll-up; never writable.
        auto_number: filled by the org from a counter; never writable.
        name_field: the object's name field.
    """

    name: str
    type: FieldType
    label: str
    length: int = 0
    precision: int = 0
    scale: int = 0
    nillable: bool = True
    createable: bool = True
    updateable: bool = True
    defaulted_on_create: bool = False
    default: WireValue = None
    unique: bool = False
    external_id: bool = False
    case_sensitive: bool = False
    picklist: tuple[PicklistValue, ...] = ()
    restricted_picklist: bool = False
    reference_to: tuple[str, ...] = ()
    relationship_name: str | None = None
    child_relationship_name: str | None = None
    cascade_delete: bool = False
    compound_field_name: str | None = None
    calculated: bool = False
    auto_number: bool = False
    name_field: bool = False

    @property
    def custom(self) -> bool:
        return self.name.endswith("__c")

    @property
    def required_on_create(self) -> bool:
        """The insert must give a value (REQUIRED_FIELD_MISSING otherwise)."""
        return (
            not self.nillable
            and self.createable
            and not self.defaulted_on_create
            and self.type is not FieldType.BOOLEAN
        )

    @property
    def id_lookup(self) -> bool:
        return self.external_id or self.type is FieldType.ID or self.name_field


@dataclass(frozen=True, slots=True)
class ChildRelationship:
    """A parent-to-child relationship as describe lists it (``Account.Contacts``)."""

    name: str
    child_object: str
    field: str
    cascade_delete: bool = False


@dataclass(frozen=True, slots=True)
class ValidationRule:
    """A validation rule: when ``condition`` (a SOQL WHERE expression over the record being
    saved) is true, the save fails with FIELD_CUSTOM_VALIDATION_EXCEPTION and ``message``.
    ``error_field`` names the field the error is shown on, or ``None`` for the top of the page."""

    name: str
    condition: str
    message: str
    error_field: str | None = None
    active: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class ObjectDef:
    """One sObject type.

    ``fields`` is keyed by lower-cased API name and iterates in declared order.
    """

    name: str
    label: str
    label_plural: str
    key_prefix: str
    fields: Mapping[str, FieldDef]
    child_relationships: tuple[ChildRelationship, ...] = ()
    validation_rules: tuple[ValidationRule, ...] = ()
    queryable: bool = True
    createable: bool = True
    updateable: bool = True
    deletable: bool = True
    undeletable: bool = True
    replicateable: bool = True
    platform_event: bool = False
    extra: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def custom(self) -> bool:
        return self.name.endswith("__c")

    def field(self, name: str) -> FieldDef | None:
        """The field called ``name`` (any casing), or ``None``."""
        return self.fields.get(name.lower())

    def relationship(self, name: str) -> FieldDef | None:
        """The lookup field whose ``relationship_name`` is ``name`` (any casing), or ``None``."""
        lowered = name.lower()
        for f in self.fields.values():
            if f.relationship_name is not None and f.relationship_name.lower() == lowered:
                return f
        return None

    def child_relationship(self, name: str) -> ChildRelationship | None:
        """The child relationship called ``name`` (any casing), or ``None``."""
        lowered = name.lower()
        for rel in self.child_relationships:
            if rel.name.lower() == lowered:
                return rel
        return None

    @property
    def external_id_fields(self) -> tuple[FieldDef, ...]:
        return tuple(f for f in self.fields.values() if f.external_id)


@dataclass(frozen=True, slots=True)
class Schema:
    """Every object of the org, looked up by name (any casing) or key prefix."""

    objects: Mapping[str, ObjectDef]

    def object(self, name: str) -> ObjectDef | None:
        return self.objects.get(name.lower())

    def by_prefix(self, key_prefix: str) -> ObjectDef | None:
        for obj in self.objects.values():
            if obj.key_prefix == key_prefix:
                return obj
        return None

    def __iter__(self) -> Iterator[ObjectDef]:
        return iter(self.objects.values())
