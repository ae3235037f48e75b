"""``${...}`` references: environment variables, defaults, secret files, and their problems."""

from __future__ import annotations

from pathlib import Path

import pytest

from sfsync.config.interpolate import interpolate

ENV = {"HOST": "db.internal", "EMPTY": "", "PORT": "5432"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain", "plain"),
        ("${HOST}", "db.internal"),
        ("${env:HOST}", "db.internal"),
        ("postgresql://u@${HOST}:${PORT}/db", "postgresql://u@db.internal:5432/db"),
        ("${MISSING:-fallback}", "fallback"),
        ("${env:MISSING:-fallback}", "fallback"),
        ("${EMPTY:-fallback}", "fallback"),  # `:-` also covers set-but-empty, as in the shell
        ("${EMPTY}", ""),
        ("${HOST:-unused}", "db.internal"),
        ("${MISSING:-}", ""),
        ("${MISSING:-a:b}", "a:b"),
        ("$${HOST}", "${HOST}"),
        ("cost: $5", "cost: $5"),
    ],
)
def test_resolves(text: str, expected: str, tmp_path: Path) -> None:
    result = interpolate(text, env=ENV, base_dir=tmp_path)
    assert result.errors == []
    assert result.value == expected
    assert result.secrets == []


@pytest.mark.parametrize(
    ("text", "message", "fix"),
    [
        ("${MISSING}", "environment variable MISSING is not set", "export MISSING=..."),
        ("${env:MISSING}", "environment variable MISSING is not set", "${MISSING:-value}"),
        ("${HOST", "not closed", "close it with '}'"),
        ("${1BAD}", "'${1BAD}' is not a valid reference", "${NAME:-default}"),
        ("${}", "is not a valid reference", "${file:/path/to/secret}"),
        ("${file:}", "names no file", "${file:/run/secrets/NAME}"),
    ],
)
def test_problems(text: str, message: str, fix: str, tmp_path: Path) -> None:
    result = interpolate(text, env=ENV, base_dir=tmp_path)
    assert len(result.errors) == 1
    assert message in result.errors[0].message
    assert fix in result.errors[0].fix


def test_every_unresolved_reference_is_reported(tmp_path: Path) -> None:
    result = interpolate("${A}-${B}-${HOST}", env=ENV, base_dir=tmp_path)
    assert [e.message for e in result.errors] == [
        "environment variable A is not set",
        "environment variable B is not set",
    ]


def test_secret_file_is_read_stripped_and_marked_secret(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("s3cret-value\n", encoding="utf-8")
    result = interpolate("${file:pw}", env={}, base_dir=tmp_path)  # relative to the config
    assert result.errors == []
    assert result.value == "s3cret-value"
    assert result.secrets == ["s3cret-value"]
    absolute = interpolate(f"${{file:{tmp_path / 'pw'}}}", env={}, base_dir=Path("/"))
    assert absolute.value == "s3cret-value"


def test_missing_secret_file_names_the_path(tmp_path: Path) -> None:
    result = interpolate("${file:nope.pem}", env={}, base_dir=tmp_path)
    assert result.value == ""
    (error,) = result.errors
    assert error.message == f"secret file {tmp_path / 'nope.pem'} does not exist"
    assert "create" in error.fix


def test_directory_instead_of_secret_file(tmp_path: Path) -> None:
    result = interpolate(f"${{file:{tmp_path}}}", env={}, base_dir=tmp_path)
    (error,) = result.errors
    assert "is a directory" in error.message
