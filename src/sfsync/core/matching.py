"""First run of a two-way sync: pair up the records both sides already hold.

When a two-way sync starts over two non-empty sides, copying both ways would duplicate every
record that exists on both. :func:`match_records` pairs them instead, by the configured match
keys (``match_on``: an external id, an email, ...), tried in order:

1. For the first key, records of both sides that are not yet decided are grouped by the key's
   normalised value. A value held by exactly one record on each side pairs those two.
   A value held on both sides by more than one record on either side is *ambiguous*: those
   records are reported, never merged, and take no further part (a human decides). A value
   held on one side only leaves its records for the next key.
2. The next key is tried on the records still undecided, and so on.
3. Whatever is left is ``left_only`` or ``right_only``: new records to copy across.

Normalisation (:func:`normalise`): text is NFKC-normalised, stripped, inner runs of whitespace
collapse to one space, and it is case-folded (``" Ann@Example.COM "`` matches
``"ann@example.com"``); a number is its decimal text, without a fraction when integral (``42``,
``42.0`` and ``"42"`` match; ``"042"`` keeps its zeros); ``None``, empty text, booleans and
non-finite numbers match nothing. The result does not depend on the order of the
records given.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from sfsync.core.conflicts import Values

_SPACES = re.compile(r"\s+")


def normalise(value: object) -> str | None:
    """The form a match-key value is compared in; ``None`` when it cannot match anything."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float | Decimal):
        finite = value.is_finite() if isinstance(value, Decimal) else math.isfinite(value)
        if not finite:
            return None
        if value == int(value):
            return str(int(value))
        return format(Decimal(str(value)).normalize(), "f")
    text = _SPACES.sub(" ", unicodedata.normalize("NFKC", str(value))).strip().casefold()
    return text or None


@dataclass(frozen=True, slots=True)
class Pair:
    """Two records found to be the same, and the key that said so."""

    left: str
    right: str
    key: str
    value: str


@dataclass(frozen=True, slots=True)
class Ambiguity:
    """Several records on one side share a key value with records on the other."""

    key: str
    value: str
    left: tuple[str, ...]
    right: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class MatchResult:
    """The outcome of :func:`match_records`; every record is in exactly one part.

    Attributes:
        pairs: matched records, sorted by the left id.
        left_only: ids of records only the left side holds (to create on the right), sorted.
        right_only: ids of records only the right side holds (to create on the left), sorted.
        ambiguous: groups left for a human, in key order, then by value.
    """

    pairs: tuple[Pair, ...]
    left_only: tuple[str, ...]
    right_only: tuple[str, ...]
    ambiguous: tuple[Ambiguity, ...]


def match_records(
    left: Mapping[str, Values], right: Mapping[str, Values], keys: Sequence[str]
) -> MatchResult:
    """Pair the records of two sides by ``keys``, tried in order (see the module docstring).

    Args:
        left: records of one side by their id (Salesforce Ids, say).
        right: records of the other side by their id (primary keys as text).
        keys: field names, in the sides' common field names, the most trustworthy first.
            A record without a field, or with an empty value, does not match on that key.

    Raises:
        ValueError: no key is given.
    """
    if not keys:
        raise ValueError("match_records needs at least one key to match on")
    open_left, open_right = set(left), set(right)
    pairs: list[Pair] = []
    ambiguous: list[Ambiguity] = []
    for key in keys:
        by_left = _groups(left, open_left, key)
        by_right = _groups(right, open_right, key)
        for value in sorted(by_left.keys() & by_right.keys()):
            ls, rs = by_left[value], by_right[value]
            if len(ls) == 1 and len(rs) == 1:
                pairs.append(Pair(ls[0], rs[0], key, value))
            else:
                ambiguous.append(Ambiguity(key, value, tuple(ls), tuple(rs)))
            open_left.difference_update(ls)
            open_right.difference_update(rs)
    return MatchResult(
        pairs=tuple(sorted(pairs, key=lambda p: p.left)),
        left_only=tuple(sorted(open_left)),
        right_only=tuple(sorted(open_right)),
        ambiguous=tuple(ambiguous),
    )


def _groups(records: Mapping[str, Values], undecided: set[str], key: str) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for rid in sorted(undecided):
        value = normalise(records[rid].get(key))
        if value is not None:
            groups.setdefault(value, []).append(rid)
    return groups


@dataclass(frozen=True, slots=True)
class FirstRun:
    """What the first run of a two-way sync does with the records both sides hold.

    Attributes:
        keys: the records to reconcile, by key (pairs, and records on one side only).
        give_keys: Salesforce Id -> key, for Salesforce records without a key value that
            paired with a row by another field: they take the row's key.
        notices: what is left alone and why (ambiguous groups, pairs with different keys,
            Salesforce records with no key that pair with nothing).
    """

    keys: tuple[str, ...]
    give_keys: Mapping[str, str]
    notices: tuple[str, ...]


def plan_first_run(
    entity: str,
    key: str,
    salesforce: Mapping[str, Values],
    external: Mapping[str, Values],
    match_on: Sequence[str],
) -> FirstRun:
    """Pair ``salesforce`` records (by Id) with ``external`` rows (by key), by ``key`` then
    ``match_on`` (see :func:`match_records`), and say what to reconcile."""
    result = match_records(salesforce, external, (key, *[k for k in match_on if k != key]))
    keys: list[str] = []
    give: dict[str, str] = {}
    notices: list[str] = []
    for pair in result.pairs:
        own = salesforce[pair.left].get(key)
        if own in (None, ""):
            give[pair.left] = pair.right
        elif str(own) != pair.right:
            notices.append(
                f"{entity}: Salesforce {pair.left} ({key} {own}) and row {pair.right} match on "
                f"{pair.key} but have different keys; left alone"
            )
            continue
        keys.append(pair.right)
    for group in result.ambiguous:
        notices.append(
            f"{entity}: {len(group.left)} Salesforce records and {len(group.right)} rows share "
            f"{group.key} = {group.value!r}; left alone until the duplicates are fixed"
        )
    keyless = 0
    for record_id in result.left_only:
        own = salesforce[record_id].get(key)
        if own in (None, ""):
            keyless += 1
        else:
            keys.append(str(own))
    if keyless:
        notices.append(
            f"{entity}: {keyless} Salesforce records have no {key} and match no row; they are "
            "not synced until they have one"
        )
    keys.extend(result.right_only)
    return FirstRun(tuple(dict.fromkeys(keys)), give, tuple(notices))
