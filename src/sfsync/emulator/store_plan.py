"""What the store's batch write path (:mod:`~sfsync.emulator.store_batch`) works out once
per object instead of once per row: the :class:`WritePlan` (field name in any casing -> slot
and a coercer specialised for the field's type; the slots of stamps, required, lookup and
unique fields) and, for rows given as text in a fixed column order (the Bulk APIs' CSV), the
:class:`TextColumns` of a header.

The coercers equal :func:`~sfsync.emulator.validation.coerce_value` (plus the store's "a null
checkbox is false" rule) and take a shortcut only for the common values: plain text within its
length is taken as it is, plain decimal text of up to 15 significant digits is computed with
integer arithmetic; everything else goes through ``coerce_value``, so errors are the same.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence

from sfsync.emulator.schema.model import FieldDef, FieldType, WireValue
from sfsync.emulator.store_rows import Table
from sfsync.emulator.validation import coerce_value

Coercer = Callable[[object], WireValue]
_PLAIN_TEXT = frozenset(
    {
        FieldType.STRING,
        FieldType.TEXTAREA,
        FieldType.PICKLIST,
        FieldType.MULTIPICKLIST,
        FieldType.COMBOBOX,
        FieldType.PHONE,
        FieldType.URL,
        FieldType.BASE64,
        FieldType.ENCRYPTEDSTRING,
    }
)
_DECIMAL = re.compile(r"-?([0-9]+)(?:\.([0-9]*))?")
_SIGNIFICANT = 15
"""Up to this many decimal digits, a number's text and its float's shortest repr agree."""
_COMPOUND = (FieldType.ADDRESS, FieldType.LOCATION)


def _slow(f: FieldDef) -> Coercer:
    """``coerce_value`` plus the store's "a null checkbox is false" rule."""
    boolean = f.type is FieldType.BOOLEAN

    def coerce(raw: object) -> WireValue:
        value = coerce_value(f, raw)
        return False if value is None and boolean else value

    return coerce


def _coercer(f: FieldDef) -> Coercer:
    """A coercer equal to :func:`_slow` for ``f``, with a shortcut for the common values."""
    slow = _slow(f)
    if f.type in _PLAIN_TEXT and not (
        f.restricted_picklist and f.type in (FieldType.PICKLIST, FieldType.MULTIPICKLIST)
    ):
        length = f.length

        def text(raw: object) -> WireValue:
            if type(raw) is str and raw and (not length or len(raw) <= length):
                return raw
            return slow(raw)

        return text
    if f.type is FieldType.BOOLEAN:

        def boolean(raw: object) -> WireValue:
            if raw is True or raw is False:
                return raw
            return slow(raw)

        return boolean
    if f.type.is_number:
        return _number_coercer(f, slow)
    return slow


def _number_coercer(f: FieldDef, slow: Coercer) -> Coercer:
    """Plain decimal text (``-123.45``) of at most 15 significant digits, computed exactly as
    ``coerce_value`` does (range check on the value, round half up to the field's scale) with
    integer arithmetic instead of Decimal; anything else goes to ``coerce_value``."""
    digits = (f.precision - f.scale) if f.precision else 18
    limit = 10.0**digits
    scale = f.scale
    unit: int = 10**scale
    integer = f.type is FieldType.INT

    def number(raw: object) -> WireValue:
        if not isinstance(raw, str):
            return slow(raw)
        match = _DECIMAL.fullmatch(raw)
        if match is None:
            return slow(raw)
        whole: str = match.group(1)
        fraction: str = match.group(2) or ""
        if len(whole) + len(fraction) > _SIGNIFICANT:
            return slow(raw)
        value = float(raw)
        if abs(value) >= limit:
            return slow(raw)  # NUMBER_OUTSIDE_VALID_RANGE
        if integer:
            return int(value) if not fraction.strip("0") else slow(raw)
        if len(fraction) <= scale:
            return value
        # Up to 15 significant digits the float's shortest repr is this text's value, so
        # rounding the text is rounding what coerce_value rounds; int / int is correctly
        # rounded, as float(Decimal) is.
        scaled = int(whole + fraction[:scale]) + (1 if fraction[scale] >= "5" else 0)
        rounded = scaled / unit
        return -rounded if raw[0] == "-" else rounded

    return number


