"""Normalised record-type metadata shared by every connector.

A source describes its entities as :class:`EntitySchema` values (the Salesforce source builds
them from describe); a sink creates and evolves its target structures from them. The kinds
are deliberately few: each sink maps them to its own types in one documented table.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


class FieldKind(enum.Enum):
    """The portable type of a field."""

    ID = "id"  # a record key (Salesforce 18-char Id)
    REFERENCE = "reference"  # a key of another record
    STRING = "string"  # bounded text (``length``)
    TEXT = "text"  # long text
    BOOLEAN = "boolean"
    INTEGER = "integer"
    DECIMAL = "decimal"  # exact, ``precision``/``scale``
    FLOAT = "float"
    DATE = "date"
    DATETIME = "datetime"  # always UTC
    TIME = "time"
    JSON = "json"  # structured values (compound address, location)
    BINARY = "binary"


@dataclass(frozen=True, slots=True, kw_only=True)
class FieldSpec:
    """One field.

    Attributes:
        name: the source's field name.
        kind: the portable type.
        length: max characters for STRING (0 = unknown).
        precision, scale: digits for DECIMAL.
        nullable: may be empty.
        source_type: the source's own type name (``"picklist"``, ``"currency"``) for docs.
        label: the human label.
    """

    name: str
    kind: FieldKind
    length: int = 0
    precision: int = 0
    scale: int = 0
    nullable: bool = True
    source_type: str = ""
    label: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class EntitySchema:
    """The fields of one entity, in a stable order.

    Attributes:
        name: the entity (``"Account"``).
        key: the field that identifies a record (``"Id"``).
        fields: by name, in declared order.
        version_field: a field that grows with every change of a record (``"SystemModstamp"``);
            sinks use it to refuse to overwrite newer data with older.
        deleted_field: a field that marks soft-deleted rows in the source (``"IsDeleted"``).
    """

    name: str
    key: str
    fields: Mapping[str, FieldSpec] = field(default_factory=lambda: MappingProxyType({}))
    version_field: str | None = None
    deleted_field: str | None = None

    def __post_init__(self) -> None:
        if self.key not in self.fields:
            raise ValueError(f"{self.name}: key field {self.key!r} is not among the fields")
        if self.version_field is not None and self.version_field not in self.fields:
            raise ValueError(f"{self.name}: version field {self.version_field!r} is missing")
        if not isinstance(self.fields, MappingProxyType):
            object.__setattr__(self, "fields", MappingProxyType(dict(self.fields)))

    @classmethod
    def of(
        cls,
        name: str,
        key: str,
        fields: list[FieldSpec],
        *,
        version_field: str | None = None,
        deleted_field: str | None = None,
    ) -> EntitySchema:
        """Build from a list of fields (their order is kept)."""
        return cls(
            name=name,
            key=key,
            fields=MappingProxyType({f.name: f for f in fields}),
            version_field=version_field,
            deleted_field=deleted_field,
        )

    def __iter__(self) -> Iterator[FieldSpec]:
        return iter(self.fields.values())

    def names(self) -> tuple[str, ...]:
        return tuple(self.fields)


@dataclass(frozen=True, slots=True)
class SchemaChange:
    """How a new description of an entity differs from the previous one.

    Attributes:
        added: fields that are new.
        removed: fields that disappeared (deleted, or hidden from the integration user).
        retyped: fields whose kind changed, as ``(old, new)``.
    """

    added: tuple[FieldSpec, ...] = ()
    removed: tuple[FieldSpec, ...] = ()
    retyped: tuple[tuple[FieldSpec, FieldSpec], ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.retyped)


# Widening changes a sink may apply in place: the new kind holds every old value.
_WIDENINGS = frozenset(
    {
        (FieldKind.STRING, FieldKind.TEXT),
        (FieldKind.INTEGER, FieldKind.DECIMAL),
        (FieldKind.INTEGER, FieldKind.FLOAT),
        (FieldKind.DECIMAL, FieldKind.FLOAT),
        (FieldKind.DATE, FieldKind.DATETIME),
        (FieldKind.REFERENCE, FieldKind.STRING),
        (FieldKind.ID, FieldKind.STRING),
    }
)


def is_widening(old: FieldSpec, new: FieldSpec) -> bool:
    """True when every value of ``old`` fits ``new`` unchanged (a longer string included)."""
    if old.kind is new.kind:
        if new.kind is FieldKind.STRING:
            return new.length == 0 or (old.length != 0 and new.length >= old.length)
        if new.kind is FieldKind.DECIMAL:
            return new.scale >= old.scale and (new.precision - new.scale) >= (
                old.precision - old.scale
            )
        return True
    return (old.kind, new.kind) in _WIDENINGS


def diff_schemas(old: EntitySchema, new: EntitySchema) -> SchemaChange:
    """What changed between two descriptions of the same entity."""
    added = tuple(f for name, f in new.fields.items() if name not in old.fields)
    removed = tuple(f for name, f in old.fields.items() if name not in new.fields)
    retyped = tuple(
        (old.fields[name], f)
        for name, f in new.fields.items()
        if name in old.fields and old.fields[name] != f
    )
    return SchemaChange(added, removed, retyped)
