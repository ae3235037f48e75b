"""The Pub/Sub API over a real gRPC port, with the generated client stub (as third-party
clients use it), against the real org and store."""

from __future__ import annotations

import io
import json
import queue
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fastavro
import grpc
import httpx
import pytest
from _streaming_support import TOKEN, V, decode_bitmap, make_org

from sfsync.emulator.server import RunningServer, serve_in_background
from sfsync.emulator.streaming.avro import EventSchema
from sfsync.emulator.streaming.proto import pubsub_api_pb2 as pb
from sfsync.emulator.streaming.proto import pubsub_api_pb2_grpc as pb_grpc

Metadata = tuple[tuple[str, str], ...]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    org = make_org(tmp_path)
    try:
        with serve_in_background(org, grpc_port=0) as running:
            yield running
    finally:
        org.close()


@pytest.fixture
def http(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
    ) as client:
        yield client


@pytest.fixture
def stub(server: RunningServer) -> Iterator[pb_grpc.PubSubStub]:
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        yield pb_grpc.PubSubStub(channel)  # type: ignore[no-untyped-call]


@pytest.fixture
def metadata(server: RunningServer) -> Metadata:
    return (
        ("accesstoken", TOKEN),
        ("instanceurl", server.url),
        ("tenantid", server.org.org_id),
    )


class Fetcher:
    """A Subscribe stream driven by a queue of FetchRequests (closed with ``None``)."""

    def __init__(self, stub: pb_grpc.PubSubStub, metadata: Metadata, first: pb.FetchRequest):
        self.requests: queue.Queue[pb.FetchRequest | None] = queue.Queue()
        self.requests.put(first)
        self.stream = stub.Subscribe(self._iterate(), metadata=metadata)

    def _iterate(self) -> Iterator[pb.FetchRequest]:
        while (item := self.requests.get()) is not None:
            yield item

    def next(self) -> pb.FetchResponse:
        response: pb.FetchResponse = next(self.stream)
        return response

    def close(self) -> None:
        self.requests.put(None)
        self.stream.cancel()


def error_code(error: grpc.RpcError) -> str:
    trailers = dict(error.trailing_metadata() or ())
    return str(trailers.get("error-code"))


def schema_of(stub: pb_grpc.PubSubStub, metadata: Metadata, schema_id: str) -> dict[str, Any]:
    info = stub.GetSchema(pb.SchemaRequest(schema_id=schema_id), metadata=metadata)
    assert info.schema_id == schema_id
    parsed: dict[str, Any] = json.loads(info.schema_json)
    return parsed


def decode(schema: dict[str, Any], payload: bytes) -> dict[str, Any]:
    parsed = fastavro.parse_schema(schema)
    record: dict[str, Any] = fastavro.schemaless_reader(io.BytesIO(payload), parsed, parsed)  # type: ignore[assignment]
    return record


