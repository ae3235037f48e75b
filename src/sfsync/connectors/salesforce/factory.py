"""Building the connector's parts from a validated connection section."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from sfsync.connectors.salesforce.auth import (
    ClientCredentials,
    Grant,
    JwtBearer,
    RefreshToken,
    SoapLogin,
    StaticSession,
    UsernamePassword,
)
from sfsync.connectors.salesforce.client import SalesforceClient
from sfsync.connectors.salesforce.config import (
    AccessTokenAuth,
    ClientCredentialsAuth,
    JwtBearerAuth,
    PasswordAuth,
    RefreshTokenAuth,
    SalesforceConnection,
)
from sfsync.connectors.salesforce.pubsub import Credentials, PubSubClient
from sfsync.connectors.salesforce.source import ObjectSelection, SalesforceSource
from sfsync.connectors.salesforce.stream import StreamingSource, StreamOptions
from sfsync.core.errors import ConfigError
from sfsync.spi.clock import Clock
from sfsync.spi.spec import ConnectorRequest

if TYPE_CHECKING:
    from sfsync.connectors.salesforce.sink import SalesforceSink


def _url(value: object) -> str:
    return str(value).rstrip("/")


def grant_for(conn: SalesforceConnection) -> Grant:
    """The OAuth grant (or SOAP login) that ``conn.auth`` describes."""
    auth = conn.auth
    login = _url(conn.login_url)
    if isinstance(auth, JwtBearerAuth):
        if auth.private_key is not None:
            key = auth.private_key.get_secret_value()
        else:
            assert auth.private_key_file is not None  # the model requires one of the two
            try:
                key = auth.private_key_file.read_text()
            except OSError as exc:
                raise ConfigError(
                    f"cannot read private_key_file {auth.private_key_file}: {exc.strerror}",
                    hint="point it at the PEM key whose certificate is on the connected app",
                ) from exc
        return JwtBearer(
            client_id=auth.client_id,
            username=auth.username,
            private_key=key,
            login_url=login,
            audience=_url(auth.audience) if auth.audience else None,
        )
    if isinstance(auth, ClientCredentialsAuth):
        return ClientCredentials(
            client_id=auth.client_id,
            secret=auth.client_secret.get_secret_value(),
            login_url=_url(conn.instance_url) if conn.instance_url else login,
        )
    if isinstance(auth, RefreshTokenAuth):
        return RefreshToken(
            client_id=auth.client_id,
            refresh_token=auth.refresh_token.get_secret_value(),
            secret=auth.client_secret.get_secret_value() if auth.client_secret else None,
            login_url=login,
        )
    if isinstance(auth, PasswordAuth):
        token = auth.security_token.get_secret_value() if auth.security_token else ""
        if auth.client_id and auth.client_secret:
            return UsernamePassword(
                client_id=auth.client_id,
                secret=auth.client_secret.get_secret_value(),
                username=auth.username,
                password=auth.password.get_secret_value(),
                security_token=token,
                login_url=login,
            )
        return SoapLogin(
            username=auth.username,
            password=auth.password.get_secret_value(),
            security_token=token,
            login_url=login,
            api_version=conn.api_version,
        )
    if isinstance(auth, AccessTokenAuth):
        if conn.instance_url is None:
            raise ConfigError(
                "flow access_token needs instance_url",
                hint="set instance_url to the org's URL (the emulator prints it)",
            )
        return StaticSession(
            access_token=auth.access_token.get_secret_value(),
            instance_url=_url(conn.instance_url),
        )
    raise ConfigError(f"unsupported auth flow {auth!r}")  # pragma: no cover - union is closed


def build_client(conn: SalesforceConnection, clock: Clock) -> SalesforceClient:
    """A client for ``conn`` (not yet logged in)."""
    return SalesforceClient(
        grant=grant_for(conn),
        clock=clock,
        api_version=conn.api_version,
        client_name=conn.client_name,
        timeout=conn.request_timeout,
    )


def build_source(
    conn: SalesforceConnection, request: ConnectorRequest
) -> SalesforceSource | StreamingSource:
    """The source a sync reads Salesforce with.

    Options (``request.options``): ``overlap`` (seconds re-read before the polling cursor);
    ``mode`` (the sync's mode: ``realtime`` follows Change Data Capture with the
    connection's ``streaming`` settings).
    """
    overlap = request.options.get("overlap", 60.0)
    rest = SalesforceSource(
        build_client(conn, request.clock),
        [
            ObjectSelection(name=e.name, fields=e.fields, exclude=e.exclude, where=e.where)
            for e in request.entities
        ],
        overlap=float(overlap) if isinstance(overlap, int | float) else 60.0,
        bulk_threshold=conn.source.bulk_threshold,
        chunk_records=conn.source.chunk_records,
        poll_bulk_threshold=conn.source.poll_bulk_threshold,
    )
    if request.options.get("mode") != "realtime":
        return rest
    settings = conn.streaming

    def pubsub(credentials: Callable[[], Credentials]) -> PubSubClient:
        return PubSubClient(
            settings.pubsub_endpoint,
            credentials,
            tls=settings.tls,
            ca_file=str(settings.ca_file) if settings.ca_file else None,
        )

    return StreamingSource(
        rest,
        pubsub,
        StreamOptions(
            fallback_after=settings.fallback_after,
            fallback_interval=settings.fallback_interval,
            retry_stream_after=settings.retry_stream_after,
            transports=tuple(settings.transports),
        ),
    )


def build_sink(conn: SalesforceConnection, request: ConnectorRequest) -> SalesforceSink:
    """The sink a sync writes Salesforce with: each entity's ``name`` is the object and its
    ``key`` the field rows are matched by (``Id`` or an external id field); the connection's
    ``sink`` section sets batch sizes and the Collections/Bulk threshold."""
    from sfsync.connectors.salesforce.sink import SalesforceSink

    return SalesforceSink(
        build_client(conn, request.clock),
        keys={e.name: e.key for e in request.entities},
        settings=conn.sink,
        clock=request.clock,
    )
