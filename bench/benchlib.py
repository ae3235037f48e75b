"""What several benchmarks share: the realistic Account rows of physical-limits.md and reading
a process's memory. Not a benchmark itself."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

FIELDS = (
    "Id", "Name", "AccountNumber", "Type", "Industry", "Rating", "Phone", "Website",
    "AnnualRevenue", "NumberOfEmployees", "Description", "BillingStreet", "BillingCity",
    "BillingState", "BillingPostalCode", "BillingCountry", "OwnerId", "CreatedDate",
    "LastModifiedDate", "SystemModstamp",
)  # fmt: skip

_CITIES = (
    ("Zürich", "ZH", "Switzerland"), ("São Paulo", "SP", "Brazil"), ("Berlin", "BE", "Germany"),
    ("Austin", "TX", "USA"), ("Lyon", "ARA", "France"), ("Osaka", "27", "Japan"),
)  # fmt: skip
_WORDS = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "supply",
    "chain",
    "cloud",
    "retail",
    "energy",
    "logistics",
    "partner",
]


def realistic_rows(count: int, seed: int = 20240601) -> Iterator[dict[str, Any]]:
    """Account rows in wire form, deterministic from ``seed``."""
    rng = random.Random(seed)
    for n in range(count):
        city, state, country = _CITIES[n % len(_CITIES)]
        words = rng.randint(0, 30)
        description = None if rng.random() < 0.3 else " ".join(rng.choices(_WORDS, k=words))
        if description and rng.random() < 0.05:
            description += "\nsecond line"
        yield {
            "Name": f"Account {n} {rng.choice(_WORDS).title()} GmbH",
            "AccountNumber": f"AC-{n:08d}",
            "Type": rng.choice(("Customer - Direct", "Prospect", "Partner")),
            "Industry": rng.choice(("Energy", "Banking", "Retail", "Technology")),
            "Rating": rng.choice(("Hot", "Warm", "Cold", None)),
            "Phone": f"+41 44 {rng.randint(100, 999)} {rng.randint(1000, 9999)}",
            "Website": f"https://www.example{n}.com",
            "AnnualRevenue": None if rng.random() < 0.2 else round(rng.uniform(1e4, 1e9), 2),
            "NumberOfEmployees": rng.randint(1, 100_000),
            "Description": description,
            "BillingStreet": f"Hauptstraße {rng.randint(1, 300)}",
            "BillingCity": city,
            "BillingState": state,
            "BillingPostalCode": f"{rng.randint(1000, 99999)}",
            "BillingCountry": country,
        }


def rss(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of ``pid`` in MiB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) // 1024
    return out
