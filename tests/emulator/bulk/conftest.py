"""Bulk API tests run the real app on the real store and SOQL engine, in process."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from bulk_helpers import TOKEN

from sfsync.emulator.app import build_app
from sfsync.emulator.org import Org

SCHEMA = """\
objects:
  Account:
    fields:
      Ext_Id__c: {type: text, length: 40, external_id: true, unique: true}
      Legacy_Key__c: {type: text, length: 40, external_id: true}
"""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def org(tmp_path: Path) -> Iterator[Org]:
    (tmp_path / "schema.yaml").write_text(SCHEMA)
    org = Org.create(
        schema_path=tmp_path / "schema.yaml", access_token=TOKEN, state_dir=tmp_path / "state"
    )
    yield org
    org.close()


@pytest.fixture
async def api(org: Org) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build_app(org))
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="https://emulator.test", headers=headers
    ) as client:
        yield client
