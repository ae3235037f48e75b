"""Checks across sections and fields that no single model can make.

They run on the raw data (plain dicts and lists from the YAML file), not on validated models,
so that they still run, and report, where a model has already failed: one pass over a file
finds every problem. Each check skips quietly whatever has the wrong shape, since the models
report shapes.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic_core import PydanticCustomError

from sfsync.config.durations import parse_duration
from sfsync.config.explain import did_you_mean, suggest
from sfsync.config.load import Document, FieldPath
from sfsync.config.model import RetryConfig, derive_table
from sfsync.config.problems import Problem
from sfsync.spi.registry import Registry

MIN_POLLING_INTERVAL = timedelta(seconds=1)
SALESFORCE = "salesforce"


def cross_checks(
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
        problems.extend(_two_way(doc, registry, base, sync, types))
        # The connection whose tables the sync writes: the target, or in a two-way sync
        # whichever side is not Salesforce.
        table_end = sync.get("target")
        if types.get(str(table_end)) == SALESFORCE and sync.get("direction") == "two_way":
            table_end = sync.get("source")
        writes_tables = types.get(str(table_end)) != SALESFORCE
        problems.extend(
            _objects(doc, base, sync, writers if writes_tables else None, index, table_end)
        )
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
            capable = [n for n in registry.names() if role in registry.get(n).roles]
            problems.append(
                doc.problem(
                    (*base, key),
                    f"connection {ref!r} ({kind}) cannot be {verb}",
                    f"use a connection of a type that can be {verb}: "
                    f"{', '.join(capable) or 'none is installed'}",
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


TWO_WAY_ONLY = ("conflicts", "match_on")


def _two_way(
    doc: Document, registry: Registry, base: FieldPath, sync: dict[str, Any], types: dict[str, str]
) -> list[Problem]:
    """A two-way sync joins Salesforce and one other system, each read and written; the
    settings that only two-way syncs use are refused elsewhere rather than ignored."""
    problems: list[Problem] = []
    if sync.get("direction", "one_way") != "two_way":
        objects = sync.get("objects")
        for index, obj in enumerate(objects if isinstance(objects, list) else []):
            for key in TWO_WAY_ONLY:
                if isinstance(obj, dict) and key in obj:
                    problems.append(
                        doc.problem(
                            (*base, "objects", index, key),
                            f"{key} only applies to two-way syncs",
                            "add `direction: two_way` to the sync, or remove it",
                        )
                    )
        return problems
    ends = {key: sync.get(key) for key in ("source", "target")}
    kinds = {key: types.get(ref) for key, ref in ends.items() if isinstance(ref, str)}
    if len(kinds) == 2 and None not in kinds.values():
        salesforce = [key for key, kind in kinds.items() if kind == SALESFORCE]
        if len(salesforce) != 1:
            problems.append(
                doc.problem(
                    (*base, "direction"),
                    "a two-way sync joins Salesforce and one other system; "
                    + ("neither side is" if not salesforce else "both sides are")
                    + " a Salesforce connection",
                    "make one of source and target a `type: salesforce` connection",
                )
            )
    for key, kind in kinds.items():
        if kind is None or kind not in registry.names():
            continue
        # _endpoints checks each end in its one-way role; a two-way sync also needs the other.
        role, verb = ("sink", "written to") if key == "source" else ("source", "read from")
        if role not in registry.get(kind).roles:
            capable = [
                n for n in registry.names() if {"source", "sink"} <= set(registry.get(n).roles)
            ]
            problems.append(
                doc.problem(
                    (*base, key),
                    f"connection {ends[key]!r} ({kind}) cannot be {verb}, and a two-way sync "
                    "reads and writes both sides",
                    f"use a connection of a type that can be both: {', '.join(capable) or 'none'}",
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
    target: object,
) -> list[Problem]:
    """Per-object checks; ``writers`` tracks the tables written on connection ``target``
    across syncs, or is ``None`` when the sync writes only into Salesforce, where several syncs
    may upsert one object by their own keys."""
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
    if explicit is not None:
        problems.extend(_named_fields(doc, path, obj, explicit))
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


def _named_fields(
    doc: Document, path: FieldPath, obj: dict[str, Any], carried: list[str]
) -> list[Problem]:
    """Fields that ``conflicts`` and ``match_on`` name must be among those the object carries."""
    known = {f.lower() for f in carried}
    named: list[tuple[FieldPath, str]] = []
    conflicts = obj.get("conflicts")
    if isinstance(conflicts, dict):
        for section in ("fields", "owners"):
            entries = conflicts.get(section)
            if isinstance(entries, dict):
                named += [((*path, "conflicts", section, n), n) for n in entries]
    match_on = obj.get("match_on")
    if isinstance(match_on, list):
        named += [((*path, "match_on", i), n) for i, n in enumerate(match_on)]
    problems: list[Problem] = []
    for at, name in named:
        if isinstance(name, str) and name.lower() not in known:
            near = suggest(name, carried)
            problems.append(
                doc.problem(
                    at,
                    f"{name!r} is not in the object's fields list",
                    f"add {name} to fields" + (f" (or did you mean {near}?)" if near else ""),
                )
            )
    return problems
