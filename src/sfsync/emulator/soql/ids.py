"""Salesforce record ids in SOQL literals: 15-character ids are accepted and widened."""

from __future__ import annotations

_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_ALNUM = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")


def to_18(record_id: str) -> str | None:
    """The 18-character form of a 15- or 18-character id, or ``None`` if it is not an id.

    The suffix encodes, per 5-character chunk, which characters are upper case (bit j for
    the j-th character), so that the id survives case-insensitive handling.
    """
    if len(record_id) not in (15, 18) or not set(record_id) <= _ALNUM:
        return None
    if len(record_id) == 18:
        return record_id
    suffix = ""
    for chunk in range(3):
        bits = 0
        for j, char in enumerate(record_id[chunk * 5 : chunk * 5 + 5]):
            if "A" <= char <= "Z":
                bits |= 1 << j
        suffix += _SUFFIX[bits]
    return record_id + suffix