def test_change_events_decode_with_the_served_schema_and_bitmaps(
    http: httpx.Client, stub: pb_grpc.PubSubStub, metadata: Metadata
) -> None:
    topic = stub.GetTopic(pb.TopicRequest(topic_name="/data/ContactChangeEvent"), metadata=metadata)
    assert topic.can_subscribe is True
    assert topic.can_publish is False
    rid = http.post(
        f"{V}/sobjects/Contact/", json={"FirstName": "Ada", "LastName": "King", "Title": "X"}
    ).json()["id"]
    http.patch(
        f"{V}/sobjects/Contact/{rid}",
        json={"FirstName": None, "Title": "Countess", "MailingCity": "London"},
        headers={"Sforce-Call-Options": "client=sync-7"},
    )
    fetch = Fetcher(
        stub,
        metadata,
        pb.FetchRequest(
            topic_name="/data/ContactChangeEvent", replay_preset=pb.EARLIEST, num_requested=5
        ),
    )
    try:
        response = fetch.next()
    finally:
        fetch.close()
    assert len(response.events) == 2
    create, update = response.events
    assert update.event.schema_id == topic.schema_id
    schema = schema_of(stub, metadata, topic.schema_id)
    assert schema["name"] == "ContactChangeEvent"
    assert schema["namespace"] == "com.sforce.eventbus"
    assert schema["uuid"] == topic.schema_id
    assert schema["fields"][0]["name"] == "ChangeEventHeader"
    created = decode(schema, create.event.payload)
    assert created["Name"]["FirstName"] == "Ada"
    assert created["Title"] == "X"
    assert isinstance(created["CreatedDate"], int)
    record = decode(schema, update.event.payload)
    header = record["ChangeEventHeader"]
    assert header["changeType"] == "UPDATE"
    assert header["recordIds"] == [rid]
    assert header["changeOrigin"] == "com/salesforce/api/rest/59.0;client=sync-7"
    assert isinstance(header["commitTimestamp"], int)
    assert record["Title"] == "Countess"
    assert record["MailingAddress"]["City"] == "London"
    assert record["Name"]["FirstName"] is None  # nulled: listed in nulledFields
    assert record["Department"] is None  # unchanged
    served = EventSchema({k: v for k, v in schema.items() if k != "uuid"})
    assert served.schema_id == topic.schema_id  # the id is the hash of the schema
    changed = decode_bitmap(served, header["changedFields"])
    assert sorted(changed) == sorted(
        ["Name.FirstName", "Title", "MailingAddress.City", "LastModifiedDate"]
    )
    assert decode_bitmap(served, header["nulledFields"]) == ["Name.FirstName"]
    assert header["diffFields"] == []
    assert all(e.startswith("0x") or "-0x" in e for e in header["changedFields"])
    assert [int.from_bytes(e.replay_id, "big") for e in response.events] == sorted(
        int.from_bytes(e.replay_id, "big") for e in response.events
    )
    assert response.latest_replay_id == update.replay_id


def test_flow_control_counts_and_keepalive(
    http: httpx.Client, stub: pb_grpc.PubSubStub, metadata: Metadata
) -> None:
    assert http.put("/__emulator__/streaming", json={"keepalive_seconds": 0.5}).is_success
    for i in range(5):
        http.post(f"{V}/sobjects/Account/", json={"Name": f"F{i}"})
    fetch = Fetcher(
        stub,
        metadata,
        pb.FetchRequest(
            topic_name="/data/ChangeEvents", replay_preset=pb.EARLIEST, num_requested=2
        ),
    )
    try:
        first = fetch.next()
        assert len(first.events) == 2
        assert first.pending_num_requested == 0
        # No credit left: nothing more arrives until the client asks (only keepalives would,
        # and those only while credits are outstanding).
        fetch.requests.put(pb.FetchRequest(num_requested=10))
        second = fetch.next()
        assert len(second.events) == 3
        assert second.pending_num_requested == 7
        started = time.monotonic()
        keepalive = fetch.next()
        assert list(keepalive.events) == []
        assert keepalive.pending_num_requested == 7
        assert keepalive.latest_replay_id == second.events[-1].replay_id
        assert time.monotonic() - started < 5
        http.post(f"{V}/sobjects/Account/", json={"Name": "Live"})
        live = fetch.next()
        while not live.events:  # a keepalive may come first
            live = fetch.next()
        assert len(live.events) == 1
        assert live.pending_num_requested == 6
        fetch.requests.put(pb.FetchRequest(num_requested=500))
        for _ in range(3):
            clamped = fetch.next()
            if not clamped.events:
                break
        assert clamped.pending_num_requested == 100  # at most 100 outstanding
    finally:
        fetch.close()


