"""The Salesforce client's auth flows and error handling, against a fake org at the transport.

The fake answers the way the wire reference says Salesforce does; end-to-end behaviour against
the emulator is covered by the integration tests.
"""

from __future__ import annotations

import base64
import gc
import hashlib
import hmac
import json
import weakref
from collections.abc import Callable
from urllib.parse import parse_qs

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from sfsync.connectors.salesforce.auth import (
    ClientCredentials,
    JwtBearer,
    RefreshToken,
    StaticSession,
    UsernamePassword,
)
from sfsync.connectors.salesforce.client import SalesforceClient
from sfsync.connectors.salesforce.errors import classify, classify_token_error
from sfsync.connectors.salesforce.usage import ApiUsage, parse_limit_info
from sfsync.core.errors import (
    FatalError,
    RateLimitError,
    RetryableError,
    SkippableError,
)
from sfsync.testing import FakeClock

INSTANCE = "https://acme.my.salesforce.com"
IDENTITY = "https://login.salesforce.com/id/00D000000000001AAA/005000000000001AAA"
SECRET = "s3cret"

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PEM = KEY.private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
).decode()


class FakeOrg:
    """Token endpoint + a tiny REST surface; sessions can be expired at will."""

    def __init__(self) -> None:
        self.tokens_issued = 0
        self.valid: set[str] = set()
        self.token_requests: list[dict[str, list[str]]] = []
        self.token_headers: list[httpx.Headers] = []
        self.rest_headers: list[httpx.Headers] = []
        self.token_error: tuple[int, dict[str, str]] | None = None
        self.sign_with = SECRET
        self.refuse_sessions = False

    def expire_all(self) -> None:
        self.valid.clear()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/services/oauth2/token":
            self.token_requests.append(parse_qs(request.content.decode()))
            self.token_headers.append(request.headers)
            if self.token_error:
                status, body = self.token_error
                return httpx.Response(status, json=body)
            self.tokens_issued += 1
            token = f"00D000000000001!token{self.tokens_issued}"
            self.valid.add(token)
            issued = "1718000000000"
            sig = base64.b64encode(
                hmac.new(
                    self.sign_with.encode(), (IDENTITY + issued).encode(), hashlib.sha256
                ).digest()
            ).decode()
            return httpx.Response(
                200,
                json={
                    "access_token": token,
                    "instance_url": INSTANCE,
                    "id": IDENTITY,
                    "token_type": "Bearer",
                    "issued_at": issued,
                    "signature": sig,
                },
            )
        self.rest_headers.append(request.headers)
        auth = request.headers.get("Authorization", "")
        if self.refuse_sessions or auth.removeprefix("Bearer ") not in self.valid:
            return httpx.Response(
                401,
                json=[{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}],
            )
        headers = {"Sforce-Limit-Info": "api-usage=18/5000"}
        path = request.url.path
        if path.endswith("/query") or "/query/" in path:
            page = 1 if path.endswith("/query") else 2
            body: object = {
                "totalSize": 3,
                "done": page == 2,
                "records": [{"Id": f"r{page}{i}"} for i in range(2 if page == 1 else 1)],
            }
            if page == 1:
                body["nextRecordsUrl"] = "/services/data/v62.0/query/01gLOC-2"  # type: ignore[index]
            return httpx.Response(200, json=body, headers=headers)
        if path.endswith("/sobjects/Account") and request.method == "POST":
            return httpx.Response(
                201,
                json={"id": "001000000000001AAA", "success": True, "errors": []},
                headers=headers,
            )
        if "/sobjects/Account/Ext__c/" in path:
            return httpx.Response(
                201,
                json={"id": "001000000000002AAA", "success": True, "errors": [], "created": True},
            )
        if path.endswith("/sobjects/Account/001BAD"):
            return httpx.Response(
                400,
                json=[
                    {
                        "message": "Name: data value too large",
                        "errorCode": "STRING_TOO_LONG",
                        "fields": ["Name"],
                    }
                ],
            )
        return httpx.Response(
            404,
            json=[{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}],
        )


def _client(org: FakeOrg, grant_factory: Callable[[], object] | None = None) -> SalesforceClient:
    grant = (
        grant_factory()
        if grant_factory
        else JwtBearer(client_id="cid", username="int@example.com", private_key=PEM)
    )
    return SalesforceClient(
        grant=grant,  # type: ignore[arg-type]
        clock=FakeClock(),
        transport=httpx.MockTransport(org),
        client_name="sfsync-test",
    )


