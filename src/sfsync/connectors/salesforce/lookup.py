"""Current records by the values of one field, and keys given to records that lack one.

What a two-way sync reads before it decides (:class:`~sfsync.spi.source.RecordLookup`): the
record as Salesforce holds it *now*, not as a change event described it a moment ago, so that
a decision is made on current state and an echo of our own write compares equal to the shadow.
One SOQL query per 100 values (``WHERE Field IN (...)``: well under the 100,000-character
SOQL limit for any key length Salesforce allows).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sfsync.connectors.salesforce.client import SalesforceClient
from sfsync.connectors.salesforce.soql import quote_string
from sfsync.core.errors import SkippableError

CHUNK = 100
"""Values per query."""


async def lookup_records(
    client: SalesforceClient,
    entity: str,
    fields: Sequence[str],
    by: str,
    values: Sequence[str],
) -> list[dict[str, object]]:
    """The records of ``entity`` whose ``by`` field holds one of ``values``, with ``fields``
    (plus ``Id`` and ``SystemModstamp``), without ``attributes``. Deleted records are not read.
    """
    wanted = list(dict.fromkeys(["Id", "SystemModstamp", *fields]))
    found: list[dict[str, object]] = []
    unique = list(dict.fromkeys(v for v in values if v))
    for start in range(0, len(unique), CHUNK):
        chunk = unique[start : start + CHUNK]
        listed = ", ".join(quote_string(v) for v in chunk)
        soql = f"SELECT {', '.join(wanted)} FROM {entity} WHERE {by} IN ({listed})"
        for record in await client.query(soql):
            found.append({k: v for k, v in record.items() if k != "attributes"})
    return found


async def give_keys(
    client: SalesforceClient, entity: str, key_field: str, keys: Mapping[str, str]
) -> dict[str, SkippableError | None]:
    """Set ``key_field`` on existing records: ``keys`` maps a record Id to its new key value.

    First-run matching pairs a Salesforce record that has no key yet (matched on an email, say)
    with an external row; the record gets the row's key, so that from then on both sides name
    it the same way and writes upsert by it. One update per record (``PATCH`` by Id); each
    result by Id: ``None`` when set, else the error Salesforce gave.
    """
    results: dict[str, SkippableError | None] = {}
    for record_id, key in keys.items():
        try:
            await client.update(entity, record_id, {key_field: key})
        except SkippableError as exc:
            results[record_id] = exc
        else:
            results[record_id] = None
    return results
