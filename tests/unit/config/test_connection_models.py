"""The Salesforce and SQL connection sections, as their connectors' ConnectorSpec.config models."""

from __future__ import annotations

from typing import Any

import pydantic
import pytest

from sfsync.connectors.salesforce.config import (
    AUTH_FLOWS,
    AccessTokenAuth,
    ClientCredentialsAuth,
    JwtBearerAuth,
    PasswordAuth,
    RefreshTokenAuth,
    SalesforceConnection,
)
from sfsync.connectors.sql.config import (
    SQL_CONNECTION_MODELS,
    MySqlConnection,
    PostgresConnection,
    SqliteConnection,
    mask_url,
)


def sf(**auth: Any) -> dict[str, Any]:
    return {"type": "salesforce", "auth": auth}


@pytest.mark.parametrize(
    ("auth", "model"),
    [
        (
            {"flow": "jwt_bearer", "client_id": "c", "username": "u", "private_key_file": "k.pem"},
            JwtBearerAuth,
        ),
        (
            {"flow": "client_credentials", "client_id": "c", "client_secret": "s"},
            ClientCredentialsAuth,
        ),
        ({"flow": "refresh_token", "client_id": "c", "refresh_token": "r"}, RefreshTokenAuth),
        ({"flow": "password", "username": "u", "password": "p"}, PasswordAuth),
        (
            {
                "flow": "password",
                "username": "u",
                "password": "p",
                "client_id": "c",
                "client_secret": "s",
                "security_token": "t",
            },
            PasswordAuth,
        ),
    ],
)
def test_each_flow_selects_its_model(auth: dict[str, Any], model: type) -> None:
    conn = SalesforceConnection.model_validate(sf(**auth))
    assert type(conn.auth) is model
    assert conn.auth.flow in AUTH_FLOWS


def test_access_token_needs_instance_url() -> None:
    with pytest.raises(pydantic.ValidationError, match="needs instance_url"):
        SalesforceConnection.model_validate(sf(flow="access_token", access_token="t"))
    conn = SalesforceConnection.model_validate(
        {**sf(flow="access_token", access_token="t"), "instance_url": "http://127.0.0.1:8765"}
    )
    assert isinstance(conn.auth, AccessTokenAuth)


@pytest.mark.parametrize(
    "auth",
    [
        {"flow": "jwt_bearer", "client_id": "c", "username": "u"},
        {
            "flow": "jwt_bearer",
            "client_id": "c",
            "username": "u",
            "private_key_file": "k",
            "private_key": "pem",
        },
        {"flow": "password", "username": "u", "password": "p", "client_id": "c"},
        {
            "flow": "jwt_bearer",
            "client_id": "c",
            "username": "u",
            "private_key_file": "k",
            "client_secret": "not for this flow",
        },
    ],
)
def test_flow_rules(auth: dict[str, Any]) -> None:
    with pytest.raises(pydantic.ValidationError):
        SalesforceConnection.model_validate(sf(**auth))


@pytest.mark.parametrize(
    ("written", "version"), [(62.0, "62.0"), (62, "62.0"), ("v61.0", "61.0"), ("59.0", "59.0")]
)
def test_api_version_forms(written: object, version: str) -> None:
    conn = SalesforceConnection.model_validate(
        {**sf(flow="password", username="u", password="p"), "api_version": written}
    )
    assert conn.api_version == version


def test_defaults_and_secrets_hidden() -> None:
    conn = SalesforceConnection.model_validate(sf(flow="password", username="u", password="pw-x"))
    assert str(conn.login_url) == "https://login.salesforce.com/"
    assert conn.client_name == "sfsync"
    assert "pw-x" not in repr(conn)
    assert "pw-x" not in str(conn.model_dump())


@pytest.mark.parametrize(
    ("section", "model"),
    [
        (
            {"type": "postgres", "url": "postgresql://u@h:5432/db", "schema": "sf"},
            PostgresConnection,
        ),
        ({"type": "postgres", "url": "postgresql+psycopg://u@h/db"}, PostgresConnection),
        ({"type": "mysql", "url": "mysql://u@h:3306/db"}, MySqlConnection),
        ({"type": "mariadb", "url": "mariadb://u@h/db"}, MySqlConnection),
        ({"type": "sqlite", "url": "sqlite:///x.db"}, SqliteConnection),
        ({"type": "sqlite", "url": "sqlite:///:memory:"}, SqliteConnection),
    ],
)
def test_sql_models(section: dict[str, Any], model: type[pydantic.BaseModel]) -> None:
    assert SQL_CONNECTION_MODELS[section["type"]] is model
    assert type(model.model_validate(section)) is model


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"type": "postgres", "url": "mysql://u@h/db"}, "url must start with postgresql://"),
        ({"type": "postgres", "url": "postgresql:///db"}, "names no host"),
        ({"type": "postgres", "url": "postgresql://u@h:99999/db"}, "not a valid URL"),
        ({"type": "mysql", "url": "postgresql://u@h/db"}, "url must start with mysql://"),
        ({"type": "sqlite", "url": "x.db"}, "url must start with sqlite://"),
        ({"type": "postgres", "url": "postgresql://h/db", "schema": "bad-name"}, "pattern"),
    ],
)
def test_sql_url_rules(section: dict[str, Any], message: str) -> None:
    model = SQL_CONNECTION_MODELS[section["type"]]
    with pytest.raises(pydantic.ValidationError, match=message) as caught:
        model.model_validate(section)
    # A URL may hold a password: the message must not repeat it.
    assert "u@h" not in str(caught.value).split("input_value")[0]


def test_url_password_is_masked() -> None:
    conn = PostgresConnection.model_validate(
        {"type": "postgres", "url": "postgresql://sync:pw123@db:5432/a", "password": "p2"}
    )
    assert conn.display_url == "postgresql://sync:****@db:5432/a"
    assert "pw123" not in repr(conn)
    assert "p2" not in repr(conn)
    assert mask_url("sqlite:///x.db") == "sqlite:///x.db"
