"""The standard objects of the emulated org, and how a list of objects becomes a :class:`Schema`.

:func:`standard_schema` describes the objects integrations touch most (Account, Contact, Lead,
Opportunity and its line items, Case, Order and its items, Product2, Pricebook2,
PricebookEntry, Asset, Campaign, CampaignMember, Task, User) with realistic types, lengths,
picklists and relationships. Every object gets the system fields (``Id``, ``IsDeleted``, the
audit fields, ``SystemModstamp`` and ``OwnerId`` where the object is owned), which are not
createable or updateable and are filled by the store.

:func:`assemble_schema` derives each object's child relationships from the lookups that point
at it, so they are never declared twice; the YAML loader uses it after merging custom fields.

:func:`derived_values` computes the few standard fields that real orgs compute from others
(``Contact.Name`` from first and last name, ``Opportunity.IsClosed`` from the stage, line item
totals…); the store calls it after every write.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import Any

from sfsync.emulator.ids import STANDARD_KEY_PREFIXES
from sfsync.emulator.schema.model import (
    ChildRelationship,
    FieldDef,
    FieldType,
    ObjectDef,
    PicklistValue,
    Schema,
    WireValue,
)

T = FieldType

#: Objects whose ``Name`` is computed from ``FirstName`` and ``LastName``.
PERSON_NAME_OBJECTS = frozenset({"Contact", "Lead", "User"})

#: Auto-number fields are rendered with this many digits (Salesforce's default ``{00000000}``).
AUTO_NUMBER_DIGITS = 8


def field(name: str, type_: FieldType, label: str | None = None, **kw: object) -> FieldDef:
    """A field with the describe defaults of its type (text length 255, number precision 18)."""
    if type_.is_text and type_ is not T.ID and type_ is not T.REFERENCE:
        kw.setdefault("length", 255)
    elif type_ in (T.ID, T.REFERENCE):
        kw.setdefault("length", 18)
    elif type_.is_number and type_ is not T.INT:
        kw.setdefault("precision", 18)
        kw.setdefault("scale", 2 if type_ is T.CURRENCY else 0)
    elif type_ is T.INT:
        kw.setdefault("precision", 9)
    if type_ is T.BOOLEAN:
        kw.setdefault("nillable", False)
        kw.setdefault("defaulted_on_create", True)
        kw.setdefault("default", False)
    return FieldDef(name=name, type=type_, label=label or _label(name), **kw)  # type: ignore[arg-type]


def _label(name: str) -> str:
    """``AnnualRevenue`` -> ``Annual Revenue``; standard lookups ``AccountId`` -> ``Account ID``."""
    base = name.removesuffix("__c")
    id_suffix = not name.endswith("__c") and base.endswith("Id") and len(base) > 2
    if id_suffix:
        base = base[:-2]
    out = []
    for i, ch in enumerate(base):
        if ch.isupper() and i and not base[i - 1].isupper():
            out.append(" ")
        out.append(ch)
    words = "".join(out).replace("_", " ").strip() or name
    return f"{words} ID" if id_suffix else words


def picklist(
    name: str,
    values: Iterable[str],
    *,
    default: str | None = None,
    restricted: bool = False,
    label: str | None = None,
    **kw: object,
) -> FieldDef:
    """A picklist; ``default`` marks the value filled in on insert when omitted."""
    entries = tuple(PicklistValue(v, v, default=(v == default)) for v in values)
    if default is not None:
        kw.setdefault("defaulted_on_create", True)
        kw.setdefault("default", default)
    return field(name, T.PICKLIST, label, picklist=entries, restricted_picklist=restricted, **kw)


def lookup(
    name: str,
    to: str | tuple[str, ...],
    relationship: str,
    children: str | None = None,
    *,
    cascade: bool = False,
    label: str | None = None,
    **kw: object,
) -> FieldDef:
    """A lookup (or master-detail when ``cascade``) to ``to`` named ``relationship`` in SOQL
    paths; ``children`` is the child relationship name on the parent (``Contacts``)."""
    targets = (to,) if isinstance(to, str) else to
    return field(
        name,
        T.REFERENCE,
        label,
        reference_to=targets,
        relationship_name=relationship,
        child_relationship_name=children,
        cascade_delete=cascade,
        **kw,
    )


def readonly(f: FieldDef, *, calculated: bool = False) -> FieldDef:
    """``f`` as a field the org fills (not createable or updateable)."""
    return replace(f, createable=False, updateable=False, calculated=calculated)


def required(f: FieldDef) -> FieldDef:
    return replace(f, nillable=False)


def auto_number(name: str, label: str | None = None) -> FieldDef:
    return field(
        name,
        T.STRING,
        label,
        length=30,
        nillable=False,
        createable=False,
        updateable=False,
        defaulted_on_create=True,
        auto_number=True,
        name_field=True,
    )


def address(prefix: str, compound: str | None = None) -> list[FieldDef]:
    """A compound address (``BillingAddress``) and its components (``BillingStreet``…)."""
    name = compound or f"{prefix}Address"
    lbl = f"{prefix} " if prefix else ""
    parts = [
        field(f"{prefix}Street", T.TEXTAREA, f"{lbl}Street"),
        field(f"{prefix}City", T.STRING, f"{lbl}City", length=40),
        field(f"{prefix}State", T.STRING, f"{lbl}State/Province", length=80),
        field(f"{prefix}PostalCode", T.STRING, f"{lbl}Zip/Postal Code", length=20),
        field(f"{prefix}Country", T.STRING, f"{lbl}Country", length=80),
        field(f"{prefix}Latitude", T.DOUBLE, f"{lbl}Latitude", precision=18, scale=15),
        field(f"{prefix}Longitude", T.DOUBLE, f"{lbl}Longitude", precision=18, scale=15),
        picklist(f"{prefix}GeocodeAccuracy", GEOCODE_ACCURACY, label=f"{lbl}Geocode Accuracy"),
    ]
    whole = field(name, T.ADDRESS, f"{lbl}Address", createable=False, updateable=False)
    return [whole, *(replace(p, compound_field_name=name) for p in parts)]


def person_name(first_length: int = 40, last_length: int = 80) -> list[FieldDef]:
    """``Name`` computed from ``Salutation``/``FirstName``/``LastName`` (``LastName`` required)."""
    parts = [
        picklist("Salutation", ["Mr.", "Ms.", "Mrs.", "Dr.", "Prof."]),
        field("FirstName", T.STRING, "First Name", length=first_length),
        required(field("LastName", T.STRING, "Last Name", length=last_length)),
    ]
    name = readonly(field("Name", T.STRING, "Full Name", length=121, name_field=True))
    return [name, *(replace(p, compound_field_name="Name") for p in parts)]


def name_field(label: str, length: int = 255) -> FieldDef:
    return required(field("Name", T.STRING, label, length=length, name_field=True))


def system_fields(*, owned: bool) -> tuple[list[FieldDef], list[FieldDef]]:
    """(leading, trailing) system fields: ``Id``/``IsDeleted`` first, audit fields last."""
    stamp = {"nillable": False, "createable": False, "updateable": False}
    lead = [
        field("Id", T.ID, "Record ID", defaulted_on_create=True, **stamp),
        field("IsDeleted", T.BOOLEAN, "Deleted", createable=False, updateable=False),
    ]
    trail: list[FieldDef] = []
    if owned:
        trail.append(
            lookup(
                "OwnerId",
                "User",
                "Owner",
                label="Owner ID",
                nillable=False,
                defaulted_on_create=True,
            )
        )
    audit: dict[str, Any] = {"defaulted_on_create": True, **stamp}
    trail += [
        field("CreatedDate", T.DATETIME, "Created Date", **audit),
        lookup("CreatedById", "User", "CreatedBy", label="Created By ID", **audit),
        field("LastModifiedDate", T.DATETIME, "Last Modified Date", **audit),
        lookup("LastModifiedById", "User", "LastModifiedBy", label="Last Modified By ID", **audit),
        field("SystemModstamp", T.DATETIME, "System Modstamp", **audit),
    ]
    return lead, trail


def make_object(
    name: str,
    label: str,
    plural: str,
    fields: Iterable[FieldDef],
    *,
    owned: bool = True,
    key_prefix: str | None = None,
    **kw: object,
) -> ObjectDef:
    """An object with its system fields around ``fields``, keyed by lower-cased name."""
    lead, trail = system_fields(owned=owned)
    ordered = [*lead, *fields, *trail]
    prefix = key_prefix or STANDARD_KEY_PREFIXES[name]
    return ObjectDef(
        name=name,
        label=label,
        label_plural=plural,
        key_prefix=prefix,
        fields=MappingProxyType({f.name.lower(): f for f in ordered}),
        **kw,  # type: ignore[arg-type]
    )


def assemble_schema(objects: Iterable[ObjectDef]) -> Schema:
    """A :class:`Schema` of ``objects``, each with ``child_relationships`` derived from the
    lookups (with a ``child_relationship_name``) that point at it, in object and field order."""
    objs = list(objects)
    children: dict[str, list[ChildRelationship]] = {o.name.lower(): [] for o in objs}
    for obj in objs:
        for f in obj.fields.values():
            if f.type is not T.REFERENCE or f.child_relationship_name is None:
                continue
            for target in f.reference_to:
                if target.lower() in children:
                    children[target.lower()].append(
                        ChildRelationship(
                            f.child_relationship_name, obj.name, f.name, f.cascade_delete
                        )
                    )
    return Schema(
        MappingProxyType(
            {
                o.name.lower(): replace(o, child_relationships=tuple(children[o.name.lower()]))
                for o in objs
            }
        )
    )


GEOCODE_ACCURACY = [
    "Address",
    "NearAddress",
    "Block",
    "Street",
    "ExtendedZip",
    "Zip",
    "Neighborhood",
    "City",
    "County",
    "State",
    "Unknown",
]
INDUSTRIES = [
    "Agriculture",
    "Apparel",
    "Banking",
    "Biotechnology",
    "Chemicals",
    "Communications",
    "Construction",
    "Consulting",
    "Education",
    "Electronics",
    "Energy",
    "Engineering",
    "Entertainment",
    "Environmental",
    "Finance",
    "Food & Beverage",
    "Government",
    "Healthcare",
    "Hospitality",
    "Insurance",
    "Machinery",
    "Manufacturing",
    "Media",
    "Not For Profit",
    "Recreation",
    "Retail",
    "Shipping",
    "Technology",
    "Telecommunications",
    "Transportation",
    "Utilities",
    "Other",
]
ACCOUNT_TYPES = [
    "Prospect",
    "Customer - Direct",
    "Customer - Channel",
    "Channel Partner / Reseller",
    "Installation Partner",
    "Technology Partner",
    "Other",
]
RATINGS = ["Hot", "Warm", "Cold"]
LEAD_SOURCES = ["Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other"]
#: Opportunity stages with their default probability and forecast category.
STAGES: dict[str, tuple[int, str]] = {
    "Prospecting": (10, "Pipeline"),
    "Qualification": (10, "Pipeline"),
    "Needs Analysis": (20, "Pipeline"),
    "Value Proposition": (50, "Pipeline"),
    "Id. Decision Makers": (60, "Pipeline"),
    "Perception Analysis": (70, "Pipeline"),
    "Proposal/Price Quote": (75, "Pipeline"),
    "Negotiation/Review": (90, "Pipeline"),
    "Closed Won": (100, "Closed"),
    "Closed Lost": (0, "Omitted"),
}
LEAD_STATUSES = [
    "Open - Not Contacted",
    "Working - Contacted",
    "Closed - Converted",
    "Closed - Not Converted",
]
CASE_STATUSES = ["New", "Working", "Escalated", "Closed"]
TASK_STATUSES = ["Not Started", "In Progress", "Completed", "Waiting on someone else", "Deferred"]
CLOSED_TASK_STATUSES = frozenset({"Completed"})
CLOSED_CASE_STATUSES = frozenset({"Closed"})
TIME_ZONES = [
    "America/Los_Angeles",
    "America/New_York",
    "Europe/London",
    "Europe/Paris",
    "Asia/Tokyo",
    "Australia/Sydney",
    "GMT",
]
LOCALES = ["en_US", "en_GB", "fr_FR", "de_DE", "ja_JP"]


def _account() -> ObjectDef:
    return make_object(
        "Account",
        "Account",
        "Accounts",
        [
            name_field("Account Name"),
            field("AccountNumber", T.STRING, length=40),
            field("Site", T.STRING, "Account Site", length=80),
            lookup("ParentId", "Account", "Parent", "ChildAccounts", label="Parent Account ID"),
            picklist("Type", ACCOUNT_TYPES, label="Account Type"),
            picklist("Industry", INDUSTRIES),
            picklist("Rating", RATINGS, label="Account Rating"),
            picklist("Ownership", ["Public", "Private", "Subsidiary", "Other"]),
            picklist("AccountSource", LEAD_SOURCES, label="Account Source"),
            field("Phone", T.PHONE, "Account Phone", length=40),
            field("Fax", T.PHONE, "Account Fax", length=40),
            field("Website", T.URL, length=255),
            field("TickerSymbol", T.STRING, length=20),
            field("Sic", T.STRING, "SIC Code", length=20),
            field("AnnualRevenue", T.CURRENCY, precision=18, scale=0),
            field("NumberOfEmployees", T.INT, "Employees", precision=8),
            field("Description", T.TEXTAREA, "Account Description", length=32000),
            *address("Billing"),
            *address("Shipping"),
        ],
    )


def _contact() -> ObjectDef:
    return make_object(
        "Contact",
        "Contact",
        "Contacts",
        [
            *person_name(),
            lookup("AccountId", "Account", "Account", "Contacts", cascade=True),
            lookup("ReportsToId", "Contact", "ReportsTo", label="Reports To ID"),
            field("Title", T.STRING, length=128),
            field("Department", T.STRING, length=80),
            field("Email", T.EMAIL, length=80),
            field("Phone", T.PHONE, "Business Phone", length=40),
            field("MobilePhone", T.PHONE, "Mobile Phone", length=40),
            field("Birthdate", T.DATE),
            picklist("LeadSource", LEAD_SOURCES),
            field("HasOptedOutOfEmail", T.BOOLEAN, "Email Opt Out"),
            field("DoNotCall", T.BOOLEAN, "Do Not Call"),
            field("Description", T.TEXTAREA, "Contact Description", length=32000),
            *address("Mailing"),
        ],
    )


def _lead() -> ObjectDef:
    return make_object(
        "Lead",
        "Lead",
        "Leads",
        [
            *person_name(),
            required(field("Company", T.STRING, length=255)),
            field("Title", T.STRING, length=128),
            field("Email", T.EMAIL, length=80),
            field("Phone", T.PHONE, length=40),
            field("MobilePhone", T.PHONE, "Mobile Phone", length=40),
            field("Website", T.URL, length=255),
            required(
                picklist(
                    "Status", LEAD_STATUSES, default="Open - Not Contacted", label="Lead Status"
                )
            ),
            picklist("LeadSource", LEAD_SOURCES),
            picklist("Industry", INDUSTRIES),
            picklist("Rating", RATINGS),
            field("AnnualRevenue", T.CURRENCY, precision=18, scale=0),
            field("NumberOfEmployees", T.INT, "Employees", precision=8),
            field("IsConverted", T.BOOLEAN, "Converted"),
            readonly(field("ConvertedDate", T.DATE)),
            readonly(lookup("ConvertedAccountId", "Account", "ConvertedAccount")),
            readonly(lookup("ConvertedContactId", "Contact", "ConvertedContact")),
            readonly(lookup("ConvertedOpportunityId", "Opportunity", "ConvertedOpportunity")),
            field("Description", T.TEXTAREA, length=32000),
            *address("", "Address"),
        ],
    )


def _opportunity() -> ObjectDef:
    return make_object(
        "Opportunity",
        "Opportunity",
        "Opportunities",
        [
            name_field("Name", 120),
            lookup("AccountId", "Account", "Account", "Opportunities", cascade=True),
            required(picklist("StageName", STAGES, restricted=True, label="Stage")),
            field("Amount", T.CURRENCY, precision=18, scale=2),
            field("Probability", T.PERCENT, "Probability (%)", precision=3, scale=0),
            readonly(field("ExpectedRevenue", T.CURRENCY, "Expected Amount"), calculated=True),
            required(field("CloseDate", T.DATE)),
            picklist(
                "Type",
                [
                    "Existing Customer - Upgrade",
                    "Existing Customer - Replacement",
                    "Existing Customer - Downgrade",
                    "New Customer",
                ],
                label="Opportunity Type",
            ),
            field("NextStep", T.STRING, length=255),
            picklist("LeadSource", LEAD_SOURCES),
            readonly(field("IsClosed", T.BOOLEAN, "Closed"), calculated=True),
            readonly(field("IsWon", T.BOOLEAN, "Won"), calculated=True),
            picklist(
                "ForecastCategoryName",
                ["Omitted", "Pipeline", "Best Case", "Commit", "Closed"],
                label="Forecast Category",
            ),
            lookup("CampaignId", "Campaign", "Campaign", "Opportunities"),
            lookup("Pricebook2Id", "Pricebook2", "Pricebook2", "Opportunities"),
            field("TotalOpportunityQuantity", T.DOUBLE, "Quantity", precision=18, scale=2),
            field("Description", T.TEXTAREA, length=32000),
        ],
    )


def _opportunity_line_item() -> ObjectDef:
    return make_object(
        "OpportunityLineItem",
        "Opportunity Product",
        "Opportunity Product",
        [
            replace(
                required(
                    lookup(
                        "OpportunityId",
                        "Opportunity",
                        "Opportunity",
                        "OpportunityLineItems",
                        cascade=True,
                    )
                ),
                updateable=False,
            ),
            lookup(
                "PricebookEntryId",
                "PricebookEntry",
                "PricebookEntry",
                "OpportunityLineItems",
                updateable=False,
            ),
            readonly(lookup("Product2Id", "Product2", "Product2")),
            readonly(
                field("Name", T.STRING, "Opportunity Product Name", length=376, name_field=True)
            ),
            readonly(field("ProductCode", T.STRING, length=255)),
            required(field("Quantity", T.DOUBLE, precision=12, scale=2)),
            field("UnitPrice", T.CURRENCY, "Sales Price", precision=18, scale=2),
            readonly(field("ListPrice", T.CURRENCY, "List Price")),
            readonly(field("TotalPrice", T.CURRENCY, "Total Price"), calculated=True),
            field("Discount", T.PERCENT, precision=18, scale=2),
            field("ServiceDate", T.DATE, "Date"),
            field("Description", T.STRING, "Line Description", length=255),
        ],
        owned=False,
    )


def _case() -> ObjectDef:
    return make_object(
        "Case",
        "Case",
        "Cases",
        [
            auto_number("CaseNumber", "Case Number"),
            field("Subject", T.STRING, length=255),
            field("Description", T.TEXTAREA, length=32000),
            required(picklist("Status", CASE_STATUSES, default="New")),
            required(picklist("Priority", ["High", "Medium", "Low"], default="Medium")),
            picklist("Origin", ["Phone", "Email", "Web"], label="Case Origin"),
            picklist(
                "Type",
                ["Mechanical", "Electrical", "Electronic", "Structural", "Other"],
                label="Case Type",
            ),
            picklist(
                "Reason",
                [
                    "Installation",
                    "Equipment Complexity",
                    "Performance",
                    "Breakdown",
                    "Equipment Design",
                    "Feedback",
                    "Other",
                ],
                label="Case Reason",
            ),
            lookup("AccountId", "Account", "Account", "Cases", cascade=True),
            lookup("ContactId", "Contact", "Contact", "Cases"),
            lookup("AssetId", "Asset", "Asset", "Cases"),
            lookup("ParentId", "Case", "Parent", "Cases", label="Parent Case ID"),
            readonly(field("IsClosed", T.BOOLEAN, "Closed"), calculated=True),
            readonly(field("ClosedDate", T.DATETIME, "Closed Date")),
            field("IsEscalated", T.BOOLEAN, "Escalated"),
            field("SuppliedName", T.STRING, "Web Name", length=80),
            field("SuppliedEmail", T.EMAIL, "Web Email", length=80),
            field("SuppliedPhone", T.STRING, "Web Phone", length=40),
        ],
    )


def _product() -> ObjectDef:
    return make_object(
        "Product2",
        "Product",
        "Products",
        [
            name_field("Product Name"),
            field("ProductCode", T.STRING, "Product Code", length=255),
            field("Description", T.TEXTAREA, "Product Description", length=4000),
            field("IsActive", T.BOOLEAN, "Active"),
            picklist(
                "Family", ["Hardware", "Software", "Services", "Training"], label="Product Family"
            ),
            field("StockKeepingUnit", T.STRING, "Product SKU", length=180),
            picklist(
                "QuantityUnitOfMeasure",
                ["Each", "Hour", "Box", "Kilogram"],
                label="Quantity Unit Of Measure",
            ),
        ],
        owned=False,
    )


def _pricebook() -> ObjectDef:
    return make_object(
        "Pricebook2",
        "Price Book",
        "Price Books",
        [
            name_field("Price Book Name", 255),
            field("IsActive", T.BOOLEAN, "Active"),
            readonly(field("IsStandard", T.BOOLEAN, "Is Standard Price Book")),
            field("Description", T.STRING, length=255),
        ],
        owned=False,
    )


def _pricebook_entry() -> ObjectDef:
    return make_object(
        "PricebookEntry",
        "Price Book Entry",
        "Price Book Entries",
        [
            readonly(field("Name", T.STRING, "Product Name", length=255, name_field=True)),
            replace(
                required(
                    lookup(
                        "Pricebook2Id", "Pricebook2", "Pricebook2", "PricebookEntries", cascade=True
                    )
                ),
                updateable=False,
            ),
            replace(
                required(
                    lookup("Product2Id", "Product2", "Product2", "PricebookEntries", cascade=True)
                ),
                updateable=False,
            ),
            required(field("UnitPrice", T.CURRENCY, "List Price", precision=18, scale=2)),
            field("IsActive", T.BOOLEAN, "Active"),
            field("UseStandardPrice", T.BOOLEAN, "Use Standard Price"),
            readonly(field("ProductCode", T.STRING, "Product Code", length=255)),
        ],
        owned=False,
    )


def _order() -> ObjectDef:
    return make_object(
        "Order",
        "Order",
        "Orders",
        [
            auto_number("OrderNumber", "Order Number"),
            field("Name", T.STRING, "Order Name", length=80),
            required(lookup("AccountId", "Account", "Account", "Orders")),
            required(picklist("Status", ["Draft", "Activated"], default="Draft")),
            required(field("EffectiveDate", T.DATE, "Order Start Date")),
            field("EndDate", T.DATE, "Order End Date"),
            lookup("Pricebook2Id", "Pricebook2", "Pricebook2", "Orders"),
            picklist("Type", ["New", "Renewal", "Upsell"], label="Order Type"),
            readonly(field("TotalAmount", T.CURRENCY, "Order Amount"), calculated=True),
            field("Description", T.TEXTAREA, length=32000),
            *address("Billing"),
            *address("Shipping"),
        ],
    )


def _order_item() -> ObjectDef:
    return make_object(
        "OrderItem",
        "Order Product",
        "Order Products",
        [
            auto_number("OrderItemNumber", "Order Product Number"),
            replace(
                required(lookup("OrderId", "Order", "Order", "OrderItems", cascade=True)),
                updateable=False,
            ),
            replace(
                required(
                    lookup("PricebookEntryId", "PricebookEntry", "PricebookEntry", "OrderItems")
                ),
                updateable=False,
            ),
            readonly(lookup("Product2Id", "Product2", "Product2")),
            required(field("Quantity", T.DOUBLE, precision=18, scale=2)),
            required(field("UnitPrice", T.CURRENCY, precision=18, scale=2)),
            readonly(field("ListPrice", T.CURRENCY, "List Price")),
            readonly(field("TotalPrice", T.CURRENCY, "Total Price"), calculated=True),
            field("ServiceDate", T.DATE, "Start Date"),
            field("EndDate", T.DATE),
            field("Description", T.STRING, "Line Description", length=255),
        ],
        owned=False,
    )


def _asset() -> ObjectDef:
    return make_object(
        "Asset",
        "Asset",
        "Assets",
        [
            name_field("Asset Name"),
            lookup("AccountId", "Account", "Account", "Assets"),
            lookup("ContactId", "Contact", "Contact", "Assets"),
            lookup("Product2Id", "Product2", "Product2", "Assets"),
            lookup("ParentId", "Asset", "Parent", "ChildAssets", label="Parent Asset ID"),
            field("SerialNumber", T.STRING, "Serial Number", length=80),
            picklist("Status", ["Purchased", "Shipped", "Installed", "Registered", "Obsolete"]),
            field("Quantity", T.DOUBLE, precision=18, scale=2),
            field("Price", T.CURRENCY, precision=18, scale=2),
            field("PurchaseDate", T.DATE),
            field("InstallDate", T.DATE),
            field("UsageEndDate", T.DATE),
            field("Description", T.TEXTAREA, length=32000),
        ],
    )


def _campaign() -> ObjectDef:
    return make_object(
        "Campaign",
        "Campaign",
        "Campaigns",
        [
            name_field("Campaign Name", 80),
            lookup("ParentId", "Campaign", "Parent", "ChildCampaigns", label="Parent Campaign ID"),
            picklist(
                "Type",
                [
                    "Conference",
                    "Webinar",
                    "Trade Show",
                    "Public Relations",
                    "Partners",
                    "Referral Program",
                    "Advertisement",
                    "Banner Ads",
                    "Direct Mail",
                    "Email",
                    "Telemarketing",
                    "Other",
                ],
            ),
            picklist("Status", ["Planned", "In Progress", "Completed", "Aborted"]),
            field("StartDate", T.DATE),
            field("EndDate", T.DATE),
            field("IsActive", T.BOOLEAN, "Active"),
            field("BudgetedCost", T.CURRENCY, precision=18, scale=0),
            field("ActualCost", T.CURRENCY, precision=18, scale=0),
            field("ExpectedRevenue", T.CURRENCY, precision=18, scale=0),
            field("NumberSent", T.DOUBLE, "Num Sent in Campaign", precision=18, scale=0),
            field("Description", T.TEXTAREA, length=32000),
        ],
    )


def _campaign_member() -> ObjectDef:
    return make_object(
        "CampaignMember",
        "Campaign Member",
        "Campaign Members",
        [
            replace(
                required(
                    lookup("CampaignId", "Campaign", "Campaign", "CampaignMembers", cascade=True)
                ),
                updateable=False,
            ),
            lookup("LeadId", "Lead", "Lead", "CampaignMembers"),
            lookup("ContactId", "Contact", "Contact", "CampaignMembers"),
            picklist("Status", ["Planned", "Received", "Responded", "Sent"], default="Sent"),
            readonly(field("HasResponded", T.BOOLEAN, "Responded"), calculated=True),
            field("FirstRespondedDate", T.DATE, "First Responded Date"),
        ],
        owned=False,
    )


def _task() -> ObjectDef:
    whats = ("Account", "Opportunity", "Case", "Campaign", "Asset", "Order")
    return make_object(
        "Task",
        "Task",
        "Tasks",
        [
            field("Subject", T.COMBOBOX, length=255, name_field=True),
            lookup("WhoId", ("Contact", "Lead"), "Who", "Tasks", label="Name ID"),
            lookup("WhatId", whats, "What", "Tasks", label="Related To ID"),
            field("ActivityDate", T.DATE, "Due Date Only"),
            required(picklist("Status", TASK_STATUSES, default="Not Started")),
            required(picklist("Priority", ["High", "Normal", "Low"], default="Normal")),
            picklist("Type", ["Call", "Email", "Meeting", "Other"]),
            picklist("TaskSubtype", ["Task", "Email", "Call"], label="Task Subtype"),
            readonly(field("IsClosed", T.BOOLEAN, "Closed"), calculated=True),
            field("Description", T.TEXTAREA, "Comments", length=32000),
        ],
    )


def _user() -> ObjectDef:
    return make_object(
        "User",
        "User",
        "Users",
        [
            required(field("Username", T.STRING, length=80, unique=True)),
            *person_name(),
            required(field("Alias", T.STRING, length=8)),
            required(field("Email", T.EMAIL, length=128)),
            field("IsActive", T.BOOLEAN, "Active", default=True),
            field("Title", T.STRING, length=80),
            field("Department", T.STRING, length=80),
            field("CompanyName", T.STRING, "Company Name", length=80),
            field("Phone", T.PHONE, length=40),
            lookup("ManagerId", "User", "Manager", "ManagedUsers"),
            field("FederationIdentifier", T.STRING, "SAML Federation ID", length=512),
            required(picklist("TimeZoneSidKey", TIME_ZONES, label="Time Zone")),
            required(picklist("LocaleSidKey", LOCALES, label="Locale")),
            required(picklist("EmailEncodingKey", ["UTF-8", "ISO-8859-1"], label="Email Encoding")),
            required(picklist("LanguageLocaleKey", ["en_US", "fr", "de", "ja"], label="Language")),
        ],
        owned=False,
        deletable=False,
        undeletable=False,
    )


def standard_objects() -> list[ObjectDef]:
    """The standard objects, before child relationships are derived."""
    return [
        _account(),
        _contact(),
        _lead(),
        _opportunity(),
        _opportunity_line_item(),
        _case(),
        _order(),
        _order_item(),
        _product(),
        _pricebook(),
        _pricebook_entry(),
        _asset(),
        _campaign(),
        _campaign_member(),
        _task(),
        _user(),
    ]


def standard_schema() -> Schema:
    """The standard objects of the emulated org, with child relationships derived."""
    return assemble_schema(standard_objects())


def derived_values(object_name: str, record: Mapping[str, WireValue]) -> dict[str, WireValue]:
    """The standard computed fields of ``record`` that differ from what it holds.

    Covers person ``Name``; Opportunity ``IsClosed``/``IsWon``/``ExpectedRevenue`` and the
    stage's default ``Probability``/``ForecastCategoryName`` when unset; Case and Task
    ``IsClosed``; line item ``TotalPrice``; CampaignMember ``HasResponded``.
    """
    out: dict[str, WireValue] = {}
    if object_name in PERSON_NAME_OBJECTS:
        parts = [record.get("FirstName"), record.get("LastName")]
        out["Name"] = " ".join(str(p) for p in parts if p) or None
    elif object_name == "Opportunity":
        stage = record.get("StageName")
        probability, category = STAGES.get(str(stage), (None, None))
        out["IsClosed"] = category in ("Closed", "Omitted")
        out["IsWon"] = category == "Closed"
        if record.get("Probability") is None and probability is not None:
            out["Probability"] = float(probability)
        if record.get("ForecastCategoryName") is None and category is not None:
            out["ForecastCategoryName"] = category
        amount, prob = record.get("Amount"), out.get("Probability", record.get("Probability"))
        if isinstance(amount, int | float) and isinstance(prob, int | float):
            out["ExpectedRevenue"] = round(amount * prob / 100, 2)
        else:
            out["ExpectedRevenue"] = None
    elif object_name == "Case":
        out["IsClosed"] = record.get("Status") in CLOSED_CASE_STATUSES
    elif object_name == "Task":
        out["IsClosed"] = record.get("Status") in CLOSED_TASK_STATUSES
    elif object_name in ("OpportunityLineItem", "OrderItem"):
        qty, price = record.get("Quantity"), record.get("UnitPrice")
        if isinstance(qty, int | float) and isinstance(price, int | float):
            discount = record.get("Discount")
            factor = 1 - (discount / 100 if isinstance(discount, int | float) else 0)
            out["TotalPrice"] = round(qty * price * factor, 2)
        else:
            out["TotalPrice"] = None
    elif object_name == "CampaignMember":
        out["HasResponded"] = record.get("Status") == "Responded"
    return {k: v for k, v in out.items() if record.get(k) != v}
