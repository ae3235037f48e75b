"""Which records a batch of changes names, and a database change's fate: pure, table-tested."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sfsync.core.errors import SkippableError
from sfsync.core.events import ChangeEvent, Operation, Position
from sfsync.runtime.reconcile import Tally, TwoWayObject
from sfsync.runtime.sides import changed, fate
from sfsync.spi.sink import OutcomeKind

AT = datetime(2026, 1, 1, tzinfo=UTC)
OBJ = TwoWayObject(entity="Account", key="Ext__c", fields=("Ext__c", "Name"))


def _event(
    key: str,
    op: Operation = Operation.UPDATE,
    after: dict[str, object] | None = None,
    *,
    origin: str | None = None,
    entity: str = "Account",
    at: datetime = AT,
) -> ChangeEvent:
    return ChangeEvent(
        entity=entity,
        key=key,
        op=op,
        after=None if op is Operation.DELETE else (after or {}),
        position=Position("s", key),
        committed_at=at,
        origin=origin,
    )


def test_changes_name_records_by_key_and_id_and_leave_our_echoes_out() -> None:
    sf = [
        _event("001A", after={"Ext__c": "k1", "Name": "a"}),
        _event("001B", after={"Name": "partial update: no key"}),
        _event("001C", Operation.DELETE),
        _event("001D", after={"Ext__c": "k4"}, origin="sfsync-client"),  # ours
        _event("001E", after={"Ext__c": "k5"}, entity="Contact"),  # another object
    ]
    ext = [
        _event("k1", at=AT),
        _event("k1", at=AT + timedelta(seconds=5)),
        _event("k7", origin="sfsync:accounts"),  # ours
        _event("k8", Operation.DELETE, at=AT),
    ]
    found = changed(OBJ, sf, ext, "sfsync-client", "sfsync:accounts")
    assert found.keys == ("k1", "k8")
    assert found.ids == ("001A", "001B", "001C")
    assert found.times == {"k1": AT + timedelta(seconds=5), "k8": AT}
    assert found.echoes == 2


def test_without_a_client_id_no_salesforce_change_is_taken_for_ours() -> None:
    sf = [_event("001A", after={"Ext__c": "k1"}, origin="someone")]
    assert changed(OBJ, sf, [], None, "sfsync:x").echoes == 0


def test_a_database_change_fate_on_its_change_log_row() -> None:
    tally = Tally()
    tally.parked_keys.add("parked")
    tally.failed_keys["bad"] = SkippableError("Score cannot be negative.")
    assert fate(_event("ok"), tally, "me").kind is OutcomeKind.APPLIED
    assert fate(_event("ok", origin="me"), tally, "me").kind is OutcomeKind.STALE
    assert fate(_event("parked"), tally, "me").kind is OutcomeKind.CONFLICT
    rejected = fate(_event("bad"), tally, "me")
    assert rejected.kind is OutcomeKind.REJECTED
    assert "negative" in str(rejected.error)
    assert fate(_event("other"), None, "me").kind is OutcomeKind.APPLIED
