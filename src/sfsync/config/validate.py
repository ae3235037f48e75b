"""Whole-configuration validation: every problem at once, before anything starts.

:func:`load_config` is what the runtime calls; :func:`validate_file` is what
``sfsync validate`` calls. Both read the file with positions (:mod:`sfsync.config.load`), then:

1. validate each connection section with its connector's model, found in the
   :class:`~sfsync.spi.registry.Registry` by ``type``;
   Connector models get the validation context ``{"base_dir": <the file's directory>}``, so
   they can resolve relative paths against the configuration file and check that they exist;
2. validate the rest against :class:`~sfsync.config.model.SyncConfig`;
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
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_core import PydanticCustomError

from sfsync.config.durations import parse_duration
from sfsync.config.explain import did_you_mean, problems_from_errors, suggest
from sfsync.config.load import Document, FieldPath, parse_document, read_document
from sfsync.config.model import Connection, RetryConfig, SyncConfig, derive_table
from sfsync.config.problems import ConfigProblems, Problem
from sfsync.spi.registry import Registry

MIN_POLLING_INTERVAL = timedelta(seconds=1)
SALESFORCE = "salesforce"
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
    config: SyncConfig | None = None
    try:
        config = SyncConfig.model_validate(top)
    except ValidationError as exc:
        problems.extend(problems_from_errors(doc, (), SyncConfig, top, exc.errors()))
    problems.extend(_cross_checks(doc, registry, data, types))
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


def _without(section: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in section.items() if k != key}


def _cross_checks(
    doc: Document, registry: Registry, data: dict[str, Any], types: dict[str, str]
) -> list[Problem]:
    """Checks that span sections, on the raw data so they run even where a model failed."""
    problems: list[Problem] = []
    raw_connections = data.get("connections")
    defined = list(raw_connections) if isinstance(raw_connections, dict) else []
    syncs = data.get("syncs")
    if not isinstance(syncs, list):
        return problems
    first_by_name: dict[str, int] = {}
    writers: dict[tuple[str, str], tuple[int, str]] = {}
    for index, sync in enumerate(syncs):
        if not isinstance(sync, dict):
            continue
        base: FieldPath = ("syncs", index)
        name = sync.get("name")
        if isinstance(name, str):
            if name in first_by_name:
                first = doc.mark(("syncs", first_by_name[name], "name"))
                where = f" (first at line {first.line})" if first else ""
                problems.append(
                    doc.problem(
                        (*base, "name"),
                        f"sync name {name!r} is used twice{where}",
                        "give each sync its own name: checkpoints are stored by name",
                    )
                )
            else:
                first_by_name[name] = index
        problems.extend(_endpoints(doc, registry, base, sync, defined, types))
        problems.extend(_sync_settings(doc, base, sync))
        writes_tables = types.get(str(sync.get("target"))) != SALESFORCE
        problems.extend(_objects(doc, base, sync, writers if writes_tables else None, index))
    return problems


def _endpoints(
    doc: Document,
    registry: Registry,
    base: FieldPath,
    sync: dict[str, Any],
    defined: list[str],
    types: dict[str, str],
) -> list[Problem]:
    problems: list[Problem] = []
    for role, key in (("source", "source"), ("sink", "target")):
        ref = sync.get(key)
        if not isinstance(ref, str):
            continue
        if ref not in defined:
            problems.append(
                doc.problem(
                    (*base, key),
                    f"connection {ref!r} is not defined",
                    did_you_mean(ref, defined, noun="defined connections")
                    if defined
                    else f"define {ref}: under connections",
                )
            )
            continue
        kind = types.get(ref)
        if kind is not None and role not in registry.get(kind).roles:
            verb = "read from" if role == "source" else "written to"
            problems.append(
                doc.problem(
                    (*base, key),
                    f"connection {ref!r} ({kind}) cannot be {verb}",
                    f"use a connection whose connector can be {verb}; see `sfsync connectors`",
                )
            )
    source, target = sync.get("source"), sync.get("target")
    if isinstance(source, str) and source == target:
        problems.append(
            doc.problem(
                (*base, "target"),
                f"source and target are the same connection {source!r}",
                "a sync copies between two systems: name a different target",
            )
        )
    return problems


def _sync_settings(doc: Document, base: FieldPath, sync: dict[str, Any]) -> list[Problem]:
    problems: list[Problem] = []
    if sync.get("mode") == "realtime" and sync.get("interval") is not None:
        problems.append(
            doc.problem(
                (*base, "interval"),
                "interval has no meaning with mode realtime: changes arrive as they happen",
                "remove interval, or use mode: polling to read changes every interval",
            )
        )
    interval = _duration_or_none(sync.get("interval"))
    if sync.get("mode") == "polling" and interval is not None and interval < MIN_POLLING_INTERVAL:
        problems.append(
            doc.problem(
                (*base, "interval"),
                "a polling interval under 1s would query without pause and spend the API budget",
                "use 1s or more (most polling syncs use 30s to 5m), or mode: realtime",
            )
        )
    retry = sync.get("retry")
    if isinstance(retry, dict):
        # Also checked by RetryConfig, which cannot run while another retry field is wrong.
        base_delay = _duration_or_none(retry.get("base_delay", RetryConfig().base_delay))
        max_delay = _duration_or_none(retry.get("max_delay", RetryConfig().max_delay))
        if base_delay is not None and max_delay is not None and max_delay < base_delay:
            problems.append(
                doc.problem(
                    (*base, "retry", "max_delay"),
                    "max_delay is shorter than base_delay",
                    "make max_delay at least as long as base_delay",
                )
            )
    return problems


def _duration_or_none(value: object) -> timedelta | None:
    if value is None:
        return None
    try:
        return parse_duration(value)
    except PydanticCustomError:
        return None


def _objects(
    doc: Document,
    base: FieldPath,
    sync: dict[str, Any],
    writers: dict[tuple[str, str], tuple[int, str]] | None,
    sync_index: int,
) -> list[Problem]:
    """Per-object checks; ``writers`` tracks target tables across syncs, or is ``None`` when
    the target is Salesforce, where several syncs may upsert one object by their own keys."""
    problems: list[Problem] = []
    objects = sync.get("objects")
    if not isinstance(objects, list):
        return problems
    seen: dict[str, int] = {}
    for index, obj in enumerate(objects):
        if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
            continue
        path: FieldPath = (*base, "objects", index)
        name: str = obj["name"]
        if name.lower() in seen:
            problems.append(
                doc.problem(
                    (*path, "name"),
                    f"object {name!r} is listed twice in this sync "
                    f"(also objects[{seen[name.lower()]}])",
                    "merge the two entries; to split one object across tables, use two syncs",
                )
            )
        else:
            seen[name.lower()] = index
        problems.extend(_object_fields(doc, path, obj))
        table = obj.get("table") if isinstance(obj.get("table"), str) else derive_table(name)
        target = sync.get("target")
        if writers is not None and isinstance(target, str) and isinstance(table, str):
            owner = writers.get((target, table.lower()))
            here = str(sync.get("name", f"syncs[{sync_index}]"))
            if owner is not None and owner[0] != sync_index:
                problems.append(
                    doc.problem(
                        (*path, "table" if "table" in obj else "name"),
                        f"table {table!r} on {target!r} is already written by sync {owner[1]!r}",
                        "give this object its own `table:`; two syncs writing one table "
                        "overwrite each other",
                    )
                )
            elif owner is None:
                writers[(target, table.lower())] = (sync_index, here)
    return problems


def _object_fields(doc: Document, path: FieldPath, obj: dict[str, Any]) -> list[Problem]:
    problems: list[Problem] = []
    fields = obj.get("fields", "all")
    excluded = obj.get("exclude_fields") or []
    key = obj.get("key", "Id")
    explicit = [f for f in fields if isinstance(f, str)] if isinstance(fields, list) else None
    excluded_names = (
        [f for f in excluded if isinstance(f, str)] if isinstance(excluded, list) else []
    )
    if explicit is not None and excluded_names:
        problems.append(
            doc.problem(
                (*path, "exclude_fields"),
                "exclude_fields only applies with `fields: all`",
                "leave the fields out of the `fields` list instead, and remove exclude_fields",
            )
        )
    if isinstance(key, str):
        if explicit is not None and key.lower() not in {f.lower() for f in explicit}:
            near = suggest(key, explicit)
            problems.append(
                doc.problem(
                    (*path, "fields"),
                    f"the key field {key!r} is not in the fields list",
                    f"add {key} to fields" + (f" (or did you mean key: {near}?)" if near else ""),
                )
            )
        if key.lower() in {f.lower() for f in excluded_names}:
            problems.append(
                doc.problem(
                    (*path, "exclude_fields"),
                    f"the key field {key!r} is excluded",
                    "records cannot be matched without their key: keep it",
                )
            )
    return problems


def _unique(problems: list[Problem]) -> list[Problem]:
    """Problems without exact repeats (one mistake can surface through two checks)."""
    seen: set[Problem] = set()
    out: list[Problem] = []
    for problem in problems:
        if problem not in seen:
            seen.add(problem)
            out.append(problem)
    return out
