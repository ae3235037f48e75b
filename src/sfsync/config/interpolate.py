"""``${...}`` references in configuration strings: environment variables and secret files.

Forms, in any string value of the YAML file:

``${NAME}`` / ``${env:NAME}``
    the environment variable ``NAME``; unset is a problem.
``${NAME:-default}`` / ``${env:NAME:-default}``
    ``NAME``, or ``default`` when it is unset or empty (the shell's ``:-``).
``${file:PATH}``
    the content of the file at ``PATH`` with surrounding whitespace stripped, the way Docker
    and Kubernetes mount secrets. A relative ``PATH`` is relative to the configuration file's
    directory, so a config and its secrets can move together.
``$${``
    a literal ``${``.

Values read from files are secrets: they are reported back in :attr:`Interpolated.secrets` so
that problem messages can be scrubbed of them, and they never appear in a problem themselves.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_REFERENCE = re.compile(r"\$\$\{|\$\{([^}]*)\}|\$\{")


@dataclass(frozen=True, slots=True)
class Unresolved:
    """A reference that cannot be resolved: ``message`` says which, ``fix`` how."""

    message: str
    fix: str


@dataclass(slots=True)
class Interpolated:
    """The result of :func:`interpolate`.

    Attributes:
        value: the text with every resolvable reference replaced (unresolvable ones are
            replaced by the empty string; the caller must treat ``errors`` as fatal).
        errors: one entry per reference that could not be resolved.
        secrets: contents read from files, to be kept out of any output.
        changed: whether the text had any reference at all.
    """

    value: str
    errors: list[Unresolved] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)
    changed: bool = False


def interpolate(text: str, *, env: Mapping[str, str], base_dir: Path) -> Interpolated:
    """Resolve every ``${...}`` reference in ``text``; see the module docstring for forms."""
    result = Interpolated(value="")
    pieces: list[str] = []
    position = 0
    for match in _REFERENCE.finditer(text):
        pieces.append(text[position : match.start()])
        position = match.end()
        result.changed = True
        token = match.group(0)
        if token == "$${":
            pieces.append("${")
        elif match.group(1) is None:
            result.errors.append(
                Unresolved(
                    "a '${' reference is not closed",
                    "close it with '}', e.g. ${SF_CLIENT_ID}, or write '$${' for a literal '${'",
                )
            )
        else:
            pieces.append(_resolve(match.group(1), env=env, base_dir=base_dir, into=result))
    pieces.append(text[position:])
    result.value = "".join(pieces)
    return result


def _resolve(body: str, *, env: Mapping[str, str], base_dir: Path, into: Interpolated) -> str:
    if body.startswith("file:"):
        return _read_file(body[len("file:") :], base_dir=base_dir, into=into)
    if body.startswith("env:"):
        body = body[len("env:") :]
    name, has_default, default = body.partition(":-")
    name = name.strip()
    if not _NAME.fullmatch(name):
        into.errors.append(
            Unresolved(
                f"'${{{body}}}' is not a valid reference",
                "use ${NAME}, ${NAME:-default}, ${env:NAME} or ${file:/path/to/secret}",
            )
        )
        return ""
    value = env.get(name)
    if has_default and not value:
        return default
    if value is not None:
        return value
    into.errors.append(
        Unresolved(
            f"environment variable {name} is not set",
            f"export {name}=... before running, or give a default: ${{{name}:-value}}",
        )
    )
    return ""


def _read_file(raw_path: str, *, base_dir: Path, into: Interpolated) -> str:
    raw_path = raw_path.strip()
    if not raw_path:
        into.errors.append(
            Unresolved("'${file:}' names no file", "write ${file:/run/secrets/NAME}")
        )
        return ""
    path = Path(raw_path).expanduser()
    if not path.is_absolute():
        path = base_dir / path
    try:
        content = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        fix = f"create {path} holding the secret, or point ${{file:...}} at the right file"
        into.errors.append(Unresolved(f"secret file {path} does not exist", fix))
        return ""
    except IsADirectoryError:
        into.errors.append(
            Unresolved(f"secret file {path} is a directory", "name a file, not a directory")
        )
        return ""
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        into.errors.append(
            Unresolved(
                f"secret file {path} cannot be read ({reason})",
                "make the file readable by this user and UTF-8 encoded",
            )
        )
        return ""
    if content:
        into.secrets.append(content)
    return content
