"""Describe resources: global (``/sobjects``), basic info (``/sobjects/{Obj}/``) and full
(``/sobjects/{Obj}/describe``), with every key section 2.7 of the reference lists.

Values not modelled by the emulator's schema take the value a plain org shows (no layouts, no
record types beyond the master, nothing encrypted). The full describe honours
``If-Modified-Since``: the schema is fixed for the life of the org, so any date at or after
the moment the org started answers 304 (the org's start is taken as the first time a
describe is asked for on its clock — UNCONFIRMED how real orgs date metadata, but clients
only compare against the ``Last-Modified`` they were given).
"""

from __future__ import annotations

import email.utils
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from sfsync.emulator.rest.common import (
    guarded,
    json_bytes_response,
    object_def,
    org_of,
    version_of,
)
from sfsync.emulator.schema.model import FieldDef, FieldType, ObjectDef

_DEFAULT_RECORD_TYPE = "012000000000000AAA"


def object_urls(obj: ObjectDef, version: str) -> dict[str, str]:
    base = f"/services/data/v{version}/sobjects/{obj.name}"
    urls = {
        "compactLayouts": f"{base}/describe/compactLayouts",
        "rowTemplate": f"{base}/{{ID}}",
        "approvalLayouts": f"{base}/describe/approvalLayouts",
        "defaultValues": f"{base}/defaultValues?recordTypeId&fields",
        "listviews": f"{base}/listviews",
        "describe": f"{base}/describe",
        "quickActions": f"{base}/quickActions",
        "layouts": f"{base}/describe/layouts",
        "sobject": base,
    }
    if obj.platform_event:
        urls = {
            "eventSchema": f"{base}/eventSchema",
            "describe": urls["describe"],
            "sobject": base,
        }
    return urls


def global_entry(obj: ObjectDef, version: str) -> dict[str, Any]:
    """One ``sobjects`` entry of the global describe (and the basic-info ``objectDescribe``)."""
    writable = not obj.platform_event
    return {
        "activateable": False,
        "associateEntityType": None,
        "associateParentEntity": None,
        "createable": obj.createable,
        "custom": obj.custom,
        "customSetting": False,
        "deepCloneable": False,
        "deletable": obj.deletable and writable,
        "deprecatedAndHidden": False,
        "feedEnabled": False,
        "hasSubtypes": False,
        "isInterface": False,
        "isSubtype": False,
        "keyPrefix": obj.key_prefix,
        "label": obj.label,
        "labelPlural": obj.label_plural,
        "layoutable": writable,
        "mergeable": obj.name in ("Account", "Contact", "Lead", "Case"),
        "mruEnabled": writable,
        "name": obj.name,
        "queryable": obj.queryable,
        "replicateable": obj.replicateable,
        "retrieveable": obj.queryable,
        "searchable": writable,
        "triggerable": True,
        "undeletable": obj.undeletable and writable,
        "updateable": obj.updateable and writable,
        "urls": object_urls(obj, version),
    }


def _byte_length(field: FieldDef) -> int:
    if field.type in (FieldType.ID, FieldType.REFERENCE):
        return 18
    # Salesforce reports three bytes a character for text (UTF-8 worst case).
    return field.length * 3 if field.type.is_text else 0


def _length(field: FieldDef) -> int:
    if field.type in (FieldType.ID, FieldType.REFERENCE):
        return 18
    return field.length if field.type.is_text else 0


def _digits(field: FieldDef) -> int:
    return (field.precision or 9) if field.type is FieldType.INT else 0


def field_describe(field: FieldDef) -> dict[str, Any]:
    """One entry of a full describe's ``fields``: every key of section 2.7."""
    ftype = field.type
    # Long and rich text areas (over 255 characters) cannot be filtered, sorted or grouped;
    # a plain text area (BillingStreet) can.
    long_text = ftype is FieldType.TEXTAREA and field.length > 255
    filterable = not long_text and ftype not in (
        FieldType.ADDRESS,
        FieldType.LOCATION,
        FieldType.BASE64,
    )
    groupable = filterable and ftype not in (
        FieldType.DOUBLE,
        FieldType.CURRENCY,
        FieldType.PERCENT,
        FieldType.DATETIME,
        FieldType.MULTIPICKLIST,
    )
    sortable = filterable and ftype is not FieldType.MULTIPICKLIST
    is_numeric = ftype.is_number and ftype is not FieldType.INT
    return {
        "aggregatable": filterable,
        "aiPredictionField": False,
        "autoNumber": field.auto_number,
        "byteLength": _byte_length(field),
        "calculated": field.calculated,
        "calculatedFormula": None,
        "cascadeDelete": field.cascade_delete,
        "caseSensitive": field.case_sensitive,
        "compoundFieldName": field.compound_field_name,
        "controllerName": None,
        "createable": field.createable and not field.calculated and not field.auto_number,
        "custom": field.custom,
        "defaultValue": _default_value(field),
        "defaultValueFormula": None,
        "defaultedOnCreate": field.defaulted_on_create or ftype is FieldType.BOOLEAN,
        "dependentPicklist": False,
        "deprecatedAndHidden": False,
        "digits": _digits(field),
        "displayLocationInDecimal": False,
        "encrypted": ftype is FieldType.ENCRYPTEDSTRING,
        "externalId": field.external_id,
        "extraTypeInfo": _extra_type_info(field),
        "filterable": filterable,
        "filteredLookupInfo": None,
        "formulaTreatNullNumberAsZero": False,
        "groupable": groupable,
        "highScaleNumber": False,
        "htmlFormatted": False,
        "idLookup": field.id_lookup,
        "inlineHelpText": None,
        "label": field.label,
        "length": _length(field),
        "mask": None,
        "maskType": None,
        "name": field.name,
        "nameField": field.name_field,
        "namePointing": len(field.reference_to) > 1,
        "nillable": field.nillable and ftype is not FieldType.BOOLEAN,
        "permissionable": field.nillable and field.updateable and not field.name_field,
        "picklistValues": [
            {
                "active": p.active,
                "defaultValue": p.default,
                "label": p.label,
                "validFor": None,
                "value": p.value,
            }
            for p in field.picklist
        ],
        "polymorphicForeignKey": len(field.reference_to) > 1,
        "precision": field.precision if is_numeric else 0,
        "queryByDistance": False,
        "referenceTargetField": None,
        "referenceTo": list(field.reference_to),
        "relationshipName": field.relationship_name,
        "relationshipOrder": None,
        "restrictedDelete": False,
        "restrictedPicklist": field.restricted_picklist,
        "scale": field.scale if is_numeric else 0,
        "searchPrefilterable": ftype is FieldType.REFERENCE,
        "soapType": ftype.soap_type,
        "sortable": sortable,
        "type": ftype.value,
        "unique": field.unique,
        "updateable": field.updateable and not field.calculated and not field.auto_number,
        "writeRequiresMasterRead": False,
    }


