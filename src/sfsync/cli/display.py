"""Showing pipelines at work: a live table while they run, a summary when they end."""

from __future__ import annotations

import time
from collections.abc import Sequence

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from sfsync.core.state import PipelineState
from sfsync.runtime.status import PipelineStatus

_STATE_STYLE = {
    PipelineState.SNAPSHOTTING: "cyan",
    PipelineState.STREAMING: "green",
    PipelineState.STOPPED: "dim",
    PipelineState.FAILED: "bold red",
}


class StatusBoard:
    """Collects status snapshots and renders them (throttled) as a rich table.

    ``update`` is the pipelines' status listener; it only stores the snapshot, so it is
    cheap on the hot path; :meth:`render` builds the table when the screen refreshes.
    """

    def __init__(self, names: Sequence[str]) -> None:
        self._status: dict[str, PipelineStatus] = {}
        self._order = list(names)
        self._started = time.monotonic()
        # (sync, entity) -> (monotonic time, count) when the entity was first seen reading.
        self._first_seen: dict[tuple[str, str], tuple[float, int]] = {}

    def update(self, status: PipelineStatus) -> None:
        self._status[status.name] = status

    def statuses(self) -> list[PipelineStatus]:
        return [self._status[n] for n in self._order if n in self._status]

    def render(self) -> Table:
        """One row per sync with its totals, then one indented row per object it reads."""
        elapsed = max(time.monotonic() - self._started, 1e-6)
        table = Table(title="sfsync", title_justify="left")
        table.add_column("sync / object")
        table.add_column("state")
        for column in ("read", "applied", "rejected", "retries", "rate/s", "lag"):
            table.add_column(column, justify="right")
        for s in self.statuses():
            c = s.counters
            lag = f"{s.lag_seconds:.1f}s" if s.lag_seconds is not None else "-"
            table.add_row(
                s.name,
                Text(s.state.value, style=_STATE_STYLE.get(s.state, "")),
                f"{c.read:,}",
                f"{c.applied:,}",
                Text(f"{c.rejected:,}", style="red" if c.rejected else ""),
                f"{c.retries:,}",
                f"{c.read / elapsed:,.0f}",
                lag,
            )
            totals = dict(s.snapshot_totals)
            for name, count in s.per_entity:
                table.add_row(f"  {name}", *self._progress(s, name, count, totals.get(name)))
        return table

    def _progress(
        self, s: PipelineStatus, entity: str, count: int, total: int | None
    ) -> tuple[Text, str, str, str, str, str, str]:
        """The object's row after its name: state, read, (blank totals), rate, and for a
        running snapshot a bar, ``read/total`` and the ETA (in the lag column)."""
        now = time.monotonic()
        since, base = self._first_seen.setdefault((s.name, entity), (now, count))
        rate = (count - base) / (now - since) if now > since else 0.0
        # How the source reads the object now (streaming, polling on a fallback), if it says.
        health = dict(s.source_health).get(entity, "")
        if entity in s.snapshot_done and not health:
            return Text("snapshot done", style="dim"), f"{count:,}", "", "", "", "", ""
        if total and s.state is PipelineState.SNAPSHOTTING and entity not in s.snapshot_done:
            share = min(count / total, 1.0)
            eta = f"ETA {max(total - count, 0) / rate:,.0f}s" if rate > 0 else "ETA -"
            bar = "#" * int(share * 10) + "." * (10 - int(share * 10))
            return (
                Text(f"{bar} {share:.0%}", style="cyan"),
                f"{count:,}/{total:,}",
                "",
                "",
                "",
                f"{rate:,.0f}",
                eta,
            )
        style = "green" if health.startswith("streaming") else "yellow"
        rate_text = f"{rate:,.0f}" if rate else ""
        return Text(health, style=style), f"{count:,}", "", "", "", rate_text, ""

    def live(self, console: Console) -> Live:
        return Live(_Renderable(self), console=console, refresh_per_second=4, transient=False)


class _Renderable:
    def __init__(self, board: StatusBoard) -> None:
        self.board = board

    def __rich__(self) -> Group:
        return Group(self.board.render())


def summary(statuses: Sequence[PipelineStatus]) -> Table:
    """The end-of-run table: one row per sync, with its outcome and last error."""
    table = Table(title="summary", title_justify="left")
    for column in ("sync", "result", "read", "applied", "stale", "rejected", "failed"):
        table.add_column(column, justify="left" if column in ("sync", "result") else "right")
    for s in statuses:
        c = s.counters
        table.add_row(
            s.name,
            Text(s.state.value, style=_STATE_STYLE.get(s.state, "")),
            f"{c.read:,}",
            f"{c.applied:,}",
            f"{c.stale:,}",
            f"{c.rejected:,}",
            f"{c.failed:,}",
        )
    return table


def notes(statuses: Sequence[PipelineStatus]) -> list[str]:
    """Errors and notices worth reading after a run, one line each."""
    lines: list[str] = []
    for s in statuses:
        if s.last_error:
            lines.append(f"{s.name}: {s.last_error}")
        lines.extend(f"{s.name}: {notice}" for notice in s.notices)
    return lines
