"""Ids order and compare by their exact form, so that keyset paging by Id never skips one."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from sfsync.emulator.clock import OrgClock
from sfsync.emulator.org import Org
from sfsync.emulator.soql import compile_query
from sfsync.emulator.soql.ids import to_18


@pytest.fixture
def org() -> Iterator[Org]:
    org = Org.create(clock=OrgClock(frozen_at=datetime(2026, 3, 1, tzinfo=UTC)))
    yield org
    org.close()


def _ids(org: Org, soql: str) -> list[str]:
    result = compile_query(soql, org.schema).run(
        org.store, now=org.clock.now(), include_deleted=False, api_version="62.0"
    )
    return [str(r["Id"]) for r in result.records]


def test_order_by_id_is_creation_order_across_letter_case(org: Org) -> None:
    created = org.store.bulk_insert("Account", [{"Name": f"A{i}"} for i in range(80)])
    assert _ids(org, "SELECT Id FROM Account ORDER BY Id") == sorted(created)
    assert sorted(created) == created  # ids are minted in creation order


def test_keyset_paging_by_id_visits_every_record_once(org: Org) -> None:
    created = org.store.bulk_insert("Account", [{"Name": f"A{i}"} for i in range(80)])
    seen: list[str] = []
    last = ""
    while True:
        where = f"WHERE Id > '{last}' " if last else ""
        page = _ids(org, f"SELECT Id FROM Account {where}ORDER BY Id LIMIT 7")
        if not page:
            break
        seen.extend(page)
        last = page[-1]
    assert seen == created


def test_an_id_typed_in_another_case_still_matches(org: Org) -> None:
    record_id = org.store.insert("Account", {"Name": "x"})
    for form in (record_id, record_id.lower(), record_id.upper(), record_id[:15]):
        assert _ids(org, f"SELECT Id FROM Account WHERE Id = '{form}'") == [record_id], form
    assert to_18(record_id.lower()) == record_id
