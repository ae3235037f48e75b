"""The ``salesforce`` connection section: where the org is and how to log in.

``auth`` is a union discriminated by ``flow``; each flow has its own model, so that a JWT
section with a ``client_secret`` is refused instead of silently ignored. Every credential is
a :class:`~pydantic.SecretStr`: it prints as ``**********`` in reprs, logs and errors, and
only the client reads it, with ``get_secret_value()``.

Example::

    crm:
      type: salesforce
      login_url: https://login.salesforce.com
      auth:
        flow: jwt_bearer
        client_id: ${SF_CLIENT_ID}
        username: integration@example.com
        private_key_file: /run/secrets/sf.key
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import (
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

_API_VERSION = re.compile(r"\d{2,3}\.0")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class JwtBearerAuth(_Frozen):
    """OAuth 2.0 JWT bearer flow: server-to-server, no stored password; the production default."""

    flow: Literal["jwt_bearer"] = Field(description="Selects the JWT bearer flow.")
    client_id: str = Field(
        min_length=1, description="Consumer key of the connected app (the JWT `iss` claim)."
    )
    username: str = Field(
        min_length=1, description="Salesforce username the integration acts as (the `sub` claim)."
    )
    private_key_file: Path | None = Field(
        default=None,
        description="PEM file with the RSA private key whose certificate is on the connected "
        "app; a relative path is relative to the configuration file.",
    )
    private_key: SecretStr | None = Field(
        default=None,
        description="The PEM private key itself, usually `${file:...}` or `${SF_PRIVATE_KEY}`; "
        "give this or `private_key_file`, not both.",
    )
    audience: AnyHttpUrl | None = Field(
        default=None,
        description="JWT `aud` claim; defaults to the connection's `login_url`.",
    )

    @field_validator("private_key_file")
    @classmethod
    def _key_file(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        """Resolve a relative path against the configuration file's directory and require
        the file to exist, when the caller says where that is (``context["base_dir"]``)."""
        context = info.context if isinstance(info.context, dict) else {}
        base_dir = context.get("base_dir")
        if value is None or not isinstance(base_dir, Path):
            return value
        path = value.expanduser()
        path = path if path.is_absolute() else base_dir / path
        if not path.is_file():
            raise ValueError(f"private key file {path} does not exist")
        return path

    @model_validator(mode="after")
    def _one_key(self) -> Self:
        if (self.private_key_file is None) == (self.private_key is None):
            raise PydanticCustomError(
                "private_key",
                "give exactly one of private_key_file or private_key",
                {"fix": "set private_key_file: /path/key.pem, or private_key: ${file:...}"},
            )
        return self


class ClientCredentialsAuth(_Frozen):
    """OAuth 2.0 client credentials flow; needs the org's My Domain URL as `login_url`."""

    flow: Literal["client_credentials"] = Field(description="Selects the client credentials flow.")
    client_id: str = Field(min_length=1, description="Consumer key of the connected app.")
    client_secret: SecretStr = Field(description="Consumer secret of the connected app.")


class RefreshTokenAuth(_Frozen):
    """OAuth 2.0 refresh token flow, for a token obtained once through the web flow."""

    flow: Literal["refresh_token"] = Field(description="Selects the refresh token flow.")
    client_id: str = Field(min_length=1, description="Consumer key of the connected app.")
    client_secret: SecretStr | None = Field(
        default=None, description="Consumer secret, if the connected app requires it."
    )
    refresh_token: SecretStr = Field(description="The long-lived refresh token.")


class PasswordAuth(_Frozen):
    """Username-password login; legacy, and admins may block it. Prefer `jwt_bearer`.

    With `client_id` and `client_secret` the OAuth username-password flow is used; without
    them, the SOAP `login()` call (as simple-salesforce does).
    """

    flow: Literal["password"] = Field(description="Selects username-password login.")
    username: str = Field(min_length=1, description="Salesforce username.")
    password: SecretStr = Field(description="The user's password.")
    security_token: SecretStr | None = Field(
        default=None,
        description="Security token appended to the password, unless the login IP is trusted.",
    )
    client_id: str | None = Field(
        default=None, description="Consumer key, for the OAuth variant of this flow."
    )
    client_secret: SecretStr | None = Field(
        default=None, description="Consumer secret, for the OAuth variant of this flow."
    )

    @model_validator(mode="after")
    def _both_or_neither(self) -> Self:
        if (self.client_id is None) != (self.client_secret is None):
            raise PydanticCustomError(
                "client_pair",
                "client_id and client_secret go together",
                {"fix": "give both (OAuth username-password flow) or neither (SOAP login)"},
            )
        return self


