"""Running queries against the fixed test org."""

from __future__ import annotations

from typing import Any

from soql_testdata import NOW, SCHEMA, build_source

from sfsync.emulator.soql import MemorySource, QueryResult, compile_query

_SOURCE = build_source()


def source() -> MemorySource:
    return _SOURCE


def run(soql: str, *, include_deleted: bool = False) -> tuple[QueryResult, list[dict[str, Any]]]:
    result = compile_query(soql, SCHEMA).run(
        _SOURCE, now=NOW, include_deleted=include_deleted, api_version="59.0"
    )
    records = list(result.records)
    assert result.total_size == len(records) or compile_query(soql, SCHEMA).is_count_only
    return result, records


def values(soql: str, key: str = "Name", *, include_deleted: bool = False) -> list[object]:
    return [r[key] for r in run(soql, include_deleted=include_deleted)[1]]
