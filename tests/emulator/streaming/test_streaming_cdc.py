"""Change Data Capture content from real REST calls on the real store (in process)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _streaming_support import TOKEN, V, make_org

from sfsync.emulator.app import build_app
from sfsync.emulator.org import Org
from sfsync.emulator.streaming.cometd_render import data_message
from sfsync.emulator.streaming.events import ChangeEventBody
from sfsync.emulator.streaming.service import Streaming, attach

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def org(tmp_path: Path) -> Iterator[Org]:
    org = make_org(tmp_path)
    yield org
    org.close()


@pytest.fixture
async def api(org: Org) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build_app(org))
    async with httpx.AsyncClient(
        transport=transport,
        base_url="https://emulator.test",
        headers={"Authorization": f"Bearer {TOKEN}", "Sforce-Call-Options": "client=sfsync"},
    ) as client:
        yield client


def changes(hub: Streaming, after: int = 0) -> list[ChangeEventBody]:
    out = []
    for event in hub.bus.events_after(after, "/data/ChangeEvents"):
        assert isinstance(event.body, ChangeEventBody)
        out.append(event.body)
    return out


def cometd_payload(org: Org, hub: Streaming, replay_id: int) -> dict[str, Any]:
    event = next(e for e in hub.bus.events_after(replay_id - 1, "/data/ChangeEvents"))
    message = data_message(org.schema, "/data/ChangeEvents", event)
    assert message is not None
    payload: dict[str, Any] = message["data"]["payload"]
    return payload


async def test_create_update_delete_undelete_headers_and_bodies(
    org: Org, api: httpx.AsyncClient
) -> None:
    hub = attach(org)
    created = await api.post(
        f"{V}/sobjects/Contact/",
        json={"FirstName": "Ada", "LastName": "Lovelace", "MailingCity": "London"},
    )
    rid = created.json()["id"]
    update = await api.patch(
        f"{V}/sobjects/Contact/{rid}",
        json={"FirstName": None, "Title": "Countess", "MailingCity": "Paris"},
    )
    assert update.status_code == 204
    assert (await api.delete(f"{V}/sobjects/Contact/{rid}")).status_code == 204
    org.store.undelete(rid)

    create, upd, delete, undelete = changes(hub)
    user = org.store.integration_user_id
    for body, kind in zip(
        (create, upd, delete, undelete), ("CREATE", "UPDATE", "DELETE", "UNDELETE"), strict=True
    ):
        h = body.header
        assert (h.entity_name, h.record_ids, h.change_type) == ("Contact", (rid,), kind)
        assert h.sequence_number == 1
        assert h.commit_user == user
        assert h.diff_fields == ()
    # The version of the REST call that made the change, and its Sforce-Call-Options client.
    assert create.header.change_origin == "com/salesforce/api/rest/59.0;client=sfsync"
    # A store call carries neither a version nor Sforce-Call-Options: default version, no
    # client part.
    assert undelete.header.change_origin == "com/salesforce/api/rest/62.0"
    assert len({b.header.transaction_key for b in (create, upd, delete)}) == 3
    numbers = [b.header.commit_number for b in (create, upd, delete, undelete)]
    assert numbers == sorted(numbers)
    assert len(set(numbers)) == 4

    assert create.values["LastName"] == "Lovelace"
    assert create.values["MailingCity"] == "London"
    assert "Id" not in create.values
    assert "SystemModstamp" not in create.values
    assert "IsDeleted" not in create.values
    assert create.header.changed_fields == ()

    assert set(upd.header.changed_fields) == {
        "FirstName",
        "Title",
        "MailingCity",
        "LastModifiedDate",
    }
    assert upd.header.nulled_fields == ("FirstName",)
    assert set(upd.values) == {"FirstName", "Title", "MailingCity", "LastModifiedDate"}
    assert delete.values == {}
    assert undelete.values == {}

    # CometD form: compound fields nested, nulls omitted, dotted changed-field names, Z dates.
    payload = cometd_payload(org, hub, 2)
    header = payload.pop("ChangeEventHeader")
    assert "nulledFields" not in header
    assert "diffFields" not in header
    assert set(header["changedFields"]) == {
        "Name.FirstName",
        "Title",
        "MailingAddress.City",
        "LastModifiedDate",
    }
    assert payload["MailingAddress"] == {"City": "Paris"}
    assert payload["Title"] == "Countess"
    assert "Name" not in payload  # the only Name change was a null
    assert payload["LastModifiedDate"].endswith("Z")
    first = cometd_payload(org, hub, 1)
    assert first["Name"] == {"FirstName": "Ada", "LastName": "Lovelace"}


async def test_one_transaction_with_identical_changes_is_one_event(
    org: Org, api: httpx.AsyncClient
) -> None:
    hub = attach(org)
    records = [{"attributes": {"type": "Account"}, "Name": "Same"} for _ in range(3)]
    made = await api.post(f"{V}/composite/sobjects", json={"allOrNone": True, "records": records})
    ids = [r["id"] for r in made.json()]
    mark = hub.bus.latest_id
    update = [
        {"attributes": {"type": "Account"}, "Id": ids[0], "Industry": "Energy"},
        {"attributes": {"type": "Account"}, "Id": ids[1], "Industry": "Energy"},
        {"attributes": {"type": "Account"}, "Id": ids[2], "Industry": "Banking"},
    ]
    await api.patch(f"{V}/composite/sobjects", json={"allOrNone": True, "records": update})

    (created,) = changes(hub)[:1]
    assert created.header.record_ids == tuple(ids)
    energy, banking = changes(hub, mark)
    assert energy.header.record_ids == (ids[0], ids[1])
    assert banking.header.record_ids == (ids[2],)
    assert energy.header.transaction_key == banking.header.transaction_key
    assert (energy.header.sequence_number, banking.header.sequence_number) == (1, 2)
    assert energy.header.commit_number == banking.header.commit_number


async def test_store_transaction_sequence_across_entities(org: Org) -> None:
    hub = attach(org)
    with org.store.transaction():
        account = org.store.insert("Account", {"Name": "Parent"})
        org.store.insert("Contact", {"LastName": "Child", "AccountId": account})
        org.store.insert("Invoice__c", {"Name": "I-1", "Amount__c": 10, "Due__c": "2024-02-01"})
    bodies = changes(hub)
    assert [b.header.entity_name for b in bodies] == ["Account", "Contact", "Invoice__c"]
    assert [b.header.sequence_number for b in bodies] == [1, 2, 3]
    channels = [e.channel for e in hub.bus.events_after(0, "/data/ChangeEvents")]
    assert channels == [
        "/data/AccountChangeEvent",
        "/data/ContactChangeEvent",
        "/data/Invoice__ChangeEvent",
    ]
    assert bodies[2].values["Due__c"] == "2024-02-01"


async def test_gap_and_overflow_injection_through_the_admin_endpoint(
    org: Org, api: httpx.AsyncClient
) -> None:
    hub = attach(org)
    answer = await api.put("/__emulator__/streaming", json={"gaps": 2})
    assert answer.json()["gaps_pending"] == 2
    first = (await api.post(f"{V}/sobjects/Account/", json={"Name": "G1"})).json()["id"]
    await api.patch(f"{V}/sobjects/Account/{first}", json={"Name": "G2"})
    await api.patch(f"{V}/sobjects/Account/{first}", json={"Name": "G3"})
    gap_create, gap_update, normal = changes(hub)
    assert gap_create.header.change_type == "GAP_CREATE"
    assert gap_update.header.change_type == "GAP_UPDATE"
    assert gap_create.header.record_ids == (first,)
    assert gap_create.values == {}
    assert gap_update.header.changed_fields == ()
    assert gap_update.header.sequence_number == 1
    assert normal.header.change_type == "UPDATE"
    assert normal.values["Name"] == "G3"

    mark = hub.bus.latest_id
    await api.put("/__emulator__/streaming", json={"overflow_threshold": 2})
    records = [{"attributes": {"type": "Account"}, "Name": f"O{i}"} for i in range(4)]
    await api.post(f"{V}/composite/sobjects", json={"allOrNone": True, "records": records})
    bodies = changes(hub, mark)
    assert [b.header.change_type for b in bodies] == ["CREATE", "CREATE", "GAP_OVERFLOW"]
    overflow = bodies[-1].header
    assert overflow.entity_name == "Account"
    assert overflow.record_ids == ()


async def test_the_fault_plan_turns_a_requests_change_into_a_gap_event(
    org: Org, api: httpx.AsyncClient
) -> None:
    hub = attach(org)
    record = (await api.post(f"{V}/sobjects/Account/", json={"Name": "Before"})).json()["id"]
    mark = hub.bus.latest_id
    rule = {"method": "PATCH", "path": "/services/data/*", "rates": {"cdc_gap": 1.0}, "times": 1}
    answer = await api.put("/__emulator__/faults", json={"seed": 3, "rules": [rule]})
    assert answer.status_code == 200, answer.text
    served = await api.patch(f"{V}/sobjects/Account/{record}", json={"Name": "Gap"})
    assert served.status_code == 204  # not an error for the caller
    await api.patch(f"{V}/sobjects/Account/{record}", json={"Name": "After"})
    gap, normal = changes(hub, mark)
    assert (gap.header.change_type, gap.header.record_ids) == ("GAP_UPDATE", (record,))
    assert normal.header.change_type == "UPDATE"
    assert normal.values["Name"] == "After"


async def test_entity_selection_and_admin_errors(org: Org, api: httpx.AsyncClient) -> None:
    hub = attach(org)
    selected = await api.put("/__emulator__/streaming", json={"cdc_entities": ["Contact"]})
    assert selected.json()["cdc_entities"] == ["Contact"]
    await api.post(f"{V}/sobjects/Account/", json={"Name": "Ignored"})
    await api.post(f"{V}/sobjects/Contact/", json={"LastName": "Seen"})
    assert [b.header.entity_name for b in changes(hub)] == ["Contact"]
    assert hub.topic("/data/AccountChangeEvent") is None
    bad = await api.put("/__emulator__/streaming", json={"cdc_entities": ["Nope"]})
    assert bad.status_code == 400
    assert "Nope" in bad.json()["error"]
    bad = await api.put("/__emulator__/streaming", json={"gaps": -1})
    assert bad.status_code == 400


async def test_rest_create_of_a_platform_event_publishes_it(
    org: Org, api: httpx.AsyncClient
) -> None:
    hub = attach(org)
    answer = await api.post(f"{V}/sobjects/Printer__e/", json={"Model__c": "XZO-5"})
    assert answer.status_code == 201
    (event,) = hub.bus.events_after(0, "/event/Printer__e")
    message = data_message(org.schema, "/event/Printer__e", event)
    assert message is not None
    payload = message["data"]["payload"]
    assert payload["Model__c"] == "XZO-5"
    assert payload["Pages__c"] is None
    assert payload["CreatedById"] == org.store.integration_user_id
    assert payload["CreatedDate"].endswith("Z")
    assert len(message["data"]["event"]["EventUuid"]) == 36
    assert hub.bus.events_after(0, "/data/ChangeEvents") == []
