"""Durations as people write them in YAML: ``30s``, ``5m``, ``1h30m``, ``250ms`` or bare seconds.

:data:`Duration` is the pydantic type every duration field of the configuration uses. It
holds a :class:`~datetime.timedelta`, so the engine never guesses units. A bad value fails
with error type ``duration`` and a ``fix`` in its context, which the validator turns into
the problem's fix line.
"""

from __future__ import annotations

import math
import re
from datetime import timedelta
from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer, TypeAdapter, ValidationError, WithJsonSchema
from pydantic_core import PydanticCustomError

_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_WHOLE = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+")
_ISO = TypeAdapter(timedelta)
MAX_SECONDS = 10 * 366 * 86400.0
"""Longer is a typo (and past what :class:`timedelta` can hold, an overflow)."""
_FIX = (
    'write a number of seconds (30) or a number with a unit: "250ms", "30s", "5m", "1h", '
    '"1h30m", "2d"'
)


def parse_duration(value: object) -> timedelta:
    """``value`` as a non-negative :class:`timedelta`.

    Accepts a ``timedelta``, a non-negative int or float (seconds), a numeric string
    (seconds), a string of number-unit parts with units ``ms``, ``s``, ``m``, ``h``, ``d``
    (``"1h30m"``), or an ISO 8601 duration (``"PT30S"``). Spaces between parts are allowed;
    letters are case-insensitive.

    Raises:
        PydanticCustomError: of type ``duration``, with ``fix`` in its context.
    """
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, bool):
        # YAML turns `yes`/`on` into booleans; a boolean is never a duration.
        raise _error("a duration cannot be true or false", value)
    elif isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        seconds = _parse_text(value)
    else:
        raise _error("a duration must be a number of seconds or a text like 30s", value)
    if math.isnan(seconds) or math.isinf(seconds):
        raise _error("a duration must be finite", value)
    if seconds < 0:
        raise _error("a duration cannot be negative", value)
    if seconds > MAX_SECONDS:
        raise _error("a duration cannot be longer than 10 years", value)
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """The shortest text :func:`parse_duration` reads back as ``value`` (``90s`` -> ``1m30s``)."""
    millis = round(value.total_seconds() * 1000)
    if millis == 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)):
        count, millis = divmod(millis, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def _parse_text(text: str) -> float:
    compact = re.sub(r"\s+", "", text).lower()
    if not compact:
        raise _error("a duration cannot be empty", text)
    try:
        return float(compact)
    except ValueError:
        pass
    if compact.startswith("p"):
        # ISO 8601 (`PT30S`), as other integration tools write durations.
        try:
            return _ISO.validate_python(compact.upper()).total_seconds()
        except ValidationError:
            raise _error(f"{text!r} is not an ISO 8601 duration", text) from None
    if not _WHOLE.fullmatch(compact):
        raise _error(f"{text!r} is not a duration", text)
    return sum(float(n) * _UNIT_SECONDS[u] for n, u in _PART.findall(compact))


def _error(message: str, value: object) -> PydanticCustomError:
    del value  # never echoed beyond what the message already quotes
    return PydanticCustomError("duration", message, {"fix": _FIX})


def _serialize(value: timedelta) -> str:
    return format_duration(value)


JSON_SCHEMA = {
    "anyOf": [
        {"type": "number", "minimum": 0},
        {"type": "string", "pattern": r"^\s*(\d+(\.\d+)?\s*(ms|s|m|h|d)?\s*)+$"},
        {"type": "string", "pattern": r"^[Pp][0-9TtDdHhMmSs.]+$"},
    ],
    "examples": ["30s", "5m", "1h30m"],
}

Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(_serialize, return_type=str),
    WithJsonSchema(JSON_SCHEMA),
]
"""A config field holding a duration; dumps back to text such as ``"5m"``."""
