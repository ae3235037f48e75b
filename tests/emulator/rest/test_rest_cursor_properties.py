"""Properties of query paging, at the cursor level (no HTTP): every record exactly once, in
order, ``totalSize`` on every page, ``done`` only on the last, retries idempotent."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st
from rest_fakes import FakeCompiler, FakeStore, make_schema

from sfsync.emulator.clock import OrgClock
from sfsync.emulator.rest.cursors import Cursor, render_page

NOW = datetime(2024, 5, 1, tzinfo=UTC)


def _cursor(total: int, batch: int) -> tuple[Cursor, list[str]]:
    schema = make_schema()
    store = FakeStore(schema, OrgClock(frozen_at=NOW))
    ids = [store.insert("Account", {"Name": f"n{i}"}) for i in range(total)]
    query = FakeCompiler()("SELECT Id FROM Account", schema)
    result = query.run(store, now=NOW, include_deleted=False, api_version="59.0")
    cursor = Cursor(
        locator="0r8xx0000000001AAA",
        owner=1,
        compiled=query,
        source=store,
        now=NOW,
        include_deleted=False,
        version="59.0",
        resource="query",
        total_size=result.total_size,
        batch_size=batch,
        expires_at=1e12,
        records=result.records,
    )
    return cursor, ids


@settings(max_examples=25, deadline=None)
@given(
    total=st.integers(min_value=0, max_value=2500),
    batch=st.integers(min_value=200, max_value=2000),
    retry_every=st.integers(min_value=1, max_value=4),
)
def test_paging_yields_every_record_once_in_order(total: int, batch: int, retry_every: int) -> None:
    cursor, ids = _cursor(total, batch)
    body, done = render_page(cursor, 0)
    pages = [orjson.loads(body)]
    number = 0
    while not done:
        offset = int(pages[-1]["nextRecordsUrl"].rsplit("-", 1)[1])
        body, done = cursor.page(offset)
        number += 1
        if number % retry_every == 0:
            assert cursor.page(offset) == (body, done)  # a retried page is the same page
        pages.append(orjson.loads(body))
    seen = [r["Id"] for p in pages for r in p["records"]]
    assert seen == ids
    assert all(p["totalSize"] == total for p in pages)
    assert [p["done"] for p in pages] == [False] * (len(pages) - 1) + [True]
    assert all(len(p["records"]) == batch for p in pages[:-1])
    assert "nextRecordsUrl" not in pages[-1]
