"""API usage as Salesforce reports it on every REST response (``Sforce-Limit-Info``)."""

from __future__ import annotations

import re
from dataclasses import dataclass

_API_USAGE = re.compile(r"(?:^|[;\s])api-usage=(\d+)/(\d+)")


@dataclass(frozen=True, slots=True)
class ApiUsage:
    """The org's rolling 24-hour API request count and its allocation."""

    used: int
    limit: int

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)

    @property
    def fraction_used(self) -> float:
        return self.used / self.limit if self.limit else 1.0


def parse_limit_info(header: str | None) -> ApiUsage | None:
    """``api-usage=18/5000; per-app-api-usage=17/250(appName=x)`` -> ``ApiUsage(18, 5000)``."""
    if not header:
        return None
    match = _API_USAGE.search(header)
    if match is None:
        return None
    return ApiUsage(int(match.group(1)), int(match.group(2)))
