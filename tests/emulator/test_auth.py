"""OAuth 2.0 grants, sessions, expiry, revocation and identity, in process through the app."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from _org_support import USER_ID, make_org, sign_assertion
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from sfsync.emulator.app import build_app
from sfsync.emulator.auth import JWT_BEARER_GRANT, request_token
from sfsync.emulator.org import Org

TOKEN_URL = "/services/oauth2/token"
API_URL = "/services/data/v59.0/limits/"
pytestmark = pytest.mark.anyio

INVALID_SESSION = [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]


@pytest.fixture
def org(tmp_path: Path) -> Iterator[Org]:
    org = make_org(tmp_path / "state", session_timeout=600, access_token="fixed-token-123")
    yield org
    org.close()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def in_process(org: Org, ip: str = "127.0.0.1") -> httpx.AsyncClient:
    """An httpx client talking to the app in process, from address ``ip``."""
    transport = httpx.ASGITransport(app=build_app(org), client=(ip, 50000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


@pytest.fixture
async def client(org: Org) -> AsyncIterator[httpx.AsyncClient]:
    async with in_process(org) as client:
        yield client


def password_grant(client: httpx.AsyncClient, org: Org, **overrides: str) -> dict[str, str]:
    data = {
        "grant_type": "password",
        "client_id": org.auth.app.client_id,
        "client_secret": org.auth.app.client_secret,
        "username": org.auth.user.username,
        "password": org.auth.user.password + org.auth.user.security_token,
    }
    data.update(overrides)
    return data


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_password_grant_returns_every_field_and_a_working_token(
    client: httpx.AsyncClient, org: Org
) -> None:
    response = await client.post(TOKEN_URL, data=password_grant(client, org))
    assert response.status_code == 200
    body = response.json()
    assert set(body) >= {
        "access_token",
        "instance_url",
        "id",
        "token_type",
        "issued_at",
        "signature",
        "scope",
    }
    assert body["token_type"] == "Bearer"
    assert body["instance_url"] == "http://testserver"
    assert body["id"] == f"http://testserver/id/{org.org_id}/{USER_ID}"
    assert body["access_token"].startswith(org.org_id[:15] + "!")
    assert body["issued_at"].isdigit()
    assert len(body["issued_at"]) == 13
    expected = hmac.new(
        org.auth.app.client_secret.encode(),
        (body["id"] + body["issued_at"]).encode(),
        hashlib.sha256,
    ).digest()
    assert base64.b64decode(body["signature"]) == expected
    assert "refresh_token" not in body
    api = await client.get(API_URL, headers=bearer(body["access_token"]))
    assert api.status_code == 200
    assert "DailyApiRequests" in api.json()


async def test_password_without_security_token_is_also_accepted(
    client: httpx.AsyncClient, org: Org
) -> None:
    data = password_grant(client, org, password=org.auth.user.password)
    assert (await client.post(TOKEN_URL, data=data)).status_code == 200


@pytest.mark.parametrize(
    ("overrides", "error", "description"),
    [
        ({"password": "wrong"}, "invalid_grant", "authentication failure"),
        ({"username": "nobody@example.com"}, "invalid_grant", "authentication failure"),
        ({"client_id": "3MVG9unknown"}, "invalid_client_id", "client identifier invalid"),
        ({"client_secret": "nope"}, "invalid_client", "invalid client credentials"),
        ({"grant_type": "magic"}, "unsupported_grant_type", "grant type not supported"),
        ({"grant_type": ""}, "invalid_request", "grant type is missing"),
    ],
)
async def test_token_errors_have_salesforce_shape(
    client: httpx.AsyncClient, org: Org, overrides: dict[str, str], error: str, description: str
) -> None:
    response = await client.post(TOKEN_URL, data=password_grant(client, org, **overrides))
    assert response.status_code == 400
    assert response.json() == {"error": error, "error_description": description}
    assert response.headers["content-type"].startswith("application/json")


async def test_client_credentials_in_body_and_basic_auth(
    client: httpx.AsyncClient, org: Org
) -> None:
    app = org.auth.app
    body = await client.post(
        TOKEN_URL,
        data={
            "grant_type": "client_credentials",
            "client_id": app.client_id,
            "client_secret": app.client_secret,
        },
    )
    assert body.status_code == 200
    basic = base64.b64encode(f"{app.client_id}:{app.client_secret}".encode()).decode()
    via_basic = await client.post(
        TOKEN_URL,
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {basic}"},
    )
    assert via_basic.status_code == 200
    assert via_basic.json()["access_token"] != body.json()["access_token"]
    wrong = base64.b64encode(f"{app.client_id}:bad".encode()).decode()
    refused = await client.post(
        TOKEN_URL,
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {wrong}"},
    )
    assert refused.json() == {
        "error": "invalid_client",
        "error_description": "invalid client credentials",
    }


async def test_refresh_token_grant_and_revocation(client: httpx.AsyncClient, org: Org) -> None:
    data = {
        "grant_type": "refresh_token",
        "refresh_token": org.auth.refresh_token,
        "client_id": org.auth.app.client_id,
        "client_secret": org.auth.app.client_secret,
    }
    first = await client.post(TOKEN_URL, data=data)
    assert first.status_code == 200
    token = first.json()["access_token"]
    assert (await client.get(API_URL, headers=bearer(token))).status_code == 200
    # Revoking the refresh token ends its sessions and the token itself.
    assert (
        await client.post("/services/oauth2/revoke", data={"token": org.auth.refresh_token})
    ).status_code == 200
    assert (await client.get(API_URL, headers=bearer(token))).json() == INVALID_SESSION
    again = await client.post(TOKEN_URL, data=data)
    assert again.json() == {
        "error": "invalid_grant",
        "error_description": "expired access/refresh token",
    }


async def test_revoke_access_token_and_unknown_token(client: httpx.AsyncClient, org: Org) -> None:
    token = (await client.post(TOKEN_URL, data=password_grant(client, org))).json()["access_token"]
    assert (await client.get("/services/oauth2/revoke", params={"token": token})).status_code == 200
    assert (await client.get(API_URL, headers=bearer(token))).status_code == 401
    unknown = await client.post("/services/oauth2/revoke", data={"token": token})
    assert unknown.status_code == 400
    assert unknown.json()["error"] == "unsupported_token_type"


async def test_jwt_bearer_grant_with_assertion_signed_by_the_test(
    client: httpx.AsyncClient, org: Org
) -> None:
    for aud in ("https://login.salesforce.com", "https://test.salesforce.com", "http://testserver"):
        response = await client.post(
            TOKEN_URL,
            data={"grant_type": JWT_BEARER_GRANT, "assertion": sign_assertion(org, aud=aud)},
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert {"access_token", "instance_url", "id", "token_type", "scope"} <= set(body)
        assert (await client.get(API_URL, headers=bearer(body["access_token"]))).status_code == 200


async def _jwt_error(client: httpx.AsyncClient, assertion: str) -> dict[str, str]:
    response = await client.post(
        TOKEN_URL, data={"grant_type": JWT_BEARER_GRANT, "assertion": assertion}
    )
    assert response.status_code == 400
    return dict(response.json())


async def test_jwt_bearer_errors(client: httpx.AsyncClient, org: Org) -> None:
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    cases = [
        (sign_assertion(org, key_pem=other_key), "invalid_grant", "invalid assertion"),
        ("not.a.jwt", "invalid_grant", "invalid assertion"),
        (
            sign_assertion(org, aud="https://evil.example.com"),
            "invalid_grant",
            "audience is invalid",
        ),
        (sign_assertion(org, iss="3MVG9other"), "invalid_client_id", "client identifier invalid"),
        (
            sign_assertion(org, sub="someone@else.com"),
            "invalid_grant",
            "user hasn't approved this consumer",
        ),
        (
            sign_assertion(org, exp=org.clock.time() - 1),
            "invalid_grant",
            "expired authorization code",
        ),
    ]
    for assertion, error, description in cases:
        assert await _jwt_error(client, assertion) == {
            "error": error,
            "error_description": description,
        }


async def test_jwt_exp_is_judged_on_the_org_clock(client: httpx.AsyncClient, org: Org) -> None:
    assertion = sign_assertion(org)  # valid for 180 s
    await client.post("/__emulator__/clock/advance", json={"seconds": 181})
    error = await _jwt_error(client, assertion)
    assert error["error_description"] == "expired authorization code"


async def test_session_expires_after_idle_timeout_on_the_admin_clock(
    client: httpx.AsyncClient, org: Org
) -> None:
    token = (await client.post(TOKEN_URL, data=password_grant(client, org))).json()["access_token"]
    await client.post("/__emulator__/clock/advance", json={"seconds": 400})
    # Used after more than half the timeout: the session is extended from now.
    assert (await client.get(API_URL, headers=bearer(token))).status_code == 200
    await client.post("/__emulator__/clock/advance", json={"seconds": 400})
    assert (await client.get(API_URL, headers=bearer(token))).status_code == 200
    await client.post("/__emulator__/clock/advance", json={"seconds": 601})
    expired = await client.get(API_URL, headers=bearer(token))
    assert expired.status_code == 401
    assert expired.json() == INVALID_SESSION
    assert expired.headers["www-authenticate"] == "Token"
    # The fixed token never expires.
    assert (await client.get(API_URL, headers=bearer("fixed-token-123"))).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer fixed-token-123"},
        {"Authorization": "OAuth fixed-token-123"},
        {"X-SFDC-Session": "fixed-token-123"},
    ],
)
async def test_token_header_variants(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    assert (await client.get(API_URL, headers=headers)).status_code == 200


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic Zm9vOmJhcg=="}]
)
async def test_missing_or_bad_token_is_invalid_session(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await client.get(API_URL, headers=headers)
    assert response.status_code == 401
    assert response.json() == INVALID_SESSION


def test_request_token_parsing() -> None:
    assert request_token({"authorization": "Bearer abc"}) == "abc"
    assert request_token({"authorization": "oauth abc "}) == "abc"
    assert request_token({"x-sfdc-session": "xyz"}) == "xyz"
    assert request_token({"authorization": "Basic abc"}) is None
    assert request_token({}) is None


async def test_userinfo_and_identity_url(client: httpx.AsyncClient, org: Org) -> None:
    token = (await client.post(TOKEN_URL, data=password_grant(client, org))).json()
    info = await client.get("/services/oauth2/userinfo", headers=bearer(token["access_token"]))
    assert info.status_code == 200
    assert info.json()["user_id"] == USER_ID
    assert info.json()["organization_id"] == org.org_id
    assert info.json()["preferred_username"] == org.auth.user.username
    identity = await client.get(
        token["id"].replace("http://testserver", ""), headers=bearer(token["access_token"])
    )
    assert identity.status_code == 200
    assert identity.json()["id"] == token["id"]
    assert identity.json()["username"] == org.auth.user.username
    assert identity.json()["urls"]["rest"].startswith("http://testserver/services/data/v")
    bad = await client.get("/services/oauth2/userinfo", headers=bearer("nope"))
    assert (bad.status_code, bad.text) == (403, "Bad_OAuth_Token")
    wrong_id = await client.get(
        f"/id/{org.org_id}/005000000000000AAA", headers=bearer(token["access_token"])
    )
    assert wrong_id.status_code == 403


async def test_login_ip_ranges_refuse_outside_addresses(tmp_path: Path) -> None:
    org = make_org(tmp_path, login_ip_ranges=["10.0.0.0/8"])
    try:
        async with in_process(org, "192.168.1.5") as outside:
            refused = await outside.post(TOKEN_URL, data=password_grant(outside, org))
            assert refused.json() == {
                "error": "invalid_grant",
                "error_description": "ip restricted",
            }
        async with in_process(org, "10.1.2.3") as inside:
            assert (
                await inside.post(TOKEN_URL, data=password_grant(inside, org))
            ).status_code == 200
    finally:
        org.close()


def test_credentials_survive_a_restart_with_the_same_state_dir(tmp_path: Path) -> None:
    first = make_org(tmp_path)
    second = make_org(tmp_path)
    assert first.org_id == second.org_id
    assert first.auth.app.client_id == second.auth.app.client_id
    assert first.auth.refresh_token == second.auth.refresh_token
    assert first.auth.user.password == second.auth.user.password
    assert (tmp_path / "jwt_key.pem").read_bytes() == first.auth.app.private_key_pem


def test_temporary_state_dir_is_removed_on_close() -> None:
    org = make_org()
    assert org.state_dir is not None
    assert org.auth.jwt_key_path.exists()
    org.close()
    assert not org.state_dir.exists()


def test_expired_sessions_are_swept_as_new_ones_are_granted(tmp_path: Path) -> None:
    org = make_org(tmp_path, session_timeout=60)
    try:
        for _ in range(200):
            org.auth.grant_client_credentials(
                org.auth.app.client_id, org.auth.app.client_secret, None
            )
        org.clock.advance(61)
        for _ in range(56):
            org.auth.grant_client_credentials(
                org.auth.app.client_id, org.auth.app.client_secret, None
            )
        # The 256th grant swept the 200 expired sessions.
        assert org.auth.session_count() == 56
    finally:
        org.close()


async def test_introspection(client: httpx.AsyncClient, org: Org) -> None:
    app = org.auth.app
    creds = {"client_id": app.client_id, "client_secret": app.client_secret}
    token = (await client.post(TOKEN_URL, data=password_grant(client, org))).json()["access_token"]
    live = (await client.post("/services/oauth2/introspect", data={**creds, "token": token})).json()
    assert live["active"] is True
    assert live["token_type"] == "access_token"
    assert live["username"] == org.auth.user.username
    assert live["exp"] == live["iat"] + 600
    refresh = await client.post(
        "/services/oauth2/introspect", data={**creds, "token": org.auth.refresh_token}
    )
    assert refresh.json()["token_type"] == "refresh_token"
    await client.post("/__emulator__/clock/advance", json={"seconds": 601})
    dead = await client.post("/services/oauth2/introspect", data={**creds, "token": token})
    assert dead.json() == {"active": False}
    refused = await client.post(
        "/services/oauth2/introspect", data={**creds, "client_secret": "x", "token": token}
    )
    assert refused.status_code == 401
    assert refused.json()["error"] == "invalid_client"
