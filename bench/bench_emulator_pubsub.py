"""Pub/Sub API (gRPC) delivery latency and throughput of the emulator, against a trivial floor.

A server process holds N bulk-loaded Account rows in the emulator's real ``OrgStore`` and serves
the real app over real sockets (``serve_in_background(org, port=0, grpc_port=0)``: uvicorn for
REST, ``grpc.aio`` for ``eventbus.v1.PubSub``). Clients live in other processes, so client and
server never share a GIL. Phases, in one run:

1. **Latency.** A writer process updates Accounts over REST (``Sforce-Call-Options:
   client=bench``) at a steady ``--rate`` changes/s for ``--seconds``, through the write path
   integrations use for volume: sObject Collections ``PATCH /composite/sobjects`` of
   ``--per-call`` records (default 100, so 10 calls/s at 1,000 changes/s; each change one
   record with its own ``Description``; ``--per-call 1`` uses the single-record PATCH), each
   call sent at its slot on a monotonic schedule (``--writers`` keep-alive connections take the
   next slot, so a slow response does not shift the schedule). This process subscribes to
   ``/data/AccountChangeEvent`` with the generated stub (flow control: ``num_requested`` topped
   up by what each response delivered, so 100 credits stay outstanding), decodes every event with
   the served Avro schema and matches it to its change by the sequence number written into
   ``Description``. Latency, per change:
   * ``commitTimestamp -> receive``: the event's ``commitTimestamp`` (store commit, server's wall
     clock, ms) against ``time.time()`` read in this process at receive (same host clock;
     ms truncation adds 0-1 ms);
   * ``call returned -> receive``: when the writer read the answer (``time.monotonic``,
     CLOCK_MONOTONIC is system-wide) to receive (a lower bound: the commit happened before);
   * ``call sent -> receive``: from the request being sent (an upper bound).
   Loss, duplicates and merged events are counted (events must equal changes). The REST write
   path of the emulator may not sustain ``--rate`` on this machine; the achieved rate and the
   slots left unsent when the window closes are printed.
1b. **Latency at the full rate without REST.** The server process commits one update per
   transaction through the store at ``--rate`` on a monotonic schedule for ``--seconds``;
   same subscriber and figures (commit return -> receive uses the server's monotonic clock).
2. **Throughput.** The server process commits ``--changes`` updates through the store in
   process, ``--batch`` per transaction (as bulk/composite commits do), as fast as it can, while
   this process receives and decodes: events/s at the subscriber, commits/s, and the time from
   the last commit to the last event. Then the same events are **replayed** (CUSTOM replay id,
   no concurrent commits): delivery alone.
3. **Floor**, same run, same machine: the same number of events, rendered once by the
   emulator's servicer into pre-encoded ``ConsumerEvent`` messages, pushed by a trivial
   ``grpc.aio`` server-streaming ``Subscribe`` (same credits, same client, same decoding).
   Also measured in the server process without gRPC: reading the bus and rendering each event
   (Avro encode + protobuf) the way the servicer does.
4. Server RSS (VmRSS, and VmHWM) after load and after each phase. The bus keeps every event
   72 hours (Salesforce's retention), so growth per retained event is printed.

Load average at start and end (the machine has 2 cores and is shared).

    .venv/bin/python bench/bench_emulator_pubsub.py [--records 1000000] [--seconds 60]
        [--rate 1000] [--writers 4] [--per-call 100] [--changes 100000] [--batch 200]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import itertools
import json
import multiprocessing
import multiprocessing.connection
import os
import queue
import sys
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import fastavro
import grpc
import httpx

from benchlib import realistic_rows, rss
from sfsync.emulator.streaming.proto import pubsub_api_pb2 as pb
from sfsync.emulator.streaming.proto import pubsub_api_pb2_grpc as pb_grpc

TOKEN = "bench-fixed-access-token"
VERSION = "59.0"
TOPIC = "/data/AccountChangeEvent"
CREDITS = 100  # the emulator's (and Salesforce's) maximum outstanding num_requested


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


# ================================================================================ server process


class _FloorServicer(pb_grpc.PubSubServicer):
    """The floor: ``Subscribe`` streams pre-encoded events, honouring outstanding (at most 100)."""

    def __init__(self, events: list[pb.ConsumerEvent]) -> None:
        self.events = events

    async def Subscribe(  # noqa: N802
        self, request_iterator: AsyncIterator[pb.FetchRequest], context: Any
    ) -> AsyncIterator[pb.FetchResponse]:
        outstanding = 0
        wake = asyncio.Event()

        async def read() -> None:
            nonlocal outstanding
            async for request in request_iterator:
                outstanding = min(CREDITS, outstanding + request.num_requested)
                wake.set()

        reader = asyncio.create_task(read())
        sent = 0
        try:
            while sent < len(self.events):
                if outstanding <= 0:
                    await wake.wait()
                    wake.clear()
                    continue
                take = min(outstanding, len(self.events) - sent)
                batch = self.events[sent : sent + take]
                sent += take
                outstanding -= take
                yield pb.FetchResponse(
                    events=batch,
                    latest_replay_id=batch[-1].replay_id,
                    pending_num_requested=outstanding,
                )
        finally:
            reader.cancel()


_FLOOR_SERVERS: list[grpc.aio.Server] = []


def _start_floor(events: list[pb.ConsumerEvent]) -> int:
    """Serve :class:`_FloorServicer` on its own thread and loop (as ``start_grpc`` does)."""
    loop = asyncio.new_event_loop()
    bound: queue.Queue[int] = queue.Queue()

    async def boot() -> None:
        server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
        _FLOOR_SERVERS.append(server)  # an unreferenced grpc.aio server is stopped
        pb_grpc.add_PubSubServicer_to_server(_FloorServicer(events), server)  # type: ignore[no-untyped-call]
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        bound.put(port)

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(boot())
        loop.run_forever()

    threading.Thread(target=run, name="floor-grpc", daemon=True).start()
    return bound.get(timeout=30)


def _server(records: int, conn: multiprocessing.connection.Connection) -> None:
    """The server process: load, serve REST + gRPC, then obey commands from the pipe."""
    from sfsync.emulator.org import Org
    from sfsync.emulator.server import serve_in_background, tune_for_serving
    from sfsync.emulator.streaming.pubsub import PubSubServicer
    from sfsync.emulator.streaming.service import attach

    org = Org.create(access_token=TOKEN, daily_api_limit=10**9)
    hub = attach(org)  # before any write, as the server does
    started = time.perf_counter()
    ids = org.store.bulk_insert("Account", realistic_rows(records))
    load_seconds = time.perf_counter() - started
    tune_for_serving()  # as `sfsync emulator serve` does
    with serve_in_background(org, port=0, grpc_port=0) as running:
        conn.send(
            {
                "url": running.url,
                "grpc_port": running.grpc_port,
                "org_id": org.org_id,
                "load_seconds": load_seconds,
                "ids": ids,
            }
        )
        while True:
            command, arg = conn.recv()
            if command == "stop":
                break
            if command == "bus":
                conn.send(hub.bus.retained(TOPIC))
            elif command == "commit":
                first, count, batch = arg
                begin = time.monotonic()
                done = 0
                while done < count:
                    with org.store.transaction():
                        for seq in range(done, min(count, done + batch)):
                            rid = ids[(first + seq) % len(ids)]
                            org.store.update("Account", rid, {"Description": f"bench T {seq}"})
                    done = min(count, done + batch)
                conn.send((begin, time.monotonic()))
            elif command == "paced":
                # One change per commit at a steady rate on a monotonic schedule.
                first, count, rate = arg
                start_at = time.monotonic() + 0.5
                paced: list[tuple[int, float, float]] = []  # seq, due, committed (monotonic)
                for seq in range(count):
                    due = start_at + seq / rate
                    delay = due - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    rid = ids[(first + seq) % len(ids)]
                    org.store.update("Account", rid, {"Description": f"bench P {seq}"})
                    paced.append((seq, due, time.monotonic()))
                conn.send(paced)
            elif command == "render":
                # The servicer's own work without gRPC: bus reads of <=100 + render each event.
                cursor, count = arg
                servicer = PubSubServicer(hub)
                rendered: list[pb.ConsumerEvent] = []
                begin = time.perf_counter()
                while len(rendered) < count:
                    events = hub.bus.events_after(cursor, TOPIC, limit=CREDITS)
                    if not events:
                        break
                    batch_out = servicer._batch(events)
                    cursor = batch_out[-1][0].replay_id
                    rendered.extend(r for _, r in batch_out if r is not None)
                seconds = time.perf_counter() - begin
                port = _start_floor(rendered)
                conn.send((len(rendered), seconds, port))


# ================================================================================ subscriber


class Subscriber:
    """One ``Subscribe`` stream read on a thread: every event decoded and timestamped."""

    def __init__(
        self,
        target: str,
        metadata: tuple[tuple[str, str], ...],
        parsed_schema: Any,
        first: pb.FetchRequest,
    ) -> None:
        self.channel = grpc.insecure_channel(target)
        stub = pb_grpc.PubSubStub(self.channel)  # type: ignore[no-untyped-call]
        self.parsed = parsed_schema
        self.requests: queue.Queue[pb.FetchRequest | None] = queue.Queue()
        self.requests.put(first)
        # (kind, seq, record ids, commitTimestamp ms, receive monotonic, receive wall, replay id)
        self.received: list[tuple[str, int, int, int, float, float, bytes]] = []
        self.responses = 0
        self.error: BaseException | None = None
        self.started = time.monotonic()
        self.stream = stub.Subscribe(iter(self.requests.get, None), metadata=metadata)
        self.thread = threading.Thread(target=self._run, name="subscriber", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        parsed = self.parsed
        received = self.received
        try:
            for response in self.stream:
                mono = time.monotonic()
                wall = time.time()
                if not response.events:
                    continue
                self.responses += 1
                # Top up first: credits stay at 100 while this response is decoded.
                self.requests.put(pb.FetchRequest(num_requested=len(response.events)))
                for consumer in response.events:
                    record = fastavro.schemaless_reader(
                        io.BytesIO(consumer.event.payload), parsed, parsed
                    )
                    assert isinstance(record, dict)
                    header = record["ChangeEventHeader"]
                    _, kind, seq = str(record["Description"]).split(" ")
                    received.append(
                        (
                            kind,
                            int(seq),
                            len(header["recordIds"]),
                            header["commitTimestamp"],
                            mono,
                            wall,
                            consumer.replay_id,
                        )
                    )
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.CANCELLED:
                self.error = exc
        except BaseException as exc:  # reported by the caller
            self.error = exc

    def wait_for(self, count: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while len(self.received) < count:
            if self.error is not None:
                raise RuntimeError("subscriber failed") from self.error
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    def close(self) -> None:
        self.requests.put(None)
        self.stream.cancel()
        self.thread.join(timeout=10)
        self.channel.close()


# ================================================================================ writer process


def _writer(
    base: str,
    ids: list[str],
    rate: float,
    total: int,
    writers: int,
    per_call: int,
    start_at: float,
    conn: multiprocessing.connection.Connection,
) -> None:
    """Update ``total`` Accounts over REST on a monotonic schedule, ``per_call`` records per
    sObject Collections ``PATCH /composite/sobjects`` (one record per change; ``per_call`` 1
    uses the single-record ``PATCH /sobjects/Account/{id}``); reports per-change times."""
    headers = {
        "Authorization": f"Bearer {TOKEN}",
        "Sforce-Call-Options": "client=bench",
        "Content-Type": "application/json",
    }
    calls = (total + per_call - 1) // per_call
    call_rate = rate / per_call
    counter = itertools.count()
    stop_at = start_at + calls / call_rate + 1.0
    results: list[tuple[int, float, float, float, int]] = []  # seq, due, sent, returned, status

    def work() -> None:
        local: list[tuple[int, float, float, float, int]] = []
        with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
            while (call := next(counter)) < calls:
                due = start_at + call / call_rate
                if time.monotonic() > stop_at:
                    break  # the server did not keep up: the slots left are reported as unsent
                delay = due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                seqs = range(call * per_call, min(total, (call + 1) * per_call))
                sent = time.monotonic()
                if per_call == 1:
                    seq = seqs[0]
                    response = client.patch(
                        f"/services/data/v{VERSION}/sobjects/Account/{ids[seq % len(ids)]}",
                        content=b'{"Description":"bench L %d"}' % seq,
                    )
                    statuses = [204 if response.status_code == 204 else response.status_code]
                else:
                    body = {
                        "allOrNone": False,
                        "records": [
                            {
                                "attributes": {"type": "Account"},
                                "id": ids[seq % len(ids)],
                                "Description": f"bench L {seq}",
                            }
                            for seq in seqs
                        ],
                    }
                    response = client.patch(
                        f"/services/data/v{VERSION}/composite/sobjects", content=json.dumps(body)
                    )
                    if response.status_code == 200:
                        statuses = [204 if r["success"] else 400 for r in response.json()]
                    else:
                        statuses = [response.status_code] * len(seqs)
                returned = time.monotonic()
                local.extend(
                    (seq, due, sent, returned, status)
                    for seq, status in zip(seqs, statuses, strict=True)
                )
        results.extend(local)

    threads = [threading.Thread(target=work) for _ in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    conn.send(sorted(results))


# ================================================================================ reporting


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _dist(name: str, values: list[float]) -> str:
    return (
        f"  {name:28s} p50 {_pct(values, 0.50):8.2f}  p90 {_pct(values, 0.90):8.2f}  "
        f"p99 {_pct(values, 0.99):8.2f}  max {max(values):8.2f}  ms"
    )


def _integrity(received: list[tuple[Any, ...]], kind: str, expected: set[int]) -> str:
    seqs = Counter(r[1] for r in received if r[0] == kind)
    dups = sum(c - 1 for c in seqs.values() if c > 1)
    lost = len(expected - seqs.keys())
    extra = len(seqs.keys() - expected)
    merged = sum(1 for r in received if r[0] == kind and r[2] != 1)
    events = sum(seqs.values())
    return (
        f"events {events:,} for {len(expected):,} changes: lost {lost}, duplicated {dups}, "
        f"unexpected {extra}, events with != 1 record id {merged}"
    )


def _sentinel(sub: Subscriber, poke: Any, label: str) -> bytes:
    """Make one change and wait for its event: the stream is then live (LATEST is set).

    The subscription's LATEST is fixed when the server reads its first request, which may come
    after a change made at once: the change is made again each second until one arrives."""
    deadline = time.monotonic() + 30
    while True:
        poke()
        if sub.wait_for(1, 1.0):
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"no sentinel event for {label}")
    first = sub.received.pop(0)
    assert first[0] == "S", first
    return first[6]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=60.0, help="latency phase length")
    parser.add_argument("--rate", type=float, default=1000.0, help="latency phase changes/s")
    parser.add_argument("--writers", type=int, default=4, help="REST connections of the writer")
    parser.add_argument(
        "--per-call",
        type=int,
        default=100,
        help="records per sObject Collections PATCH in the latency phase (1: single PATCH)",
    )
    parser.add_argument("--changes", type=int, default=100_000, help="throughput phase changes")
    parser.add_argument("--batch", type=int, default=200, help="changes per transaction")
    args = parser.parse_args()

    print(
        "command: .venv/bin/python bench/bench_emulator_pubsub.py "
        f"--records {args.records} --seconds {args.seconds:g} --rate {args.rate:g} "
        f"--writers {args.writers} --per-call {args.per_call} --changes {args.changes} "
        f"--batch {args.batch}"
    )
    print(f"python {sys.version.split()[0]}, grpcio {grpc.__version__}, cpus {os.cpu_count()}")
    print(f"load average at start: {_load()}")

    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    server = ctx.Process(target=_server, args=(args.records, child), daemon=True)
    server.start()
    info = parent.recv()
    ids: list[str] = info["ids"]
    pid = server.pid or 0
    target = f"127.0.0.1:{info['grpc_port']}"
    metadata = (("accesstoken", TOKEN), ("instanceurl", info["url"]), ("tenantid", info["org_id"]))
    print(f"records: {args.records:,} Accounts (bulk_insert {info['load_seconds']:.1f} s)")
    memory: list[tuple[str, dict[str, int]]] = [("after load, serving", rss(pid))]
    http = httpx.Client(
        base_url=info["url"],
        headers={"Authorization": f"Bearer {TOKEN}", "Sforce-Call-Options": "client=bench"},
        timeout=60,
    )
    sentinel_count = itertools.count()

    def poke() -> None:
        n = next(sentinel_count)
        answer = http.patch(
            f"/services/data/v{VERSION}/sobjects/Account/{ids[-1 - n % len(ids)]}",
            json={"Description": f"bench S {n}"},
        )
        assert answer.status_code == 204, answer.text

    try:
        with grpc.insecure_channel(target) as channel:
            stub = pb_grpc.PubSubStub(channel)  # type: ignore[no-untyped-call]
            topic = stub.GetTopic(pb.TopicRequest(topic_name=TOPIC), metadata=metadata)
            served = stub.GetSchema(pb.SchemaRequest(schema_id=topic.schema_id), metadata=metadata)
        parsed = fastavro.parse_schema(json.loads(served.schema_json))
        latest = pb.FetchRequest(topic_name=TOPIC, replay_preset=pb.LATEST, num_requested=CREDITS)

        # ------------------------------------------------------------------ 1. latency
        total = int(args.rate * args.seconds)
        sub = Subscriber(target, metadata, parsed, latest)
        _sentinel(sub, poke, "latency")
        wparent, wchild = ctx.Pipe()
        start_at = time.monotonic() + 1.0
        writer = ctx.Process(
            target=_writer,
            args=(
                info["url"],
                ids[:total],
                args.rate,
                total,
                args.writers,
                args.per_call,
                start_at,
                wchild,
            ),
        )
        writer.start()
        writes: list[tuple[int, float, float, float, int]] = wparent.recv()
        writer.join()
        ok = {w[0]: w for w in writes if w[4] == 204}
        sub.wait_for(len(ok), 30)
        time.sleep(0.5)  # let duplicates, if any, arrive
        sub.close()
        memory.append(("after latency phase", rss(pid)))
        received = [r for r in sub.received if r[0] == "L"]
        by_seq = {r[1]: r for r in received}
        commit_ms = [r[5] * 1000 - r[3] for r in received]
        ret_ms = [(by_seq[s][4] - w[3]) * 1000 for s, w in ok.items() if s in by_seq]
        send_ms = [(by_seq[s][4] - w[2]) * 1000 for s, w in ok.items() if s in by_seq]
        lag_ms = [(w[2] - w[1]) * 1000 for w in writes]
        rest_ms = [(w[3] - w[2]) * 1000 for w in writes[:: max(1, args.per_call)]]
        span = max(w[3] for w in writes) - start_at
        print()
        how = (
            "single-record PATCH"
            if args.per_call == 1
            else f"sObject Collections PATCH of {args.per_call} records "
            f"({args.rate / args.per_call:g} calls/s)"
        )
        print(
            f"1. latency: {total:,} changes over REST, {how}, at {args.rate:g} changes/s for "
            f"{args.seconds:g} s, {args.writers} connections; subscriber on {TOPIC} "
            f"({sub.responses:,} responses)"
        )
        print(
            f"  achieved {len(ok) / span:,.0f} changes/s ({len(ok):,} records saved, "
            f"{len(writes) - len(ok)} other statuses, {total - len(writes):,} slots unsent "
            f"when the window closed, last 204 at {span:.2f} s)"
        )
        print("  " + _integrity(sub.received, "L", set(ok)))
        if received:
            print(_dist("commitTimestamp -> receive", commit_ms))
            print(_dist("call returned -> receive", ret_ms))
            print(_dist("call sent -> receive", send_ms))
        print(_dist("REST call round trip", rest_ms))
        print(_dist("send lag behind schedule", lag_ms))

        # ------------------------------------------------------------------ 1b. latency, store
        sub = Subscriber(target, metadata, parsed, latest)
        _sentinel(sub, poke, "paced latency")
        parent.send(("paced", (total, total, args.rate)))
        paced: list[tuple[int, float, float]] = parent.recv()
        sub.wait_for(len(paced), 60)
        time.sleep(0.5)
        sub.close()
        memory.append(("after store-paced phase", rss(pid)))
        received = [r for r in sub.received if r[0] == "P"]
        by_seq = {r[1]: r for r in received}
        span = paced[-1][2] - paced[0][1]
        print()
        print(
            f"1b. latency: {total:,} updates committed through the store in the server process "
            f"(one per transaction, no REST) at {args.rate:g}/s ({sub.responses:,} responses)"
        )
        print(f"  achieved {len(paced) / span:,.0f} changes/s ({span:.2f} s)")
        print("  " + _integrity(sub.received, "P", {p[0] for p in paced}))
        if received:
            print(_dist("commitTimestamp -> receive", [r[5] * 1000 - r[3] for r in received]))
            commit_ret = [(by_seq[q][4] - c) * 1000 for q, _, c in paced if q in by_seq]
            print(_dist("commit returned -> receive", commit_ret))
            print(_dist("scheduled -> receive", [(by_seq[q][4] - d) * 1000 for q, d, _ in paced]))
        print(_dist("commit lag behind schedule", [(c - d) * 1000 for _, d, c in paced]))

        # ------------------------------------------------------------------ 2. throughput
        sub = Subscriber(target, metadata, parsed, latest)
        before_replay = _sentinel(sub, poke, "throughput")
        parent.send(("commit", (2 * total, args.changes, args.batch)))
        commit_begin, commit_end = parent.recv()
        sub.wait_for(args.changes, 600)
        time.sleep(0.5)
        sub.close()
        memory.append(("after throughput phase", rss(pid)))
        got = [r for r in sub.received if r[0] == "T"]
        last_recv = max(r[4] for r in got)
        first_recv = min(r[4] for r in got)
        print()
        print(
            f"2. throughput: {args.changes:,} updates committed in process, "
            f"{args.batch} per transaction ({sub.responses:,} responses)"
        )
        print("  " + _integrity(sub.received, "T", set(range(args.changes))))
        print(
            f"  commits: {args.changes / (commit_end - commit_begin):,.0f} changes/s "
            f"({commit_end - commit_begin:.2f} s)"
        )
        live_rate = len(got) / (last_recv - commit_begin)
        print(
            f"  live delivery: {live_rate:,.0f} events/s at the subscriber "
            f"(first commit -> last event {last_recv - commit_begin:.2f} s; "
            f"first -> last event {last_recv - first_recv:.2f} s)"
        )
        print(f"  last commit -> last event: {(last_recv - commit_end) * 1000:,.0f} ms")

        replay_first = pb.FetchRequest(
            topic_name=TOPIC,
            replay_preset=pb.CUSTOM,
            replay_id=before_replay,
            num_requested=CREDITS,
        )
        sub = Subscriber(target, metadata, parsed, replay_first)
        sub.wait_for(args.changes, 600)
        replay_seconds = max(r[4] for r in sub.received) - sub.started
        sub.close()
        replay_rate = args.changes / replay_seconds
        print(
            f"  replay of the same events (no commits running): {replay_rate:,.0f} events/s "
            f"({replay_seconds:.2f} s)  " + _integrity(sub.received, "T", set(range(args.changes)))
        )
        memory.append(("after replay", rss(pid)))

        # ------------------------------------------------------------------ 3. floor
        cursor = int.from_bytes(before_replay, "big")
        parent.send(("render", (cursor, args.changes)))
        rendered, render_seconds, floor_port = parent.recv()
        sub = Subscriber(
            f"127.0.0.1:{floor_port}",
            metadata,
            parsed,
            pb.FetchRequest(topic_name=TOPIC, num_requested=CREDITS),
        )
        sub.wait_for(rendered, 600)
        floor_seconds = max(r[4] for r in sub.received) - sub.started
        sub.close()
        floor_rate = rendered / floor_seconds
        print()
        print(f"3. floor (same {rendered:,} events)")
        print(
            f"  in process, no gRPC: bus read + render (Avro + protobuf) "
            f"{rendered / render_seconds:,.0f} events/s ({render_seconds * 1e6 / rendered:.1f} "
            f"us/event, wall time on an otherwise idle server)"
        )
        print(
            f"  trivial gRPC stream of pre-encoded events, same client: {floor_rate:,.0f} events/s "
            f"({floor_seconds:.2f} s)  " + _integrity(sub.received, "T", set(range(args.changes)))
        )
        print(
            f"  ratios: replay / floor {replay_rate / floor_rate:.2f}, "
            f"live / floor {live_rate / floor_rate:.2f}"
        )

        # ------------------------------------------------------------------ 4. memory
        parent.send(("bus", None))
        retained = parent.recv()
        print()
        print(f"4. server memory (bus retains {retained:,} events on {TOPIC}, 72 h)")
        for label, mem in memory:
            print(f"  {label:24s} RSS {mem['VmRSS']:6,} MiB   peak {mem['VmHWM']:6,} MiB")
        grown = memory[-1][1]["VmRSS"] - memory[0][1]["VmRSS"]
        print(
            f"  growth load -> after replay: {grown:+,} MiB "
            f"= {grown * 1024 * 1024 / max(1, retained):,.0f} B per retained event"
        )
        print(f"\nload average at end: {_load()}")
        parent.send(("stop", None))
    finally:
        http.close()
        server.join(timeout=15)
        if server.is_alive():
            server.kill()
            server.join()


if __name__ == "__main__":
    main()
