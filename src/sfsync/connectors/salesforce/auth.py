"""OAuth 2.0 for Salesforce as :class:`httpx.Auth` flows.

Each grant is a small :class:`Grant` that builds the token request and nothing else. One
:class:`SalesforceAuth` wraps any grant: it logs in when it has no session, adds the
``Authorization`` header, and on a ``401 INVALID_SESSION_ID`` logs in again once and replays
the request. The flow is a generator (httpx's design), so it does no I/O of its own and runs
unchanged over a real socket or an in-process transport.

Grants: :class:`JwtBearer` (server-to-server, the production default), :class:`ClientCredentials`,
:class:`RefreshToken`, :class:`UsernamePassword` (legacy; orgs may block it) and
:class:`StaticSession` (a session id obtained elsewhere; it cannot be renewed).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Generator
from dataclasses import dataclass

import httpx
import jwt

from sfsync.connectors.salesforce.errors import classify_token_error
from sfsync.core.errors import FatalError, RetryableError
from sfsync.spi.clock import Clock

TOKEN_PATH = "/services/oauth2/token"


@dataclass(frozen=True, slots=True)
class Session:
    """A Salesforce session as the token endpoint returned it."""

    access_token: str
    instance_url: str
    identity_url: str | None = None
    issued_at: str | None = None
    scope: str | None = None


class Grant:
    """One OAuth grant: how to ask the token endpoint for a session."""

    flow: str = "oauth"
    renewable = True

    def token_request(self, clock: Clock) -> httpx.Request:
        """The POST to the token endpoint."""
        raise NotImplementedError

    def client_secret(self) -> str | None:
        """The secret that keys the response ``signature``, where this grant knows it."""
        return None

    def parse(self, response: httpx.Response) -> Session:
        """The session in the login response, or the classified error."""
        return parse_token_response(response, self)


def _form(url: str, fields: dict[str, str], headers: dict[str, str] | None = None) -> httpx.Request:
    return httpx.Request(
        "POST",
        url.rstrip("/") + TOKEN_PATH,
        data=fields,
        headers={"Accept": "application/json", **(headers or {})},
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class JwtBearer(Grant):
    """The JWT bearer grant: a short-lived assertion signed with the connected app's key.

    Attributes:
        client_id: the connected app's consumer key (the ``iss`` claim).
        username: the integration user (``sub``).
        private_key: PEM of the key whose certificate is uploaded to the connected app.
        login_url: where to log in (``aud`` is this URL too).
        audience: override ``aud`` (Experience Cloud sites, or a login URL that differs).
        lifetime: seconds the assertion is valid; Salesforce wants it short.
    """

    client_id: str
    username: str
    private_key: str
    login_url: str = "https://login.salesforce.com"
    audience: str | None = None
    lifetime: int = 180
    flow = "jwt_bearer"

    def token_request(self, clock: Clock) -> httpx.Request:
        now = int(clock.now().timestamp())
        claims = {
            "iss": self.client_id,
            "sub": self.username,
            "aud": self.audience or self.login_url.rstrip("/"),
            "exp": str(now + self.lifetime),
        }
        try:
            assertion = jwt.encode(claims, self.private_key, algorithm="RS256")
        except (ValueError, TypeError, jwt.PyJWTError) as exc:
            raise FatalError(
                f"cannot sign the JWT assertion: {exc}",
                hint="private_key_file must hold an unencrypted RSA private key in PEM form",
            ) from exc
        return _form(
            self.login_url,
            {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion},
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientCredentials(Grant):
    """The client credentials grant (the connected app's Run-As user).

    ``login_url`` must be the org's My Domain URL: Salesforce refuses this grant on
    login.salesforce.com.
    """

    client_id: str
    secret: str
    login_url: str
    flow = "client_credentials"

    def token_request(self, clock: Clock) -> httpx.Request:
        basic = base64.b64encode(f"{self.client_id}:{self.secret}".encode()).decode()
        return _form(
            self.login_url,
            {"grant_type": "client_credentials"},
            {"Authorization": f"Basic {basic}"},
        )

    def client_secret(self) -> str | None:
        return self.secret


@dataclass(frozen=True, slots=True, kw_only=True)
class RefreshToken(Grant):
    """The refresh token grant: a long-lived token from an earlier web-server login."""

    client_id: str
    refresh_token: str
    secret: str | None = None
    login_url: str = "https://login.salesforce.com"
    flow = "refresh_token"

    def token_request(self, clock: Clock) -> httpx.Request:
        fields = {
            "grant_type": "refresh_token",
            "refresh_token": self.refresh_token,
            "client_id": self.client_id,
        }
        if self.secret:
            fields["client_secret"] = self.secret
        return _form(self.login_url, fields)

    def client_secret(self) -> str | None:
        return self.secret


@dataclass(frozen=True, slots=True, kw_only=True)
class UsernamePassword(Grant):
    """The username-password grant (legacy). ``security_token`` is appended to the password."""

    client_id: str
    secret: str
    username: str
    password: str
    security_token: str = ""
    login_url: str = "https://login.salesforce.com"
    flow = "password"

    def token_request(self, clock: Clock) -> httpx.Request:
        return _form(
            self.login_url,
            {
                "grant_type": "password",
                "client_id": self.client_id,
                "client_secret": self.secret,
                "username": self.username,
                "password": self.password + self.security_token,
            },
        )

    def client_secret(self) -> str | None:
        return self.secret


_SOAP_LOGIN = """<?xml version="1.0" encoding="utf-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"
    xmlns:urn="urn:partner.soap.sforce.com">
  <soapenv:Body>
    <urn:login><urn:username>{username}</urn:username><urn:password>{password}</urn:password></urn:login>
  </soapenv:Body>
</soapenv:Envelope>"""


@dataclass(frozen=True, slots=True, kw_only=True)
class SoapLogin(Grant):
    """The SOAP API ``login()`` call, for a username and password without a connected app."""

    username: str
    password: str
    security_token: str = ""
    login_url: str = "https://login.salesforce.com"
    api_version: str = "62.0"
    flow = "soap_login"

    def token_request(self, clock: Clock) -> httpx.Request:
        from xml.sax.saxutils import escape

        body = _SOAP_LOGIN.format(
            username=escape(self.username), password=escape(self.password + self.security_token)
        )
        return httpx.Request(
            "POST",
            f"{self.login_url.rstrip('/')}/services/Soap/u/{self.api_version}",
            content=body.encode(),
            headers={"Content-Type": "text/xml; charset=UTF-8", "SOAPAction": "login"},
        )

    def parse(self, response: httpx.Response) -> Session:
        import xml.etree.ElementTree as ET
        from urllib.parse import urlsplit

        try:
            root = ET.fromstring(response.content)
        except ET.ParseError as exc:
            raise FatalError(
                f"SOAP login answered {response.status_code} with no XML",
                hint="check login_url: it must be a Salesforce login or My Domain URL",
            ) from exc
        texts = {el.tag.rpartition("}")[2]: (el.text or "") for el in root.iter()}
        if response.status_code != 200 or "sessionId" not in texts:
            code = texts.get("exceptionCode") or texts.get("faultcode", "").rpartition(":")[2]
            message = texts.get("exceptionMessage") or texts.get("faultstring", "login failed")
            if response.status_code >= 500 and code in (
                "",
                "UNKNOWN_EXCEPTION",
                "SERVER_UNAVAILABLE",
            ):
                raise RetryableError(f"SOAP login failed: {message}", code=code or None)
            raise FatalError(
                f"Salesforce refused the SOAP login: {code}: {message}",
                code=code or None,
                hint="check the username, password and security token",
            )
        server = urlsplit(texts["serverUrl"])
        return Session(
            access_token=texts["sessionId"],
            instance_url=f"{server.scheme}://{server.netloc}",
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class StaticSession(Grant):
    """A session id handed in directly (scripts, the emulator's fixed token). Not renewable."""

    access_token: str
    instance_url: str
    flow = "access_token"
    renewable = False


def parse_token_response(response: httpx.Response, grant: Grant) -> Session:
    """The session in a token response, or the classified error.

    The ``signature`` (HMAC-SHA256 of ``id + issued_at`` keyed by the client secret) is
    checked when both the signature and the secret are known: a mismatch means the answer did
    not come from the org we configured.
    """
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code != 200 or not isinstance(body, dict):
        if isinstance(body, dict) and "error" in body:
            raise classify_token_error(
                response.status_code,
                str(body["error"]),
                str(body.get("error_description", "")),
                flow=grant.flow,
            )
        if response.status_code >= 500:
            raise RetryableError(f"token endpoint answered {response.status_code}")
        raise FatalError(
            f"token endpoint answered {response.status_code} without an OAuth error body",
            hint="check login_url: it must be a Salesforce login or My Domain URL",
        )
    try:
        session = Session(
            access_token=str(body["access_token"]),
            instance_url=str(body["instance_url"]).rstrip("/"),
            identity_url=body.get("id"),
            issued_at=body.get("issued_at"),
            scope=body.get("scope"),
        )
    except KeyError as exc:
        raise FatalError(f"token response lacks {exc.args[0]!r}") from exc
    secret = grant.client_secret()
    signature = body.get("signature")
    if secret and signature and session.identity_url and session.issued_at:
        expected = base64.b64encode(
            hmac.new(
                secret.encode(),
                (session.identity_url + session.issued_at).encode(),
                hashlib.sha256,
            ).digest()
        ).decode()
        if not hmac.compare_digest(expected, str(signature)):
            raise FatalError(
                "the token response's signature does not match the client secret",
                hint="login_url may point at the wrong org, or the secret is wrong",
            )
    return session


def is_invalid_session(response: httpx.Response) -> bool:
    """True for Salesforce's ``401 [{"errorCode": "INVALID_SESSION_ID", ...}]``."""
    if response.status_code != 401:
        return False
    try:
        body = response.json()
    except ValueError:
        return True  # a bare 401 means the same thing
    if isinstance(body, list) and body and isinstance(body[0], dict):
        return body[0].get("errorCode") == "INVALID_SESSION_ID"
    return True


class SalesforceAuth(httpx.Auth):
    """Adds the session to every request; logs in first and again once on an expired session.

    Args:
        grant: how to obtain a session.
        clock: for JWT ``exp`` and nothing else.
    """

    requires_response_body = True

    def __init__(self, grant: Grant, clock: Clock) -> None:
        self.grant = grant
        self.clock = clock
        self.session: Session | None = None
        self.logins = 0
        if isinstance(grant, StaticSession):
            self.session = Session(grant.access_token, grant.instance_url.rstrip("/"))

    def login_flow(self) -> Generator[httpx.Request, httpx.Response, Session]:
        """Log in (a sub-generator: yields the token request, returns the session)."""
        if not self.grant.renewable:
            raise FatalError(
                "the configured access token was refused and cannot be renewed",
                code="INVALID_SESSION_ID",
                hint="use an OAuth flow (jwt_bearer, client_credentials, refresh_token)",
            )
        response = yield self.grant.token_request(self.clock)
        self.session = self.grant.parse(response)
        self.logins += 1
        return self.session

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        session = self.session
        if session is None:
            session = yield from self.login_flow()
        request.headers["Authorization"] = f"Bearer {session.access_token}"
        response = yield request
        if not is_invalid_session(response):
            return
        if self.session is not None and self.session.access_token != session.access_token:
            # Another request renewed the session meanwhile: just replay with the new one.
            session = self.session
        else:
            session = yield from self.login_flow()
        request.headers["Authorization"] = f"Bearer {session.access_token}"
        yield request
