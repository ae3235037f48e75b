"""Who may call the org: the built-in connected app, the integration user and their sessions.

:class:`AuthService` is the pure part of authentication (no HTTP): it grants sessions for the
four OAuth 2.0 flows an integration uses (JWT bearer, client credentials, refresh token,
username-password) and for SOAP ``login()``, resolves access tokens on every call, expires
them, and revokes them. The HTTP endpoints that expose it (:func:`oauth_routes`: token, revoke,
userinfo, identity URL) are at the end of this module.

Contract highlights (reference section 1):

* Access tokens look like Salesforce's: ``<15-char org id>!<opaque>``. A session expires after
  ``session_timeout`` seconds **without use** on the org clock (Salesforce's session timeout is
  an inactivity timeout; like Salesforce, activity only extends a session once more than half
  of the timeout has passed). Afterwards REST answers 401 ``INVALID_SESSION_ID``.
* A fixed access token (``--access-token``) never expires and cannot be revoked.
* The connected app has an RSA key pair and a self-signed X.509 certificate, created on first
  start (or loaded from ``state_dir``, so that credentials survive restarts of an org with
  ``--data``). The private key is written to ``jwt_key_path`` so users can sign assertions.
* Optional login IP ranges: a login (any grant, or SOAP) from an address outside them is
  refused: OAuth ``invalid_grant``/``ip restricted``, SOAP ``INVALID_LOGIN``.

Grant failures raise :class:`OAuthError` carrying the exact ``error`` / ``error_description``
pair Salesforce sends (section 1.4).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import secrets
import string
import threading
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from sfsync.emulator.clock import OrgClock
from sfsync.emulator.errors import ApiError
from sfsync.emulator.http import json_response, oauth_error_response

JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
LOGIN_AUDIENCES = ("https://login.salesforce.com", "https://test.salesforce.com")
"""JWT ``aud`` values accepted besides the emulator's own URL."""

DEFAULT_SESSION_TIMEOUT = 7200.0
"""Two hours: Salesforce's default session timeout and SOAP ``sessionSecondsValid``."""

_TOKEN_ALPHABET = string.ascii_letters + string.digits + "._"
_SWEEP_EVERY = 256  # grants between sweeps of expired sessions


def _random_text(length: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


class OAuthError(Exception):
    """A token-endpoint refusal: ``{"error": error, "error_description": description}``."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status


class LoginError(Exception):
    """A SOAP ``login()`` refusal (rendered as an ``INVALID_LOGIN`` fault)."""


def invalid_session() -> ApiError:
    """The 401 every REST resource answers for a missing, unknown or expired token."""
    return ApiError.of(401, "INVALID_SESSION_ID", "Session expired or invalid")


@dataclass(frozen=True, slots=True)
class User:
    """The org's integration user: the one identity every flow logs in as."""

    user_id: str  # 18 characters
    username: str
    password: str
    security_token: str
    email: str
    first_name: str = "Integration"
    last_name: str = "User"
    profile_id: str = "00e000000000001AAA"
    time_zone: str = "GMT"
    locale: str = "en_US"
    language: str = "en_US"

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"


@dataclass(frozen=True, slots=True)
class ConnectedApp:
    """The built-in connected app: consumer key/secret and the JWT signing key pair."""

    client_id: str
    client_secret: str
    private_key_pem: bytes
    certificate_pem: bytes
    name: str = "sfsync emulator"

    def verify_key(self) -> object:
        """The public key from the app's certificate (what JWT signatures are checked against)."""
        return x509.load_pem_x509_certificate(self.certificate_pem).public_key()


@dataclass(slots=True)
class Session:
    """One access token's session."""

    access_token: str
    user: User
    issued_at: float  # org seconds
    last_active: float
    via: str  # grant that created it: jwt, client_credentials, password, refresh_token, soap
    refresh_token: str | None = None
    permanent: bool = False


@dataclass(frozen=True, slots=True)
class Grant:
    """A granted session plus what the token response needs to say about it."""

    session: Session
    issued_at_ms: str
    scope: str
    refresh_token: str | None = None


def _new_connected_app() -> ConnectedApp:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sfsync emulator connected app")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    return ConnectedApp(
        # Consumer keys start "3MVG9" and are 85 characters long on real orgs.
        client_id="3MVG9" + _random_text(80, string.ascii_letters + string.digits + "._"),
        client_secret=secrets.token_hex(32).upper(),
        private_key_pem=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        certificate_pem=cert.public_bytes(serialization.Encoding.PEM),
    )


