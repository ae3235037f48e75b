"""``sfsync emulator serve --grpc-port``: the Pub/Sub API starts and stops with the server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import grpc
import pytest

from sfsync.emulator.streaming.proto import pubsub_api_pb2 as pb
from sfsync.emulator.streaming.proto import pubsub_api_pb2_grpc as pb_grpc


@pytest.mark.slow
def test_serve_announces_and_serves_the_grpc_port() -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sfsync.emulator.cli",
            "serve",
            "--port",
            "0",
            "--grpc-port",
            "0",
            "--access-token",
            "cli-grpc-token",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        info: dict[str, str] = {}
        assert process.stdout is not None
        while "grpc_port" not in info:
            line = process.stdout.readline()
            assert line, process.communicate(timeout=10)[1]
            key, _, value = line.strip().partition(": ")
            info[key] = value
        with grpc.insecure_channel(f"127.0.0.1:{info['grpc_port']}") as channel:
            stub = pb_grpc.PubSubStub(channel)  # type: ignore[no-untyped-call]
            topic = stub.GetTopic(
                pb.TopicRequest(topic_name="/data/AccountChangeEvent"),
                metadata=(("accesstoken", "cli-grpc-token"), ("tenantid", info["org_id"])),
            )
        assert topic.can_subscribe is True
        assert topic.tenant_guid == info["org_id"]
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
        assert process.returncode == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=10)
