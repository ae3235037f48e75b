"""The shipped examples: the good ones validate, the broken one reports all its problems at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from sfsync.config.validate import load_config, validate_file
from sfsync.spi.registry import Registry

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
ENV = {"SF_CLIENT_ID": "3MVG9client", "SF_USERNAME": "integration@example.com", "PGPASSWORD": "pw"}

# Every deliberate mistake in examples/broken.yaml, by line and field. One run finds them all.
BROKEN = [
    (4, "stat"),
    (10, "connections.crm.api_version"),
    (12, "connections.crm.auth.flow"),
    (15, "connections.warehouse.type"),
    (17, "connections.warehouse.password"),
    (20, "connections.files.url"),
    (21, "connections.files.batch_size"),
    (27, "connections.erp.auth.password"),
    (28, "connections.erp.auth.securty_token"),
    (33, "syncs[0].target"),
    (34, "syncs[0].mode"),
    (35, "syncs[0].interval"),
    (39, "syncs[0].objects[0].where"),
    (40, "syncs[0].objects[1].name"),
    (41, "syncs[0].objects[1].deletes"),
    (43, "syncs[1].name"),
    (45, "syncs[1].target"),
    (47, "syncs[1].interval"),
    (50, "syncs[1].objects[0].fields"),
    (51, "syncs[1].objects[0].where"),
    (53, "syncs[1].retry.max_attempts"),
    (55, "syncs[1].retry.max_delay"),
    (57, "syncs[2].mode"),
    (57, "syncs[2].name"),
    (60, "syncs[2].objects"),
]


@pytest.mark.parametrize("name", ["demo.yaml", "postgres.yaml"])
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
