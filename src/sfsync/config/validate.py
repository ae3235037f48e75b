"""Whole-configuration validation: every problem at once, before anything starts.

:func:`load_config` is what the runtime calls; :func:`validate_file` is what
``sfsync validate`` calls. Both read the file with positions (:mod:`sfsync.config.load`), then:

1. validate each connection section with its connector's model, found in the
   :class:`~sfsync.spi.registry.Registry` by ``type``;
   Connector models get the validation context ``{"base_dir": <the file's directory>}``, so
   they can resolve relative paths against the configuration file and check that they exist;
2. validate the rest against :class:`~sfsync.config.model.SyncConfig`, after merging a valid
   ``defaults`` section into the syncs;
3. check what no single model can see: duplicate sync names, syncs naming undefined
   connections or the same connection twice, connectors used in a role they cannot play,
   objects listed twice, two syncs writing the same table, settings that contradict each other.

Steps 1-3 always all run, on the raw data where a model failed, so one pass reports every
problem. A configuration with any problem raises :class:`ConfigProblems`; nothing half-valid
is ever returned.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from sfsync.config.checks import cross_checks
from sfsync.config.explain import did_you_mean, problems_from_errors
from sfsync.config.load import Document, FieldPath, parse_document, read_document
from sfsync.config.model import Connection, SyncConfig, SyncDefaults, inherit_defaults
from sfsync.config.problems import ConfigProblems, Problem
from sfsync.spi.registry import Registry

_CONNECTION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")


def load_config(
    path: Path, registry: Registry, *, env: Mapping[str, str] | None = None
) -> SyncConfig:
    """The validated configuration in the YAML file at ``path``.

    Args:
        path: the configuration file.
        registry: the installed connectors; a connection's ``type`` must name one of them.
        env: the variables ``${NAME}`` references read; the process environment by default.

    Raises:
        ConfigProblems: with every problem found, in file order.
    """
    doc = read_document(path, env=os.environ if env is None else env)
    return validate_document(doc, registry)


def parse_config(
    text: str,
    registry: Registry,
    *,
    file: str = "<string>",
    env: Mapping[str, str] | None = None,
    base_dir: Path | None = None,
) -> SyncConfig:
    """Like :func:`load_config`, for YAML already in memory (tests, the admin API).

    Args:
        file: the name problems show.
        base_dir: what relative paths (``${file:...}``, key files) are relative to; the
            working directory by default.

    Raises:
        ConfigProblems: with every problem found, in file order.
    """
    doc = parse_document(
        text,
        file=file,
        env=os.environ if env is None else env,
        base_dir=Path.cwd() if base_dir is None else base_dir,
    )
    return validate_document(doc, registry)


def validate_file(
    path: Path, registry: Registry, *, env: Mapping[str, str] | None = None
) -> list[Problem]:
    """Every problem in the configuration file at ``path``, in file order; empty when valid."""
    try:
        load_config(path, registry, env=env)
    except ConfigProblems as exc:
        return list(exc.problems)
    return []


def validate_document(doc: Document, registry: Registry) -> SyncConfig:
    """Validate a parsed document; see the module docstring for what is checked.

    Raises:
        ConfigProblems: with ``doc.problems`` and every problem found here.
    """
    problems = list(doc.problems)
    data = doc.data
    if data is None and problems:
        raise ConfigProblems(problems)
    if not isinstance(data, dict):
        problems.append(
            doc.problem(
                (),
                "the file must be a mapping with version, connections and syncs",
                "start from examples/demo.yaml",
            )
        )
        raise ConfigProblems(problems)

    connections, types = _connections(doc, registry, data, problems)
    top = dict(data)
    if isinstance(data.get("connections"), dict):
        top["connections"] = connections
    if _valid_defaults(data.get("defaults")) and isinstance(data.get("syncs"), list):
        top["syncs"] = [inherit_defaults(sync, data["defaults"]) for sync in data["syncs"]]
    config: SyncConfig | None = None
    try:
        config = SyncConfig.model_validate(top)
    except ValidationError as exc:
        problems.extend(problems_from_errors(doc, (), SyncConfig, top, exc.errors()))
    problems.extend(cross_checks(doc, registry, data, types))
    if problems or config is None:
        raise ConfigProblems(_unique(problems))
    return config


def _connections(
    doc: Document, registry: Registry, data: dict[str, Any], problems: list[Problem]
) -> tuple[dict[str, Connection], dict[str, str]]:
    """Validated connections, and the ``type`` of every section that names a known one."""
    raw = data.get("connections")
    valid: dict[str, Connection] = {}
    types: dict[str, str] = {}
    if not isinstance(raw, dict):
        return valid, types  # the top-level model reports a missing or mis-shaped section
    known = registry.names()
    for name, section in raw.items():
        path: FieldPath = ("connections", name)
        if not _CONNECTION_NAME.fullmatch(name):
            problems.append(
                doc.problem(
                    path,
                    f"{name!r} is not a valid connection name",
                    "use letters, digits, '-' and '_', starting with a letter or digit",
                    key=True,
                )
            )
        if not isinstance(section, dict):
            problems.append(
                doc.problem(
                    path,
                    "a connection must be a mapping with a `type` and its settings",
                    f"write `type: ...` indented under {name}: (types: {', '.join(known)})",
                )
            )
            continue
        kind = section.get("type")
        if kind is None:
            problems.append(
                doc.problem(
                    (*path, "type"),
                    "`type` is missing, so the connector is unknown",
                    f"add `type:` with one of: {', '.join(known) or 'none installed'}",
                )
            )
            continue
        if not isinstance(kind, str) or kind not in registry:
            fix = (
                did_you_mean(str(kind), known, noun="installed connectors")
                if known
                else "no connector is installed: install sfsync itself (pip install sfsync) "
                "or the package providing this connector; `sfsync connectors` lists them"
            )
            problems.append(doc.problem((*path, "type"), f"unknown connection type {kind!r}", fix))
            continue
        types[name] = kind
        model = registry.get(kind).config
        # A connector model may or may not declare `type` itself; the engine owns the key.
        body = section if "type" in model.model_fields else _without(section, "type")
        try:
            checked = model.model_validate(body, context={"base_dir": doc.base_dir})
            valid[name] = Connection(type=kind, config=checked)
        except ValidationError as exc:
            problems.extend(problems_from_errors(doc, path, model, body, exc.errors()))
    return valid, types


def _valid_defaults(raw: object) -> bool:
    """Whether ``defaults`` may be merged into the syncs.

    An invalid ``defaults`` is reported once, where it is written; merging it would repeat
    its problems under every sync.
    """
    if not isinstance(raw, dict):
        return False
    try:
        SyncDefaults.model_validate(raw)
    except ValidationError:
        return False
    return True


def _without(section: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in section.items() if k != key}


def _unique(problems: list[Problem]) -> list[Problem]:
    """Problems without exact repeats (one mistake can surface through two checks)."""
    seen: set[Problem] = set()
    out: list[Problem] = []
    for problem in problems:
        if problem not in seen:
            seen.add(problem)
            out.append(problem)
    return out
