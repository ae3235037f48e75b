"""The server over real sockets: header casing on the wire, chunked bodies, gzip, drops."""

from __future__ import annotations

import gzip
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import uvicorn
from _org_support import make_org

from sfsync.emulator.http import HeaderCasingMiddleware, canonical_header_name
from sfsync.emulator.org import Org
from sfsync.emulator.server import RunningServer, serve_in_background

TOKEN = "fixed-token-for-wire-tests"


@pytest.fixture
def org(tmp_path: Path) -> Iterator[Org]:
    org = make_org(tmp_path / "state", access_token=TOKEN)
    yield org
    org.close()


@pytest.fixture
def server(org: Org) -> Iterator[RunningServer]:
    with serve_in_background(org) as running:
        yield running


def raw_exchange(port: int, request: bytes, timeout: float = 5.0) -> bytes:
    """Send ``request`` bytes on a fresh connection; read until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        data = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
    return data


def split_response(data: bytes) -> tuple[str, list[tuple[str, str]], bytes]:
    head, _, body = data.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = [(name, value.strip()) for name, _, value in (ln.partition(":") for ln in lines)]
    return status, headers, body


def get(path: str, *extra: str) -> bytes:
    lines = [
        f"GET {path} HTTP/1.1",
        "Host: 127.0.0.1",
        f"Authorization: Bearer {TOKEN}",
        "Connection: close",
        *extra,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_header_names_reach_the_wire_in_salesforce_casing(server: RunningServer) -> None:
    status, headers, body = split_response(
        raw_exchange(server.port, get("/services/data/v59.0/limits/"))
    )
    assert status == "HTTP/1.1 200 OK"
    names = [name for name, _ in headers]
    assert "Content-Type" in names
    assert "Sforce-Limit-Info" in names
    assert "Date" in names
    # Nothing goes out lower-cased (uvicorn's own server/date headers are off).
    assert all(name[0].isupper() for name in names), names
    assert dict(headers)["Sforce-Limit-Info"] == "api-usage=1/15000"
    assert dict(headers)["Content-Type"] == "application/json;charset=UTF-8"
    if dict(headers).get("Transfer-Encoding") == "chunked":
        body = _dechunk(body)
    assert "DailyApiRequests" in orjson.loads(body)


def test_errors_and_unknown_paths_are_cased_too(server: RunningServer) -> None:
    status, headers, _body = split_response(
        raw_exchange(server.port, get("/services/data/v59.0/nothing-here"))
    )
    assert status.startswith("HTTP/1.1 404")
    assert {"Content-Type", "Sforce-Limit-Info"} <= {name for name, _ in headers}
    status, headers, _ = split_response(
        raw_exchange(
            server.port,
            b"GET /services/data/v59.0/limits HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
    )
    assert status.startswith("HTTP/1.1 401")
    assert "WWW-Authenticate" in {name for name, _ in headers}


def test_chunked_request_body_is_accepted(server: RunningServer, org: Org) -> None:
    form = (
        f"grant_type=client_credentials&client_id={org.auth.app.client_id}"
        f"&client_secret={org.auth.app.client_secret}"
    ).encode()
    half = len(form) // 2
    chunks = b"".join(
        f"{len(part):x}\r\n".encode() + part + b"\r\n" for part in (form[:half], form[half:])
    )
    request = (
        b"POST /services/oauth2/token HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n"
        + chunks
        + b"0\r\n\r\n"
    )
    status, _headers, body = split_response(raw_exchange(server.port, request))
    assert status == "HTTP/1.1 200 OK", body
    assert b"access_token" in body


def test_gzip_when_the_client_asks(server: RunningServer) -> None:
    status, headers, body = split_response(
        raw_exchange(server.port, get("/services/data/v59.0/limits/", "Accept-Encoding: gzip"))
    )
    assert status == "HTTP/1.1 200 OK"
    header_map = dict(headers)
    assert header_map["Content-Encoding"] == "gzip"
    if header_map.get("Transfer-Encoding") == "chunked":
        body = _dechunk(body)
    assert "DailyApiRequests" in orjson.loads(gzip.decompress(body))


def _dechunk(body: bytes) -> bytes:
    out = b""
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            break
        out += rest[:size]
        body = rest[size + 2 :]
    return out


def test_drop_fault_closes_the_connection_without_a_response(
    server: RunningServer, org: Org
) -> None:
    from sfsync.emulator.faults import FaultKind, FaultRule

    org.faults.replace([FaultRule(path="/services/data/*", rates={FaultKind.DROP: 1.0})])
    assert raw_exchange(server.port, get("/services/data/v59.0/limits/")) == b""
    # The server is still healthy for other paths and after the plan is cleared.
    org.faults.clear()
    status, _, _ = split_response(raw_exchange(server.port, get("/services/data/v59.0/limits/")))
    assert status == "HTTP/1.1 200 OK"


def test_canonical_header_name_table_and_fallback() -> None:
    assert canonical_header_name(b"sforce-limit-info") == b"Sforce-Limit-Info"
    assert canonical_header_name(b"SFORCE-LOCATOR") == b"Sforce-Locator"
    assert canonical_header_name(b"sforce-numberofrecords") == b"Sforce-NumberOfRecords"
    assert canonical_header_name(b"www-authenticate") == b"WWW-Authenticate"
    assert canonical_header_name(b"etag") == b"ETag"
    assert canonical_header_name(b"x-custom-thing") == b"X-Custom-Thing"


def _serve_raw_app(http: str) -> tuple[uvicorn.Server, threading.Thread, int]:
    async def app(scope: dict, receive: object, send: object) -> None:  # type: ignore[type-arg]
        await send(  # type: ignore[operator]
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"sforce-locator", b"null"), (b"content-type", b"text/csv")],
            }
        )
        await send({"type": "http.response.body", "body": b"Id\n"})  # type: ignore[operator]

    config = uvicorn.Config(
        HeaderCasingMiddleware(app),  # type: ignore[arg-type]
        host="127.0.0.1",
        port=0,
        http=http,
        lifespan="off",
        log_level="error",
        server_header=False,
        date_header=False,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    return server, thread, port


@pytest.mark.parametrize("http", ["h11", "httptools"])
def test_which_uvicorn_backend_keeps_header_casing(http: str) -> None:
    """Why the server is pinned to h11: httptools lower-cases names on the wire."""
    if http == "httptools":
        pytest.importorskip("httptools")
    server, thread, port = _serve_raw_app(http)
    try:
        _, headers, _ = split_response(
            raw_exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        )
    finally:
        server.should_exit = True
        thread.join(5)
    names = {name for name, _ in headers}
    if http == "h11":
        assert "Sforce-Locator" in names
    else:
        assert "sforce-locator" in names


def test_json_response_and_error_response_shapes() -> None:
    from sfsync.emulator.errors import ApiError
    from sfsync.emulator.http import error_response, json_response

    ok = json_response({"a": "é"}, 201, {"Location": "/x"})
    assert ok.status_code == 201
    assert ok.body == '{"a":"é"}'.encode()
    assert ok.headers["content-type"] == "application/json;charset=UTF-8"
    empty = json_response(None, 204)
    assert empty.body == b""
    assert "content-type" not in empty.headers
    assert "content-length" not in empty.headers
    session = error_response(ApiError.of(401, "INVALID_SESSION_ID", "Session expired or invalid"))
    assert orjson.loads(session.body) == [
        {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
    ]
    required = error_response(
        ApiError.of(400, "REQUIRED_FIELD_MISSING", "Required fields are missing: [Name]", ("Name",))
    )
    assert orjson.loads(required.body)[0]["fields"] == ["Name"]
