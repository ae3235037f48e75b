"""A seeded, deterministic fault plan: make the org fail the way real orgs fail, on purpose.

A :class:`FaultPlan` holds a seed and an ordered list of :class:`FaultRule`. Each rule matches
requests by method and path (a shell glob such as ``/services/data/*/query*``, or a regular
expression written ``re:^/services/data/v\\d+\\.0/sobjects/.*``) and carries per-fault rates
(probabilities in ``[0, 1]`` whose sum is at most 1) plus optional added latency.

For every request the **first** matching rule decides, drawing exactly two numbers from the
plan's own ``random.Random(seed)`` (one for the fault, one for the latency) whatever the
outcome. Hence the same seed and the same sequence of matching requests always give the same
faults, and requests that match no rule do not disturb the sequence. A rule may also stop
after ``times`` injected faults. Latency is applied before an error or drop, and on an
admitted API call as processing time (so it holds a place in the concurrent long-running
limit).

Fault kinds and what the client sees (bodies in Salesforce's REST error shape):

======================= ========================================================================
``503``                 503 ``SERVER_UNAVAILABLE`` (wording UNCONFIRMED; clients retry on status)
``500``                 500 ``UNKNOWN_EXCEPTION`` ``An unexpected error occurred...``
``unable_to_lock_row``  400 ``UNABLE_TO_LOCK_ROW`` ``unable to obtain exclusive access to this
                        record or 1 records: <id>``
``request_limit``       403 ``REQUEST_LIMIT_EXCEEDED`` ``TotalRequests Limit exceeded.``
``query_timeout``       400 ``QUERY_TIMEOUT`` ``Your query request was running for too long.``
``invalid_session``     401 ``INVALID_SESSION_ID`` ``Session expired or invalid``, and the caller's
                        session really ends (a fixed ``--access-token`` survives)
``drop``                the connection is closed without any response
``cdc_gap``             the request is served as usual, but the next record change committed
                        (normally the request's own) reaches Change Data Capture subscribers as a
                        ``GAP_<type>`` event: header and record ids only, as Salesforce sends
                        for a change it could not describe
``lost_response``       the request is served and committed, then the connection is closed
                        before the response is sent: the client cannot tell whether it landed
``row_lock``            not a request fault: this *share of the records* of each matching sObject
                        Collections call, or of the Bulk ingest job that a matching request
                        closes (``PATCH .../jobs/ingest/<id>`` to UploadComplete), fails on its
                        own with ``UNABLE_TO_LOCK_ROW`` (that record is not written; the others
                        are, the call answers 200, the job completes with the row in
                        ``failedResults``), as Salesforce reports a row it could not lock
======================= ========================================================================

``row_lock`` is a per-record rate and does not count towards the rule's sum of request rates;
each matching request draws one more number from the plan's stream (the seed of its records'
draws), so a plan's faults stay reproducible.

The plan is settable from a YAML/JSON file (:func:`load_fault_plan`), CLI ``--fault`` specs
(:func:`parse_rule_spec`) and the admin API (``PUT /__emulator__/faults`` with
:meth:`FaultPlan.from_dict`'s shape).
"""

from __future__ import annotations

import enum
import fnmatch
import json
import random
import re
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from sfsync.emulator.errors import ApiError


class FaultKind(enum.Enum):
    """What a rule can inject; the value is the name used in files, flags and the admin API."""

    SERVICE_UNAVAILABLE = "503"
    SERVER_ERROR = "500"
    UNABLE_TO_LOCK_ROW = "unable_to_lock_row"
    REQUEST_LIMIT = "request_limit"
    QUERY_TIMEOUT = "query_timeout"
    INVALID_SESSION = "invalid_session"
    DROP = "drop"
    CDC_GAP = "cdc_gap"
    LOST_RESPONSE = "lost_response"
    ROW_LOCK = "row_lock"


ROW_KINDS = frozenset({FaultKind.ROW_LOCK})
"""Kinds whose rate is per record of a request, not per request."""

