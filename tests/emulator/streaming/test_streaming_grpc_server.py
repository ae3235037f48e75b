"""Starting and stopping the Pub/Sub API server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from _streaming_support import TOKEN, make_org

from sfsync.emulator.org import Org
from sfsync.emulator.server import serve_in_background
from sfsync.emulator.streaming.grpc_server import start_grpc
from sfsync.emulator.streaming.proto import pubsub_api_pb2 as pb
from sfsync.emulator.streaming.proto import pubsub_api_pb2_grpc as pb_grpc


@pytest.fixture
def orgs(tmp_path: Path) -> Iterator[tuple[Org, Org]]:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = make_org(tmp_path / "a")
    second = make_org(tmp_path / "b")
    yield first, second
    first.close()
    second.close()


def test_a_second_org_cannot_share_the_port(orgs: tuple[Org, Org]) -> None:
    first, second = orgs
    server = start_grpc(first, port=0)
    try:
        with pytest.raises(RuntimeError):
            start_grpc(second, port=server.port)
        with pytest.raises(RuntimeError), serve_in_background(second, grpc_port=server.port):
            pass  # pragma: no cover - must not start
        with grpc.insecure_channel(server.target) as channel:
            stub = pb_grpc.PubSubStub(channel)  # type: ignore[no-untyped-call]
            info = stub.GetTopic(
                pb.TopicRequest(topic_name="/data/ChangeEvents"),
                metadata=(("accesstoken", TOKEN), ("tenantid", first.org_id)),
            )
        assert info.tenant_guid == first.org_id
    finally:
        server.stop()
        server.stop()  # idempotent


def test_stop_ends_open_streams(orgs: tuple[Org, Org]) -> None:
    first, _ = orgs
    server = start_grpc(first, port=0)
    channel = grpc.insecure_channel(server.target)
    stub = pb_grpc.PubSubStub(channel)  # type: ignore[no-untyped-call]
    stream = stub.Subscribe(
        iter([pb.FetchRequest(topic_name="/data/ChangeEvents", num_requested=1)]),
        metadata=(("accesstoken", TOKEN), ("tenantid", first.org_id)),
    )
    server.stop(grace=0.2)
    with pytest.raises(grpc.RpcError):
        list(stream)
    channel.close()
