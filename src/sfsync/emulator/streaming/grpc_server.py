"""Running the Pub/Sub API: a ``grpc.aio`` server on its own thread and event loop.

:func:`start_grpc` starts it for an org (plain text, or TLS with the same certificate and key
as the HTTPS side, so clients trust it with the same CA) and returns a :class:`GrpcServer`
handle; :meth:`GrpcServer.stop` ends it (in-flight streams are cancelled after a short grace).
``serve``/``serve_in_background`` in :mod:`sfsync.emulator.server` call these when given a
``grpc_port``.
"""

from __future__ import annotations

import asyncio
import os
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from sfsync.emulator.org import Org
from sfsync.emulator.streaming.proto import pubsub_api_pb2_grpc as pb_grpc
from sfsync.emulator.streaming.pubsub import PubSubServicer
from sfsync.emulator.streaming.service import attach

DEFAULT_GRPC_PORT = 7443
_MAX_MESSAGE = 4 * 1024 * 1024  # gRPC's hard cap on Salesforce (section 6.4)


@dataclass(slots=True)
class GrpcServer:
    """A started Pub/Sub API server: the bound port and how to stop it."""

    host: str
    port: int
    tls: bool
    _loop: asyncio.AbstractEventLoop
    _server: grpc.aio.Server
    _thread: threading.Thread
    _stopped: bool = field(default=False)

    @property
    def target(self) -> str:
        """``host:port`` for ``grpc.insecure_channel``/``grpc.secure_channel``."""
        shown = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"{shown}:{self.port}"

    def stop(self, grace: float = 1.0) -> None:
        """Stop serving and join the server thread (idempotent)."""
        if self._stopped:
            return
        self._stopped = True
        if self._loop.is_running():
            done = asyncio.run_coroutine_threadsafe(self._server.stop(grace), self._loop)
            done.result(timeout=grace + 10)
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)


def start_grpc(
    org: Org,
    host: str = "127.0.0.1",
    port: int = DEFAULT_GRPC_PORT,
    *,
    certfile: str | os.PathLike[str] | None = None,
    keyfile: str | os.PathLike[str] | None = None,
    startup_timeout: float = 20.0,
) -> GrpcServer:
    """Serve ``org``'s Pub/Sub API on ``host:port`` (0 = any free port); TLS when both
    ``certfile`` and ``keyfile`` are given. Returns once it is listening."""
    hub = attach(org)
    credentials = None
    if certfile is not None and keyfile is not None:
        credentials = grpc.ssl_server_credentials(
            [(Path(keyfile).read_bytes(), Path(certfile).read_bytes())]
        )
    loop = asyncio.new_event_loop()
    started: Future[tuple[grpc.aio.Server, int]] = Future()

    async def boot() -> None:
        server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", _MAX_MESSAGE),
                ("grpc.max_send_message_length", _MAX_MESSAGE),
                # gRPC shares ports (SO_REUSEPORT) by default: a second org on the same port
                # would silently take half the connections. Fail to bind instead.
                ("grpc.so_reuseport", 0),
            ]
        )
        pb_grpc.add_PubSubServicer_to_server(  # type: ignore[no-untyped-call]
            PubSubServicer(hub), server
        )
        address = f"{host}:{port}"
        if credentials is not None:
            bound = server.add_secure_port(address, credentials)
        else:
            bound = server.add_insecure_port(address)
        await server.start()
        started.set_result((server, bound))

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(boot())
        except BaseException as exc:  # reported to the caller below
            started.set_exception(exc)
            loop.close()
            return
        try:
            loop.run_forever()
        finally:
            hub.bus.wake_all()
            # Streams still open after the grace period: cancel them and let them unwind
            # on this loop, so nothing is left pending when it closes.
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    thread = threading.Thread(target=run, name="sfsync-emulator-grpc", daemon=True)
    thread.start()
    server, bound = started.result(timeout=startup_timeout)
    if bound == 0:
        raise OSError(f"cannot listen for gRPC on {host}:{port}")
    return GrpcServer(host, bound, credentials is not None, loop, server, thread)