class WritePlan:
    """What the batch path precomputes for one object (see the module docstring)."""

    def __init__(self, table: Table) -> None:
        obj = table.obj
        self.table = table
        self.obj = obj
        self.create = self._keys(table, creating=True)
        self.change = self._keys(table, creating=False)
        slot = table.slot
        self.template = list(table.template)
        self.defaulted = frozenset(i for i, v in enumerate(table.template) if v is not None)
        self.stamps = [slot[n] for n in ("CreatedDate", "LastModifiedDate") if n in slot]
        self.users = [slot[n] for n in ("CreatedById", "LastModifiedById") if n in slot]
        self.modified = slot.get("LastModifiedDate")
        self.modifier = slot.get("LastModifiedById")
        self.owner = slot.get("OwnerId")
        self.stamp = slot.get("SystemModstamp")
        # The slots an update writes whatever it is given.
        self.stamped = [i for i in (self.modified, self.modifier, self.stamp) if i is not None]
        self.auto = [(slot[f.name], f) for f in table.auto]
        self.derive = obj.name in DERIVED_OBJECTS
        # (name, slot or None for a compound field) in declared order, as check_required
        # walks them; a required compound field is always missing (it is never stored).
        self.required = [
            (f.name, slot.get(f.name)) for f in obj.fields.values() if f.required_on_create
        ]
        self.not_nillable = frozenset(f.name for f in obj.fields.values() if not f.nillable)
        self.lookups = frozenset(
            f.name for f in obj.fields.values() if f.type is FieldType.REFERENCE
        )
        self.unique = frozenset(f.name for f in obj.fields.values() if f.unique)
        # Unique text fields with an index, (name, slot, case-sensitive), answered from the
        # index; any other unique field goes through check_unique.
        self.unique_text = [
            (f.name, slot[f.name], f.case_sensitive)
            for f in obj.fields.values()
            if f.unique and _indexed_text(f) and slot.get(f.name) in table.keys
        ]
        self.unique_other = self.unique - {name for name, _, _ in self.unique_text}
        # Upsert keys by the name callers give, and whether their index answers lookups.
        self.key_fields: dict[str, FieldDef | None] = {}
        self.indexed_keys = {
            f.name: slot[f.name]
            for f in obj.fields.values()
            if _indexed_text(f) and slot.get(f.name) in table.keys
        }
        self.rules = any(rule.active for rule in obj.validation_rules)

    @staticmethod
    def _keys(table: Table, *, creating: bool) -> dict[str, _Key]:
        """Given key (declared and lower-case) -> how to write it, for the fields a plain
        value may be written to; other keys take the single-record path."""
        keys: dict[str, _Key] = {}
        for f in table.fields:
            writable = f.createable if creating else f.updateable
            if not writable or f.calculated or f.auto_number or f.type is FieldType.ID:
                continue
            if f.type in _COMPOUND:
                continue
            coerce = _coercer(f)
            plain = f.type in _PLAIN_TEXT and not (
                f.restricted_picklist and f.type in (FieldType.PICKLIST, FieldType.MULTIPICKLIST)
            )
            # Text that any length fits is capped by a length nothing reaches.
            entry = (f.name, table.slot[f.name], coerce, (f.length or 2**62) if plain else -1)
            keys[f.name] = entry
            keys[f.name.lower()] = entry
        return keys


DERIVED_OBJECTS = frozenset(
    {
        "Contact",
        "Lead",
        "User",
        "Opportunity",
        "Case",
        "Task",
        "OpportunityLineItem",
        "OrderItem",
        "CampaignMember",
    }
)
"""Objects with standard computed fields (``derived_values`` of the standard schema)."""


_Key = tuple[str, int, Coercer, int]
"""(declared name, slot, coercer, length of a plain text field or -1)."""


def _given(keys: Mapping[str, _Key], values: Mapping[str, object]) -> dict[str, WireValue] | None:
    """``values`` coerced and keyed by declared names (as ``prepare_values`` does), or
    ``None`` when a key needs the single-record path. Coercion errors raise in key order."""
    given: dict[str, WireValue] = {}
    for key, raw in values.items():
        entry = keys.get(key)
        if entry is None:
            entry = keys.get(key.lower())
            if entry is None:
                return None
        name, _, coerce, length = entry
        # Plain text within its length is stored as given (the text coercer's shortcut,
        # without the call: this runs for every value of every row).
        if type(raw) is str and 0 < len(raw) <= length:
            given[name] = raw
        else:
            given[name] = coerce(raw)
    return given


def _indexed_text(f: FieldDef) -> bool:
    """Whether ``find_by_field`` looks ``f`` up as text (then a unique index answers it)."""
    return f.type.is_text and f.type not in (FieldType.ID, FieldType.REFERENCE)


class TextColumns:
    """How to write rows given as text in a fixed column order (the Bulk APIs' CSV), made by
    :meth:`BatchWriter.text_columns`: per column (``entries``) the field's name, slot,
    coercer, the length plain text may have (-1: always coerced) and whether the field has
    a default; the positions of the lookup columns (``lookups``) and of the columns whose
    value the checks of an update read (``checked``: lookups and unique fields), the slots
    of the non-nillable fields (``not_nillable``: checked when the update nulls them), and
    the slots an update of such a row may change (``watch``).

    In a row, an empty text means "not given" and :attr:`null` means null, as in a Bulk CSV
    row; everything else is the field's value as text."""

    __slots__ = ("checked", "entries", "lookups", "not_nillable", "null", "watch")

    def __init__(self, plan: WritePlan, entries: list[_Column], null: str) -> None:
        self.entries = entries
        self.null = null
        self.lookups = [n for n, e in enumerate(entries) if e[0] in plan.lookups]
        self.checked = [n for n, e in enumerate(entries) if e[0] in plan.lookups | plan.unique]
        self.not_nillable = [e[1] for e in entries if e[0] in plan.not_nillable]
        self.watch: list[int] | None = (
            None if plan.derive else sorted({*(e[1] for e in entries), *plan.stamped})
        )

    def given(self, row: Sequence[str]) -> dict[str, WireValue]:
        """The row's given values, coerced and keyed by declared names (``_given``'s)."""
        given: dict[str, WireValue] = {}
        for (name, _, coerce, length, _), raw in zip(self.entries, row, strict=True):
            if not raw:
                continue
            if raw == self.null:
                given[name] = coerce(None)
            else:
                given[name] = raw if len(raw) <= length else coerce(raw)
        return given

    def raw(self, row: Sequence[str]) -> dict[str, object]:
        """The row's given values as they are (null as ``None``), keyed by declared names."""
        return {
            e[0]: None if raw == self.null else raw
            for e, raw in zip(self.entries, row, strict=True)
            if raw
        }


_Column = tuple[str, int, Coercer, int, bool]
