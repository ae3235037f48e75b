"""Polling helpers shared by the bulk tests (jobs run on a background thread)."""

from __future__ import annotations

from typing import Any

import anyio
import httpx

V = "/services/data/v59.0"
TOKEN = "bulk-test-token"
TERMINAL = ("JobComplete", "Failed", "Aborted")


async def wait_job(api: httpx.AsyncClient, path: str) -> dict[str, Any]:
    """GET ``path`` until the job is in a terminal state (30 s at most); returns its info."""
    with anyio.fail_after(30):
        while True:
            response = await api.get(path)
            response.raise_for_status()
            info: dict[str, Any] = response.json()
            if info["state"] in TERMINAL:
                return info
            await anyio.sleep(0.02)


async def run_ingest(
    api: httpx.AsyncClient,
    body: dict[str, Any],
    data: bytes | str,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Create, upload, close and wait for an ingest job; returns the final job info."""
    created = await api.post(f"{V}/jobs/ingest", json=body, headers=headers or {})
    assert created.status_code == 200, created.text
    job_id = created.json()["id"]
    raw = data.encode() if isinstance(data, str) else data
    put = await api.put(
        f"{V}/jobs/ingest/{job_id}/batches", content=raw, headers={"Content-Type": "text/csv"}
    )
    assert put.status_code == 201, put.text
    closed = await api.patch(f"{V}/jobs/ingest/{job_id}", json={"state": "UploadComplete"})
    assert closed.status_code == 200, closed.text
    return await wait_job(api, f"{V}/jobs/ingest/{job_id}")
