"""Salesforce errors, classified once into the engine's taxonomy.

:func:`classify` is a table lookup on Salesforce's own ``errorCode`` first (it says far more
than the HTTP status), then on the status. Every client call funnels its failures through
here, so the rest of sfsync only ever sees :mod:`sfsync.core.errors` classes, each with the
Salesforce code and a hint on how to fix it.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from sfsync.core.errors import (
    FatalError,
    RateLimitError,
    RetryableError,
    SkippableError,
    SyncError,
)

# How long to wait when Salesforce says the org's API allocation is spent. Salesforce sends no
# Retry-After; the 24-hour allocation frees up gradually, so probing every few minutes is
# cheap and recovers soon after capacity returns.
REQUEST_LIMIT_BACKOFF = 300.0

_RETRYABLE = frozenset(
    {
        "UNABLE_TO_LOCK_ROW",
        "QUERY_TIMEOUT",
        "SERVER_UNAVAILABLE",
        "UNKNOWN_EXCEPTION",
        "TXN_SECURITY_METERING_ERROR",
        "INVALID_QUERY_LOCATOR",  # the query must be restarted, which the caller does
    }
)

# Problems with one record's data: dead-letter that record, keep syncing the others.
_SKIPPABLE = frozenset(
    {
        "REQUIRED_FIELD_MISSING",
        "STRING_TOO_LONG",
        "INVALID_EMAIL_ADDRESS",
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
        "DUPLICATE_VALUE",
        "DUPLICATES_DETECTED",
        "FIELD_CUSTOM_VALIDATION_EXCEPTION",
        "FIELD_INTEGRITY_EXCEPTION",
        "INVALID_CROSS_REFERENCE_KEY",
        "ENTITY_IS_DELETED",
        "ENTITY_IS_LOCKED",
        "MALFORMED_ID",
        "NUMBER_OUTSIDE_VALID_RANGE",
        "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY",
        "INVALID_TYPE_ON_FIELD_IN_RECORD",
        "JSON_PARSER_ERROR",
        "NOT_FOUND",
        "ALL_OR_NONE_OPERATION_ROLLED_BACK",
        "INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY",
        "DUPLICATE_EXTERNAL_ID",  # our name for a 300 answer: the key matches several records
    }
)

_FATAL_HINTS: Mapping[str, str] = MappingProxyType(
    {
        "INVALID_SESSION_ID": (
            "the session was refused even after re-authenticating; check that the connected "
            "app and user are still authorised and the session timeout is not tiny"
        ),
        "API_DISABLED_FOR_ORG": "this org's edition has no API access; use an edition with API",
        "MALFORMED_QUERY": "the generated SOQL was refused; check the object's `where` filter",
        "INVALID_FIELD": (
            "a configured field does not exist or is not visible to the integration user; "
            "check field names and field-level security"
        ),
        "INVALID_TYPE": (
            "the object does not exist or is not visible to the integration user; check the "
            "object name (custom objects end in __c) and the user's permissions"
        ),
        "INVALID_TYPE_FOR_OPERATION": "this object does not support the operation; exclude it",
        "INVALID_FIELD_FOR_INSERT_UPDATE": "the mapping writes a read-only field; remove it",
        "INSUFFICIENT_ACCESS_OR_READONLY": "grant the integration user access to this object",
        "EXCEEDED_ID_LIMIT": "narrow the replication window",
        "INVALID_REPLICATION_DATE": "the replication window is outside what Salesforce keeps",
    }
)


def classify(
    status: int,
    code: str | None,
    message: str,
    *,
    what: str = "Salesforce call",
) -> SyncError:
    """The engine error for a Salesforce failure.

    Args:
        status: the HTTP status.
        code: Salesforce's ``errorCode`` (REST) or ``statusCode`` (DML results), if any.
        message: Salesforce's message.
        what: what we were doing, for the error text (``"query Account"``).
    """
    text = f"{what} failed: {message}"
    if code == "REQUEST_LIMIT_EXCEEDED":
        return RateLimitError(
            text,
            retry_after=REQUEST_LIMIT_BACKOFF,
            code=code,
            hint=(
                "the org's API allocation is spent; sfsync waits and retries. Lower sync "
                "frequency or set an API budget so other integrations keep their share"
            ),
        )
    if code in _RETRYABLE:
        return RetryableError(text, code=code)
    if code in _SKIPPABLE:
        return SkippableError(text, code=code, hint="fix the record's data; it is in dead letters")
    if code is not None and code in _FATAL_HINTS:
        return FatalError(text, code=code, hint=_FATAL_HINTS[code])
    if status in (420, 429):
        return RateLimitError(text, code=code or str(status))
    if status >= 500 or status == 408:
        return RetryableError(text, code=code or str(status))
    if status == 401:
        return FatalError(text, code=code or "401", hint=_FATAL_HINTS["INVALID_SESSION_ID"])
    if status == 403:
        return FatalError(
            text, code=code or "403", hint="grant the integration user the needed permission"
        )
    if status == 404:
        return SkippableError(text, code=code or "NOT_FOUND")
    if status == 400 and code:
        # An unknown code on a 400 is about the request's data more often than not.
        return SkippableError(text, code=code)
    return FatalError(
        text,
        code=code or str(status),
        hint="unexpected answer from Salesforce; see the message and report it if it persists",
    )


_TOKEN_HINTS: Mapping[str, str] = MappingProxyType(
    {
        "invalid_client_id": "the connected app's consumer key (client_id) is wrong",
        "invalid_client": "the client secret does not match the connected app",
        "unsupported_grant_type": (
            "this flow is not enabled for the connected app (for client credentials, enable it "
            "and set a Run-As user; log in at the org's My Domain URL)"
        ),
        "invalid_app_access": "pre-authorise the user for the connected app (admin approved)",
        "inactive_user": "the integration user is deactivated",
        "inactive_org": "the org is inactive",
    }
)


def classify_token_error(status: int, error: str, description: str, *, flow: str) -> SyncError:
    """The engine error for a refused OAuth token request (``{"error", "error_description"}``)."""
    text = f"Salesforce refused the {flow} login: {error}: {description}"
    if error == "rate_limit_exceeded" or status in (420, 429):
        return RateLimitError(text, code=error, retry_after=60.0)
    if status >= 500:
        return RetryableError(text, code=error)
    hint = _TOKEN_HINTS.get(error)
    if hint is None and error == "invalid_grant":
        hint = _invalid_grant_hint(description, flow)
    return FatalError(text, code=error, hint=hint or "check the connection's auth settings")


def _invalid_grant_hint(description: str, flow: str) -> str:
    lowered = description.lower()
    if "audience" in lowered:
        return "set login_url to https://login.salesforce.com (or test.salesforce.com)"
    if "approved" in lowered:
        return "pre-authorise the user's profile or permission set for the connected app"
    if "expired" in lowered:
        if flow == "refresh_token":
            return "the refresh token was revoked or expired; obtain a new one"
        return "the machine clock may be off; sync it (JWT exp is checked strictly)"
    if "authentication failure" in lowered or "password" in lowered:
        return "check the username, password and security token"
    return "check the username and the connected app's settings"
