"""A cheap check that a ``where`` text is a SOQL condition at all.

This is not a SOQL parser: the source connector compiles the condition (against the object's
described fields) when the sync starts. It only catches what is obviously not a condition at
file-check time, with a fix for each slip people really make: pasting the ``WHERE`` keyword or
a whole query, ``==`` and ``&&`` from other languages, double quotes, an unclosed quote or
parenthesis, a trailing ``AND``, clauses (``ORDER BY``, ``LIMIT``) that sfsync adds itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_OPERATOR = re.compile(r"(!=|<>|<=|>=|=|<|>|\b(?:LIKE|IN|INCLUDES|EXCLUDES)\b)", re.I)
_CLAUSE = re.compile(r"\b(ORDER\s+BY|GROUP\s+BY|LIMIT|OFFSET|HAVING|FOR\s+UPDATE)\b", re.I)
_DANGLING = re.compile(r"(^\s*(AND|OR)\b|\b(AND|OR|NOT)\s*$)", re.I)
_EXAMPLE = "Industry != null AND AnnualRevenue > 1000000"


@dataclass(frozen=True, slots=True)
class ConditionIssue:
    """Why a text is not a condition, and what to write instead."""

    message: str
    fix: str


def check_condition(text: str) -> ConditionIssue | None:
    """The first obvious mistake in ``text`` as a SOQL condition, or ``None`` if none is seen."""
    stripped = text.strip()
    if not stripped:
        return ConditionIssue("the condition is empty", f"remove `where`, or write e.g. {_EXAMPLE}")
    if re.match(r"select\b", stripped, re.I):
        return ConditionIssue(
            "this is a whole query, not a condition",
            "keep only what follows WHERE; fields and object come from `fields` and `name`",
        )
    if re.match(r"where\b", stripped, re.I):
        rest = stripped[5:].strip()
        return ConditionIssue(
            "the condition starts with the keyword WHERE", f"drop WHERE and write: {rest}"
        )
    bare, unclosed = _blank_strings(stripped)
    if unclosed:
        return ConditionIssue(
            "a quoted string is not closed", "close it with ' (write \\' for a quote inside)"
        )
    checks: tuple[tuple[bool, str, str], ...] = (
        ('"' in bare, "SOQL quotes text with single quotes", "write 'Energy', not \"Energy\""),
        (";" in bare, "a condition cannot contain ';'", "remove the ';'"),
        ("==" in bare, "SOQL compares with '=', not '=='", "write Industry = 'Energy'"),
        ("&&" in bare or "||" in bare, "SOQL joins conditions with AND and OR", "use AND / OR"),
        (_paren_balance(bare) != 0, "the parentheses are not balanced", "match each ( with )"),
    )
    for failed, message, fix in checks:
        if failed:
            return ConditionIssue(message, fix)
    clause = _CLAUSE.search(bare)
    if clause:
        keyword = " ".join(clause.group(1).upper().split())
        return ConditionIssue(
            f"{keyword} is a clause of a query, not part of a condition",
            f"remove {keyword}: sfsync orders, pages and limits its own queries",
        )
    if _DANGLING.search(bare):
        return ConditionIssue(
            "the condition starts or ends with AND, OR or NOT", "complete or remove the operator"
        )
    if not _OPERATOR.search(bare):
        return ConditionIssue(
            "this compares nothing, so it is not a condition",
            f"write field, operator and value, e.g. {_EXAMPLE}",
        )
    return None


def _blank_strings(text: str) -> tuple[str, bool]:
    """``text`` with each single-quoted literal replaced by ``''``, and whether one is unclosed."""
    out: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char != "'":
            out.append(char)
            i += 1
            continue
        i += 1
        while i < len(text) and text[i] != "'":
            i += 2 if text[i] == "\\" else 1
        if i >= len(text):
            return "".join(out), True
        out.append("''")
        i += 1
    return "".join(out), False


def _paren_balance(text: str) -> int:
    depth = 0
    for char in text:
        depth += (char == "(") - (char == ")")
        if depth < 0:
            return depth
    return depth