@dataclass(slots=True)
class Credentials:
    """Everything about auth that must survive a restart of a persistent org."""

    app: ConnectedApp
    user: User
    refresh_token: str

    def to_json(self) -> str:
        return json.dumps(
            {
                "client_id": self.app.client_id,
                "client_secret": self.app.client_secret,
                "private_key_pem": self.app.private_key_pem.decode(),
                "certificate_pem": self.app.certificate_pem.decode(),
                "username": self.user.username,
                "password": self.user.password,
                "security_token": self.user.security_token,
                "refresh_token": self.refresh_token,
            },
            indent=2,
        )


def load_or_create_credentials(
    state_dir: Path,
    *,
    user_id: str,
    org_domain: str,
    username: str | None = None,
    password: str | None = None,
) -> Credentials:
    """Read ``state_dir/credentials.json`` or create it (and ``jwt_key.pem``) with new secrets.

    ``username``/``password`` given explicitly override the stored ones.
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / "credentials.json"
    if path.exists():
        data = json.loads(path.read_text(encoding="utf-8"))
        app = ConnectedApp(
            client_id=data["client_id"],
            client_secret=data["client_secret"],
            private_key_pem=data["private_key_pem"].encode(),
            certificate_pem=data["certificate_pem"].encode(),
        )
        stored_user, stored_password = data["username"], data["password"]
        token, refresh = data["security_token"], data["refresh_token"]
    else:
        app = _new_connected_app()
        stored_user = f"integration@{org_domain}"
        stored_password = _random_text(16)
        token, refresh = _random_text(25), f"5Aep861{_random_text(80, _TOKEN_ALPHABET)}"
    user = User(
        user_id=user_id,
        username=username or stored_user,
        password=password or stored_password,
        security_token=token,
        email=username or stored_user,
    )
    creds = Credentials(app, user, refresh)
    path.write_text(creds.to_json(), encoding="utf-8")
    path.chmod(0o600)
    key_path = state_dir / "jwt_key.pem"
    key_path.write_bytes(app.private_key_pem)
    key_path.chmod(0o600)
    (state_dir / "jwt_cert.pem").write_bytes(app.certificate_pem)
    return creds


@dataclass(slots=True)
class AuthService:
    """Grants, resolves, expires and revokes sessions for the org's integration user.

    Thread-safe. ``org_id`` is the 18-character organisation id; access tokens carry its
    15-character form. ``jwt_key_path`` is where the connected app's private key was written.
    """

    clock: OrgClock
    org_id: str
    credentials: Credentials
    jwt_key_path: Path
    session_timeout: float = DEFAULT_SESSION_TIMEOUT
    fixed_token: str | None = None
    login_ip_ranges: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network] = ()
    scope: str = "api refresh_token"
    _sessions: dict[str, Session] = field(default_factory=dict)
    _revoked_refresh: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _grants: int = 0

    @property
    def app(self) -> ConnectedApp:
        return self.credentials.app

    @property
    def user(self) -> User:
        return self.credentials.user

    @property
    def refresh_token(self) -> str:
        """The long-lived refresh token pre-issued to the built-in app (printed by the CLI)."""
        return self.credentials.refresh_token

    # -- sessions -------------------------------------------------------------------------

    def _new_session(self, via: str, refresh_token: str | None = None) -> Grant:
        now = self.clock.time()
        token = f"{self.org_id[:15]}!{_random_text(96, _TOKEN_ALPHABET)}"
        session = Session(token, self.user, now, now, via, refresh_token)
        with self._lock:
            self._sessions[token] = session
            self._grants += 1
            if self._grants % _SWEEP_EVERY == 0:
                # Clients that log in per call would otherwise grow the table without bound.
                for key in [k for k, s in self._sessions.items() if self._expired(s, now)]:
                    del self._sessions[key]
        return Grant(session, str(int(now * 1000)), self.scope)

    def _expired(self, session: Session, now: float) -> bool:
        return now - session.last_active >= self.session_timeout

    def resolve(self, token: str | None) -> Session:
        """The live session for ``token``; raises 401 ``INVALID_SESSION_ID`` otherwise.

        Using a session extends it (once more than half of its timeout has passed).
        """
        if not token:
            raise invalid_session()
        if self.fixed_token is not None and hmac.compare_digest(token, self.fixed_token):
            now = self.clock.time()
            return Session(token, self.user, now, now, "fixed", permanent=True)
        now = self.clock.time()
        with self._lock:
            session = self._sessions.get(token)
            if session is None:
                raise invalid_session()
            if self._expired(session, now):
                del self._sessions[token]
                raise invalid_session()
            if now - session.last_active > self.session_timeout / 2:
                session.last_active = now
            return session

    def expire_all(self) -> int:
        """End every session (admin ``reset``/fault helper); return how many ended."""
        with self._lock:
            count = len(self._sessions)
            self._sessions.clear()
            return count

    def session_count(self) -> int:
        with self._lock:
            return len(self._sessions)

    def introspect(self, token: str, identity_url: str) -> dict[str, object]:
        """RFC 7662 introspection of an access or refresh token (``{"active": false}`` if dead).

        The fixed token reports no ``exp``: it never expires.
        """
        now = self.clock.time()
        base: dict[str, object] = {
            "active": True,
            "scope": self.scope,
            "client_id": self.app.client_id,
            "username": self.user.username,
            "sub": identity_url,
        }
        if token == self.credentials.refresh_token and token not in self._revoked_refresh:
            return {**base, "token_type": "refresh_token"}
        if self.fixed_token is not None and hmac.compare_digest(token, self.fixed_token):
            return {**base, "token_type": "access_token", "iat": int(now), "nbf": int(now)}
        with self._lock:
            session = self._sessions.get(token)
            if session is None or self._expired(session, now):
                return {"active": False}
            return {
                **base,
                "token_type": "access_token",
                "exp": int(session.last_active + self.session_timeout),
                "iat": int(session.issued_at),
                "nbf": int(session.issued_at),
            }

    def revoke(self, token: str) -> bool:
        """Revoke an access token, or a refresh token and every session it created.

        Returns False when the token is unknown (the endpoint answers 400). The fixed token
        is not revocable.
        """
        with self._lock:
            if token in self._sessions:
                del self._sessions[token]
                return True
            if token == self.credentials.refresh_token and token not in self._revoked_refresh:
                self._revoked_refresh.add(token)
                for key in [k for k, s in self._sessions.items() if s.refresh_token == token]:
                    del self._sessions[key]
                return True
            return False

    # -- grants ---------------------------------------------------------------------------

    def check_ip(self, client_ip: str | None) -> bool:
        """True when logins from ``client_ip`` are allowed (no ranges configured: always)."""
        if not self.login_ip_ranges:
            return True
        if client_ip is None:
            return False
        try:
            address = ipaddress.ip_address(client_ip)
        except ValueError:
            return False
        return any(address in network for network in self.login_ip_ranges)

    def check_client(self, client_id: str | None, client_secret: str | None) -> None:
        """Raise :class:`OAuthError` unless these are the connected app's key and secret."""
        if not client_id or not hmac.compare_digest(client_id, self.app.client_id):
            raise OAuthError("invalid_client_id", "client identifier invalid")
        if client_secret is None or not hmac.compare_digest(client_secret, self.app.client_secret):
            raise OAuthError("invalid_client", "invalid client credentials")

    def _check_login_ip(self, client_ip: str | None) -> None:
        if not self.check_ip(client_ip):
            raise OAuthError("invalid_grant", "ip restricted")

    def _password_matches(self, password: str) -> bool:
        user = self.user
        return hmac.compare_digest(password, user.password) or hmac.compare_digest(
            password, user.password + user.security_token
        )

    def grant_password(
        self,
        client_id: str | None,
        client_secret: str | None,
        username: str | None,
        password: str | None,
        client_ip: str | None,
    ) -> Grant:
        """Username-password flow; the password may carry the security token appended."""
        self.check_client(client_id, client_secret)
        if (
            username is None
            or password is None
            or username.lower() != self.user.username.lower()
            or not self._password_matches(password)
        ):
            raise OAuthError("invalid_grant", "authentication failure")
        self._check_login_ip(client_ip)
        return self._new_session("password")

    def grant_client_credentials(
        self, client_id: str | None, client_secret: str | None, client_ip: str | None
    ) -> Grant:
        """Client credentials flow; the app's run-as user is the integration user."""
        self.check_client(client_id, client_secret)
        self._check_login_ip(client_ip)
        return self._new_session("client_credentials")

    def grant_refresh(
        self,
        refresh_token: str | None,
        client_id: str | None,
        client_secret: str | None,
        client_ip: str | None,
    ) -> Grant:
        """Refresh-token flow. The secret is optional (as an app may be configured)."""
        if not client_id or not hmac.compare_digest(client_id, self.app.client_id):
            raise OAuthError("invalid_client_id", "client identifier invalid")
        if client_secret is not None and not hmac.compare_digest(
            client_secret, self.app.client_secret
        ):
            raise OAuthError("invalid_client", "invalid client credentials")
        known = self.credentials.refresh_token
        if (
            not refresh_token
            or not hmac.compare_digest(refresh_token, known)
            or refresh_token in self._revoked_refresh
        ):
            raise OAuthError("invalid_grant", "expired access/refresh token")
        self._check_login_ip(client_ip)
        return self._new_session("refresh_token", refresh_token)

    def grant_jwt(
        self, assertion: str | None, own_audiences: Iterable[str], client_ip: str | None
    ) -> Grant:
        """JWT bearer flow: RS256 signature by the app's key, iss/sub/aud/exp checked.

        ``exp`` is compared with the org clock (so a test that advances the clock sees its
        assertion expire). An expired assertion gets ``invalid_grant``/``expired authorization
        code``, the pair observed on real orgs for a past ``exp``.
        """
        if not assertion:
            raise OAuthError("invalid_request", "assertion is missing")
        try:
            claims = jwt.decode(
                assertion,
                key=self.app.verify_key(),  # type: ignore[arg-type]
                algorithms=["RS256"],
                options={
                    "verify_exp": False,
                    "verify_aud": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
        except jwt.PyJWTError:
            raise OAuthError("invalid_grant", "invalid assertion") from None
        if claims.get("iss") != self.app.client_id:
            raise OAuthError("invalid_client_id", "client identifier invalid")
        audiences = {a.rstrip("/") for a in (*LOGIN_AUDIENCES, *own_audiences)}
        aud = claims.get("aud")
        aud_list = aud if isinstance(aud, list) else [aud]
        if not any(isinstance(a, str) and a.rstrip("/") in audiences for a in aud_list):
            raise OAuthError("invalid_grant", "audience is invalid")
        try:
            exp = float(claims["exp"])
        except (KeyError, TypeError, ValueError):
            raise OAuthError("invalid_grant", "invalid assertion") from None
        if exp <= self.clock.time():
            raise OAuthError("invalid_grant", "expired authorization code")
        sub = claims.get("sub")
        if not isinstance(sub, str) or sub.lower() != self.user.username.lower():
            raise OAuthError("invalid_grant", "user hasn't approved this consumer")
        self._check_login_ip(client_ip)
        return self._new_session("jwt")

    def soap_login(self, username: str, password: str, client_ip: str | None) -> Grant:
        """SOAP ``login()``: password must carry the security token unless IP ranges allow."""
        if (
            username.lower() != self.user.username.lower()
            or not self._password_matches(password)
            or not self.check_ip(client_ip)
        ):
            raise LoginError(username)
        return self._new_session("soap")

    # -- token response -------------------------------------------------------------------

    def identity_url(self, base_url: str) -> str:
        """``{base}/id/{orgId18}/{userId18}``: the ``id`` of token responses."""
        return f"{base_url.rstrip('/')}/id/{self.org_id}/{self.user.user_id}"

    def signature(self, identity_url: str, issued_at_ms: str) -> str:
        """base64(HMAC-SHA256(client_secret, id + issued_at)), as Salesforce signs."""
        digest = hmac.new(
            self.app.client_secret.encode(), (identity_url + issued_at_ms).encode(), hashlib.sha256
        ).digest()
        return base64.b64encode(digest).decode()

    def token_response(
        self, grant: Grant, *, instance_url: str, include_refresh: bool = False
    ) -> dict[str, str]:
        """The success body of ``/services/oauth2/token`` for ``grant`` (section 1.3)."""
        identity = self.identity_url(instance_url)
        body = {
            "access_token": grant.session.access_token,
            "instance_url": instance_url.rstrip("/"),
            "id": identity,
            "token_type": "Bearer",
            "issued_at": grant.issued_at_ms,
            "signature": self.signature(identity, grant.issued_at_ms),
            "scope": grant.scope,
        }
        if include_refresh and grant.refresh_token:
            body["refresh_token"] = grant.refresh_token
        return body


def parse_ip_ranges(
    specs: Iterable[str],
) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """Parse ``"10.0.0.0/8"``, ``"127.0.0.1"`` or ``"10.0.0.1-10.0.0.9"`` into networks."""
    networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    for spec in specs:
        if "-" in spec:
            start, end = (ipaddress.ip_address(p.strip()) for p in spec.split("-", 1))
            networks.extend(ipaddress.summarize_address_range(start, end))
        else:
            networks.append(ipaddress.ip_network(spec.strip(), strict=False))
    return networks


# -- HTTP: /services/oauth2/* and the identity URL -------------------------------------------


def request_token(headers: Mapping[str, str]) -> str | None:
    """The access token a request carries: ``Authorization: Bearer|OAuth <t>`` or
    ``X-SFDC-Session: <t>`` (Bulk API 1.0 and SOAP-era clients)."""
    authorization = headers.get("authorization")
    if authorization:
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() in ("bearer", "oauth") and token.strip():
            return token.strip()
        return None
    session = headers.get("x-sfdc-session")
    if session:
        scheme, _, token = session.strip().partition(" ")
        return token.strip() if scheme.lower() in ("bearer", "oauth") and token else session.strip()
    return None


def _service(request: Request) -> AuthService:
    return cast(AuthService, request.app.state.org.auth)


def _instance_url(request: Request) -> str:
    return cast(str, request.app.state.org.instance_url(str(request.base_url)))


async def _params(request: Request) -> dict[str, str]:
    # Salesforce reads token parameters from the query string as well as the form body.
    params = dict(request.query_params.items())
    body = (await request.body()).decode("utf-8", errors="replace")
    for key, values in urllib.parse.parse_qs(body, keep_blank_values=True).items():
        params[key] = values[-1]
    return params


def _basic_credentials(request: Request) -> tuple[str | None, str | None]:
    authorization = request.headers.get("authorization", "")
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic":
        return None, None
    try:
        client_id, _, secret = base64.b64decode(encoded).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None, None
    return urllib.parse.unquote(client_id), urllib.parse.unquote(secret)


async def token_endpoint(request: Request) -> Response:
    """``POST /services/oauth2/token``: every grant type; errors as ``{"error",...}`` 400."""
    auth = _service(request)
    params = await _params(request)
    client_ip = request.client.host if request.client else None
    instance_url = _instance_url(request)
    grant_type = params.get("grant_type")
    try:
        if not grant_type:
            raise OAuthError("invalid_request", "grant type is missing")
        if grant_type == JWT_BEARER_GRANT:
            grant = auth.grant_jwt(
                params.get("assertion"), (instance_url, str(request.base_url)), client_ip
            )
        elif grant_type == "client_credentials":
            basic_id, basic_secret = _basic_credentials(request)
            grant = auth.grant_client_credentials(
                params.get("client_id", basic_id),
                params.get("client_secret", basic_secret),
                client_ip,
            )
        elif grant_type == "password":
            grant = auth.grant_password(
                params.get("client_id"),
                params.get("client_secret"),
                params.get("username"),
                params.get("password"),
                client_ip,
            )
        elif grant_type == "refresh_token":
            basic_id, basic_secret = _basic_credentials(request)
            grant = auth.grant_refresh(
                params.get("refresh_token"),
                params.get("client_id", basic_id),
                params.get("client_secret", basic_secret),
                client_ip,
            )
        else:
            raise OAuthError("unsupported_grant_type", "grant type not supported")
    except OAuthError as err:
        return oauth_error_response(err.error, err.description, err.status)
    return json_response(auth.token_response(grant, instance_url=instance_url))


async def introspect_endpoint(request: Request) -> Response:
    """``POST /services/oauth2/introspect``: the app's credentials (body or Basic) + ``token``."""
    auth = _service(request)
    params = await _params(request)
    basic_id, basic_secret = _basic_credentials(request)
    try:
        auth.check_client(
            params.get("client_id", basic_id), params.get("client_secret", basic_secret)
        )
    except OAuthError as err:
        return oauth_error_response(err.error, err.description, 401)
    identity = auth.identity_url(_instance_url(request))
    return json_response(auth.introspect(params.get("token", ""), identity))


async def revoke_endpoint(request: Request) -> Response:
    """``POST|GET /services/oauth2/revoke?token=...``: 200 with no body, or 400."""
    params = await _params(request)
    if _service(request).revoke(params.get("token", "")):
        return Response(status_code=200)
    return oauth_error_response("unsupported_token_type", "this token type is not supported")


def _session_or_none(request: Request) -> Session | None:
    token = request_token(request.headers) or request.query_params.get("oauth_token")
    try:
        return _service(request).resolve(token)
    except ApiError:
        return None


def _bad_token() -> Response:
    # The identity service answers a bad token with a bare 403 text body (observed; UNCONFIRMED).
    return PlainTextResponse("Bad_OAuth_Token", status_code=403)


def _urls(instance_url: str, org_id: str, user_id: str) -> dict[str, str]:
    base = instance_url.rstrip("/")
    version = "{version}"
    return {
        "enterprise": f"{base}/services/Soap/c/{version}/{org_id[:15]}",
        "metadata": f"{base}/services/Soap/m/{version}/{org_id[:15]}",
        "partner": f"{base}/services/Soap/u/{version}/{org_id[:15]}",
        "rest": f"{base}/services/data/v{version}/",
        "sobjects": f"{base}/services/data/v{version}/sobjects/",
        "search": f"{base}/services/data/v{version}/search/",
        "query": f"{base}/services/data/v{version}/query/",
        "recent": f"{base}/services/data/v{version}/recent/",
        "tooling_soap": f"{base}/services/Soap/T/{version}/{org_id[:15]}",
        "tooling_rest": f"{base}/services/data/v{version}/tooling/",
        "profile": f"{base}/{user_id}",
        "feeds": f"{base}/services/data/v{version}/chatter/feeds",
        "groups": f"{base}/services/data/v{version}/chatter/groups",
        "users": f"{base}/services/data/v{version}/chatter/users",
        "feed_items": f"{base}/services/data/v{version}/chatter/feed-items",
        "custom_domain": base,
    }


def _photos(instance_url: str) -> dict[str, str]:
    base = instance_url.rstrip("/")
    return {"picture": f"{base}/profilephoto/005/F", "thumbnail": f"{base}/profilephoto/005/T"}


async def identity_endpoint(request: Request) -> Response:
    """``GET /id/{orgId}/{userId}``: the identity service's user description."""
    session = _session_or_none(request)
    if session is None:
        return _bad_token()
    auth = _service(request)
    org_id, user_id = request.path_params["org_id"], request.path_params["user_id"]
    if org_id[:15] != auth.org_id[:15] or user_id[:15] != session.user.user_id[:15]:
        return PlainTextResponse("Bad_Id", status_code=403)
    instance_url = _instance_url(request)
    user = session.user
    body = {
        "id": auth.identity_url(instance_url),
        "asserted_user": True,
        "user_id": user.user_id,
        "organization_id": auth.org_id,
        "username": user.username,
        "nick_name": user.username.split("@", 1)[0],
        "display_name": user.full_name,
        "email": user.email,
        "email_verified": True,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "timezone": user.time_zone,
        "photos": _photos(instance_url),
        "addr_street": None,
        "addr_city": None,
        "addr_state": None,
        "addr_country": None,
        "addr_zip": None,
        "mobile_phone": None,
        "mobile_phone_verified": False,
        "is_lightning_login_user": False,
        "status": {"created_date": None, "body": None},
        "urls": _urls(instance_url, auth.org_id, user.user_id),
        "active": True,
        "user_type": "STANDARD",
        "language": user.language,
        "locale": user.locale,
        "utcOffset": 0,
        "last_modified_date": "2024-01-01T00:00:00Z",
        "is_app_installed": True,
    }
    return json_response(body)


async def userinfo_endpoint(request: Request) -> Response:
    """``GET|POST /services/oauth2/userinfo``: the OpenID Connect view of the same user."""
    session = _session_or_none(request)
    if session is None:
        return _bad_token()
    auth = _service(request)
    instance_url = _instance_url(request)
    user = session.user
    body = {
        "sub": auth.identity_url(instance_url),
        "user_id": user.user_id,
        "organization_id": auth.org_id,
        "preferred_username": user.username,
        "nickname": user.username.split("@", 1)[0],
        "name": user.full_name,
        "email": user.email,
        "email_verified": True,
        "given_name": user.first_name,
        "family_name": user.last_name,
        "zoneinfo": user.time_zone,
        "photos": _photos(instance_url),
        "profile": f"{instance_url.rstrip('/')}/{user.user_id}",
        "picture": _photos(instance_url)["picture"],
        "address": {},
        "is_salesforce_integration_user": False,
        "urls": _urls(instance_url, auth.org_id, user.user_id),
        "active": True,
        "user_type": "STANDARD",
        "language": user.language,
        "locale": user.locale,
        "utcOffset": 0,
        "updated_at": "2024-01-01T00:00:00Z",
        "is_app_installed": True,
    }
    return json_response(body)


def oauth_routes() -> list[BaseRoute]:
    """The OAuth endpoints and the identity URL (no API-usage metering on any of them)."""
    return [
        Route("/services/oauth2/token", token_endpoint, methods=["POST"]),
        Route("/services/oauth2/revoke", revoke_endpoint, methods=["GET", "POST"]),
        Route("/services/oauth2/introspect", introspect_endpoint, methods=["POST"]),
        Route("/services/oauth2/userinfo", userinfo_endpoint, methods=["GET", "POST"]),
        Route("/id/{org_id}/{user_id}", identity_endpoint, methods=["GET"]),
    ]
