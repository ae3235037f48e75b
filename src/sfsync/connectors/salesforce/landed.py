"""Did a lost insert land? Finding the record an unanswered insert may have created.

An insert whose call failed without an answer (the connection dropped after Salesforce
committed, a timeout) may or may not have created its record; sending it again blindly could
create a duplicate. Two ways to find out, before the insert is sent again:

* **marker field** (``insert_markers``): the sink wrote the source row's key into a text field
  of the record; ``SELECT Id, <marker> WHERE <marker> IN (...)`` finds it. Exact, and it works
  after a restart too.
* **no marker**: records created since the attempt began (minus five minutes for clock skew)
  by the integration user when the session names it, whose values equal the insert's on
  every plain field the insert set (numbers compared as numbers, datetimes as instants).
  Each record found is claimed by one insert only. Two identical rows inserted in the same
  window cannot be told apart, which is why the marker is recommended where no external id
  can be added.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sfsync.connectors.salesforce.client import SalesforceClient
from sfsync.connectors.salesforce.records import json_value, parse_reference
from sfsync.connectors.salesforce.soql import datetime_literal, quote_string


def _instant(text: str) -> datetime | None:
    if len(text) < 19 or text[10] != "T":
        return None
    value = text.replace("Z", "+00:00")
    if len(value) > 5 and value[-5] in "+-" and value[-3] != ":":
        value = value[:-2] + ":" + value[-2:]  # +0000 -> +00:00
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def same_value(sent: object, stored: object) -> bool:
    """Whether ``stored`` (as a query returns it) is the value ``sent`` wrote."""
    sent = json_value(sent)
    if sent is None or isinstance(sent, bool):
        return stored is sent or (sent is None and stored == "")
    if isinstance(sent, int | float):
        return (
            isinstance(stored, int | float)
            and not isinstance(stored, bool)
            and abs(float(stored) - float(sent)) <= 1e-9 * max(1.0, abs(float(sent)))
        )
    if isinstance(sent, str) and isinstance(stored, str):
        if sent == stored:
            return True
        a, b = _instant(sent), _instant(stored)
        return a is not None and a == b
    return False


def _user_id(client: SalesforceClient) -> str | None:
    session = client.auth.session
    identity = session.identity_url if session is not None else None
    if not identity:
        return None
    user = identity.rstrip("/").rsplit("/", 1)[-1]
    return user if user.startswith("005") else None


async def find_landed(
    client: SalesforceClient,
    sobject: str,
    attempts: Mapping[str, tuple[datetime, Mapping[str, object]]],
    *,
    marker: str | None,
) -> dict[str, str]:
    """Source key -> Id of the record each unanswered insert created, for those that landed.

    Args:
        client: the org.
        sobject: the object inserted into.
        attempts: per source key, ``(earliest moment the insert may have landed, values)``.
        marker: the insert marker field, if the object has one.
    """
    if not attempts:
        return {}
    if marker is not None:
        found: dict[str, str] = {}
        keys = list(attempts)
        for start in range(0, len(keys), 100):
            part = ", ".join(quote_string(k) for k in keys[start : start + 100])
            records = await client.query(
                f"SELECT Id, {marker} FROM {sobject} WHERE {marker} IN ({part})"
            )
            for record in records:
                found.setdefault(str(record.get(marker)), str(record["Id"]))
        return found
    plain = sorted(
        {
            name
            for _, values in attempts.values()
            for name, value in values.items()
            if parse_reference(name) is None and not isinstance(value, dict)
        }
    )
    since = min(moment for moment, _ in attempts.values())
    where = f"CreatedDate >= {datetime_literal(since)}"
    user = _user_id(client)
    if user is not None:
        where += f" AND CreatedById = {quote_string(user)}"
    columns = ", ".join(["Id", *plain])
    records = await client.query(f"SELECT {columns} FROM {sobject} WHERE {where}")
    claimed: set[str] = set()
    out: dict[str, str] = {}
    for key, (_, values) in attempts.items():
        wanted = {n: v for n, v in values.items() if n in plain}
        for record in records:
            record_id = str(record["Id"])
            if record_id in claimed:
                continue
            if all(same_value(v, record.get(n)) for n, v in wanted.items()):
                claimed.add(record_id)
                out[key] = record_id
                break
    return out