def test_latest_and_custom_presets(
    http: httpx.Client, stub: pb_grpc.PubSubStub, metadata: Metadata
) -> None:
    assert http.put("/__emulator__/streaming", json={"keepalive_seconds": 0.3}).is_success
    for i in range(3):
        http.post(f"{V}/sobjects/Account/", json={"Name": f"P{i}"})
    everything = Fetcher(
        stub,
        metadata,
        pb.FetchRequest(
            topic_name="/data/AccountChangeEvent", replay_preset=pb.EARLIEST, num_requested=3
        ),
    )
    try:
        ids = [e.replay_id for e in everything.next().events]
    finally:
        everything.close()
    custom = Fetcher(
        stub,
        metadata,
        pb.FetchRequest(
            topic_name="/data/AccountChangeEvent",
            replay_preset=pb.CUSTOM,
            replay_id=ids[0],
            num_requested=5,
        ),
    )
    try:
        assert [e.replay_id for e in custom.next().events] == ids[1:]
    finally:
        custom.close()
    latest = Fetcher(
        stub, metadata, pb.FetchRequest(topic_name="/data/AccountChangeEvent", num_requested=5)
    )
    try:
        idle = latest.next()
        assert list(idle.events) == []  # LATEST: only new events; this is the keepalive
        assert idle.latest_replay_id == ids[-1]
    finally:
        latest.close()
    # 73 hours on, the events have left the 72-hour retention window: their ids are refused.
    assert http.post("/__emulator__/clock/advance", json={"seconds": 73 * 3600}).is_success
    expired = stub.Subscribe(
        iter(
            [
                pb.FetchRequest(
                    topic_name="/data/AccountChangeEvent",
                    replay_preset=pb.CUSTOM,
                    replay_id=ids[0],
                    num_requested=1,
                )
            ]
        ),
        metadata=metadata,
    )
    with pytest.raises(grpc.RpcError) as caught:
        list(expired)
    assert error_code(caught.value) == (
        "sfdc.platform.eventbus.grpc.subscription.fetch.replayid.corrupted"
    )


@pytest.mark.parametrize(
    ("requests", "status", "code"),
    [
        (
            [pb.FetchRequest(topic_name="/data/NopeChangeEvent", num_requested=1)],
            grpc.StatusCode.NOT_FOUND,
            "topic.not.found",
        ),
        (
            [pb.FetchRequest(topic_name="/data/ChangeEvents", num_requested=0)],
            grpc.StatusCode.INVALID_ARGUMENT,
            "subscription.fetch.requested.events.invalid",
        ),
        (
            [
                pb.FetchRequest(
                    topic_name="/data/ChangeEvents", replay_preset=pb.CUSTOM, num_requested=1
                )
            ],
            grpc.StatusCode.INVALID_ARGUMENT,
            "subscription.fetch.replayid.validation.failed",
        ),
        (
            [
                pb.FetchRequest(
                    topic_name="/data/ChangeEvents",
                    replay_preset=pb.CUSTOM,
                    replay_id=b"\x00\x01",
                    num_requested=1,
                )
            ],
            grpc.StatusCode.INVALID_ARGUMENT,
            "subscription.fetch.replayid.corrupted",
        ),
        (
            [
                pb.FetchRequest(
                    topic_name="/data/ChangeEvents",
                    replay_preset=pb.CUSTOM,
                    replay_id=(10**6).to_bytes(8, "big"),
                    num_requested=1,
                )
            ],
            grpc.StatusCode.INVALID_ARGUMENT,
            "subscription.fetch.replayid.corrupted",
        ),
        (
            [
                pb.FetchRequest(topic_name="/data/ChangeEvents", num_requested=1),
                pb.FetchRequest(topic_name="/data/AccountChangeEvent", num_requested=1),
            ],
            grpc.StatusCode.INVALID_ARGUMENT,
            "subscription.fetch.topic.mismatch",
        ),
    ],
)
def test_subscribe_errors(
    stub: pb_grpc.PubSubStub,
    metadata: Metadata,
    requests: list[pb.FetchRequest],
    status: grpc.StatusCode,
    code: str,
) -> None:
    stream = stub.Subscribe(iter(requests), metadata=metadata)
    with pytest.raises(grpc.RpcError) as caught:
        list(stream)  # the first response, if any, is never an event: the stream fails
    assert caught.value.code() == status
    assert error_code(caught.value) == f"sfdc.platform.eventbus.grpc.{code}"
    assert "rpcId: " in caught.value.details()


