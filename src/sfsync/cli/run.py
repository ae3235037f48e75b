"""Running configured syncs from the command line: ``sfsync run`` and ``sfsync sync --once``.

Ctrl-C or SIGTERM asks every pipeline to finish the batch in hand, save its checkpoint and
stop; nothing is lost. A second Ctrl-C stops at once (still safe: data and checkpoint are
committed together, so the next start repeats at most the unfinished batch).
"""

from __future__ import annotations

import signal
from collections.abc import Sequence
from pathlib import Path

import anyio
from rich.console import Console

from sfsync.app import build_runtime, default_registry, load
from sfsync.cli.display import StatusBoard, notes, summary
from sfsync.core.state import PipelineState
from sfsync.runtime.status import PipelineStatus, RunningSync
from sfsync.spi.registry import Registry


async def run_config(
    path: Path,
    *,
    once: bool,
    only: Sequence[str] = (),
    console: Console,
    registry: Registry | None = None,
    interval: float | None = None,
    duration: float | None = None,
) -> list[PipelineStatus]:
    """Build and run the configured pipelines; returns their final statuses.

    Args:
        interval: override every sync's polling interval (seconds).
        duration: stop after this many seconds (``None``: when done or interrupted).
    """
    registry = registry or default_registry()
    config = load(path, registry)
    names = [s.name for s in config.syncs if (s.name in only if only else s.enabled)]
    board = StatusBoard(names)
    async with await build_runtime(
        config, registry, once=once, only=only, on_status=board.update, interval=interval
    ) as runtime:
        with board.live(console):
            await _run_all(runtime.pipelines, duration)
        console.print()
    statuses = board.statuses() or [p.status() for p in runtime.pipelines]
    console.print(summary(statuses))
    for line in notes(statuses):
        console.print(line, markup=False, style="yellow")
    return statuses


async def _run_all(pipelines: Sequence[RunningSync], duration: float | None) -> None:
    async with anyio.create_task_group() as outer:
        outer.start_soon(_stop_on_signal, pipelines, outer.cancel_scope)
        if duration is not None:
            outer.start_soon(_stop_after, pipelines, duration)
        async with anyio.create_task_group() as inner:
            for pipeline in pipelines:
                inner.start_soon(pipeline.run)
        # Every pipeline has ended: stop waiting for signals and timers.
        outer.cancel_scope.cancel()


async def _stop_after(pipelines: Sequence[RunningSync], seconds: float) -> None:
    await anyio.sleep(seconds)
    for pipeline in pipelines:
        pipeline.request_stop()


async def _stop_on_signal(pipelines: Sequence[RunningSync], scope: anyio.CancelScope) -> None:
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        count = 0
        async for _ in signals:
            count += 1
            if count == 1:
                for pipeline in pipelines:
                    pipeline.request_stop()
            else:
                scope.cancel()
                return


def exit_code(statuses: Sequence[PipelineStatus]) -> int:
    """0 when every sync ended well, 1 when any failed."""
    return 1 if any(s.state is PipelineState.FAILED for s in statuses) else 0
