"""Serving the emulator over real sockets: HTTP/1.1 or HTTPS, blocking or in a background thread.

The server is uvicorn pinned to its **h11** protocol (never httptools: that backend lower-cases
response header names on the wire, which breaks case-sensitive Salesforce clients; h11 sends
the names the app gives it, which :class:`~sfsync.emulator.http.HeaderCasingMiddleware` has put
in Salesforce's casing). uvicorn's own ``server``/``date`` headers are turned off because they
would go out lower-cased; the middleware adds ``Date``. h11 also decodes chunked request bodies.

:class:`EmulatorH11Protocol` gives the app a way to drop a connection without answering (the
``drop`` fault): a callable in ``scope["extensions"]["sfsync.abort"]``.

* :func:`serve` blocks until SIGTERM/SIGINT (uvicorn's graceful shutdown), then closes the org.
* :func:`serve_in_background` runs the same server in a thread for tests and yields a
  :class:`RunningServer` with the bound URL/port.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import platform
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import uvicorn
from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from sfsync.emulator.app import build_app
from sfsync.emulator.http import ABORT_EXTENSION
from sfsync.emulator.org import Org
from sfsync.emulator.streaming.grpc_server import GrpcServer, start_grpc
from sfsync.emulator.tls import ensure_certificates


class EmulatorH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, plus an ``abort`` callable in each request's ASGI extensions."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        inner = self.app

        async def app_with_abort(scope: Scope, receive: Receive, send: Send) -> None:
            scope.setdefault("extensions", {})[ABORT_EXTENSION] = self._abort
            await inner(scope, receive, send)

        self.app = app_with_abort

    def _abort(self) -> None:
        # abort(), not close(): no pending data is flushed, the peer sees a reset/EOF at once.
        self.transport.abort()


@dataclass(frozen=True, slots=True)
class RunningServer:
    """A started server: where to reach it and which CA (if TLS) to trust."""

    url: str
    host: str
    port: int
    ca_cert: Path | None
    org: Org
    grpc_port: int | None = None
    """The Pub/Sub API (gRPC) port, when one was requested."""


def _config(
    org: Org,
    host: str,
    port: int,
    *,
    tls: bool,
    certfile: str | Path | None,
    keyfile: str | Path | None,
    tls_dir: str | Path | None,
    log_level: str,
) -> tuple[uvicorn.Config, Path | None]:
    ca_cert: Path | None = None
    ssl_args: dict[str, str] = {}
    if tls:
        if certfile is not None:
            if keyfile is None:
                raise ValueError("--certfile needs --keyfile")
            ssl_args = {"ssl_certfile": str(certfile), "ssl_keyfile": str(keyfile)}
        else:
            directory = Path(tls_dir) if tls_dir else (org.state_dir or Path(".")) / "tls"
            extra = [] if host in ("0.0.0.0", "::", "") else [host]
            advertised = urlsplit(org.settings.advertise_url or "").hostname
            if advertised:
                extra.append(advertised)  # clients verify the name they were told to use
            files = ensure_certificates(directory, extra)
            ca_cert = files.ca_cert
            ssl_args = {"ssl_certfile": str(files.certfile), "ssl_keyfile": str(files.keyfile)}
    config = uvicorn.Config(
        build_app(org),
        host=host,
        port=port,
        http=EmulatorH11Protocol,
        ws="none",
        lifespan="off",
        server_header=False,
        date_header=False,
        log_level=log_level,
        access_log=False,
        timeout_graceful_shutdown=5,
        **ssl_args,  # type: ignore[arg-type]
    )
    return config, ca_cert


class _Server(uvicorn.Server):
    """uvicorn.Server that reports the bound address once listening."""

    def __init__(self, config: uvicorn.Config, on_started: Callable[[int], None]) -> None:
        super().__init__(config)
        self._on_started = on_started

    async def startup(self, sockets: list[Any] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self._on_started(self.bound_port())

    def bound_port(self) -> int:
        for server in self.servers:
            for sock in server.sockets:
                return cast(int, sock.getsockname()[1])
        return self.config.port


def _url(host: str, port: int, tls: bool) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else "[::1]" if host == "::" else host
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"{'https' if tls else 'http'}://{shown}:{port}"


def tune_for_serving() -> None:
    """Make the garbage collector cheap for a long-running org holding many records.

    The records loaded so far are moved out of the collector's view (``gc.freeze``): they
    live as long as the org, and scanning them again on every collection cost about a third
    of the time spent rendering query pages. The young-generation threshold is raised for
    the same reason: a page of 2,000 rendered records would otherwise trigger collections
    while it is being built.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
    _fixed_mmap_threshold()


_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number
_MMAP_THRESHOLD = 128 * 1024


