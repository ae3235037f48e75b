"""docs/configuration.md is generated from the models and must match them."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from sfsync.config.model import ObjectSync, SyncConfig, SyncDef
from sfsync.connectors.salesforce.config import SalesforceConnection

ROOT = Path(__file__).resolve().parents[3]


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "gen_config_docs", ROOT / "scripts" / "gen_config_docs.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_reference_and_schema_are_up_to_date() -> None:
    generator = _generator()
    committed = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert committed == generator.render(), "run: python scripts/gen_config_docs.py"
    schema = (ROOT / "docs" / "sfsync.schema.json").read_text(encoding="utf-8")
    assert schema == generator.render_schema(), "run: python scripts/gen_config_docs.py"


def test_every_field_is_described_and_documented() -> None:
    text = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    for model in (SyncConfig, SyncDef, ObjectSync, SalesforceConnection):
        for name, info in model.model_fields.items():
            assert info.description, f"{model.__name__}.{name} has no description"
            assert f"| `{info.alias or name}` |" in text
