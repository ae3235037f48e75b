"""Salesforce record ids: the 15-character case-sensitive form and the 18-character
case-insensitive form the APIs return, plus a factory that mints unique ids per key prefix.

Layout of the ids this emulator mints (reference section 2.4; beyond the prefix the layout is
UNCONFIRMED, this is the commonly described one)::

    001  xx  0  000000001  IAA
    ^^^  ^^  ^  ^^^^^^^^^  ^^^
    key  org 0  counter    checksum suffix (18-char form only)

The counter is written in base 62 with the digits ``0-9A-Za-z``. That alphabet is in ASCII
order, so for one key prefix and org, id string order is creation order: ``ORDER BY Id``
over emulator records follows insertion, as it (roughly) does on a real org.

The 3-character suffix makes the 18-character form case-insensitive: each 5-character chunk
of the 15-character id contributes one character whose bit ``j`` says whether character ``j``
of the chunk is an upper-case letter. :func:`normalise` uses that to recover the exact
casing of an 18-character id given in any case.
"""

from __future__ import annotations

import functools
import threading

ID_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SUFFIX_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_COUNTER_DIGITS = 9
_MAX_COUNTER = 62**_COUNTER_DIGITS - 1
_ALNUM = frozenset(ID_ALPHABET)
_BASE62_VALUE = {c: i for i, c in enumerate(ID_ALPHABET)}

#: Key prefixes of the standard objects the emulator knows (reference section 2.4).
STANDARD_KEY_PREFIXES: dict[str, str] = {
    "Account": "001",
    "Note": "002",
    "Contact": "003",
    "User": "005",
    "Opportunity": "006",
    "RecordType": "012",
    "Document": "015",
    "Organization": "00D",
    "UserRole": "00E",
    "Group": "00G",
    "Attachment": "00P",
    "Lead": "00Q",
    "Task": "00T",
    "Event": "00U",
    "Profile": "00e",
    "OpportunityLineItem": "00k",
    "CampaignMember": "00v",
    "Product2": "01t",
    "Pricebook2": "01s",
    "PricebookEntry": "01u",
    "Asset": "02i",
    "ContentVersion": "068",
    "ContentDocument": "069",
    "ContentDocumentLink": "06A",
    "Quote": "0Q0",
    "Case": "500",
    "Campaign": "701",
    "Contract": "800",
    "Order": "801",
    "OrderItem": "802",
}


_UPPER_FLAGS = bytes(49 if 65 <= b <= 90 else 48 for b in range(256))
"""A ``bytes.translate`` table: ``A``-``Z`` -> ``1``, anything else -> ``0``."""


def _suffix(id15: str) -> str:
    # Each 5-character chunk's upper-case letters, as bits (first character lowest), pick
    # one suffix character; read as a binary number from the translated flags, reversed.
    flags = id15.encode("ascii").translate(_UPPER_FLAGS)
    return (
        _SUFFIX_ALPHABET[int(flags[4::-1], 2)]
        + _SUFFIX_ALPHABET[int(flags[9:4:-1], 2)]
        + _SUFFIX_ALPHABET[int(flags[14:9:-1], 2)]
    )


def to_18(id15: str) -> str:
    """The 18-character form of a 15-character id.

    Raises:
        ValueError: ``id15`` is not 15 alphanumeric characters.
    """
    if len(id15) != 15 or not _ALNUM.issuperset(id15):
        raise ValueError(f"not a 15-character Salesforce id: {id15!r}")
    return id15 + _suffix(id15)


@functools.lru_cache(maxsize=8_192)
def normalise(record_id: str) -> str:
    """The canonical 18-character form of a 15- or 18-character id.

    A 15-character id is case-sensitive and is taken as given. An 18-character id is
    case-insensitive: its first 15 characters are re-cased from the suffix (an upper-case
    letter wherever the suffix says so, lower-case elsewhere), so ``001m000000qfpysiau`` and
    ``001M000000qfPySIAU`` normalise to the same id.

    Raises:
        ValueError: not a well-formed id (wrong length, non-alphanumeric characters, or an
            18-character id whose suffix cannot belong to its first 15 characters).

    Results are cached (a request names the same id several times: the route, the store's
    lookup, its write); failures are not.
    """
    if len(record_id) == 15:
        return to_18(record_id)
    if len(record_id) != 18 or not _ALNUM.issuperset(record_id):
        raise ValueError(f"not a Salesforce id: {record_id!r}")
    suffix = record_id[15:].upper()
    if _suffix(record_id[:15]) == suffix:
        return record_id[:15] + suffix  # already in canonical casing (the usual case)
    body = []
    for chunk, code in enumerate(suffix):
        bits = _SUFFIX_ALPHABET.find(code)
        if bits < 0:
            raise ValueError(f"not a Salesforce id (bad checksum): {record_id!r}")
        for j, ch in enumerate(record_id[chunk * 5 : chunk * 5 + 5]):
            upper = bool(bits & (1 << j))
            if ch.isdigit():
                if upper:
                    raise ValueError(f"not a Salesforce id (bad checksum): {record_id!r}")
                body.append(ch)
            else:
                body.append(ch.upper() if upper else ch.lower())
    return "".join(body) + suffix


