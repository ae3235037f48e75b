"""Pydantic validation errors translated into :class:`Problem` s a person can act on.

Pydantic reports *where* (``loc``) in terms of its own schema: union members and
discriminator tags appear in ``loc`` next to real keys. :func:`problems_from_errors` walks each
``loc`` against the data that was validated, so the path it reports is the path in the file,
then words the message and finds a fix: a did-you-mean for an unknown key or value, the
allowed values of an enum, the field's own description otherwise.

Inputs are quoted only for errors on fields that cannot hold secrets (enum values, names);
everything shown passes through :meth:`Document.scrub` as a last guard.
"""

from __future__ import annotations

import difflib
import re
import types
from collections.abc import Iterable, Sequence
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

from sfsync.config.load import Document, FieldPath
from sfsync.config.problems import Problem

# Fixes for pydantic's built-in error types that do not depend on the field.
_FIXES = {
    "int_parsing": "write a whole number, such as 5",
    "int_type": "write a whole number, such as 5",
    "int_from_float": "write a whole number, such as 5",
    "float_parsing": "write a number, such as 2.5",
    "float_type": "write a number, such as 2.5",
    "bool_parsing": "write true or false",
    "bool_type": "write true or false",
    "string_type": "write a text value; quote it if YAML reads it as something else",
    "list_type": "write a list: one `- item` per line, or [a, b]",
    "tuple_type": "write a list: one `- item` per line, or [a, b]",
    "dict_type": "write a mapping: `key: value` lines, indented under this key",
    "model_type": "write a mapping: `key: value` lines, indented under this key",
    "model_attributes_type": "write a mapping: `key: value` lines, indented under this key",
    "url_parsing": "write a full URL, such as https://login.salesforce.com",
    "url_scheme": "write a URL starting with http:// or https://",
}

# Range and length errors, reworded from pydantic's "Input should be ...": ctx key, template.
_BOUNDS = {
    "greater_than_equal": ("ge", "must be at least {}"),
    "greater_than": ("gt", "must be more than {}"),
    "less_than_equal": ("le", "must be at most {}"),
    "less_than": ("lt", "must be less than {}"),
    "too_short": ("min_length", "needs at least {} items"),
    "too_long": ("max_length", "must have at most {} items"),
    "string_too_short": ("min_length", "needs at least {} character(s)"),
    "string_too_long": ("max_length", "must have at most {} characters"),
}


def problems_from_errors(
    doc: Document,
    base: FieldPath,
    model: type[BaseModel],
    data: Any,
    errors: Iterable[ErrorDetails],
) -> list[Problem]:
    """One problem per pydantic error from validating ``data`` (found at ``base``) as ``model``.

    A ``too_short`` error on a list that has enough items is dropped: pydantic counts only the
    items that validated, so it would blame the list for its items' own (reported) errors.
    """
    problems = []
    for error in errors:
        if error["type"] == "too_short" and _long_enough(error, data, model):
            continue
        problems.append(_one(doc, base, model, data, error))
    return problems


def _long_enough(error: ErrorDetails, data: Any, model: type[BaseModel]) -> bool:
    node = data
    for part in _data_path(error["loc"], data, model, missing=False):
        node = node[part]
    minimum = (error.get("ctx") or {}).get("min_length", 1)
    return isinstance(node, list | tuple) and len(node) >= minimum


def suggest(word: str, choices: Iterable[str]) -> str | None:
    """The choice closest to ``word`` (case-insensitively), if any is close enough."""
    options = list(choices)
    lowered = {c.lower(): c for c in options}
    match = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[match[0]] if match else None


def did_you_mean(word: str, choices: Sequence[str], *, noun: str = "one of") -> str:
    """``did you mean 'x'? (one of: a, b, c)``, or just the list when nothing is close."""
    listing = ", ".join(choices) if choices else "none"
    near = suggest(word, choices)
    if near is not None:
        return f"did you mean {near!r}? ({noun}: {listing})"
    return f"use one of: {listing}" if noun == "one of" else f"use one of the {noun}: {listing}"