class AccessTokenAuth(_Frozen):
    """A ready access token (session id), for scripts and the emulator; it is never refreshed."""

    flow: Literal["access_token"] = Field(description="Selects a fixed access token.")
    access_token: SecretStr = Field(description="The access token or session id.")


SalesforceAuth = Annotated[
    JwtBearerAuth | ClientCredentialsAuth | RefreshTokenAuth | PasswordAuth | AccessTokenAuth,
    Field(discriminator="flow"),
]
"""Any one of the login flows, chosen by its ``flow`` key."""

AUTH_FLOWS: tuple[str, ...] = (
    "jwt_bearer",
    "client_credentials",
    "refresh_token",
    "password",
    "access_token",
)


class StreamingSettings(_Frozen):
    """How `mode: realtime` syncs follow Change Data Capture (the Pub/Sub API, gRPC)."""

    pubsub_endpoint: str = Field(
        default="api.pubsub.salesforce.com:7443",
        pattern=r"^[A-Za-z0-9_.\-\[\]:]+:\d{1,5}$",
        description="`host:port` of the Pub/Sub API: Salesforce's global endpoint, or the "
        "emulator's `--grpc-port` (`127.0.0.1:7011`).",
    )
    tls: bool = Field(
        default=True,
        description="Speak TLS to the Pub/Sub API (always for Salesforce; the emulator serves "
        "plain gRPC unless started with a certificate).",
    )
    ca_file: Path | None = Field(
        default=None,
        description="PEM file of a private CA to trust for the Pub/Sub API (the emulator's).",
    )
    transports: tuple[Literal["pubsub", "cometd"], ...] = Field(
        default=("pubsub", "cometd"),
        min_length=1,
        description="Streaming APIs to use, in order of preference: `pubsub` (the Pub/Sub API, "
        "gRPC on port 7443) and `cometd` (the Streaming API over HTTPS, for networks that "
        "block gRPC). After the last one fails, the object is polled.",
    )
    fallback_after: int = Field(
        default=5,
        ge=1,
        description="Consecutive stream failures (with backoff between them) after which the "
        "next transport is used; after the last, the object is polled until streaming is tried "
        "again.",
    )
    fallback_interval: float = Field(
        default=10.0,
        gt=0,
        description="Seconds between polls while an object is on the polling fallback.",
    )
    retry_stream_after: float = Field(
        default=300.0,
        gt=0,
        description="Seconds on the polling fallback before streaming is tried again.",
    )


class SourceSettings(_Frozen):
    """How syncs read this org's snapshots and polls (docs/salesforce-source.md explains them)."""

    bulk_threshold: int | None = Field(
        default=10_000,
        ge=1,
        description="Records of an object (`SELECT COUNT()`) from which its snapshot is read "
        "through Bulk API 2.0 query jobs instead of REST queries; `null` never uses Bulk.",
    )
    chunk_records: int | None = Field(
        default=250_000,
        ge=1,
        description="A Bulk snapshot of a large object is read as consecutive Id ranges growing "
        "up to about this many records, one query job each (250,000 is the most Salesforce's "
        "PK chunking allows); `null` reads every object with one job.",
    )
    poll_bulk_threshold: int | None = Field(
        default=10_000,
        ge=1,
        description="Changes still to read after a poll's first REST page (2,000 records) from "
        "which the rest of that poll is read through one Bulk API 2.0 `queryAll` job (10,000 "
        "records a call); `null` always polls over REST.",
    )


