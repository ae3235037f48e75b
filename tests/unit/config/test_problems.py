"""How problems are rendered and raised."""

from __future__ import annotations

import pickle

import pytest

from sfsync.config.problems import ConfigProblems, Problem, render_all
from sfsync.core.errors import ConfigError


def problem(line: int | None, field: str = "syncs[0].mode", column: int | None = 3) -> Problem:
    return Problem(
        file="sync.yaml", line=line, column=column, field=field, message="bad", fix="do better"
    )


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (problem(4), "sync.yaml:4:3: syncs[0].mode: bad\n    fix: do better"),
        (problem(4, column=None), "sync.yaml:4: syncs[0].mode: bad\n    fix: do better"),
        (problem(None, column=None), "sync.yaml: syncs[0].mode: bad\n    fix: do better"),
        (problem(1, field=""), "sync.yaml:1:3: bad\n    fix: do better"),
    ],
)
def test_render(value: Problem, text: str) -> None:
    assert value.render() == text


def test_config_problems_sorts_and_counts() -> None:
    err = ConfigProblems([problem(9), problem(2), problem(None)])
    assert isinstance(err, ConfigError)
    assert [p.line for p in err.problems] == [None, 2, 9]
    assert str(err).endswith("3 problems found")
    assert str(err).startswith("sync.yaml: syncs[0].mode: bad")
    assert render_all([problem(1)]).endswith("1 problem found")


def test_config_problems_needs_a_problem() -> None:
    with pytest.raises(ValueError, match="at least one"):
        ConfigProblems([])


def test_config_problems_survive_pickling() -> None:
    err = pickle.loads(pickle.dumps(ConfigProblems([problem(2)])))
    assert isinstance(err, ConfigProblems)
    assert err.problems == (problem(2),)


def test_machine_readable_forms() -> None:
    value = Problem(
        file="conf/sync.yaml", line=4, column=3, field="syncs[0].mode", message="bad: 50%", fix="x"
    )
    assert value.to_dict() == {
        "file": "conf/sync.yaml",
        "line": 4,
        "column": 3,
        "field": "syncs[0].mode",
        "message": "bad: 50%",
        "fix": "x",
    }
    assert value.github_annotation() == (
        "::error file=conf/sync.yaml,line=4,col=3,title=syncs[0].mode::bad: 50%25%0Afix: x"
    )
    assert (
        problem(None, field="").github_annotation()
        == "::error file=sync.yaml::bad%0Afix: do better"
    )
