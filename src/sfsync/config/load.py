"""Read a YAML configuration file into plain values, remembering where every node came from.

The file is composed into YAML nodes (``yaml.compose``) rather than loaded straight into
Python objects, because nodes keep their ``start_mark``: every later problem, however deep,
can then name the line and column of the key or value it is about. Strings are interpolated
here (``${ENV}``, ``${file:...}``, see :mod:`sfsync.config.interpolate`), so unresolved
references are reported at the line that holds them.

Mapping keys are kept as the text the user wrote: YAML 1.1 would read a key ``on:`` as
``True``, which only confuses the did-you-mean suggestions downstream.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sfsync.config.interpolate import interpolate
from sfsync.config.problems import Problem

FieldPath = tuple[str | int, ...]
"""Where a value sits: keys and list indexes from the document root."""

# Values under keys like these are treated as secrets even when written inline, so that no
# message can echo them (the models mark the same fields SecretStr).
_SECRET_KEY = re.compile(r"(password|secret|token|private_key|api_key|credential)", re.I)
_MIN_SCRUB = 4  # shorter strings would scrub ordinary words out of messages
MAX_NODES = 100_000
"""More values than any real configuration has; guards against alias bombs."""


@dataclass(frozen=True, slots=True)
class Mark:
    """A 1-based line and column in the file."""

    line: int
    column: int


@dataclass(slots=True)
class Document:
    """A parsed configuration file.

    Attributes:
        file: the file name problems should show.
        base_dir: the file's directory; relative paths in the file are relative to it.
        data: the document as plain dicts, lists and scalars (``None`` if it could not be read).
        values: where each value starts, by path.
        keys: where the key of each mapping entry starts, by path of its value.
        secrets: secret strings seen while reading (file contents, values under secret keys),
            to be scrubbed from any text shown to the user.
        problems: problems found while reading (syntax, duplicate keys, unresolved references).
    """

    file: str
    base_dir: Path = field(default_factory=Path)
    data: Any = None
    values: dict[FieldPath, Mark] = field(default_factory=dict)
    keys: dict[FieldPath, Mark] = field(default_factory=dict)
    secrets: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def mark(self, path: FieldPath, *, key: bool = False) -> Mark | None:
        """Where ``path`` is, or its nearest ancestor that exists (for a missing field).

        With ``key=True`` the key's position is preferred: an unknown key is best shown where
        the key is typed, not where its value starts. So is it for a mapping or list value:
        its key (`auth:`) is the line that names it, its value starts a line further down.
        """
        key = key or isinstance(self._value_at(path), dict | list)
        probe = path
        while True:
            if key and probe in self.keys:
                return self.keys[probe]
            if probe in self.values:
                return self.values[probe]
            if not probe:
                return None
            probe = probe[:-1]

    def _value_at(self, path: FieldPath) -> Any:
        node = self.data
        for part in path:
            in_dict = isinstance(node, dict) and part in node
            in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
            if not (in_dict or in_list):
                return None
            node = node[part]
        return node

    def problem(self, path: FieldPath, message: str, fix: str, *, key: bool = False) -> Problem:
        """A :class:`Problem` at ``path``, with any secret scrubbed from its text."""
        mark = self.mark(path, key=key)
        return Problem(
            file=self.file,
            line=mark.line if mark else None,
            column=mark.column if mark else None,
            field=format_path(path),
            message=self.scrub(message),
            fix=self.scrub(fix),
        )

    def scrub(self, text: str) -> str:
        """``text`` with every known secret replaced by ``****``."""
        for secret in sorted(self.secrets, key=len, reverse=True):
            if len(secret) >= _MIN_SCRUB:
                text = text.replace(secret, "****")
        return text


def format_path(path: FieldPath) -> str:
    """``("syncs", 0, "objects", 1, "name")`` as ``syncs[0].objects[1].name``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def read_document(path: Path, *, env: Mapping[str, str]) -> Document:
    """Read and parse the file at ``path``; an unreadable file is a problem, not an exception."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        doc = Document(file=str(path))
        doc.problems.append(
            Problem(
                file=str(path),
                line=None,
                column=None,
                field="",
                message="the configuration file does not exist",
                fix="check the path, or start from examples/demo.yaml",
            )
        )
        return doc
    except (OSError, UnicodeDecodeError) as exc:
        doc = Document(file=str(path))
        doc.problems.append(
            Problem(
                file=str(path),
                line=None,
                column=None,
                field="",
                message=f"the configuration file cannot be read ({type(exc).__name__}: {exc})",
                fix="make it a readable UTF-8 text file",
            )
        )
        return doc
    return parse_document(text, file=str(path), env=env, base_dir=path.parent)


def parse_document(text: str, *, file: str, env: Mapping[str, str], base_dir: Path) -> Document:
    """Parse YAML ``text``; ``file`` is only used to label problems."""
    doc = Document(file=file, base_dir=base_dir)
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            doc.problems.append(
                Problem(
                    file=file,
                    line=None,
                    column=None,
                    field="",
                    message="the configuration file is empty",
                    fix="start from examples/demo.yaml: version, connections and syncs",
                )
            )
            return doc
        doc.data = _Walker(doc, loader, env=env, base_dir=base_dir).walk(node, ())
    except yaml.MarkedYAMLError as exc:
        doc.data = None
        doc.problems.append(_syntax_problem(file, exc))
    except yaml.YAMLError as exc:  # unmarked errors: reader problems such as control characters
        doc.data = None
        doc.problems.append(
            Problem(
                file=file,
                line=None,
                column=None,
                field="",
                message=f"YAML cannot be read: {exc}",
                fix="remove control characters and save the file as UTF-8",
            )
        )
    finally:
        loader.dispose()
    return doc


class _StructureError(yaml.MarkedYAMLError):
    """Valid YAML whose shape sfsync refuses to expand (cycles, alias bombs)."""


class _Walker:
    """Turns composed nodes into plain values, recording marks and interpolating strings."""

    def __init__(
        self, doc: Document, loader: yaml.SafeLoader, *, env: Mapping[str, str], base_dir: Path
    ) -> None:
        self._doc = doc
        self._loader = loader
        self._env = env
        self._base_dir = base_dir
        self._open: set[int] = set()  # collections being walked: a repeat is a cycle
        self._count = 0

    def walk(self, node: yaml.Node, path: FieldPath) -> Any:
        self._doc.values[path] = _mark(node)
        self._count += 1
        if self._count > MAX_NODES:
            # Aliases can make a small file expand exponentially ("billion laughs").
            raise _StructureError(
                problem=f"the document expands to more than {MAX_NODES} values (through aliases?)",
                problem_mark=node.start_mark,
            )
        if isinstance(node, yaml.MappingNode | yaml.SequenceNode):
            if id(node) in self._open:
                raise _StructureError(
                    problem="an alias refers to a node that contains it",
                    problem_mark=node.start_mark,
                )
            self._open.add(id(node))
            try:
                if isinstance(node, yaml.MappingNode):
                    return self._mapping(node, path)
                return [self.walk(item, (*path, i)) for i, item in enumerate(node.value)]
            finally:
                self._open.discard(id(node))
        value = self._loader.construct_object(node, deep=True)
        if isinstance(value, str):
            value = self._interpolate(value, path)
            if path and isinstance(path[-1], str) and _is_secret_key(path[-1]):
                self._doc.secrets.append(value)
        return value

    def _mapping(self, node: yaml.MappingNode, path: FieldPath) -> dict[str, Any]:
        own = {id(key) for key, _ in node.value}
        self._loader.flatten_mapping(node)  # resolves `<<: *anchor` merge keys in place
        result: dict[str, Any] = {}
        written: set[str] = set()  # keys written in this mapping itself, not merged in
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                self._doc.values[(*path, "?")] = _mark(key_node)
                self._doc.problems.append(
                    self._doc.problem(
                        (*path, "?"),
                        "a key must be a plain name, not a list or mapping",
                        "write `name: value`",
                    )
                )
                continue
            key = str(key_node.value)
            child = (*path, key)
            if key in written and id(key_node) in own:
                first = self._doc.keys[child]
                self._doc.keys[child] = _mark(key_node)
                self._doc.problems.append(
                    self._doc.problem(
                        child,
                        f"key {key!r} appears twice in this mapping (first on line {first.line})",
                        "keep one of them: YAML would silently use the last",
                        key=True,
                    )
                )
            if id(key_node) in own:
                written.add(key)
            self._doc.keys[child] = _mark(key_node)
            result[key] = self.walk(value_node, child)
        return result

    def _interpolate(self, value: str, path: FieldPath) -> str:
        if "${" not in value:
            return value
        resolved = interpolate(value, env=self._env, base_dir=self._base_dir)
        self._doc.secrets.extend(resolved.secrets)
        for error in resolved.errors:
            self._doc.problems.append(self._doc.problem(path, error.message, error.fix))
        return resolved.value


def _is_secret_key(key: str) -> bool:
    # `private_key_file` names where a secret is, which is not itself secret.
    return bool(_SECRET_KEY.search(key)) and not key.endswith(("_file", "_path", "_url"))


def _mark(node: yaml.Node) -> Mark:
    return Mark(node.start_mark.line + 1, node.start_mark.column + 1)


def _syntax_problem(file: str, exc: yaml.MarkedYAMLError) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    detail = " ".join(part for part in (exc.context, exc.problem) if part) or "invalid YAML"
    if "\\t" in detail or "'\\t'" in detail or "tab" in detail:
        fix = "indent with spaces; YAML does not allow tabs for indentation"
    elif "mapping values are not allowed" in detail:
        fix = "quote a value that contains ': ', or check the indentation of this line"
    elif "expected <block end>" in detail or "could not find expected ':'" in detail:
        fix = "check the indentation of this line against the lines above it"
    elif "found unexpected end of stream" in detail or "found unknown escape" in detail:
        fix = "close the quote that starts on or before this line"
    elif "alias" in detail:
        fix = "use anchors and aliases (&name, *name) only for separate, non-recursive values"
    elif "expected a single document" in detail:
        fix = "keep one YAML document per file: remove the extra '---'"
    else:
        fix = "check the indentation and quoting around this line"
    return Problem(
        file=file,
        line=mark.line + 1 if mark else None,
        column=mark.column + 1 if mark else None,
        field="",
        message=f"{'YAML structure' if isinstance(exc, _StructureError) else 'YAML syntax'} "
        f"error: {detail}",
        fix=fix,
    )