@pytest.mark.anyio
async def test_jwt_assertion_carries_the_claims_salesforce_checks() -> None:
    org = FakeOrg()
    async with _client(org) as client:
        assert client.instance_url == INSTANCE
    form = org.token_requests[0]
    assert form["grant_type"] == ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
    claims = jwt.decode(
        form["assertion"][0],
        KEY.public_key(),
        algorithms=["RS256"],
        audience="https://login.salesforce.com",
        options={"verify_exp": False},
    )
    assert claims["iss"] == "cid"
    assert claims["sub"] == "int@example.com"
    start = int(FakeClock().now().timestamp())
    assert claims["exp"] == str(start + 180)


@pytest.mark.anyio
async def test_expired_session_is_renewed_once_and_replayed() -> None:
    org = FakeOrg()
    async with _client(org) as client:
        await client.create("Account", {"Name": "A"})
        org.expire_all()
        new_id = await client.create("Account", {"Name": "B"})
    assert new_id == "001000000000001AAA"
    assert org.tokens_issued == 2
    assert client.auth.logins == 2


@pytest.mark.anyio
async def test_a_session_refused_after_renewal_is_fatal() -> None:
    org = FakeOrg()
    async with _client(org) as client:
        org.refuse_sessions = True
        with pytest.raises(FatalError, match="Session expired"):
            await client.create("Account", {"Name": "A"})


@pytest.mark.anyio
async def test_every_call_names_our_client_and_usage_is_read() -> None:
    org = FakeOrg()
    async with _client(org) as client:
        await client.create("Account", {"Name": "A"})
        assert client.usage == ApiUsage(18, 5000)
    assert org.rest_headers[-1]["Sforce-Call-Options"] == "client=sfsync-test"


@pytest.mark.anyio
async def test_query_follows_next_records_url() -> None:
    org = FakeOrg()
    async with _client(org) as client:
        records = await client.query("SELECT Id FROM Account")
    assert [r["Id"] for r in records] == ["r10", "r11", "r20"]


@pytest.mark.anyio
async def test_a_response_dies_with_its_last_reference() -> None:
    """A Bulk page is several MB: it must not wait for the cyclic garbage collector (httpx's
    stream wrapper refers back to its response)."""
    org = FakeOrg()
    async with _client(org) as client:
        gc.disable()
        try:
            response = await client.request("GET", client.data_path("query"), what="a page")
            assert response.json()["totalSize"] == 3  # still readable after the stream went
            gone = weakref.ref(response)
            del response
            assert gone() is None
        finally:
            gc.enable()


@pytest.mark.anyio
async def test_record_errors_are_classified_with_their_code() -> None:
    org = FakeOrg()
    async with _client(org) as client:
        with pytest.raises(SkippableError) as info:
            await client.update("Account", "001BAD", {"Name": "x" * 300})
        assert info.value.code == "STRING_TOO_LONG"
        created = await client.upsert("Account", "Ext__c", "E/1", {"Name": "x"})
        assert created == ("001000000000002AAA", True)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("grant", "expected"),
    [
        (
            lambda: ClientCredentials(client_id="cid", secret=SECRET, login_url=INSTANCE),
            {"grant_type": ["client_credentials"]},
        ),
        (
            lambda: RefreshToken(client_id="cid", refresh_token="rt", secret=SECRET),
            {"grant_type": ["refresh_token"], "refresh_token": ["rt"], "client_id": ["cid"]},
        ),
        (
            lambda: UsernamePassword(
                client_id="cid", secret=SECRET, username="u", password="pw", security_token="TOK"
            ),
            {"grant_type": ["password"], "username": ["u"], "password": ["pwTOK"]},
        ),
    ],
)
async def test_other_grants_send_what_salesforce_expects(
    grant: Callable[[], object], expected: dict[str, list[str]]
) -> None:
    org = FakeOrg()
    async with _client(org, grant) as client:
        await client.create("Account", {"Name": "A"})
    for key, value in expected.items():
        assert org.token_requests[0][key] == value


@pytest.mark.anyio
async def test_client_credentials_use_basic_auth() -> None:
    org = FakeOrg()
    async with _client(
        org, lambda: ClientCredentials(client_id="cid", secret=SECRET, login_url=INSTANCE)
    ):
        pass
    basic = base64.b64encode(b"cid:" + SECRET.encode()).decode()
    assert org.token_headers[0]["Authorization"] == f"Basic {basic}"


