"""Random batches through the sink end as a model of the events says, on both write paths.

The model applies each event in order: a put (READ, CREATE, UPDATE) merges its values into the
record, creating it if absent; a DELETE removes it; a put after a delete creates a new record
holding only the new values. Salesforce refuses to create an Account without a Name, and the
sink writes a record's consecutive puts within a batch as one, so the model settles those runs
the same way. Whatever the batch boundaries, merging, rounds and API chosen, the org's live
records must equal the model's, with no duplicate key, and nothing but the missing Name is
ever refused.
"""

from __future__ import annotations

from typing import Any

import anyio
import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sfsync.connectors.salesforce.config import SinkSettings
from sfsync.connectors.salesforce.sink import SalesforceSink
from sfsync.core.events import Batch, Operation
from sfsync.emulator.app import build_app
from sfsync.spi.clock import SystemClock
from sfsync.spi.sink import OutcomeKind, SinkContext
from sfsync.testing import FakeClock

from ._support import START, event, live, make_client, make_org

KEYS = ("K0", "K1", "K2", "K3")
PUTS = (Operation.READ, Operation.CREATE, Operation.UPDATE)

Change = tuple[str, Operation, dict[str, Any]]
change: st.SearchStrategy[Change] = st.one_of(
    st.tuples(
        st.sampled_from(KEYS),
        st.sampled_from(PUTS),
        st.fixed_dictionaries(
            {},
            optional={
                "Name": st.sampled_from(["a", "b", "c"]),
                "Phone": st.one_of(st.none(), st.sampled_from(["1", "2"])),
            },
        ),
    ),
    st.tuples(st.sampled_from(KEYS), st.just(Operation.DELETE), st.just({})),
)
batches = st.lists(st.lists(change, min_size=1, max_size=12), min_size=1, max_size=4)


async def _run(all_batches: list[list[Change]], threshold: int) -> None:
    org = make_org()
    try:
        sink = SalesforceSink(
            make_client(httpx.ASGITransport(app=build_app(org))),
            keys={"Account": "Ext_Id__c"},
            settings=SinkSettings(bulk_threshold=threshold),
            bulk_poll_interval=0.01,
        )
        # A real clock on the Bulk path: the emulator runs jobs in threads (see test_sink_emulator).
        clock = SystemClock() if threshold == 1 else FakeClock(START)
        await sink.open(SinkContext(sync_name="model", clock=clock))
        try:
            for batch in all_batches:
                events = [
                    event("Account", k, op, None if op is Operation.DELETE else v)
                    for k, op, v in batch
                ]
                outcomes = await sink.write(Batch.of(events))
                rejected = [o for o in outcomes if o.kind is not OutcomeKind.APPLIED]
                assert all(
                    o.error is not None and o.error.code == "REQUIRED_FIELD_MISSING"
                    for o in rejected
                ), rejected
        finally:
            await sink.aclose()
        records = live(org, "Account")
        keys = [r["Ext_Id__c"] for r in records]
        assert len(keys) == len(set(keys))  # never a duplicate
        got = {r["Ext_Id__c"]: {"Name": r["Name"], "Phone": r["Phone"]} for r in records}
        assert got == _expected(all_batches)
    finally:
        org.close()


def _expected(
    all_batches: list[list[Change]],
) -> dict[str, dict[str, Any]]:
    """The model, minus records Salesforce refuses: one whose creating write (all the merged
    puts of a record within a batch, after it was absent) carries no Name."""
    state: dict[str, dict[str, Any]] = {}
    for batch in all_batches:
        pending: dict[str, dict[str, Any] | None] = {}  # key -> merged put since absent, this batch
        for key, op, values in batch:
            if op is Operation.DELETE:
                merged = pending.pop(key, None)
                if merged is not None:
                    _settle(state, key, merged)
                state.pop(key, None)
                pending[key] = None  # a delete ends the run of puts
                continue
            current = pending.get(key)
            if current is None:
                pending[key] = dict(values)
            else:
                current.update(values)
        for key, merged in pending.items():
            if merged is not None:
                _settle(state, key, merged)
    return state


def _settle(state: dict[str, dict[str, Any]], key: str, merged: dict[str, Any]) -> None:
    if key in state:
        state[key] = {**state[key], **merged}
    elif merged.get("Name") is not None:
        state[key] = {"Name": None, "Phone": None, **merged}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(all_batches=batches, bulk=st.booleans())
def test_random_batches_end_as_the_model_says(all_batches: list[list[Change]], bulk: bool) -> None:
    anyio.run(_run, all_batches, 1 if bulk else 10_000)
