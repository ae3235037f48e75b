"""``sfsync demo``: the whole path on the embedded default, with nothing to install or configure.

It starts the emulator (a local Salesforce org, REST and the Pub/Sub API) on free ports and
seeds it with a realistic org, replicates Accounts and Contacts into a local SQLite file with the
configuration in ``demo.yaml`` (the same file as ``examples/demo.yaml``), then follows Change
Data Capture in real time (or, with ``mode="polling"``, polls) while an activity generator
edits, creates and deletes records through the REST API. At the end it runs one catch-up pass
and proves that the SQLite tables equal the org, record by record.
"""

from __future__ import annotations

import os
import random
import shutil
import sqlite3
from importlib.resources import files
from pathlib import Path

import anyio
import httpx
from rich.console import Console
from rich.table import Table

from sfsync.cli.run import exit_code, run_config
from sfsync.emulator.org import Org
from sfsync.emulator.server import serve_in_background

TOKEN = "00D000000000001!sfsync-demo-token"
API = "/services/data/v62.0"
# The demo configuration reads the emulator's address and its own directory from these.
_ENV_KEYS = (
    "SFSYNC_EMULATOR_URL",
    "SFSYNC_EMULATOR_TOKEN",
    "SFSYNC_EMULATOR_GRPC",
    "SFSYNC_DEMO_DIR",
    "SFSYNC_DEMO_MODE",
)
MODES = ("realtime", "polling")


def prepare_workdir(workdir: Path) -> None:
    """Start from an empty directory: each demo seeds a new org, so old state would not match."""
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)


def demo_config() -> Path:
    """The packaged demo configuration."""
    return Path(str(files("sfsync.cli").joinpath("demo.yaml")))


async def run_demo(
    *,
    workdir: Path,
    duration: float,
    interval: float,
    accounts: int,
    console: Console,
    mode: str = "realtime",
) -> int:
    """Run the demo; returns the process exit code (0 when the target equals the org).

    ``workdir`` must exist and be empty (see :func:`prepare_workdir`). ``mode`` is
    ``realtime`` (Change Data Capture) or ``polling`` (every ``interval`` seconds).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    console.print(
        f"[bold]1.[/] starting the emulator and seeding a demo org ({accounts:,} accounts)"
    )
    org = Org.create(access_token=TOKEN)
    from sfsync.emulator.seed import seed_demo

    made = seed_demo(org.store, accounts=accounts)
    saved_env = {k: os.environ.get(k) for k in _ENV_KEYS}
    console.print("   " + ", ".join(f"{n:,} {name}" for name, n in made.items()))
    try:
        with serve_in_background(org, port=0, grpc_port=0) as server:
            os.environ["SFSYNC_EMULATOR_URL"] = server.url
            os.environ["SFSYNC_EMULATOR_TOKEN"] = TOKEN
            os.environ["SFSYNC_EMULATOR_GRPC"] = f"127.0.0.1:{server.grpc_port}"
            os.environ["SFSYNC_DEMO_DIR"] = str(workdir)
            os.environ["SFSYNC_DEMO_MODE"] = mode
            console.print(
                f"   emulator at {server.url} (Pub/Sub API on port {server.grpc_port}); "
                f"target {workdir / 'demo.sqlite'}"
            )
            how = (
                "following Change Data Capture as it happens"
                if mode == "realtime"
                else f"polling every {interval:g}s"
            )
            console.print(
                f"[bold]2.[/] snapshot, then {how} for {duration:g}s while records change in "
                "the org (watch the lag column)"
            )
            activity = Activity(server.url)
            async with anyio.create_task_group() as tg:
                tg.start_soon(activity.run)
                statuses = await run_config(
                    demo_config(),
                    once=False,
                    console=console,
                    interval=interval if mode == "polling" else None,
                    duration=duration,
                )
                activity.stop()
            if exit_code(statuses):
                return 1
            console.print(
                f"[bold]3.[/] activity made {activity.summary()}; one catch-up pass from the "
                "saved checkpoints"
            )
            statuses = await run_config(demo_config(), once=True, console=console)
            if exit_code(statuses):
                return 1
        return verify(org, workdir / "demo.sqlite", console)
    finally:
        org.close()
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class Activity:
    """Edits the org through its REST API the way users and integrations would."""

    def __init__(self, base_url: str, seed: int = 7) -> None:
        self.base_url = base_url
        self.rng = random.Random(seed)
        self.counts = {"updated": 0, "created": 0, "deleted": 0}
        self._stop = anyio.Event()

    def stop(self) -> None:
        self._stop.set()

    def summary(self) -> str:
        return ", ".join(f"{n} {what}" for what, n in self.counts.items())

    async def run(self) -> None:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with httpx.AsyncClient(base_url=self.base_url, headers=headers) as http:
            response = await http.get(f"{API}/query", params={"q": "SELECT Id FROM Account"})
            ids = [r["Id"] for r in response.json()["records"]]
            while not self._stop.is_set():
                await self._one(http, ids)
                with anyio.move_on_after(0.05):
                    await self._stop.wait()

    async def _one(self, http: httpx.AsyncClient, ids: list[str]) -> None:
        roll = self.rng.random()
        if roll < 0.75 and ids:
            record_id = self.rng.choice(ids)
            body = {
                "Name": f"Renamed {self.rng.randint(1, 10**6)}",
                "AnnualRevenue": self.rng.randint(1, 10**8),
            }
            response = await http.patch(f"{API}/sobjects/Account/{record_id}", json=body)
            if response.status_code == 204:
                self.counts["updated"] += 1
        elif roll < 0.9:
            body = {"Name": f"New customer {self.rng.randint(1, 10**6)}", "Industry": "Technology"}
            response = await http.post(f"{API}/sobjects/Account", json=body)
            if response.status_code == 201:
                ids.append(response.json()["id"])
                self.counts["created"] += 1
        elif ids:
            record_id = ids.pop(self.rng.randrange(len(ids)))
            response = await http.delete(f"{API}/sobjects/Account/{record_id}")
            if response.status_code == 204:
                self.counts["deleted"] += 1


def verify(org: Org, target: Path, console: Console) -> int:
    """Compare the SQLite tables with the org; print the result; 0 when they are equal."""
    db = sqlite3.connect(target)
    try:
        checks = [
            ("Account", "accounts", "Name"),
            ("Contact", "contacts", "LastName"),
        ]
        table = Table(title="target vs org", title_justify="left")
        for column in ("object", "rows in org", "rows in SQLite", "equal"):
            table.add_column(column)
        equal_all = True
        for sobject, name, field in checks:
            in_org = {
                str(r["Id"]): r[field] for r in org.store.scan(sobject, include_deleted=False)
            }
            rows = db.execute(
                f'SELECT "Id", "{field}" FROM {name} WHERE NOT "_sfsync_deleted"'
            ).fetchall()
            in_db = {str(r[0]): r[1] for r in rows}
            equal = in_org == in_db
            equal_all &= equal
            table.add_row(
                sobject, f"{len(in_org):,}", f"{len(in_db):,}", "[green]yes" if equal else "[red]NO"
            )
        console.print(table)
    finally:
        db.close()
    if equal_all:
        console.print("[bold green]The SQLite copy equals the org, record by record.")
        return 0
    console.print("[bold red]The SQLite copy differs from the org.")
    return 1
