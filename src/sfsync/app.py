"""The composition root: the one place that wires configuration, connectors and stores.

Shells (the CLI, the admin server) call these functions; nothing below the shells imports
this module.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path

from sfsync.config.model import ObjectSync, SyncConfig, SyncDef
from sfsync.config.validate import load_config
from sfsync.core.checkpoint import Checkpoint
from sfsync.core.conflicts import Side
from sfsync.core.errors import ConfigError
from sfsync.core.review import (
    ConflictQueue,
    ParkedConflict,
    Resolution,
    ReviewState,
    custom_values,
)
from sfsync.runtime.pipeline import (
    DEFAULT_BATCH_SIZE,
    Pipeline,
    PipelineOptions,
    RunMode,
)
from sfsync.runtime.reconcile import TwoWayObject
from sfsync.runtime.reporting import StatusListener
from sfsync.runtime.sides import ExternalSide, SalesforceSide, TwoWayOptions
from sfsync.runtime.status import RunningSync
from sfsync.runtime.twoway import TwoWaySync
from sfsync.spi.clock import Clock, SystemClock
from sfsync.spi.registry import Registry
from sfsync.spi.sink import Sink, SinkContext
from sfsync.spi.spec import ConnectorRequest, EntitySelection
from sfsync.stores.checkpoints import ClosableCheckpointStore, StateStores, open_state


def default_registry() -> Registry:
    """Every connector installed in this environment (the ``sfsync.connectors`` entry points)."""
    return Registry.from_entry_points()


def load(path: Path, registry: Registry | None = None) -> SyncConfig:
    """Read and validate a configuration file (raises ``ConfigProblems`` with every problem)."""
    return load_config(path, registry or default_registry())


def selection(obj: ObjectSync) -> EntitySelection:
    """The connector-facing view of one configured object."""
    return EntitySelection(
        name=obj.name,
        fields=None if obj.all_fields else tuple(obj.fields),
        exclude=tuple(obj.exclude_fields),
        where=obj.where,
        target=obj.target_table,
        deletes=obj.deletes,
        key=obj.key,
    )


def check_sync_names(config: SyncConfig, names: Sequence[str]) -> None:
    """Raise a ConfigError listing the defined syncs if ``names`` holds an unknown one."""
    unknown = set(names) - {s.name for s in config.syncs}
    if unknown:
        raise ConfigError(
            f"no sync named {', '.join(sorted(unknown))}",
            hint=f"defined syncs: {', '.join(s.name for s in config.syncs)}",
        )


@dataclass
class Runtime:
    """Pipelines built from a configuration, with the stores they share.

    Use as an async context manager: the stores are closed on exit.
    """

    config: SyncConfig
    pipelines: list[RunningSync] = field(default_factory=list)
    stack: AsyncExitStack = field(default_factory=AsyncExitStack)

    async def __aenter__(self) -> Runtime:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stack.aclose()


async def build_runtime(
    config: SyncConfig,
    registry: Registry,
    *,
    once: bool,
    only: Sequence[str] = (),
    clock: Clock | None = None,
    on_status: StatusListener | None = None,
    interval: float | None = None,
) -> Runtime:
    """Build one pipeline per enabled sync (or per sync named in ``only``).

    ``interval`` overrides every sync's polling interval (seconds), for demos and tests.

    Raises:
        ConfigError: a sync names an unknown sync, or a mode or connector role that this
            version cannot run.
    """
    clock = clock or SystemClock()
    runtime = Runtime(config)
    wanted = set(only)
    check_sync_names(config, only)
    syncs = [s for s in config.syncs if (s.name in wanted if wanted else s.enabled)]
    state = await open_state(config.state.url)
    runtime.stack.push_async_callback(state.aclose)
    for sync in syncs:
        if sync.direction == "two_way":
            runtime.pipelines.append(
                _two_way(
                    config, sync, registry, state, clock, on_status, once=once, interval=interval
                )
            )
            continue
        source_conn = config.connections[sync.source]
        target_conn = config.connections[sync.target]
        source_spec = registry.get(source_conn.type)
        sink_spec = registry.get(target_conn.type)
        if source_spec.source is None:
            raise ConfigError(
                f"sync {sync.name!r}: connector {source_conn.type!r} cannot be read from",
                hint=f"connectors that can: {_with_role(registry, 'source')}",
            )
        if sink_spec.sink is None:
            raise ConfigError(
                f"sync {sync.name!r}: connector {target_conn.type!r} cannot be written to",
                hint=f"connectors that can: {_with_role(registry, 'sink')}",
            )
        entities = tuple(selection(o) for o in sync.objects)
        realtime = sync.mode == "realtime"
        request = ConnectorRequest(
            sync_name=sync.name,
            entities=entities,
            clock=clock,
            options={"mode": sync.mode},
        )
        source = source_spec.source(source_conn.config, request)
        if realtime and not source.capabilities.realtime:
            raise ConfigError(
                f"sync {sync.name!r}: connector {source_conn.type!r} cannot stream changes",
                hint="use mode: polling for this source",
            )
        # A sync without an interval (batch mode without a schedule) runs one pass even
        # under `sfsync run`; a real-time one follows its stream until stopped.
        repeat = sync.effective_interval
        every = interval if interval is not None else (repeat.total_seconds() if repeat else 0.0)
        continuous = not once and (realtime or repeat is not None or interval is not None)
        sink = sink_spec.sink(target_conn.config, request)
        options = PipelineOptions(
            name=sync.name,
            entities=tuple(e.name for e in entities),
            mode=RunMode.CONTINUOUS if continuous else RunMode.ONCE,
            interval=every,
            retry=sync.retry.to_policy(),
            ignore_deletes=frozenset(e.name for e in entities if e.deletes == "ignore"),
            max_dead_letters=sync.dead_letters.max_per_run,
            # As big as the sink takes: the Salesforce sink needs large batches to choose
            # the Bulk API; no sink gets fewer than the default per write.
            batch_size=max(DEFAULT_BATCH_SIZE, sink.capabilities.max_batch),
        )
        runtime.pipelines.append(
            Pipeline(
                options=options,
                source=source,
                sink=sink,
                checkpoints=state.checkpoints,
                dead_letters=state.dead_letters,
                clock=clock,
                on_status=on_status,
            )
        )
    return runtime


def _two_way(
    config: SyncConfig,
    sync: SyncDef,
    registry: Registry,
    state: StateStores,
    clock: Clock,
    on_status: StatusListener | None,
    *,
    once: bool,
    interval: float | None,
) -> TwoWaySync:
    """The runtime of a two-way sync: the Salesforce connection read (changes, lookups) and
    written (its sink, upserting by each object's key), the other connection read and written
    through its change capture, and the state store's shadows and review queue."""
    ends = {name: config.connections[name] for name in (sync.source, sync.target)}
    sf_name = next((n for n, c in ends.items() if c.type == "salesforce"), None)
    if sf_name is None or len(ends) != 2:
        raise ConfigError(
            f"sync {sync.name!r}: a two-way sync joins one Salesforce connection and one other",
            hint="make `source` or `target` a salesforce connection",
        )
    ext_name = sync.target if sf_name == sync.source else sync.source
    sf_conn, ext_conn = config.connections[sf_name], config.connections[ext_name]
    sf_spec, ext_spec = registry.get(sf_conn.type), registry.get(ext_conn.type)
    common = tuple(selection(o) for o in sync.objects)
    # Salesforce is read with its system fields besides the shared ones (the version stamp
    # orders its changes); only the shared fields are compared and written.
    sf_entities = tuple(
        replace(e, fields=tuple(dict.fromkeys(("Id", "SystemModstamp", *e.fields))))
        if e.fields is not None
        else e
        for e in common
    )
    options: dict[str, object] = {"mode": sync.mode, "direction": "two_way"}
    sf_request = ConnectorRequest(
        sync_name=sync.name, entities=sf_entities, clock=clock, options=options
    )
    ext_request = ConnectorRequest(
        sync_name=sync.name, entities=common, clock=clock, options=options
    )
    if sf_spec.source is None or sf_spec.sink is None or ext_spec.source is None:
        raise ConfigError(f"sync {sync.name!r}: both ends must be readable and writable")
    salesforce = sf_spec.source(sf_conn.config, sf_request)
    external = ext_spec.source(ext_conn.config, ext_request)
    if not isinstance(salesforce, SalesforceSide):
        raise ConfigError(
            f"sync {sync.name!r}: {sf_conn.type!r} cannot be one end of a two-way sync"
        )
    if not isinstance(external, ExternalSide):
        raise ConfigError(
            f"sync {sync.name!r}: connector {ext_conn.type!r} cannot be the external end of a "
            "two-way sync (it must read rows by key and write them marked as sfsync's)",
            hint="two-way syncs work with postgres, mysql, mariadb and sqlite connections",
        )
    repeat = sync.effective_interval
    every = interval if interval is not None else (repeat.total_seconds() if repeat else 30.0)
    if sync.mode == "realtime" and interval is None and repeat is None:
        every = 5.0  # how often the review queue is read while following the streams
    objects = tuple(
        TwoWayObject(
            entity=o.name,
            key=o.key,
            fields=tuple(o.fields),
            match_on=tuple(o.match_on),
            rules=o.conflicts.to_rules(),
        )
        for o in sync.objects
    )
    client_id = getattr(sf_conn.config, "client_name", None)
    return TwoWaySync(
        options=TwoWayOptions(
            name=sync.name,
            objects=objects,
            mode=RunMode.ONCE if once else RunMode.CONTINUOUS,
            interval=every,
            retry=sync.retry.to_policy(),
            client_id=client_id if isinstance(client_id, str) else None,
            origin=f"sfsync:{sync.name}",
            realtime=sync.mode == "realtime",
        ),
        salesforce=salesforce,
        salesforce_sink=sf_spec.sink(sf_conn.config, sf_request),
        external=external,
        shadows=state.shadows,
        conflicts=state.conflicts,
        checkpoints=state.checkpoints,
        dead_letters=state.dead_letters,
        clock=clock,
        on_status=on_status,
    )


def _with_role(registry: Registry, role: str) -> str:
    return ", ".join(n for n in registry.names() if role in registry.get(n).roles) or "none"


@dataclass(frozen=True)
class CheckpointView:
    """Where one sync's checkpoint lives and what it says."""

    sync: str
    location: str
    checkpoint: Checkpoint | None


async def _with_sinks(
    config: SyncConfig,
    registry: Registry,
    names: Sequence[str],
    action: Callable[[str, Sink | None, ClosableCheckpointStore], Awaitable[CheckpointView]],
) -> list[CheckpointView]:
    """Run ``action`` for each named sync (all when empty) with its opened sink, if that sink
    keeps checkpoints with its data, and the state store."""
    check_sync_names(config, names)
    clock = SystemClock()
    state = await open_state(config.state.url)
    views: list[CheckpointView] = []
    try:
        for sync in config.syncs:
            if names and sync.name not in names:
                continue
            conn = config.connections[sync.target]
            spec = registry.get(conn.type)
            sink: Sink | None = None
            if spec.sink is not None:
                request = ConnectorRequest(
                    sync_name=sync.name,
                    entities=tuple(selection(o) for o in sync.objects),
                    clock=clock,
                )
                candidate = spec.sink(conn.config, request)
                if candidate.capabilities.stores_checkpoints:
                    sink = candidate
                    await sink.open(SinkContext(sync_name=sync.name, clock=clock))
            try:
                views.append(await action(sync.name, sink, state.checkpoints))
            finally:
                if sink is not None:
                    await sink.aclose()
    finally:
        await state.aclose()
    return views


async def read_checkpoints(
    config: SyncConfig, registry: Registry, names: Sequence[str] = ()
) -> list[CheckpointView]:
    """Each sync's checkpoint, from the target when it keeps them with the data."""

    async def read(name: str, sink: Sink | None, store: ClosableCheckpointStore) -> CheckpointView:
        if sink is not None:
            return CheckpointView(name, "target database", await sink.load_checkpoint())
        return CheckpointView(name, "state store", await store.load(name))

    return await _with_sinks(config, registry, names, read)


async def reset_checkpoints(
    config: SyncConfig, registry: Registry, names: Sequence[str]
) -> list[CheckpointView]:
    """Forget the checkpoints of ``names`` everywhere they may be kept: each next run starts
    with a full snapshot (idempotent apply keeps the target's rows correct meanwhile)."""

    async def forget(
        name: str, sink: Sink | None, store: ClosableCheckpointStore
    ) -> CheckpointView:
        if sink is not None:
            await sink.forget_checkpoint()
        await store.delete(name)
        return CheckpointView(name, "target database" if sink else "state store", None)

    return await _with_sinks(config, registry, names, forget)


# Two-way conflicts: what `sfsync conflicts list|show|resolve` calls. -------------------------


async def list_conflicts(
    config: SyncConfig, *, sync: str | None, state: ReviewState | None, limit: int
) -> tuple[int, list[ParkedConflict]]:
    """How many conflicts match, and the oldest ``limit`` of them."""
    if sync is not None:
        check_sync_names(config, [sync])
    stores = await open_state(config.state.url)
    try:
        found = await stores.conflicts.list(sync, state, limit=limit)
        return await stores.conflicts.count(sync, state), found
    finally:
        await stores.aclose()


async def show_conflict(config: SyncConfig, conflict_id: int) -> ParkedConflict:
    """One conflict. Raises ConfigError when there is none with that id."""
    stores = await open_state(config.state.url)
    try:
        return await _conflict(stores.conflicts, conflict_id)
    finally:
        await stores.aclose()


async def resolve_conflict(
    config: SyncConfig,
    conflict_id: int,
    *,
    take: Side | None,
    values: Mapping[str, str],
    by: str,
    clock: Clock | None = None,
) -> ParkedConflict:
    """Record a person's resolution of an open conflict; the conflict as resolved.

    ``take`` settles the conflicting fields with that side's values; ``values`` (typed as on a
    command line, ``{"Phone": "+41 44"}``) set fields on top, and without ``take`` must cover
    every conflicting field. Nothing is written to either side here: the runtime applies
    resolved conflicts on the sync's next pass (``ConflictQueue.pending``), and only while both
    sides still hold the versions that were parked (see :mod:`sfsync.core.review`).

    Raises:
        ConfigError: no such conflict, it is already resolved, or the values do not fit.
    """
    stores = await open_state(config.state.url)
    try:
        conflict = await _conflict(stores.conflicts, conflict_id)
        if conflict.state is not ReviewState.OPEN:
            raise ConfigError(
                f"conflict {conflict_id} was already resolved by {conflict.resolved_by} "
                f"at {conflict.resolved_at:%Y-%m-%d %H:%M:%S}",
                hint=f"`sfsync conflicts show CONFIG {conflict_id}` shows the resolution",
            )
        if take is None and not values:
            raise ConfigError(
                "say how to resolve it", hint="add --take salesforce|external or --set FIELD=VALUE"
            )
        try:
            custom = custom_values(conflict, values, with_base_side=take is not None)
            base_side = take or Side.SALESFORCE
            if custom:
                resolution = Resolution.CUSTOM
            elif base_side is Side.SALESFORCE:
                resolution = Resolution.TAKE_SALESFORCE
            else:
                resolution = Resolution.TAKE_EXTERNAL
            # Refuse now, not when the runtime applies it, what cannot be applied.
            replace(conflict, custom_base=base_side).decide(resolution, custom or None)
        except ValueError as exc:
            raise ConfigError(
                str(exc), hint=f"`sfsync conflicts show CONFIG {conflict_id}` shows the record"
            ) from exc
        at = (clock or SystemClock()).now()
        done = await stores.conflicts.resolve(
            conflict_id, resolution, custom=custom, custom_base=base_side, by=by, at=at
        )
        if not done:  # resolved by someone else in the meantime
            raise ConfigError(f"conflict {conflict_id} is no longer open")
        return await _conflict(stores.conflicts, conflict_id)
    finally:
        await stores.aclose()


async def _conflict(queue: ConflictQueue, conflict_id: int) -> ParkedConflict:
    conflict = await queue.get(conflict_id)
    if conflict is None:
        raise ConfigError(
            f"there is no conflict {conflict_id}",
            hint="`sfsync conflicts list CONFIG --state all` lists them with their ids",
        )
    return conflict
