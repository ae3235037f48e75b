"""Field values on the way into Salesforce: JSON for REST, text cells for Bulk CSV.

Events carry Python values (a SQL source gives ``datetime``, ``Decimal``, ``bytes``...). Both
write paths turn them into the forms Salesforce documents (reference section 2.5 and 4.4):

============== ============================== ==========================================
Python         REST JSON                      Bulk CSV cell
============== ============================== ==========================================
``None``       ``null`` (clears the field)    ``#N/A`` (an empty cell means "unchanged")
``bool``       ``true`` / ``false``           ``true`` / ``false``
``int``        number                         digits
``float``      number                         ``repr`` (shortest exact form)
``Decimal``    number (int when integral)     its text
``datetime``   ``2026-01-02T03:04:05.678Z``   same (naive values are taken as UTC)
``date``       ``2026-01-02``                 same
``time``       ``03:04:05.678Z``              same
``bytes``      base64 text                    base64 text
``str``        as is                          as is
============== ============================== ==========================================

A parent reached through its external id is written the way Salesforce's upsert takes it: a
field named ``Relationship.Field`` (``Account.Ext_Id__c``, custom ``Account__r.Ext_Id__c``,
polymorphic ``What:Account.Ext_Id__c``) becomes ``{"Account": {"Ext_Id__c": "A-1"}}`` in
JSON and stays a ``Account.Ext_Id__c`` column in CSV. A null reference clears the lookup field
itself (``AccountId: null``), as Salesforce refuses a null inside the relationship object.
"""

from __future__ import annotations

import base64
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal

NULL_CELL = "#N/A"


@dataclass(frozen=True, slots=True)
class Reference:
    """A field written as ``Relationship[:Type].Field``: a parent by one of its external ids.

    Attributes:
        relationship: the relationship name (``Account``, ``Account__r``).
        parent_type: the parent object for a polymorphic relationship (``What:Account``).
        field: the parent's external id (or other idLookup) field.
    """

    relationship: str
    parent_type: str | None
    field: str


@functools.lru_cache(maxsize=4096)
def parse_reference(name: str) -> Reference | None:
    """``Account.Ext_Id__c`` -> ``Reference("Account", None, "Ext_Id__c")``; plain names
    give ``None``. Cached: the same few field names recur on every row."""
    if "." not in name:
        return None
    head, dot, field = name.partition(".")
    if not dot or not head or not field or "." in field:
        return None
    relationship, _, parent_type = head.partition(":")
    return Reference(relationship, parent_type or None, field)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _datetime_text(moment: datetime) -> str:
    utc = _utc(moment)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def _time_text(moment: time) -> str:
    return moment.strftime("%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


_PLAIN = frozenset({str, int, float, bool, type(None)})


def json_value(value: object) -> object:
    """``value`` as REST JSON takes it (see the module table)."""
    if type(value) in _PLAIN or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime):
        return _datetime_text(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, time):
        return _time_text(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    return str(value)


def csv_cell(value: object) -> str:
    """``value`` as a Bulk API CSV cell (see the module table)."""
    if value is None:
        return NULL_CELL
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return repr(value)
    encoded = json_value(value)
    return encoded if isinstance(encoded, str) else str(encoded)


def rest_record(
    values: Mapping[str, object], lookup_fields: Mapping[str, str]
) -> dict[str, object]:
    """The JSON body of one record (without ``attributes``).

    Args:
        values: field name -> value; ``Relationship.Field`` names are parent references.
        lookup_fields: relationship name (lower case) -> its lookup field (``account`` ->
            ``AccountId``), used to clear a lookup when a reference is null.
    """
    body: dict[str, object] = {}
    for name, value in values.items():
        ref = parse_reference(name)
        if ref is None:
            body[name] = value if type(value) in _PLAIN else json_value(value)
            continue
        if value is None:
            lookup = lookup_fields.get(ref.relationship.lower())
            body[lookup or ref.relationship] = None
            continue
        parent: dict[str, object] = {ref.field: json_value(value)}
        if ref.parent_type is not None:
            parent = {"attributes": {"type": ref.parent_type}, **parent}
        body[ref.relationship] = parent
    return body
