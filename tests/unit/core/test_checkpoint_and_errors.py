from __future__ import annotations

import pickle
from types import MappingProxyType

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sfsync.core.checkpoint import Checkpoint, SnapshotProgress, SnapshotStatus
from sfsync.core.errors import (
    ConfigError,
    RateLimitError,
    RetryableError,
    SkippableError,
    SyncError,
)
from sfsync.core.events import Position

names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=12)


@given(
    positions=st.dictionaries(names, names, max_size=4),
    status=st.sampled_from(SnapshotStatus),
    done=st.frozensets(names, max_size=4),
    cursors=st.dictionaries(names, names, max_size=4),
)
def test_checkpoint_json_round_trip(
    positions: dict[str, str],
    status: SnapshotStatus,
    done: frozenset[str],
    cursors: dict[str, str],
) -> None:
    checkpoint = Checkpoint(
        positions=MappingProxyType({s: Position(s, t) for s, t in positions.items()}),
        snapshot=SnapshotProgress(
            status=status,
            done=done,
            cursors=MappingProxyType(cursors),
            stream_start=MappingProxyType({s: Position(s, t) for s, t in positions.items()}),
        ),
    )
    assert Checkpoint.from_json(checkpoint.to_json()) == checkpoint


def test_advanced_merges_positions() -> None:
    base = Checkpoint().advanced({"a": Position("a", "1"), "b": Position("b", "1")})
    moved = base.advanced({"a": Position("a", "2")})
    assert moved.positions == {"a": Position("a", "2"), "b": Position("b", "1")}
    assert base.positions["a"] == Position("a", "1")


@pytest.mark.parametrize(
    "text", ["not json", "{}", '{"version": 2}', '{"version": 1, "positions": {}}', "[]"]
)
def test_bad_checkpoints_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="checkpoint"):
        Checkpoint.from_json(text)


def test_error_text_carries_code_and_fix() -> None:
    err = ConfigError("no such object Acount", hint="did you mean Account?", code="INVALID_TYPE")
    assert str(err) == "[INVALID_TYPE] no such object Acount (fix: did you mean Account?)"
    assert str(SyncError("plain")) == "plain"


def test_errors_survive_pickling() -> None:
    err = RateLimitError("slow", retry_after=3.5, hint="wait", code="REQUEST_LIMIT_EXCEEDED")
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is RateLimitError
    assert (back.retry_after, back.hint, back.code) == (3.5, "wait", "REQUEST_LIMIT_EXCEEDED")
    skip = pickle.loads(pickle.dumps(SkippableError("bad row", code="STRING_TOO_LONG")))
    assert skip.code == "STRING_TOO_LONG"


def test_rate_limit_is_retryable() -> None:
    assert isinstance(RateLimitError("x"), RetryableError)
