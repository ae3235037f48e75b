"""The Salesforce sink: ordered, lock-aware, duplicate-free writes into an org.

Lifecycle (see :mod:`sfsync.spi.sink`): ``open`` logs in; ``prepare(schema)`` reads the
object's describe, checks the configured key (``Id`` or an external id field) and names the
fields Salesforce would refuse (they are left out of every write); ``write(batch)`` applies a
batch and returns one outcome per event; ``flush`` has nothing to do (every call commits on
its own) and checkpoints stay in the runtime's state store (``stores_checkpoints`` is false).

How a batch is written:

1. :func:`~.writeplan.plan_batch` turns events into record writes: upserts by external id,
   inserts, updates and deletes by Id; consecutive changes of one record merge into one write,
   and a record changed, deleted and changed again within a batch is written in rounds.
2. Each round writes parents before children (:func:`~.ordering.object_order` from the
   describe metadata's reference fields), deletes children before parents. A child refers to
   a parent by the parent's external id (``Account.Ext_Id__c``), which Salesforce resolves
   when the child is written: the parent needs no Salesforce Id yet, only to be written first,
   which the order guarantees; a parent and a child of one object (a self-lookup) go in
   successive calls.
3. Per object and operation, :func:`~.routing.choose_api` picks sObject Collections or a
   Bulk API 2.0 job from the volume and the org's remaining API budget. Collections calls are
   packed by :func:`~.ordering.pack` so that rows of one parent share a call or go one after
   another in one lane, and lanes run in parallel (``concurrency``).
4. Each row's result becomes its events' outcome: APPLIED with the record's Id; RETRY for a
   transient row error (``UNABLE_TO_LOCK_ROW``) or a call that failed as a whole; REJECTED
   with Salesforce's code and message for data Salesforce refuses. Only RETRY rows come back.
   If one change of a record must be retried, the record's later changes in the batch are
   retried with it (never applied out of order).

Inserts without an external id (key ``Id``, no Id yet) cannot be made idempotent by the API:
the sink remembers the Ids it created and, before sending again an insert whose answer was
lost, looks for the record it may have created (:mod:`.inserts`, :mod:`.landed`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence, Set
from dataclasses import dataclass, replace

import anyio

from sfsync.connectors.salesforce.client import SalesforceClient
from sfsync.connectors.salesforce.collections import write_chunk
from sfsync.connectors.salesforce.config import SinkSettings
from sfsync.connectors.salesforce.ingest import Pace, run_ingest_jobs
from sfsync.connectors.salesforce.inserts import InsertLedger
from sfsync.connectors.salesforce.objectinfo import ObjectInfo
from sfsync.connectors.salesforce.ordering import object_order, pack, waves
from sfsync.connectors.salesforce.results import RowResult
from sfsync.connectors.salesforce.routing import Api, Route, choose_api
from sfsync.connectors.salesforce.soql import quote_string
from sfsync.connectors.salesforce.undelete import undelete
from sfsync.connectors.salesforce.writeplan import RowWrite, WriteKind, plan_batch
from sfsync.core.checkpoint import Checkpoint
from sfsync.core.errors import FatalError, RetryableError, SkippableError, SyncError
from sfsync.core.events import Batch
from sfsync.core.schema import EntitySchema
from sfsync.spi.clock import Clock, SystemClock
from sfsync.spi.sink import Outcome, OutcomeKind, SinkCapabilities, SinkContext

log = logging.getLogger("sfsync.salesforce.sink")

_ALREADY_GONE = frozenset({"ENTITY_IS_DELETED", "INVALID_CROSS_REFERENCE_KEY"})
_NO_PARENTS: frozenset[tuple[str, str, str]] = frozenset()


@dataclass(frozen=True, slots=True)
class RouteTaken:
    """One group's route, kept for logs, tests and the bench."""

    sobject: str
    kind: str
    rows: int
    route: Route