def is_valid_id(value: object) -> bool:
    """True when ``value`` is a well-formed 15- or 18-character id (see :func:`normalise`)."""
    if not isinstance(value, str):
        return False
    try:
        normalise(value)
    except ValueError:
        return False
    return True


def key_prefix(record_id: str) -> str:
    """The 3-character key prefix (object type) of an id."""
    return record_id[:3]


def encode_base62(number: int, width: int) -> str:
    """``number`` in base 62 (digits ``0-9A-Za-z``), left-padded with ``0`` to ``width``."""
    if number < 0 or number >= 62**width:
        raise ValueError(f"{number} does not fit in {width} base-62 digits")
    digits = []
    for _ in range(width):
        number, rest = divmod(number, 62)
        digits.append(ID_ALPHABET[rest])
    return "".join(reversed(digits))


def decode_base62(text: str) -> int:
    number = 0
    for ch in text:
        number = number * 62 + _BASE62_VALUE[ch]
    return number


def custom_key_prefix(index: int, *, first: str = "a") -> str:
    """The key prefix of the ``index``-th custom object (0-based, in schema order).

    Custom objects get ``a00``, ``a01``, … ``a0z``, ``a10``, … (real orgs hand out ``a0X``-style
    prefixes per org; ours are deterministic so that ids stay stable across restarts as long
    as the schema file keeps its order). Platform events use ``first="e"`` and start at ``e01``,
    because ``e00`` is the publish-result placeholder prefix.
    """
    return first + encode_base62(index, 2)


_PAIRS = [a + b for a in ID_ALPHABET for b in ID_ALPHABET]
_PAIR_BITS = [(1 if "A" <= p[0] <= "Z" else 0) | (2 if "A" <= p[1] <= "Z" else 0) for p in _PAIRS]


def _upper_bits(text: str) -> int:
    return sum(1 << j for j, ch in enumerate(text) if "A" <= ch <= "Z")


def _mint(head: str, start: int, end: int) -> list[str]:
    """18-character ids for counters ``start..end`` after the 6-character ``head``.

    Bulk loads mint millions of ids, so this avoids per-id base-62 conversion and checksum
    loops: the counter's last two digits come from a table of the 3,844 digit pairs, and
    everything before them (and its share of the checksum) is computed once per 3,844 ids.
    Equivalent to ``to_18(head + encode_base62(n, 9))`` (tested).
    """
    out: list[str] = []
    first_chunk = _SUFFIX_ALPHABET[_upper_bits(head[:5])]
    n = start
    while n <= end:
        high, low = divmod(n, 3844)
        body = head + encode_base62(high, _COUNTER_DIGITS - 2)  # 13 characters
        fixed = first_chunk + _SUFFIX_ALPHABET[_upper_bits(body[5:10])]
        bits = _upper_bits(body[10:13])
        last = min(end, (high + 1) * 3844 - 1)
        stop = low + (last - n)
        out.extend(
            body + _PAIRS[i] + fixed + _SUFFIX_ALPHABET[bits | (_PAIR_BITS[i] << 3)]
            for i in range(low, stop + 1)
        )
        n = last + 1
    return out


class IdFactory:
    """Mints unique 18-character ids, one counter per key prefix. Thread-safe.

    Args:
        org_instance: the two characters after the key prefix (the "pod" part of real ids).
    """

    def __init__(self, org_instance: str = "xx") -> None:
        if len(org_instance) != 2 or not _ALNUM.issuperset(org_instance):
            raise ValueError(f"org_instance must be 2 alphanumeric characters: {org_instance!r}")
        self.org_instance = org_instance
        self._lock = threading.Lock()
        self._counters: dict[str, int] = {}

    def new_id(self, prefix: str) -> str:
        """A fresh id for the object with key prefix ``prefix``."""
        return self.new_ids(prefix, 1)[0]

    def new_ids(self, prefix: str, count: int) -> list[str]:
        """``count`` fresh ids, in increasing order (one lock round for the whole batch)."""
        if len(prefix) != 3 or not _ALNUM.issuperset(prefix):
            raise ValueError(f"key prefix must be 3 alphanumeric characters: {prefix!r}")
        with self._lock:
            start = self._counters.get(prefix, 0) + 1
            end = start + count - 1
            if end > _MAX_COUNTER:
                raise OverflowError(f"id counter exhausted for key prefix {prefix}")
            self._counters[prefix] = end
        return _mint(prefix + self.org_instance + "0", start, end)

    def observe(self, record_id: str) -> None:
        """Make sure later ids never collide with ``record_id`` (used when reloading data).

        Ids from another org instance or layout cannot collide with ours and are ignored.
        """
        head, counter = record_id[:6], record_id[6:15]
        if head[3:5] != self.org_instance or head[5] != "0":
            return
        value = decode_base62(counter)
        with self._lock:
            if value > self._counters.get(head[:3], 0):
                self._counters[head[:3]] = value

    def counters(self) -> dict[str, int]:
        """A copy of the last counter used per key prefix."""
        with self._lock:
            return dict(self._counters)