def _fixed_mmap_threshold() -> None:
    """On glibc, keep blocks of 128 KiB and more (bulk uploads, parsed CSV, result pages)
    in their own mappings, returned to the system when freed.

    glibc raises that threshold as large blocks are freed (up to 32 MiB), after which such
    transient buffers land in the heap among long-lived records and the heap cannot shrink:
    1,000,000 Bulk 2.0 inserts uploaded while earlier jobs ran left the server at 2.77 GB
    RSS instead of 2.35 GB. Setting the threshold once keeps it fixed."""
    if platform.libc_ver()[0] != "glibc":
        return
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)
    except (OSError, AttributeError):
        pass  # not glibc after all: nothing to tune


def serve(
    org: Org,
    host: str = "127.0.0.1",
    port: int = 8765,
    *,
    tls: bool = False,
    certfile: str | Path | None = None,
    keyfile: str | Path | None = None,
    tls_dir: str | Path | None = None,
    on_started: Callable[[RunningServer], None] | None = None,
    log_level: str = "warning",
    grpc_port: int | None = None,
) -> None:
    """Serve ``org`` until SIGTERM or Ctrl-C; then finish in-flight requests and close the org.

    With ``tls`` and no ``certfile``, a local CA and server certificate are created under
    ``tls_dir`` (default ``<org state dir>/tls``); ``on_started`` receives their CA path.
    With ``grpc_port``, the Pub/Sub API is served there too (TLS with the same certificate).
    """
    config, ca_cert = _config(
        org,
        host,
        port,
        tls=tls,
        certfile=certfile,
        keyfile=keyfile,
        tls_dir=tls_dir,
        log_level=log_level,
    )

    tune_for_serving()
    try:
        grpc = _start_grpc(org, host, grpc_port, config)
    except BaseException:
        org.close()  # serve() owns the org: close it on every way out
        raise

    def started(bound: int) -> None:
        if on_started is not None:
            grpc_bound = grpc.port if grpc is not None else None
            on_started(RunningServer(_url(host, bound, tls), host, bound, ca_cert, org, grpc_bound))

    # uvicorn shuts down gracefully on SIGTERM/SIGINT and then re-raises the signal to the
    # handler that was installed before it started. Make those handlers benign so that a
    # requested stop ends the process normally (exit status 0) after the org is closed.
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, lambda signum, frame: None)
    try:
        _Server(config, started).run()
    except KeyboardInterrupt:
        pass
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        if grpc is not None:
            grpc.stop()
        org.close()


@contextmanager
def serve_in_background(
    org: Org,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    tls: bool = False,
    certfile: str | Path | None = None,
    keyfile: str | Path | None = None,
    tls_dir: str | Path | None = None,
    startup_timeout: float = 20.0,
    grpc_port: int | None = None,
) -> Iterator[RunningServer]:
    """Run the server in a daemon thread over a real socket (port 0 = any free port).

    Yields once it is listening; on exit asks it to stop and joins the thread. The org is not
    closed (the caller owns it). With ``grpc_port`` (0 = any free port) the Pub/Sub API is
    served as well; its bound port is ``RunningServer.grpc_port``.
    """
    config, ca_cert = _config(
        org,
        host,
        port,
        tls=tls,
        certfile=certfile,
        keyfile=keyfile,
        tls_dir=tls_dir,
        log_level="warning",
    )
    bound: list[int] = []
    server = _Server(config, bound.append)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(server.serve())
        except BaseException as exc:  # reported to the caller below
            errors.append(exc)

    thread = threading.Thread(target=run, name="sfsync-emulator", daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not bound:
        if errors or not thread.is_alive():
            cause = errors[0] if errors else None
            raise RuntimeError("emulator server failed to start") from cause
        if time.monotonic() > deadline:
            server.should_exit = True
            raise TimeoutError("emulator server did not start in time")
        time.sleep(0.01)
    try:
        grpc = _start_grpc(org, host, grpc_port, config)
    except BaseException:
        server.should_exit = True
        thread.join(timeout=10)
        raise
    try:
        grpc_bound = grpc.port if grpc is not None else None
        yield RunningServer(_url(host, bound[0], tls), host, bound[0], ca_cert, org, grpc_bound)
    finally:
        if grpc is not None:
            grpc.stop()
        server.should_exit = True
        thread.join(timeout=10)


def _start_grpc(org: Org, host: str, port: int | None, config: uvicorn.Config) -> GrpcServer | None:
    """Start the Pub/Sub API beside the HTTP server (same certificate when TLS is on)."""
    if port is None:
        return None
    return start_grpc(org, host, port, certfile=config.ssl_certfile, keyfile=config.ssl_keyfile)