ROW_LOCK_MESSAGE = "unable to obtain exclusive access to this record or 1 records: {id}"


_ID_AT_END = re.compile(r"/([a-zA-Z0-9]{15}|[a-zA-Z0-9]{18})/?$")


def fault_error(kind: FaultKind, path: str) -> ApiError:
    """The Salesforce error a fault of ``kind`` answers with (not for ``DROP``)."""
    if kind is FaultKind.SERVICE_UNAVAILABLE:
        return ApiError.of(503, "SERVER_UNAVAILABLE", "Server temporarily unavailable")
    if kind is FaultKind.SERVER_ERROR:
        return ApiError.of(
            500,
            "UNKNOWN_EXCEPTION",
            "An unexpected error occurred. Please include this ErrorId if you contact support: "
            "1234567890-12345 (-1234567890)",
        )
    if kind is FaultKind.UNABLE_TO_LOCK_ROW:
        match = _ID_AT_END.search(path)
        record = match.group(1) if match else "001000000000000AAA"
        return ApiError.of(
            400,
            "UNABLE_TO_LOCK_ROW",
            f"unable to obtain exclusive access to this record or 1 records: {record}",
        )
    if kind is FaultKind.REQUEST_LIMIT:
        return ApiError.of(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
    if kind is FaultKind.QUERY_TIMEOUT:
        return ApiError.of(400, "QUERY_TIMEOUT", "Your query request was running for too long.")
    if kind is FaultKind.INVALID_SESSION:
        return ApiError.of(401, "INVALID_SESSION_ID", "Session expired or invalid")
    raise ValueError(f"{kind} has no error response")


@dataclass(frozen=True, slots=True)
class FaultRule:
    """Inject faults into requests whose method and path match.

    ``method`` is an HTTP method or ``*``; ``path`` a glob (``fnmatch``, case-sensitive) or a
    regex prefixed ``re:`` (searched, so anchor it). ``latency`` is ``(low, high)`` seconds
    added before answering (``low == high`` for a fixed delay). ``times`` caps the faults this
    rule injects (latency is not a fault and is not capped).
    """

    path: str = "*"
    method: str = "*"
    rates: Mapping[FaultKind, float] = field(default_factory=dict)
    latency: tuple[float, float] | None = None
    times: int | None = None

    def __post_init__(self) -> None:
        total = sum(r for k, r in self.rates.items() if k not in ROW_KINDS)
        if any(r < 0 for r in self.rates.values()) or total > 1.0 + 1e-9:
            raise ValueError(f"fault rates must be >= 0 and sum to at most 1, got {total}")
        if any(self.rates.get(k, 0.0) > 1.0 for k in ROW_KINDS):
            raise ValueError("a per-record fault rate must be at most 1")
        if self.latency is not None and not 0 <= self.latency[0] <= self.latency[1]:
            raise ValueError("latency must be (low, high) seconds with 0 <= low <= high")
        if self.path.startswith("re:"):
            try:
                re.compile(self.path[3:])
            except re.error as exc:
                raise ValueError(f"bad path regex {self.path[3:]!r}: {exc}") from None

    def matches(self, method: str, path: str) -> bool:
        if self.method != "*" and self.method.upper() != method.upper():
            return False
        if self.path.startswith("re:"):
            return re.search(self.path[3:], path) is not None
        return fnmatch.fnmatchcase(path, self.path)

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "method": self.method,
            "path": self.path,
            "rates": {k.value: v for k, v in self.rates.items()},
        }
        if self.latency is not None:
            out["latency_ms"] = [self.latency[0] * 1000, self.latency[1] * 1000]
        if self.times is not None:
            out["times"] = self.times
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> FaultRule:
        """Build from ``{"method", "path", "rates": {kind: rate}, "latency_ms", "times"}``.

        ``latency_ms`` is a number (fixed) or ``[low, high]`` (uniform range).
        """
        unknown = set(data) - {"method", "path", "rates", "latency_ms", "times"}
        if unknown:
            raise ValueError(f"unknown fault rule keys: {sorted(unknown)}")
        raw_rates = data.get("rates", {})
        if not isinstance(raw_rates, Mapping):
            raise ValueError("rates must be a mapping of fault kind to probability")
        rates = {_kind(str(k)): _number(v, "rate") for k, v in raw_rates.items()}
        latency = _latency(data.get("latency_ms"))
        times = data.get("times")
        if times is not None and (not isinstance(times, int) or times < 0):
            raise ValueError("times must be a non-negative integer")
        return cls(
            path=str(data.get("path", "*")),
            method=str(data.get("method", "*")).upper(),
            rates=rates,
            latency=latency,
            times=times,
        )


