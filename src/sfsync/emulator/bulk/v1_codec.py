"""Bulk API 1.0 data formats: batch records in (CSV, JSON, XML, zipped) and DML results out.

XML uses the namespace ``http://www.force.com/2009/06/asyncapi/dataload``; an element with
``xsi:nil="true"`` sets a field to null and a nested element names a parent by external id
(``<Account><Ext__c>A-1</Ext__c></Account>``). In JSON, ``null`` sets a field to null. In every
format an empty value is left out and ``#N/A`` sets null, as in Bulk 2.0 CSV.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Mapping
from typing import Any
from xml.etree import ElementTree

import orjson

from sfsync.emulator.bulk.csvcodec import CsvInputError, parse_csv
from sfsync.emulator.bulk.ingest import resolve_columns, row_values
from sfsync.emulator.schema.model import ObjectDef, Schema

NS = "http://www.force.com/2009/06/asyncapi/dataload"
XSI = "http://www.w3.org/2001/XMLSchema-instance"


def parse_records(content_type: str, obj: ObjectDef, schema: Schema, body: bytes) -> list[
    dict[str, Any]
]:  # fmt: skip
    """A DML batch's records as store write values (CSV, JSON or XML by ``content_type``).

    ``ZIP_*`` batches are zip files whose ``request.txt`` (``request.xml`` for ZIP_XML) holds
    the records; other entries (binary attachments) are not supported and are ignored.
    Raises :class:`CsvInputError` (the batch fails with its text as ``stateMessage``)."""
    kind = content_type.removeprefix("ZIP_")
    if content_type.startswith("ZIP_"):
        body = _unzip_request(body, "request.xml" if kind == "XML" else "request.txt")
    if kind == "JSON":
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise CsvInputError(f"InvalidBatch : Failed to parse JSON: {exc.msg}") from None
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise CsvInputError("InvalidBatch : The batch must be a JSON array of records")
        return [_json_values(r) for r in data]
    if kind == "XML":
        return _xml_records(body)
    header, rows = parse_csv(body)
    columns = resolve_columns(obj, schema, header)
    return [row_values(columns, row, obj) for row in rows]


def _unzip_request(body: bytes, name: str) -> bytes:
    try:
        with zipfile.ZipFile(io.BytesIO(body)) as archive:
            return archive.read(name)
    except (zipfile.BadZipFile, KeyError):
        raise CsvInputError(f"InvalidBatch : The zip file has no {name}") from None


def _json_values(record: Mapping[str, Any]) -> dict[str, Any]:
    # In JSON, null sets a field to null; "#N/A" is a CSV convention kept for Data Loader users.
    return {
        k: (None if v == "#N/A" else v) for k, v in record.items() if k != "attributes" and v != ""
    }


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _xml_records(body: bytes) -> list[dict[str, Any]]:
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError as exc:
        raise CsvInputError(f"InvalidBatch : Failed to parse XML: {exc}") from None
    records: list[dict[str, Any]] = []
    for element in root:
        if _local(element.tag) != "sObject":
            continue
        values: dict[str, Any] = {}
        for child in element:
            name = _local(child.tag)
            if child.get(f"{{{XSI}}}nil") == "true":
                values[name] = None
            elif len(child):
                values[name] = {_local(c.tag): c.text or "" for c in child}
            elif child.text:
                values[name] = child.text
        records.append(values)
    return records


def _csv_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def csv_results(results: list[dict[str, Any]]) -> str:
    """DML results as Bulk 1.0 CSV: ``"Id","Success","Created","Error"``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\n")
    writer.writerow(["Id", "Success", "Created", "Error"])
    for r in results:
        error = ""
        if r["errors"]:
            e = r["errors"][0]
            error = f"{e['statusCode']}:{e['message']}:{','.join(e['fields'])} --"
        writer.writerow([r["id"] or "", _csv_text(r["success"]), _csv_text(r["created"]), error])
    return buffer.getvalue()
