"""What the composition root builds from a configuration, without running anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from sfsync.app import build_runtime, default_registry, load
from sfsync.runtime.pipeline import DEFAULT_BATCH_SIZE, RunMode

CONFIG = """
version: 1
state: {{url: "sqlite:///{tmp}/state.sqlite"}}
connections:
  crm:
    type: salesforce
    instance_url: http://127.0.0.1:9
    auth: {{flow: access_token, access_token: "00D000000000001!x"}}
  db:
    type: sqlite
    url: sqlite:///{tmp}/db.sqlite
syncs:
  - name: down
    source: crm
    target: db
    mode: realtime
    objects: [{{name: Account}}]
  - name: up
    source: db
    target: crm
    mode: polling
    objects: [{{name: Account, key: Ext_Id__c}}]
"""


@pytest.mark.anyio
async def test_batches_are_as_big_as_the_sink_takes_and_realtime_runs_continuously(
    tmp_path: Path,
) -> None:
    path = tmp_path / "sync.yaml"
    path.write_text(CONFIG.format(tmp=tmp_path))
    registry = default_registry()
    async with await build_runtime(load(path, registry), registry, once=False) as runtime:
        by_name = {p.options.name: p for p in runtime.pipelines}
        down, up = by_name["down"], by_name["up"]
        assert down.source.capabilities.realtime
        assert down.options.mode is RunMode.CONTINUOUS
        assert down.options.batch_size == DEFAULT_BATCH_SIZE  # the SQL sink takes 1,000
        # The Salesforce sink takes 10,000 a write, so that large volumes can go through Bulk.
        assert up.options.batch_size == up.sink.capabilities.max_batch == 10_000
    async with await build_runtime(load(path, registry), registry, once=True) as runtime:
        assert all(p.options.mode is RunMode.ONCE for p in runtime.pipelines)