class SinkSettings(_Frozen):
    """How syncs write into this org (docs/salesforce-sink.md explains each choice)."""

    bulk_threshold: int = Field(
        default=5000,
        ge=1,
        description="Rows of one object and operation in one batch from which the Bulk API "
        "2.0 is used instead of sObject Collections (200 records a call).",
    )
    budget_pressure: float = Field(
        default=0.8,
        gt=0,
        le=1,
        description="Share of the org's daily API allocation in use above which the Bulk API "
        "is used as soon as it needs fewer calls than Collections would.",
    )
    max_batch: int = Field(
        default=10000,
        ge=1,
        description="The most events the sink takes in one write.",
    )
    collections_size: int = Field(
        default=200,
        ge=1,
        le=200,
        description="Records per sObject Collections call (Salesforce's maximum is 200).",
    )
    concurrency: int = Field(
        default=4,
        ge=1,
        le=25,
        description="Collections calls in flight at once; rows of one parent always share a "
        "call or go one after another, never in parallel (UNABLE_TO_LOCK_ROW).",
    )
    bulk_job_rows: int = Field(
        default=5000,
        ge=200,
        description="Rows per Bulk API 2.0 job: a larger group is split into jobs of about "
        "this size (rows of one parent always share a job), so that building and uploading "
        "the next job overlaps the org's processing of the current one.",
    )
    bulk_jobs_in_flight: int = Field(
        default=2,
        ge=1,
        le=10,
        description="Bulk API 2.0 jobs of one write open at once (each counts against the "
        "org's concurrent-job limits).",
    )
    insert_markers: dict[str, str] = Field(
        default_factory=dict,
        description="Per object keyed by `Id`, a text field that receives the source row's key "
        "on insert, so that a retried insert finds the record its first attempt created "
        "(`{Contact: Sfsync_Key__c}`).",
    )


class SalesforceConnection(_Frozen):
    """A Salesforce org (or the local emulator) and how to log in to it."""

    type: Literal["salesforce"] = Field(description="Selects the Salesforce connector.")
    login_url: AnyHttpUrl = Field(
        default=AnyHttpUrl("https://login.salesforce.com"),
        description="Where to log in: https://login.salesforce.com, https://test.salesforce.com "
        "for sandboxes, or the org's My Domain URL.",
    )
    instance_url: AnyHttpUrl | None = Field(
        default=None,
        description="The org's own URL. Login responses supply it, so it is needed only with "
        "`flow: access_token`.",
    )
    api_version: str = Field(
        default="62.0",
        description='REST API version, such as "62.0" (quote it in YAML).',
    )
    client_name: str = Field(
        default="sfsync",
        min_length=1,
        max_length=40,
        pattern=r"^[A-Za-z0-9_\-.]+$",
        description="Sent as `Sforce-Call-Options: client=...` on every call, so that change "
        "events of our own writes can be recognised and not echoed back.",
    )
    request_timeout: float = Field(
        default=120.0, gt=0, description="Seconds to wait for one HTTP response."
    )
    auth: SalesforceAuth = Field(description="How to log in; `flow` selects the method.")
    streaming: StreamingSettings = Field(
        default_factory=StreamingSettings,
        description="Change Data Capture streaming, used by syncs with `mode: realtime`.",
    )
    source: SourceSettings = Field(
        default_factory=SourceSettings,
        description="How syncs read this org: snapshots and polls, over REST or Bulk API.",
    )
    sink: SinkSettings = Field(
        default_factory=SinkSettings,
        description="How syncs write into Salesforce (Collections or Bulk API, batch sizes).",
    )

    @field_validator("api_version", mode="before")
    @classmethod
    def _api_version(cls, value: object) -> object:
        # Unquoted `62.0` arrives as a float and `62` as an int; both mean "62.0".
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = f"{float(value):.1f}"
        if isinstance(value, str):
            value = value.strip().removeprefix("v")
            if not _API_VERSION.fullmatch(value):
                raise ValueError(f'API version must look like "62.0", not {value!r}')
        return value

    @model_validator(mode="after")
    def _instance_for_token(self) -> Self:
        if isinstance(self.auth, AccessTokenAuth) and self.instance_url is None:
            raise PydanticCustomError(
                "instance_url",
                "flow access_token needs instance_url: there is no login to supply it",
                {"fix": "add instance_url: https://<your domain>.my.salesforce.com"},
            )
        return self