def test_authentication_is_checked_on_every_call(
    stub: pb_grpc.PubSubStub, metadata: Metadata
) -> None:
    bad: Metadata = (("accesstoken", "nope"), *metadata[1:])
    with pytest.raises(grpc.RpcError) as caught:
        stub.GetTopic(pb.TopicRequest(topic_name="/data/ChangeEvents"), metadata=bad)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error_code(caught.value) == "sfdc.platform.eventbus.grpc.service.auth.error"
    other_org: Metadata = (*metadata[:2], ("tenantid", "00Dxx0000000000AAA"))
    with pytest.raises(grpc.RpcError) as caught:
        next(
            stub.Subscribe(
                iter([pb.FetchRequest(topic_name="/data/ChangeEvents", num_requested=1)]),
                metadata=other_org,
            )
        )
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.RpcError) as caught:
        stub.GetSchema(pb.SchemaRequest(schema_id="unknown"), metadata=metadata)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def test_publish_reaches_pubsub_and_cometd_subscribers(
    http: httpx.Client, stub: pb_grpc.PubSubStub, metadata: Metadata
) -> None:
    topic = stub.GetTopic(pb.TopicRequest(topic_name="/event/Printer__e"), metadata=metadata)
    assert topic.can_publish is True
    schema = schema_of(stub, metadata, topic.schema_id)
    assert [f["name"] for f in schema["fields"]] == [
        "CreatedDate",
        "CreatedById",
        "Model__c",
        "Pages__c",
        "Body__c",
    ]
    parsed = fastavro.parse_schema(schema)

    def payload(model: str) -> bytes:
        out = io.BytesIO()
        record = {
            "CreatedDate": int(time.time() * 1000),
            "CreatedById": "005000000000000AAA",
            "Model__c": model,
            "Pages__c": 12,
        }
        fastavro.schemaless_writer(out, parsed, record)
        return out.getvalue()

    handshake = http.post(
        "/cometd/59.0",
        json=[{"channel": "/meta/handshake", "supportedConnectionTypes": ["long-polling"]}],
    ).json()[0]
    client_id = handshake["clientId"]
    http.post(
        "/cometd/59.0",
        json=[
            {"channel": "/meta/connect", "clientId": client_id, "connectionType": "long-polling"}
        ],
    )
    http.post(
        "/cometd/59.0",
        json=[
            {
                "channel": "/meta/subscribe",
                "clientId": client_id,
                "subscription": "/event/Printer__e",
            }
        ],
    )
    fetch = Fetcher(
        stub, metadata, pb.FetchRequest(topic_name="/event/Printer__e", num_requested=3)
    )
    try:
        answer = stub.Publish(
            pb.PublishRequest(
                topic_name="/event/Printer__e",
                events=[
                    pb.ProducerEvent(id="k1", schema_id=topic.schema_id, payload=payload("A")),
                    pb.ProducerEvent(id="k2", schema_id="stale", payload=payload("B")),
                    pb.ProducerEvent(id="k3", schema_id=topic.schema_id, payload=b"\xff"),
                ],
            ),
            metadata=metadata,
        )
        assert [r.correlation_key for r in answer.results] == ["k1", "k2", "k3"]
        assert answer.results[0].replay_id
        assert not answer.results[0].HasField("error")
        assert answer.results[1].error.code == pb.PUBLISH
        assert answer.results[2].error.code == pb.PUBLISH
        assert answer.schema_id == topic.schema_id
        streamed = stub.PublishStream(
            iter(
                [
                    pb.PublishRequest(
                        topic_name="/event/Printer__e",
                        events=[pb.ProducerEvent(schema_id=topic.schema_id, payload=payload("C"))],
                    )
                ]
            ),
            metadata=metadata,
        )
        (stream_answer,) = list(streamed)
        assert stream_answer.results[0].correlation_key  # a generated id
        http.post(f"{V}/sobjects/Printer__e/", json={"Model__c": "D"})

        received: list[str] = []
        while len(received) < 3:
            for event in fetch.next().events:
                received.append(decode(schema, event.event.payload)["Model__c"])
        assert received == ["A", "C", "D"]
    finally:
        fetch.close()
    polled = http.post(
        "/cometd/59.0",
        json=[
            {"channel": "/meta/connect", "clientId": client_id, "connectionType": "long-polling"}
        ],
    ).json()
    models = [m["data"]["payload"]["Model__c"] for m in polled if "data" in m]
    assert models == ["A", "C", "D"]
    with pytest.raises(grpc.RpcError) as caught:
        stub.Publish(
            pb.PublishRequest(topic_name="/data/AccountChangeEvent", events=[]),
            metadata=metadata,
        )
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_tls_with_the_same_ca(tmp_path: Path) -> None:
    org = make_org(tmp_path)
    try:
        with serve_in_background(org, tls=True, grpc_port=0) as running:
            assert running.ca_cert is not None
            credentials = grpc.ssl_channel_credentials(running.ca_cert.read_bytes())
            with grpc.secure_channel(f"localhost:{running.grpc_port}", credentials) as channel:
                topic = pb_grpc.PubSubStub(channel).GetTopic(  # type: ignore[no-untyped-call]
                    pb.TopicRequest(topic_name="/event/Printer__e"),
                    metadata=(("accesstoken", TOKEN), ("tenantid", org.org_id)),
                )
            assert topic.tenant_guid == org.org_id
    finally:
        org.close()