def _one(
    doc: Document, base: FieldPath, model: type[BaseModel], data: Any, error: ErrorDetails
) -> Problem:
    kind = error["type"]
    ctx: dict[str, Any] = dict(error.get("ctx") or {})
    rel = _data_path(error["loc"], data, model, missing=kind == "missing")
    path = (*base, *rel)
    raw_message = error["msg"]
    info = _field_at(model, rel, data)
    described = f"{_name(rel)}: {info.description}" if info and info.description else ""

    if kind == "missing":
        fix = f"add `{_name(rel)}:`"
        if info is not None and info.description:
            fix += f" ({info.description})"
        # Point at the parent's key (`auth:`), where the field belongs, not at a sibling.
        return doc.problem(path, "required field is missing", fix, key=True)
    if kind == "extra_forbidden":
        allowed = _allowed_keys(model, rel[:-1], data)
        key = str(rel[-1]) if rel else "?"
        fix = did_you_mean(key, allowed, noun="allowed keys") if allowed else "remove it"
        return doc.problem(path, f"unknown key {key!r}", fix, key=True)
    if kind == "literal_error":
        expected = str(ctx.get("expected", ""))
        allowed = re.findall(r"'([^']*)'", expected) or re.split(r", | or ", expected)
        shown = error.get("input")
        if isinstance(shown, int | float) and not isinstance(shown, bool):
            return doc.problem(path, f"{shown} is not allowed here", f"use one of: {expected}")
        if isinstance(shown, str) and len(shown) <= 40:
            return doc.problem(path, f"{shown!r} is not allowed here", did_you_mean(shown, allowed))
        return doc.problem(
            path, "this value is not allowed here", f"use one of: {', '.join(allowed)}"
        )
    if kind == "union_tag_invalid":
        tag_key = str(ctx.get("discriminator", "")).strip("'")
        tags = re.findall(r"'([^']*)'", str(ctx.get("expected_tags", "")))
        tag = str(ctx.get("tag", ""))
        return doc.problem((*path, tag_key), f"unknown {tag_key} {tag!r}", did_you_mean(tag, tags))
    if kind == "union_tag_not_found":
        tag_key = str(ctx.get("discriminator", "")).strip("'")
        tags = _union_tags(model, rel, data, tag_key)
        return doc.problem(
            path,
            f"`{tag_key}` is missing, so the kind of section is unknown",
            f"add `{tag_key}:` with one of: {', '.join(tags)}" if tags else f"add `{tag_key}:`",
        )
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        shown = error.get("input")
        target = _model_at(model, rel, data)
        if isinstance(shown, str) and target is not None and "name" in target.model_fields:
            # `- Account` where `- name: Account` was meant.
            return doc.problem(
                path, "expected a mapping, not a single value", f"write `name: {shown}`"
            )
        return doc.problem(path, "expected a mapping of `key: value` lines", _FIXES[kind])
    if kind in ("list_type", "tuple_type"):
        return doc.problem(path, "expected a list", _FIXES[kind])
    if "fix" in ctx:
        if isinstance(ctx.get("index"), int):
            path = (*path, ctx["index"])
        if isinstance(ctx.get("at"), str):
            path = (*path, ctx["at"])
        return doc.problem(path, raw_message, str(ctx["fix"]))
    if kind == "string_pattern_mismatch":
        shown = error.get("input")
        message = (
            f"{shown!r} is not a valid {_name(rel)}"
            if isinstance(shown, str) and len(shown) <= 80
            else f"not a valid {_name(rel)}"
        )
        return doc.problem(path, message, described or "see docs/configuration.md")
    fallback = described or _FIXES.get(kind) or "see docs/configuration.md"
    if kind == "too_short" and ctx.get("min_length") == 1:
        return doc.problem(path, "is empty: at least one item is needed", fallback)
    if kind in _BOUNDS and _BOUNDS[kind][0] in ctx:
        key, template = _BOUNDS[kind]
        return doc.problem(path, template.format(ctx[key]), fallback)
    message = raw_message.removeprefix("Value error, ")
    return doc.problem(path, _lower_first(message), _FIXES.get(kind) or fallback)


def _data_path(
    loc: tuple[int | str, ...], data: Any, model: type[BaseModel], *, missing: bool
) -> FieldPath:
    """``loc`` without pydantic's union markers, following ``data`` and the model's types.

    Pydantic puts a marker into ``loc`` after every field whose type is a union of several
    types (the discriminator's tag, or a type name); the marker is not a key of the data.
    Where the type is unknown (past an unrecognised key), markers are recognised as parts
    that the data does not have.
    """
    out: list[str | int] = []
    node, tp = data, _strip(model)
    for i, part in enumerate(loc):
        last = i == len(loc) - 1
        if tp is not None and _is_union(tp) and len(_members(tp)) > 1:
            tp = _pick_member(tp, node)  # `part` is the marker naming the member
            continue
        if tp is not None and _is_union(tp):
            tp = _members(tp)[0]
        if _has(node, part):
            out.append(part)
            node = node[part]
            tp = _child_type(tp, part)
        elif last and missing and isinstance(node, dict):
            out.append(part)
    return tuple(out)