def _kind(name: str) -> FaultKind:
    try:
        return FaultKind(name.lower())
    except ValueError:
        names = ", ".join(k.value for k in FaultKind)
        raise ValueError(f"unknown fault kind {name!r} (known: {names})") from None


def _number(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{what} must be a number, got {value!r}")
    return float(value)


def _latency(value: object) -> tuple[float, float] | None:
    if value is None:
        return None
    if isinstance(value, Sequence) and not isinstance(value, str):
        if len(value) != 2:
            raise ValueError("latency_ms must be a number or [low, high]")
        low, high = (_number(v, "latency_ms") / 1000 for v in value)
        return (low, high)
    fixed = _number(value, "latency_ms") / 1000
    return (fixed, fixed)


@dataclass(frozen=True, slots=True)
class FaultDecision:
    """What to do to one request: an optional fault and a delay in seconds (may be 0), and
    for its records, :attr:`row_faults` (``None``: none)."""

    kind: FaultKind | None
    delay: float
    row_faults: RowFaults | None = None


NO_FAULT = FaultDecision(None, 0.0)


class RowFaults:
    """The per-record faults of one request: :meth:`lock` says whether the next record fails
    with ``UNABLE_TO_LOCK_ROW``. Seeded from the plan's stream, so reproducible; counts what
    it injects into the plan's statistics."""

    def __init__(self, plan: FaultPlan, lock_rate: float, seed: float) -> None:
        self._plan = plan
        self._lock_rate = lock_rate
        self._random = random.Random(seed)

    def lock(self) -> bool:
        if self._random.random() < self._lock_rate:
            self._plan.count(FaultKind.ROW_LOCK)
            return True
        return False


class FaultPlan:
    """The org's fault rules, their seeded random stream and counters. Thread-safe."""

    def __init__(self, rules: Sequence[FaultRule] = (), *, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._seed = seed
        self._rules: tuple[FaultRule, ...] = tuple(rules)
        self._random = random.Random(seed)
        self._fired: list[int] = [0] * len(self._rules)
        self._injected: Counter[str] = Counter()

    @property
    def seed(self) -> int:
        return self._seed

    @property
    def rules(self) -> tuple[FaultRule, ...]:
        return self._rules

    def replace(self, rules: Sequence[FaultRule], *, seed: int | None = None) -> None:
        """Install new rules (and seed); restart the random stream and counters."""
        with self._lock:
            if seed is not None:
                self._seed = seed
            self._rules = tuple(rules)
            self._random = random.Random(self._seed)
            self._fired = [0] * len(self._rules)
            self._injected.clear()

    def clear(self) -> None:
        """Remove every rule."""
        self.replace(())

    def decide(self, method: str, path: str) -> FaultDecision:
        """The fault (if any) and delay for a request; counts what it injects."""
        with self._lock:
            matched = next(
                ((i, r) for i, r in enumerate(self._rules) if r.matches(method, path)), None
            )
            if matched is None:
                return NO_FAULT
            index, rule = matched
            fault_draw = self._random.random()
            latency_draw = self._random.random()
            delay = 0.0
            if rule.latency is not None:
                low, high = rule.latency
                delay = low + (high - low) * latency_draw
            kind = None
            if rule.times is None or self._fired[index] < rule.times:
                cumulative = 0.0
                for candidate in FaultKind:  # fixed order: the outcome depends only on the draw
                    if candidate in ROW_KINDS:
                        continue
                    cumulative += rule.rates.get(candidate, 0.0)
                    if fault_draw < cumulative:
                        kind = candidate
                        self._fired[index] += 1
                        self._injected[candidate.value] += 1
                        break
            row_faults = None
            lock_rate = rule.rates.get(FaultKind.ROW_LOCK, 0.0)
            if lock_rate > 0:
                row_faults = RowFaults(self, lock_rate, self._random.random())
            return FaultDecision(kind, delay, row_faults)

    def count(self, kind: FaultKind) -> None:
        """Count a fault injected on the plan's behalf (a record's)."""
        with self._lock:
            self._injected[kind.value] += 1

    def stats(self) -> dict[str, int]:
        """Faults injected so far, by kind name."""
        with self._lock:
            return dict(self._injected)

    def to_dict(self) -> dict[str, object]:
        with self._lock:
            return {"seed": self._seed, "rules": [r.to_dict() for r in self._rules]}

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> FaultPlan:
        """Build from ``{"seed": int, "rules": [rule, ...]}`` (see :meth:`FaultRule.from_dict`)."""
        seed, rules = parse_plan(data)
        return cls(rules, seed=seed)


def parse_plan(data: Mapping[str, object]) -> tuple[int, list[FaultRule]]:
    """Validate a plan document; return ``(seed, rules)``. Raises ``ValueError`` when invalid."""
    if not isinstance(data, Mapping):
        raise ValueError("a fault plan must be a mapping with 'seed' and 'rules'")
    unknown = set(data) - {"seed", "rules"}
    if unknown:
        raise ValueError(f"unknown fault plan keys: {sorted(unknown)}")
    seed = data.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ValueError("seed must be an integer")
    raw_rules = data.get("rules", [])
    if not isinstance(raw_rules, list):
        raise ValueError("rules must be a list")
    rules = []
    for raw in raw_rules:
        if not isinstance(raw, Mapping):
            raise ValueError("each rule must be a mapping")
        rules.append(FaultRule.from_dict(raw))
    return seed, rules


def load_fault_plan(path: str | Path) -> FaultPlan:
    """Read a plan from a YAML or JSON file (YAML is a superset, so one parser reads both)."""
    text = Path(path).read_text(encoding="utf-8")
    data = json.loads(text) if str(path).endswith(".json") else yaml.safe_load(text)
    return FaultPlan.from_dict(data or {})


def parse_rule_spec(spec: str) -> FaultRule:
    """Parse a CLI ``--fault`` spec: ``"[METHOD] PATH kind=rate,... [latency=LOW-HIGH] [times=N]"``.

    Examples: ``"GET /services/data/*/query* 503=0.1,drop=0.05"``,
    ``"* /services/data/* latency=50-200"`` (milliseconds). Raises ``ValueError`` when malformed.
    """
    parts = spec.split()
    if not parts:
        raise ValueError("empty fault spec")
    method = "*"
    if parts[0].isalpha() or parts[0] == "*":
        method, parts = parts[0].upper(), parts[1:]
    if not parts:
        raise ValueError(f"fault spec {spec!r} has no path")
    path, settings = parts[0], parts[1:]
    data: dict[str, object] = {"method": method, "path": path, "rates": {}}
    rates: dict[str, object] = {}
    for group in settings:
        for item in group.split(","):
            key, sep, value = item.partition("=")
            if not sep:
                raise ValueError(f"fault spec item {item!r} is not key=value")
            if key == "latency":
                low, _, high = value.partition("-")
                data["latency_ms"] = [float(low), float(high or low)]
            elif key == "times":
                data["times"] = int(value)
            else:
                rates[key] = float(value)
    data["rates"] = rates
    return FaultRule.from_dict(data)
