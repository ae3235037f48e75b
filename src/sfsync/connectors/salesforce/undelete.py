"""Restoring records from the recycle bin: the SOAP API's ``undelete()`` call.

REST has no undelete verb (reference section 2.8), so the sink posts one SOAP envelope to the
partner endpoint (``/services/Soap/u/{version}``) with the session id of the REST client, up to
200 ids a call. Each id's ``UndeleteResult`` says whether it was restored; a failure (the record
is not in the recycle bin any more, say) is returned, not raised: the caller writes the record's
values afterwards anyway, and that write's result is what the sync reports.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from xml.sax.saxutils import escape

from sfsync.connectors.salesforce.client import SalesforceClient

MAX_IDS = 200
_NS = "urn:partner.soap.sforce.com"


def envelope(session_id: str, ids: Sequence[str]) -> bytes:
    """The SOAP request body of ``undelete(ids)``."""
    items = "".join(f"<urn:ids>{escape(i)}</urn:ids>" for i in ids)
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        f'xmlns:urn="{_NS}">'
        "<soapenv:Header><urn:SessionHeader>"
        f"<urn:sessionId>{escape(session_id)}</urn:sessionId>"
        "</urn:SessionHeader></soapenv:Header>"
        f"<soapenv:Body><urn:undelete>{items}</urn:undelete></soapenv:Body>"
        "</soapenv:Envelope>"
    ).encode()


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def parse_results(xml: bytes) -> list[tuple[bool, str]]:
    """``(success, status code or "")`` per id, in request order."""
    root = ET.fromstring(xml)
    out: list[tuple[bool, str]] = []
    for result in (e for e in root.iter() if _local(e.tag) == "result"):
        success = next((c.text for c in result if _local(c.tag) == "success"), "false")
        code = next((c.text or "" for c in result.iter() if _local(c.tag) == "statusCode"), "")
        out.append((success == "true", code))
    return out


async def undelete(client: SalesforceClient, ids: Sequence[str]) -> list[tuple[bool, str]]:
    """Restore ``ids`` (any number; 200 a call); ``(restored, error code)`` per id."""
    session = await client.open()
    out: list[tuple[bool, str]] = []
    for start in range(0, len(ids), MAX_IDS):
        part = ids[start : start + MAX_IDS]
        response = await client.request(
            "POST",
            f"/services/Soap/u/{client.api_version}",
            content=envelope(session.access_token, part),
            headers={"Content-Type": "text/xml; charset=UTF-8", "SOAPAction": "undelete"},
            what=f"undelete {len(part)} records",
        )
        out.extend(parse_results(response.content))
    return out
