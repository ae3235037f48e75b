"""Whatever a file holds, validation answers with problems (or a config), never a crash."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sfsync.config.load import parse_document
from sfsync.config.model import SyncConfig
from sfsync.config.problems import ConfigProblems
from sfsync.config.validate import validate_document

from .conftest import GOOD, make_registry

REGISTRY = make_registry()
BASE: dict[str, Any] = {
    **yaml.safe_load(textwrap.dedent(GOOD)),
    "defaults": {"retry": {"max_attempts": 3}, "dead_letters": {"max_per_run": 5}},
}
KEYS = [
    "version", "state", "url", "connections", "type", "auth", "flow", "syncs", "name",
    "source", "target", "mode", "interval", "objects", "fields", "where", "retry", "key",
    "password", "username", "client_id", "exclude_fields", "deletes", "table", "defaults",
    "dead_letters", "max_attempts", "base_delay", "max_delay",
]  # fmt: skip

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-5, 5)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(["all", "crm", "db", "sqlite", "salesforce", "password", "30s", "${X}"])
    | st.text(max_size=8)
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(node, dict):
        for key, child in node.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            found += _paths(child, (*prefix, index))
    return found


PATHS = _paths(BASE)


def _replace(node: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    copy: Any = dict(node) if isinstance(node, dict) else list(node)
    copy[path[0]] = _replace(node[path[0]], path[1:], value)
    return copy


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.sampled_from(PATHS), value=values)
def test_any_replacement_gives_problems_not_crashes(path: tuple[Any, ...], value: Any) -> None:
    text = yaml.safe_dump(_replace(BASE, path, value), sort_keys=False)
    doc = parse_document(text, file="f.yaml", env={}, base_dir=Path("."))
    try:
        config = validate_document(doc, REGISTRY)
    except ConfigProblems as exc:
        for problem in exc.problems:
            assert problem.message
            assert problem.fix
            assert problem.line is None or problem.line >= 1
    else:
        assert isinstance(config, SyncConfig)