@pytest.mark.anyio
async def test_a_wrong_signature_is_refused() -> None:
    org = FakeOrg()
    org.sign_with = "another-secret"
    with pytest.raises(FatalError, match="signature"):
        async with _client(
            org, lambda: RefreshToken(client_id="c", refresh_token="r", secret=SECRET)
        ):
            pass


@pytest.mark.anyio
async def test_static_session_cannot_renew() -> None:
    org = FakeOrg()
    async with _client(
        org, lambda: StaticSession(access_token="nope", instance_url=INSTANCE)
    ) as client:
        with pytest.raises(FatalError, match="cannot be renewed"):
            await client.create("Account", {"Name": "A"})


@pytest.mark.anyio
async def test_token_errors_are_fatal_with_a_hint() -> None:
    org = FakeOrg()
    org.token_error = (400, {"error": "invalid_grant", "error_description": "audience is invalid"})
    with pytest.raises(FatalError, match="login_url"):
        async with _client(org):
            pass


@pytest.mark.parametrize(
    ("status", "code", "kind"),
    [
        (403, "REQUEST_LIMIT_EXCEEDED", RateLimitError),
        (400, "UNABLE_TO_LOCK_ROW", RetryableError),
        (500, "UNABLE_TO_LOCK_ROW", RetryableError),
        (400, "QUERY_TIMEOUT", RetryableError),
        (503, None, RetryableError),
        (502, None, RetryableError),
        (429, None, RateLimitError),
        (420, None, RateLimitError),
        (400, "REQUIRED_FIELD_MISSING", SkippableError),
        (400, "FIELD_CUSTOM_VALIDATION_EXCEPTION", SkippableError),
        (400, "DUPLICATE_VALUE", SkippableError),
        (404, "ENTITY_IS_DELETED", SkippableError),
        (400, "INVALID_CROSS_REFERENCE_KEY", SkippableError),
        (400, "MALFORMED_QUERY", FatalError),
        (400, "INVALID_FIELD", FatalError),
        (400, "INVALID_TYPE", FatalError),
        (401, "INVALID_SESSION_ID", FatalError),
        (403, "API_DISABLED_FOR_ORG", FatalError),
        (403, None, FatalError),
        (404, None, SkippableError),
        (418, None, FatalError),
    ],
)
def test_classification_table(status: int, code: str | None, kind: type[Exception]) -> None:
    err = classify(status, code, "message", what="test")
    assert type(err) is kind
    assert "test failed: message" in str(err)
    if isinstance(err, FatalError):
        assert err.hint


def test_request_limit_waits_minutes() -> None:
    err = classify(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
    assert isinstance(err, RateLimitError)
    assert err.retry_after is not None
    assert err.retry_after >= 60


@pytest.mark.parametrize(
    ("status", "error", "description", "kind", "hint"),
    [
        (400, "invalid_grant", "user hasn't approved this consumer", FatalError, "pre-authorise"),
        (400, "invalid_grant", "expired access/refresh token", FatalError, "clock"),
        (400, "invalid_client_id", "client identifier invalid", FatalError, "consumer key"),
        (400, "unsupported_grant_type", "grant type not supported", FatalError, "My Domain"),
        (400, "rate_limit_exceeded", "too many", RateLimitError, None),
        (503, "server_error", "down", RetryableError, None),
    ],
)
def test_token_error_table(
    status: int, error: str, description: str, kind: type[Exception], hint: str | None
) -> None:
    err = classify_token_error(status, error, description, flow="jwt_bearer")
    assert type(err) is kind
    if hint:
        assert hint in (err.hint or "")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("api-usage=18/5000", ApiUsage(18, 5000)),
        ("api-usage=25/5000; per-app-api-usage=17/250(appName=sample)", ApiUsage(25, 5000)),
        ("per-app-api-usage=17/250(appName=sample)", None),
        ("", None),
        (None, None),
    ],
)
def test_limit_info_parsing(header: str | None, expected: ApiUsage | None) -> None:
    assert parse_limit_info(header) == expected


def test_usage_arithmetic() -> None:
    usage = ApiUsage(4000, 5000)
    assert usage.remaining == 1000
    assert usage.fraction_used == 0.8
    assert json.dumps(usage.remaining) == "1000"
