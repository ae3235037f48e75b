"""What is wrong with a configuration file, where, and how to fix it.

Validation never stops at the first mistake: it gathers every :class:`Problem` it can find
and raises them together in one :class:`ConfigProblems`, so that a user fixes a file in one
pass instead of one error per run.

A problem never carries a secret's value. Messages name fields and variables, and quote a
user's input only where the field cannot hold a secret (durations, enum values, names).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sfsync.core.errors import ConfigError


@dataclass(frozen=True, slots=True, kw_only=True)
class Problem:
    """One mistake in a configuration file.

    Attributes:
        file: the file as the user named it.
        line: 1-based line of the offending node, or ``None`` when there is no node to point
            at (an unreadable file).
        column: 1-based column, or ``None`` with ``line``.
        field: dotted path of the field, such as ``syncs[0].objects[1].name``; empty for the
            file as a whole.
        message: what is wrong, in the user's terms.
        fix: what to write instead.
    """

    file: str
    line: int | None
    column: int | None
    field: str
    message: str
    fix: str

    def render(self) -> str:
        """``FILE:LINE:COL: FIELD: MESSAGE`` and an indented ``fix:`` line, compiler style.

        The first line is what editors and CI log viewers turn into a link to the spot.
        """
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        head = (
            f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )
        return f"{head}\n    fix: {self.fix}" if self.fix else head

    def to_dict(self) -> dict[str, str | int | None]:
        """The problem as JSON-ready data, for ``--format json`` and the admin API."""
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "field": self.field,
            "message": self.message,
            "fix": self.fix,
        }

    def github_annotation(self) -> str:
        """A GitHub Actions workflow command that marks the line in a pull request's diff."""
        props = [f"file={_escape_property(self.file)}"]
        if self.line is not None:
            props.append(f"line={self.line}")
            if self.column is not None:
                props.append(f"col={self.column}")
        if self.field:
            props.append(f"title={_escape_property(self.field)}")
        text = f"{self.message}\nfix: {self.fix}" if self.fix else self.message
        return f"::error {','.join(props)}::{_escape_data(text)}"

    def sort_key(self) -> tuple[str, int, int, str, str]:
        """Order of appearance in the file; problems without a line come first."""
        return (self.file, self.line or 0, self.column or 0, self.field, self.message)


def _escape_data(text: str) -> str:
    # The escapes GitHub's workflow-command parser expects in a message.
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def render_all(problems: Iterable[Problem]) -> str:
    """Every problem rendered, one block each, in file order, with a closing count."""
    ordered = sorted(problems, key=Problem.sort_key)
    blocks = [p.render() for p in ordered]
    noun = "problem" if len(ordered) == 1 else "problems"
    blocks.append(f"{len(ordered)} {noun} found")
    return "\n".join(blocks)


class ConfigProblems(ConfigError):  # noqa: N818 - the name the CLI and runtime catch
    """The configuration has one or more problems; nothing was started.

    Attributes:
        problems: every problem found, in file order. Never empty.
    """

    def __init__(self, problems: Iterable[Problem]) -> None:
        ordered = tuple(sorted(problems, key=Problem.sort_key))
        if not ordered:
            raise ValueError("ConfigProblems needs at least one problem")
        first = ordered[0]
        super().__init__(
            render_all(ordered),
            hint=f"fix the problems above, starting with {first.field or first.file}",
        )
        self.problems = ordered

    def __str__(self) -> str:
        # The rendered list already says how to fix each problem; the generic hint would only
        # repeat it, so show the list alone.
        return self.message
