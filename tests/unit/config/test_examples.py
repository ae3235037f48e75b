"""The shipped examples: the good ones validate, the broken one reports all its problems at once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sfsync.config.validate import load_config, validate_file
from sfsync.spi.registry import Registry

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
ENV = {"SF_CLIENT_ID": "3MVG9client", "SF_USERNAME": "integration@example.com", "PGPASSWORD": "pw"}

# Every deliberate mistake in examples/broken.yaml, by line and field. One run finds them all.
BROKEN = [
    (5, "stat"),
    (11, "connections.crm.api_version"),
    (13, "connections.crm.auth.flow"),
    (16, "connections.warehouse.type"),
    (18, "connections.warehouse.password"),
    (21, "connections.files.url"),
    (22, "connections.files.batch_size"),
    (28, "connections.erp.auth.password"),
    (29, "connections.erp.auth.securty_token"),
    (34, "syncs[0].target"),
    (35, "syncs[0].mode"),
    (36, "syncs[0].interval"),
    (40, "syncs[0].objects[0].where"),
    (41, "syncs[0].objects[1].name"),
    (42, "syncs[0].objects[1].deletes"),
    (44, "syncs[1].name"),
    (46, "syncs[1].target"),
    (48, "syncs[1].interval"),
    (51, "syncs[1].objects[0].fields"),
    (52, "syncs[1].objects[0].where"),
    (54, "syncs[1].retry.max_attempts"),
    (56, "syncs[1].retry.max_delay"),
    (58, "syncs[2].mode"),
    (58, "syncs[2].name"),
    (61, "syncs[2].objects"),
]


@pytest.mark.parametrize("name", ["demo.yaml", "postgres.yaml", "two-way.yaml"])
def test_good_examples_validate(name: str, registry: Registry, tmp_path: Path) -> None:
    key = tmp_path / "sf.pem"
    key.write_text("-----BEGIN PRIVATE KEY-----\n", encoding="utf-8")
    env = {**ENV, "SF_PRIVATE_KEY_FILE": str(key)}
    assert validate_file(EXAMPLES / name, registry, env=env) == []


def test_demo_runs_without_any_environment(registry: Registry) -> None:
    config = load_config(EXAMPLES / "demo.yaml", registry, env={})
    assert [c.type for c in config.connections.values()] == ["salesforce", "sqlite"]


def test_broken_example_reports_every_problem_at_once(registry: Registry) -> None:
    problems = validate_file(EXAMPLES / "broken.yaml", registry, env={"SF_CLIENT_ID": "x"})
    assert [(p.line, p.field) for p in problems] == BROKEN
    assert all(p.fix for p in problems)
    # Each deliberate mistake is annotated with a comment on its own line in the file.
    lines = (EXAMPLES / "broken.yaml").read_text(encoding="utf-8").splitlines()
    for problem in problems:
        assert problem.line is not None
        assert "#" in lines[problem.line - 1] or problem.field == "syncs[2].mode", problem


def test_json_schema_describes_the_file() -> None:
    schema = json.loads((EXAMPLES.parent / "docs" / "sfsync.schema.json").read_text("utf-8"))
    assert set(schema["properties"]) == {"version", "state", "defaults", "connections", "syncs"}
    assert schema["additionalProperties"] is False
    sections = schema["properties"]["connections"]["additionalProperties"]
    assert sorted(sections["discriminator"]["mapping"]) == [
        "mariadb",
        "mysql",
        "postgres",
        "salesforce",
        "sqlite",
    ]
    for name in ("demo.yaml", "postgres.yaml", "two-way.yaml", "broken.yaml"):
        first = (EXAMPLES / name).read_text("utf-8").splitlines()[0]
        assert first == "# yaml-language-server: $schema=../docs/sfsync.schema.json"


@pytest.mark.parametrize("name", ["demo.yaml", "postgres.yaml", "two-way.yaml"])
def test_good_examples_validate_with_the_installed_connectors(name: str, tmp_path: Path) -> None:
    key = tmp_path / "sf.pem"
    key.write_text("-----BEGIN PRIVATE KEY-----\n", encoding="utf-8")
    env = {**ENV, "SF_PRIVATE_KEY_FILE": str(key)}
    assert validate_file(EXAMPLES / name, Registry.from_entry_points(), env=env) == []