def _event_payload(schema: dict[str, Any], **values: Any) -> bytes:
    out = io.BytesIO()
    record = {"CreatedDate": 0, "CreatedById": "005000000000000AAA", **values}
    fastavro.schemaless_writer(out, fastavro.parse_schema(schema), record)
    return out.getvalue()


def test_large_events_spread_over_responses_and_long_values_are_refused(
    stub: pb_grpc.PubSubStub, metadata: Metadata
) -> None:
    topic = stub.GetTopic(pb.TopicRequest(topic_name="/event/Printer__e"), metadata=metadata)
    schema = schema_of(stub, metadata, topic.schema_id)
    refused = stub.Publish(
        pb.PublishRequest(
            topic_name="/event/Printer__e",
            events=[
                pb.ProducerEvent(
                    schema_id=topic.schema_id, payload=_event_payload(schema, Model__c="M" * 41)
                )
            ],
        ),
        metadata=metadata,
    )
    assert refused.results[0].error.code == pb.PUBLISH
    assert "Model__c" in refused.results[0].error.msg
    body = "x" * 130_000
    for _ in range(2):  # two requests: one would pass gRPC's 4 MB message limit
        published = stub.Publish(
            pb.PublishRequest(
                topic_name="/event/Printer__e",
                events=[
                    pb.ProducerEvent(
                        schema_id=topic.schema_id, payload=_event_payload(schema, Body__c=body)
                    )
                    for _ in range(15)
                ],
            ),
            metadata=metadata,
        )
        assert all(r.replay_id for r in published.results)
    fetch = Fetcher(
        stub,
        metadata,
        pb.FetchRequest(
            topic_name="/event/Printer__e", replay_preset=pb.EARLIEST, num_requested=30
        ),
    )
    try:
        sizes: list[int] = []
        while sum(sizes) < 30:
            response = fetch.next()
            assert response.ByteSize() < 4 * 1024 * 1024
            sizes.append(len(response.events))
    finally:
        fetch.close()
    assert len(sizes) == 2
    assert sizes[0] > sizes[1] > 0
