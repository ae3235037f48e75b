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
        return _recase(record_id)
    suffix = ""
    for chunk in range(3):
        bits = 0
        for j, char in enumerate(record_id[chunk * 5 : chunk * 5 + 5]):
            if "A" <= char <= "Z":
                bits |= 1 << j
        suffix += _SUFFIX[bits]
    return record_id + suffix


def _recase(record_id: str) -> str:
    """An 18-character id with its first 15 characters in their true case.

    The suffix says which of them are upper case, which is what makes the 18-character form
    safe for case-insensitive handling; an id typed in another case is restored from it. A
    suffix that does not decode leaves the id as given (it then matches nothing).
    """
    head = list(record_id[:15])
    for chunk, flag in enumerate(record_id[15:].upper()):
        bits = _SUFFIX.find(flag)
        if bits < 0:
            return record_id
        for j in range(5):
            i = chunk * 5 + j
            if head[i].isalpha():
                head[i] = head[i].upper() if bits & (1 << j) else head[i].lower()
    return "".join(head) + record_id[15:].upper()
