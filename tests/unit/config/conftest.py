"""Fixtures of the configuration tests: a registry of the real connection models, file helpers."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from sfsync.config.problems import Problem
from sfsync.config.validate import validate_file
from sfsync.connectors.salesforce.config import SalesforceConnection
from sfsync.connectors.sql.config import SQL_CONNECTION_MODELS
from sfsync.spi.registry import Registry
from sfsync.spi.spec import ConnectorSpec


class ReadOnlyConnection(BaseModel):
    """A third-party style model that does not declare `type` itself."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    path: str


def _never_built(config: Any, request: Any) -> Any:
    raise AssertionError("validation must not build connectors")


def make_registry() -> Registry:
    """The real connection models; ``readonly`` is a connector that cannot be written to."""
    specs = [
        ConnectorSpec(
            name="salesforce",
            summary="Salesforce",
            config=SalesforceConnection,
            source=_never_built,
            sink=_never_built,
        ),
        ConnectorSpec(
            name="readonly",
            summary="a source-only connector",
            config=ReadOnlyConnection,
            source=_never_built,
        ),
    ]
    specs += [
        ConnectorSpec(name=name, summary=name, config=model, source=_never_built, sink=_never_built)
        for name, model in SQL_CONNECTION_MODELS.items()
    ]
    return Registry(specs)


@pytest.fixture
def registry() -> Registry:
    return make_registry()


Check = Callable[..., list[Problem]]


@pytest.fixture
def check(tmp_path: Path, registry: Registry) -> Check:
    """Write YAML text (dedented) to ``sync.yaml`` and return its problems."""

    def run(text: str, env: dict[str, str] | None = None) -> list[Problem]:
        path = tmp_path / "sync.yaml"
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return validate_file(path, registry, env=env or {})

    return run


GOOD = """
version: 1
connections:
  crm:
    type: salesforce
    auth:
      flow: password
      username: u@example.com
      password: pw-12345
  db:
    type: sqlite
    url: sqlite:///demo.db
syncs:
  - name: accounts
    source: crm
    target: db
    mode: polling
    interval: 30s
    objects:
      - name: Account
        fields: [Id, Name]
"""
