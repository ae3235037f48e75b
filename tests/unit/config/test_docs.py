"""docs/configuration.md is generated from the models and must match them."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from sfsync.config.model import ObjectSync, SyncConfig, SyncDef
from sfsync.config.validate import parse_config
from sfsync.connectors.salesforce.config import SalesforceConnection

from .conftest import make_registry

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


def test_the_complete_example_is_valid(tmp_path: Path) -> None:
    text = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    example = text.split("## A complete example\n\n```yaml\n", 1)[1].split("```", 1)[0]
    key = tmp_path / "key.pem"
    key.write_text("pem", encoding="utf-8")
    (tmp_path / "pg_password").write_text("pw", encoding="utf-8")
    example = example.replace("/run/secrets/sf_jwt_key.pem", str(key)).replace(
        "/run/secrets/pg_password", str(tmp_path / "pg_password")
    )
    config = parse_config(example, make_registry(), env={"SF_CLIENT_ID": "c"})
    assert config.syncs[0].objects[0].target_table == "accounts"
