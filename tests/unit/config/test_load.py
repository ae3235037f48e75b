"""Reading YAML with positions: syntax errors, duplicate keys, merge keys, unreadable files."""

from __future__ import annotations

from pathlib import Path

import pytest

from sfsync.config.load import Mark, format_path, parse_document, read_document


def parse(text: str, env: dict[str, str] | None = None) -> object:
    return parse_document(text, file="c.yaml", env=env or {}, base_dir=Path("."))


def test_positions_of_keys_and_values() -> None:
    doc = parse_document(
        "a: 1\nb:\n  - x: 2\n    y: [3, 4]\n", file="c.yaml", env={}, base_dir=Path(".")
    )
    assert doc.problems == []
    assert doc.data == {"a": 1, "b": [{"x": 2, "y": [3, 4]}]}
    assert doc.values[("a",)] == Mark(1, 4)
    assert doc.keys[("b",)] == Mark(2, 1)
    assert doc.values[("b", 0)] == Mark(3, 5)
    assert doc.keys[("b", 0, "y")] == Mark(4, 5)
    assert doc.values[("b", 0, "y", 1)] == Mark(4, 12)
    # A missing field is placed at its nearest ancestor.
    assert doc.mark(("b", 0, "z")) == Mark(3, 5)


@pytest.mark.parametrize(
    ("text", "line", "column", "message", "fix"),
    [
        ("a: b: c\n", 1, 5, "mapping values are not allowed here", "quote a value"),
        ("a:\n\t- b\n", 2, 1, "'\\t'", "indent with spaces"),
        ("a: 'open\nb: 2\n", 3, 1, "found unexpected end of stream", "close the quote"),
        ("a: 1\n---\nb: 2\n", 2, 1, "expected a single document", "remove the extra '---'"),
        ("a:\n  - 1\n  b: 2\n", 3, 3, "expected <block end>", "indentation"),
    ],
)
def test_syntax_errors_name_the_line(
    text: str, line: int, column: int, message: str, fix: str
) -> None:
    doc = parse_document(text, file="c.yaml", env={}, base_dir=Path("."))
    (problem,) = doc.problems
    assert (problem.line, problem.column, problem.field) == (line, column, "")
    assert problem.message.startswith("YAML syntax error: ")
    assert message in problem.message
    assert fix in problem.fix
    assert doc.data is None


def test_duplicate_key_is_a_problem_at_the_second() -> None:
    doc = parse_document("a: 1\nb: 2\na: 3\n", file="c.yaml", env={}, base_dir=Path("."))
    (problem,) = doc.problems
    assert (problem.line, problem.column, problem.field) == (3, 1, "a")
    assert "first on line 1" in problem.message


def test_merge_keys_and_anchors_work() -> None:
    text = "base: &b {x: 1, y: 2}\nthing:\n  <<: *b\n  y: 3\n"
    doc = parse_document(text, file="c.yaml", env={}, base_dir=Path("."))
    assert doc.problems == []
    assert doc.data == {"base": {"x": 1, "y": 2}, "thing": {"x": 1, "y": 3}}


def test_keys_keep_their_text() -> None:
    doc = parse_document("on: 1\n2: b\n", file="c.yaml", env={}, base_dir=Path("."))
    assert doc.data == {"on": 1, "2": "b"}


def test_interpolation_problem_points_at_the_reference() -> None:
    doc = parse_document("a: 1\nb:\n  c: ${NOPE}\n", file="c.yaml", env={}, base_dir=Path("."))
    (problem,) = doc.problems
    assert (problem.line, problem.column, problem.field) == (3, 6, "b.c")
    assert "NOPE" in problem.message


def test_empty_file() -> None:
    doc = parse_document("# only a comment\n", file="c.yaml", env={}, base_dir=Path("."))
    (problem,) = doc.problems
    assert problem.line is None
    assert "empty" in problem.message


def test_missing_file(tmp_path: Path) -> None:
    doc = read_document(tmp_path / "none.yaml", env={})
    (problem,) = doc.problems
    assert problem.file == str(tmp_path / "none.yaml")
    assert "does not exist" in problem.message


def test_binary_file(tmp_path: Path) -> None:
    path = tmp_path / "bin.yaml"
    path.write_bytes(b"\xff\xfe\x00bad")
    doc = read_document(path, env={})
    (problem,) = doc.problems
    assert "cannot be read" in problem.message


def test_secrets_are_scrubbed_from_problem_text(tmp_path: Path) -> None:
    (tmp_path / "key").write_text("topsecretvalue\n", encoding="utf-8")
    doc = read_document(_write(tmp_path, "a: ${file:key}\nb:\n  password: hunter22\n"), env={})
    assert doc.problems == []
    problem = doc.problem(("a",), "bad value 'topsecretvalue' and hunter22", "not topsecretvalue")
    assert "topsecretvalue" not in problem.render()
    assert "hunter22" not in problem.render()
    assert "****" in problem.message


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ((), ""),
        (("syncs",), "syncs"),
        (("syncs", 0, "objects", 1, "name"), "syncs[0].objects[1].name"),
        (("connections", "crm", "auth"), "connections.crm.auth"),
    ],
)
def test_format_path(path: tuple[str | int, ...], text: str) -> None:
    assert format_path(path) == text


def test_recursive_alias_is_a_problem_not_a_crash() -> None:
    doc = parse_document("a: &x\n  - *x\n", file="c.yaml", env={}, base_dir=Path("."))
    (problem,) = doc.problems
    assert problem.message == "YAML structure error: an alias refers to a node that contains it"
    assert "non-recursive" in problem.fix


def test_alias_bomb_is_refused() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 6):
        refs = ", ".join([f"*a{i - 1}"] * 10)
        lines.append(f"a{i}: &a{i} [{refs}]")
    doc = parse_document("\n".join(lines) + "\n", file="c.yaml", env={}, base_dir=Path("."))
    (problem,) = doc.problems
    assert "expands to more than" in problem.message