def _default_value(field: FieldDef) -> object:
    # Checkboxes always report their default (false unless set); picklists report theirs in
    # picklistValues[].defaultValue instead.
    if field.type is FieldType.BOOLEAN:
        return bool(field.default)
    if field.type in (FieldType.PICKLIST, FieldType.MULTIPICKLIST):
        return None
    return field.default


def _extra_type_info(field: FieldDef) -> str | None:
    return "plaintextarea" if field.type is FieldType.TEXTAREA else None


def full_describe(obj: ObjectDef, version: str) -> dict[str, Any]:
    """The body of ``GET /sobjects/{Obj}/describe``."""
    body = global_entry(obj, version)
    base = f"/services/data/v{version}/sobjects/{obj.name}"
    body.update(
        {
            "actionOverrides": [],
            "childRelationships": [
                {
                    "cascadeDelete": rel.cascade_delete,
                    "childSObject": rel.child_object,
                    "deprecatedAndHidden": False,
                    "field": rel.field,
                    "junctionIdListNames": [],
                    "junctionReferenceTo": [],
                    "relationshipName": rel.name,
                    "restrictedDelete": False,
                }
                for rel in obj.child_relationships
            ],
            "compactLayoutable": not obj.platform_event,
            "defaultImplementation": None,
            "extendedBy": None,
            "extendsInterfaces": None,
            "fields": [field_describe(f) for f in obj.fields.values()],
            "implementedBy": None,
            "implementsInterfaces": None,
            "listviewable": None,
            "lookupLayoutable": None,
            "namedLayoutInfos": [],
            "networkScopeFieldName": None,
            "recordTypeInfos": [
                {
                    "active": True,
                    "available": True,
                    "defaultRecordTypeMapping": True,
                    "developerName": "Master",
                    "master": True,
                    "name": "Master",
                    "recordTypeId": _DEFAULT_RECORD_TYPE,
                    "urls": {"layout": f"{base}/describe/layouts/{_DEFAULT_RECORD_TYPE}"},
                }
            ]
            if not obj.platform_event
            else [],
            "searchLayoutable": not obj.platform_event,
            "sobjectDescribeOption": "FULL",
            "supportedScopes": [{"label": "All " + obj.label_plural.lower(), "name": "everything"}],
        }
    )
    return body


class DescribeResource:
    """The describe endpoints; remembers when each org's metadata was first described."""

    def __init__(self) -> None:
        self._described_at: dict[int, datetime] = {}

    @guarded
    async def global_describe(self, request: Request) -> Response:
        org = org_of(request)
        version = version_of(request)
        return json_bytes_response(
            {
                "encoding": "UTF-8",
                "maxBatchSize": 200,
                "sobjects": [global_entry(obj, version) for obj in org.schema],
            }
        )

    @guarded
    async def basic_info(self, request: Request) -> Response:
        org = org_of(request)
        obj = object_def(org, request.path_params["sobject"])
        version = version_of(request)
        return json_bytes_response(
            {"objectDescribe": global_entry(obj, version), "recentItems": []}
        )

    @guarded
    async def describe(self, request: Request) -> Response:
        org = org_of(request)
        obj = object_def(org, request.path_params["sobject"])
        modified = self._described_at.setdefault(id(org), org.clock.now().replace(microsecond=0))
        headers = {"Last-Modified": email.utils.format_datetime(modified, usegmt=True)}
        since = _http_date(request.headers.get("if-modified-since"))
        if since is not None and since >= modified:
            return Response(status_code=304, headers=headers)
        return json_bytes_response(full_describe(obj, version_of(request)), headers=headers)


def _http_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