def _members(tp: Any) -> list[Any]:
    return [_strip(m) for m in get_args(tp) if m is not type(None)]


def _child_type(tp: Any, part: str | int) -> Any:
    """The type of ``part`` within a value of type ``tp``, or ``None`` if unknown."""
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        info = _fields(tp).get(str(part))
        return _strip(info.annotation) if info else None
    origin, args = get_origin(tp), get_args(tp)
    if origin in (list, tuple) and args:
        return _strip(args[0])
    if origin is dict and len(args) == 2:
        return _strip(args[1])
    return None


def _strip(tp: Any) -> Any:
    while get_origin(tp) is Annotated:
        tp = get_args(tp)[0]
    return tp


def _is_union(tp: Any) -> bool:
    return get_origin(tp) in (Union, types.UnionType)


def _pick_member(tp: Any, data: Any) -> Any:
    """The member of a union that ``data`` selects (by its discriminator), else ``None``."""
    members = _members(tp)
    if len(members) == 1:
        return members[0]
    if not isinstance(data, dict):
        return None
    for member in members:
        if isinstance(member, type) and issubclass(member, BaseModel):
            # A member is selected by a Literal-typed field (its discriminator) matching data.
            tags = [
                (key, _literal_values(info.annotation)) for key, info in _fields(member).items()
            ]
            if any(values and key in data and data[key] in values for key, values in tags):
                return member
    return None


def _literal_values(tp: Any) -> tuple[Any, ...]:
    tp = _strip(tp)
    return get_args(tp) if get_origin(tp) is Literal else ()


def _walk(tp: Any, path: FieldPath, data: Any, *, resolve_last: bool = True) -> Any:
    tp = _strip(tp)
    if _is_union(tp) and (path or resolve_last):
        chosen = _pick_member(tp, data)
        if chosen is None:
            return None
        tp = chosen
    if not path:
        return tp
    head, rest = path[0], path[1:]
    child = data[head] if _has(data, head) else None
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        info = _fields(tp).get(str(head))
        return _walk(info.annotation, rest, child, resolve_last=resolve_last) if info else None
    origin = get_origin(tp)
    args = get_args(tp)
    if origin in (list, tuple) and args:
        return _walk(args[0], rest, child, resolve_last=resolve_last)
    if origin is dict and len(args) == 2:
        return _walk(args[1], rest, child, resolve_last=resolve_last)
    return None


def _has(data: Any, key: str | int) -> bool:
    if isinstance(data, dict):
        return key in data
    return isinstance(data, list | tuple) and isinstance(key, int) and 0 <= key < len(data)


def _fields(model: type[BaseModel]) -> dict[str, FieldInfo]:
    return {info.alias or name: info for name, info in model.model_fields.items()}


def _model_at(model: type[BaseModel], path: FieldPath, data: Any) -> type[BaseModel] | None:
    found = _walk(model, path, data)
    return found if isinstance(found, type) and issubclass(found, BaseModel) else None


def _allowed_keys(model: type[BaseModel], path: FieldPath, data: Any) -> list[str]:
    found = _model_at(model, path, data)
    return list(_fields(found)) if found else []


def _field_at(model: type[BaseModel], path: FieldPath, data: Any) -> FieldInfo | None:
    if not path or not isinstance(path[-1], str):
        return None
    parent = _model_at(model, path[:-1], data)
    return _fields(parent).get(path[-1]) if parent else None


def _union_tags(model: type[BaseModel], path: FieldPath, data: Any, key: str) -> list[str]:
    union = _walk(model, path, data, resolve_last=False)
    tags: list[str] = []
    for member in get_args(union) if _is_union(union) else ():
        member = _strip(member)
        if (
            isinstance(member, type)
            and issubclass(member, BaseModel)
            and key in member.model_fields
        ):
            tags.extend(str(v) for v in _literal_values(member.model_fields[key].annotation))
    return tags


def _name(path: FieldPath) -> str:
    for part in reversed(path):
        if isinstance(part, str):
            return part
    return "value"


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:] if text[:2] != text[:2].upper() else text