class SalesforceSink:
    """A :class:`~sfsync.spi.sink.Sink` writing into a Salesforce org.

    Args:
        client: an (unopened) client; the sink opens and closes it.
        keys: per object, its configured key field (``Id`` or an external id field);
            objects not listed are keyed by ``Id``.
        settings: the connection's sink section.
        clock: waits between Bulk job polls; default the system clock (``open`` takes the
            runtime's).
        bulk_poll_interval: seconds before a Bulk job's first poll (and the shortest wait
            between polls).
        bulk_job_rows: the most rows in one Bulk job; a larger group is split into jobs of
            about equal size (whole lock groups each).
        bulk_jobs_in_flight: Bulk jobs of one group open at once: while the org processes
            one, the sink uploads the next and reads the results of the one before.
    """

    def __init__(
        self,
        client: SalesforceClient,
        *,
        keys: Mapping[str, str] | None = None,
        settings: SinkSettings | None = None,
        clock: Clock | None = None,
        bulk_poll_interval: float = 0.25,
        bulk_job_rows: int | None = None,
        bulk_jobs_in_flight: int | None = None,
    ) -> None:
        self.client = client
        self.settings = settings or SinkSettings()
        self._keys = dict(keys or {})
        self._clock: Clock = clock or SystemClock()
        self._poll = bulk_poll_interval
        # The connection's `sink` settings unless given here (benchmarks try other values).
        self._job_rows = bulk_job_rows or self.settings.bulk_job_rows
        self._in_flight = bulk_jobs_in_flight or self.settings.bulk_jobs_in_flight
        self._paces: dict[tuple[str, WriteKind], Pace] = {}
        self._infos: dict[str, ObjectInfo] = {}
        self._key_fields: dict[str, str] = {}
        self._ledger = InsertLedger()
        self._warned: set[tuple[str, str]] = set()
        self.routes: list[RouteTaken] = []
        self._parent_memo: dict[int, Set[tuple[str, str, str]]] = {}
        self.capabilities = SinkCapabilities(
            deletes=True,
            partial_updates=True,
            max_batch=self.settings.max_batch,
            stores_checkpoints=False,
        )

    # --- lifecycle ----------------------------------------------------------------------------

    async def open(self, ctx: SinkContext) -> None:
        self._clock = ctx.clock
        await self.client.open()

    async def prepare(self, schema: EntitySchema) -> list[str]:
        """Check the key and the fields of ``schema.name``; notices name the fields left out."""
        info = await self._info(schema.name)
        key = self._key_fields[info.name]
        refused = [
            name
            for name in schema.fields
            if name.lower() not in (key.lower(), "id") and info.writable_name(name) is None
        ]
        for name in refused:
            self._warned.add((info.name, name))
        if not refused:
            return []
        return [
            f"{info.name}: {', '.join(refused)} cannot be written in Salesforce (read-only or "
            "unknown) and are left out of every write"
        ]

    async def flush(self, checkpoint: Checkpoint | None) -> None:
        return None  # every Salesforce call commits on its own

    async def load_checkpoint(self) -> Checkpoint | None:
        return None

    async def forget_checkpoint(self) -> None:
        return None

    async def aclose(self) -> None:
        await self.client.aclose()

    # --- metadata -----------------------------------------------------------------------------

    async def _info(self, sobject: str) -> ObjectInfo:
        info = self._infos.get(sobject)
        if info is None:
            try:
                describe = await self.client.describe(sobject)
            except SkippableError as error:  # 404: no such object for this user
                raise FatalError(
                    f"Salesforce has no object {sobject!r} visible to the integration user "
                    f"({error.message})",
                    hint="check the object name (custom objects end in __c) and the user's "
                    "permissions",
                    code=error.code,
                ) from error
            info = ObjectInfo.from_describe(describe)
            self._key_fields[sobject] = info.key_field(self._keys.get(sobject, "Id"))
            self._infos[sobject] = info
        return info

    # --- writing ------------------------------------------------------------------------------

    async def write(self, batch: Batch) -> list[Outcome]:
        """Apply ``batch``; one outcome per event, in order (see the module docstring)."""
        events = batch.events
        if not events:
            return []
        for entity in dict.fromkeys(e.entity for e in events):
            await self._info(entity)
        plan = plan_batch(events, self._infos, self._key_fields)
        self._parent_memo.clear()
        outcomes: list[Outcome | None] = [None] * len(events)
        for index, reason in plan.refused.items():
            outcomes[index] = Outcome.rejected(
                SkippableError(
                    reason, code="MISSING_ID", hint="map the Salesforce Id into the rows"
                )
            )
        for sobject, fields in plan.dropped.items():
            new = sorted(f for f in fields if (sobject, f) not in self._warned)
            if new:
                self._warned.update((sobject, f) for f in new)
                log.warning("%s: fields %s cannot be written; left out", sobject, ", ".join(new))
        blocked: dict[tuple[str, str], SyncError] = {}
        for writes in plan.rounds:
            ready: list[RowWrite] = []
            for w in writes:
                earlier = blocked.get((w.sobject, w.source_key))
                if earlier is None:
                    ready.append(w)
                    continue
                error = RetryableError(
                    f"{w.sobject} {w.source_key}: an earlier change of this record in the "
                    f"batch is retried first ({earlier})"
                )
                for i in w.indices:
                    outcomes[i] = Outcome(OutcomeKind.RETRY, error=error)
            results = await self._apply_round(ready)
            for w in ready:
                outcome = _outcome(results[id(w)])
                if outcome.kind is OutcomeKind.RETRY and outcome.error is not None:
                    blocked[(w.sobject, w.source_key)] = outcome.error
                for i in w.indices:
                    outcomes[i] = outcome
        missing = [i for i, o in enumerate(outcomes) if o is None]
        if missing:  # pragma: no cover - every event is planned, refused or blocked
            raise AssertionError(f"events {missing} got no outcome")
        return [o for o in outcomes if o is not None]

    async def _apply_round(self, writes: Sequence[RowWrite]) -> dict[int, RowResult]:
        results: dict[int, RowResult] = {}
        await self._undelete([w for w in writes if w.undelete])
        objects = object_order(
            dict.fromkeys(w.sobject for w in writes),
            {o: self._infos[o].parents for o in {w.sobject for w in writes}},
        )
        for sobject in objects:
            for kind in (WriteKind.UPSERT, WriteKind.UPDATE, WriteKind.INSERT):
                rows = [w for w in writes if w.sobject == sobject and w.kind is kind]
                for wave in self._waves(sobject, rows):
                    results.update(await self._put(sobject, kind, wave))
        for sobject in reversed(objects):
            rows = [w for w in writes if w.sobject == sobject and w.kind is WriteKind.DELETE]
            if rows:
                results.update(await self._delete(sobject, rows))
        return results

    def _parents(self, row: RowWrite) -> Set[tuple[str, str, str]]:
        """``row.parent_keys``, computed once per row and write (keyed by the values mapping,
        which copies of a row share and the plan keeps alive for the whole write)."""
        keys = self._parent_memo.get(id(row.values))
        if keys is None:
            info = self._infos[row.sobject]
            if not info.lock_plan(tuple(row.values)):
                return _NO_PARENTS  # the common case: no field set locks a parent
            keys = self._parent_memo[id(row.values)] = row.parent_keys(info)
        return keys

    def _waves(self, sobject: str, rows: list[RowWrite]) -> list[list[RowWrite]]:
        """``rows`` split so that a row whose parent (same object, by its key) is among them
        goes in a later call than that parent (:func:`~.ordering.waves`)."""
        info = self._infos[sobject]
        key = self._key_fields[sobject].lower()
        if sobject not in info.parents or len(rows) < 2:
            return [rows] if rows else []
        parents = self._parents
        if not any(t == sobject for r in rows for t, _, _ in parents(r)):
            return [rows]  # no row refers to a record of its own object: one wave
        by_key = {str(r.key): r for r in rows if r.key is not None}

        def parents_of(row: RowWrite) -> list[RowWrite]:
            return [
                by_key[value]
                for target, field, value in self._parents(row)
                if target == sobject and field in (key, "id") and value in by_key
                and by_key[value] is not row
            ]  # fmt: skip

        if not any(parents_of(r) for r in rows):
            return [rows]  # no row's parent is among them: one wave
        return waves(rows, parents_of)

    def _route(self, sobject: str, kind: WriteKind, rows: int) -> Route:
        route = choose_api(
            rows,
            bulk_capable=kind is not WriteKind.INSERT,
            usage=self.client.usage,
            bulk_threshold=self.settings.bulk_threshold,
            budget_pressure=self.settings.budget_pressure,
            collections_size=self.settings.collections_size,
        )
        self.routes.append(RouteTaken(sobject, kind.value, rows, route))
        log.debug(
            "%s %s of %d rows over %s: %s", sobject, kind.value, rows, route.api.value, route.reason
        )
        return route

    async def _put(
        self, sobject: str, kind: WriteKind, rows: list[RowWrite]
    ) -> dict[int, RowResult]:
        if not rows:
            return {}
        results: dict[int, RowResult] = {}
        if kind is WriteKind.INSERT:
            rows, known = await self._ledger.settle(
                self.client, sobject, rows, marker=self._marker(sobject)
            )
            if known:
                updates = await self._put(sobject, WriteKind.UPDATE, [u for _, u in known])
                for original, update in known:
                    results[id(original)] = updates[id(update)]
            if not rows:
                return results
        route = self._route(sobject, kind, len(rows))
        if route.api is Api.BULK:
            results.update(await self._bulk(rows))
            return results
        results.update(await self._collections(sobject, rows))
        return results

    async def _bulk(self, rows: list[RowWrite]) -> dict[int, RowResult]:
        """``rows`` (one object, one kind) as Bulk jobs (:func:`~.ingest.run_ingest_jobs`)."""
        answers = await self._ingest(rows, self._parents)
        return {id(r): a for r, a in zip(rows, answers, strict=True)}

    async def _ingest(
        self, rows: list[RowWrite], parents: Callable[[RowWrite], Set[tuple[str, str, str]]]
    ) -> list[RowResult]:
        return await run_ingest_jobs(
            self.client,
            rows,
            parents=parents,
            clock=self._clock,
            job_rows=self._job_rows,
            in_flight=self._in_flight,
            poll_interval=self._poll,
            pace=self._paces.setdefault((rows[0].sobject, rows[0].kind), Pace()),
        )

    async def _collections(self, sobject: str, rows: list[RowWrite]) -> dict[int, RowResult]:
        info = self._infos[sobject]
        lookups = info.lookup_fields()
        lanes = pack(
            rows,
            self._parents,
            size=self.settings.collections_size,
            lanes=self.settings.concurrency,
        )
        results: dict[int, RowResult] = {}
        marker = self._marker(sobject)

        async def write_calls(calls: list[tuple[RowWrite, ...]]) -> None:
            for call in calls:
                extra = None
                if marker is not None and call[0].kind is WriteKind.INSERT:
                    extra = {i: {marker: r.source_key} for i, r in enumerate(call)}
                started = self._clock.now()
                answers = await write_chunk(self.client, call, lookups, extra=extra)
                for row, answer in zip(call, answers, strict=True):
                    results[id(row)] = answer
                    self._ledger.remember(row, answer, started)

        await _in_lanes([[c.items for c in lane] for lane in lanes], write_calls)
        return results

    def _marker(self, sobject: str) -> str | None:
        for name, field in self.settings.insert_markers.items():
            if name.lower() == sobject.lower():
                return field
        return None

    async def _undelete(self, rows: list[RowWrite]) -> None:
        by_object: dict[str, list[RowWrite]] = {}
        for row in rows:
            by_object.setdefault(row.sobject, []).append(row)
        for sobject, items in by_object.items():
            key = self._key_fields[sobject]
            if key == "Id":
                ids = [str(r.key) for r in items if r.key]
            else:
                found = await self._ids_by_key(sobject, key, items, deleted=True)
                ids = [i for i in found.values() if i]  # "" = several deleted records: ambiguous
            if ids:
                try:
                    await undelete(self.client, ids)
                except SkippableError as error:
                    # The writes that follow report each record's fate; note why here.
                    log.warning("%s: undelete of %d records failed: %s", sobject, len(ids), error)

    async def _ids_by_key(
        self, sobject: str, key: str, rows: Sequence[RowWrite], *, deleted: bool = False
    ) -> dict[str, str]:
        """External id value -> record Id for ``rows`` (live records, or recycle-bin ones)."""
        found: dict[str, str] = {}
        values = [str(r.key) for r in rows]
        for start in range(0, len(values), 100):
            part = ", ".join(quote_string(v) for v in values[start : start + 100])
            where = f"{key} IN ({part})" + (" AND IsDeleted = true" if deleted else "")
            records = await self.client.query(
                f"SELECT Id, {key} FROM {sobject} WHERE {where}", include_deleted=deleted
            )
            for record in records:
                value = str(record.get(key))
                if value in found and found[value] != record["Id"]:
                    found[value] = ""  # several records hold this value
                else:
                    found.setdefault(value, str(record["Id"]))
        return found

    async def _delete(self, sobject: str, rows: list[RowWrite]) -> dict[int, RowResult]:
        results: dict[int, RowResult] = {}
        key = self._key_fields[sobject]
        by_id: list[RowWrite] = []
        if key == "Id":
            by_id = rows
        else:
            ids = await self._ids_by_key(sobject, key, rows)
            for row in rows:
                record_id = ids.get(str(row.key))
                if record_id is None:
                    results[id(row)] = RowResult()  # nothing holds this key: already gone
                elif record_id == "":
                    results[id(row)] = RowResult(
                        error=SkippableError(
                            f"delete {sobject} {key}={row.key}: several records hold this value",
                            code="DUPLICATE_EXTERNAL_ID",
                            hint=f"make {sobject}.{key} unique in Salesforce",
                        )
                    )
                else:
                    by_id.append(replace(row, key_field="Id", key=record_id))
        if not by_id:
            return results
        originals = {
            id(new): old
            for new, old in zip(by_id, [r for r in rows if id(r) not in results], strict=True)
        }
        route = self._route(sobject, WriteKind.DELETE, len(by_id))
        if route.api is Api.BULK:
            answers = await self._ingest(by_id, lambda _: _NO_PARENTS)
            done = dict(zip((id(r) for r in by_id), answers, strict=True))
        else:
            done = await self._collections(sobject, by_id)
        for row in by_id:
            answer = done[id(row)]
            if answer.error is not None and answer.error.code in _ALREADY_GONE:
                answer = RowResult(record_id=row.key)  # deleting twice is the same as once
            results[id(originals[id(row)])] = answer
        return results


async def _in_lanes(
    lanes: list[list[tuple[RowWrite, ...]]],
    run_lane: Callable[[list[tuple[RowWrite, ...]]], Awaitable[None]],
) -> None:
    """Run ``run_lane`` for every lane at once; a :class:`SyncError` raised in one lane (a fatal
    one: row failures are results) stops the others and is raised alone, not in a group."""
    failures: list[SyncError] = []

    async def guarded(calls: list[tuple[RowWrite, ...]], scope: anyio.CancelScope) -> None:
        try:
            await run_lane(calls)
        except SyncError as error:
            failures.append(error)
            scope.cancel()

    async with anyio.create_task_group() as group:
        for lane in lanes:
            group.start_soon(guarded, lane, group.cancel_scope)
    if failures:
        raise failures[0]


def _outcome(result: RowResult) -> Outcome:
    if result.error is None:
        return Outcome(OutcomeKind.APPLIED, None, result.record_id)
    if isinstance(result.error, RetryableError):
        return Outcome(OutcomeKind.RETRY, error=result.error)
    return Outcome.rejected(result.error)
