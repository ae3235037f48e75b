"""Which fields a change event carries, and how compound fields nest.

Change events never carry ``Id`` (the ids are in the header), ``IsDeleted``,
``SystemModstamp``, formula fields or the per-user ``LastViewedDate``/``LastReferencedDate``
(reference section 5.4). Compound fields nest: an address (``BillingAddress``) becomes a record
of ``Street``, ``City``… (the component names without the address's prefix, as Salesforce's
``Address`` type names them), a person name (``Name`` on Contact, Lead, User) a record of
``Salutation``, ``FirstName``, ``LastName``. The top-level order is the object's declared field
order with each compound in its own place; that order is also the bit order of the Pub/Sub
field bitmaps (``ChangeEventHeader`` is position 0).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from sfsync.emulator.schema.model import FieldDef, FieldType, ObjectDef

R = TypeVar("R")


def per_object(compute: Callable[[ObjectDef], R]) -> Callable[[ObjectDef], R]:
    """Memoise ``compute`` per object definition (by identity: ObjectDef holds mappings, so
    it is not hashable; schema objects are immutable, so the result never goes stale)."""
    memo: dict[int, tuple[ObjectDef, R]] = {}
    lock = threading.Lock()

    def cached(obj: ObjectDef) -> R:
        with lock:
            hit = memo.get(id(obj))
        if hit is not None and hit[0] is obj:
            return hit[1]
        value = compute(obj)
        with lock:
            memo[id(obj)] = (obj, value)
        return value

    return cached


EXCLUDED_FIELDS = frozenset(
    {"id", "isdeleted", "systemmodstamp", "lastvieweddate", "lastreferenceddate"}
)


@dataclass(frozen=True, slots=True)
class Slot:
    """One top-level field of a change event: a plain field, or a compound with children
    (``children`` pairs the nested name with the flat field, e.g. ``("City", BillingCity)``)."""

    name: str
    field: FieldDef | None
    children: tuple[tuple[str, FieldDef], ...] = ()

    @property
    def compound(self) -> bool:
        return bool(self.children)


def _carried(f: FieldDef) -> bool:
    return f.name.lower() not in EXCLUDED_FIELDS and not f.calculated


def _nested_name(compound: str, component: str) -> str:
    prefix = compound.removesuffix("Address") if compound.endswith("Address") else ""
    if prefix and component.startswith(prefix) and len(component) > len(prefix):
        return component[len(prefix) :]
    return component


@per_object
def slots(obj: ObjectDef) -> tuple[Slot, ...]:
    """The change-event layout of ``obj`` (cached: schema objects are immutable)."""
    children: dict[str, list[tuple[str, FieldDef]]] = {}
    for f in obj.fields.values():
        if f.compound_field_name is not None and _carried(f):
            nested = _nested_name(f.compound_field_name, f.name)
            children.setdefault(f.compound_field_name.lower(), []).append((nested, f))
    out: list[Slot] = []
    for f in obj.fields.values():
        if f.compound_field_name is not None:
            continue
        kids = children.get(f.name.lower())
        if kids:
            out.append(Slot(f.name, f, tuple(kids)))
        elif _carried(f) and f.type not in (FieldType.ADDRESS, FieldType.LOCATION):
            out.append(Slot(f.name, f))
    return tuple(out)


@per_object
def _flat_index(obj: ObjectDef) -> dict[str, tuple[int, int | None]]:
    """Flat field name (lower case) -> (top-level position counting the header as 0, child
    position or ``None``)."""
    index: dict[str, tuple[int, int | None]] = {}
    for position, slot in enumerate(slots(obj), start=1):
        if slot.compound:
            for child_position, (_, f) in enumerate(slot.children):
                index[f.name.lower()] = (position, child_position)
        elif slot.field is not None:
            index[slot.field.name.lower()] = (position, None)
    return index


def carried(obj: ObjectDef, flat_name: str) -> bool:
    """Whether a change event of ``obj`` carries the flat field ``flat_name``."""
    return flat_name.lower() in _flat_index(obj)


def position(obj: ObjectDef, flat_name: str) -> tuple[int, int | None] | None:
    """Bitmap position of a flat field: (top-level index, child index or ``None``)."""
    return _flat_index(obj).get(flat_name.lower())


def display_name(obj: ObjectDef, flat_name: str) -> str:
    """How header field lists name a flat field: ``BillingAddress.City`` for a component,
    the field's declared name otherwise."""
    found = position(obj, flat_name)
    if found is None or found[1] is None:
        f = obj.field(flat_name)
        return f.name if f is not None else flat_name
    slot = slots(obj)[found[0] - 1]
    return f"{slot.name}.{slot.children[found[1]][0]}"
