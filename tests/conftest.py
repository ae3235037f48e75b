"""Shared fixtures: real services, checked once, never mocked.

In CI (``CI`` set) a missing service fails the tests that need it; on a laptop they are
skipped with a message naming the service and how to start it.
"""

from __future__ import annotations

import os
import socket

import pytest

SERVICES = {
    "postgres": ("127.0.0.1", 5432, "PostgreSQL"),
    "mariadb": ("127.0.0.1", 3306, "MariaDB"),
}

POSTGRES_URL = os.environ.get(
    "SFSYNC_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def require_service(name: str) -> None:
    """Fail (in CI) or skip (elsewhere) unless service ``name`` accepts connections."""
    host, port, label = SERVICES[name]
    if _reachable(host, port):
        return
    message = f"{label} is not running on {host}:{port}; start it (see .ci/run) to run this test"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def postgres_url() -> str:
    require_service("postgres")
    return POSTGRES_URL


MARIADB_URL = os.environ.get("SFSYNC_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test")


@pytest.fixture
def mariadb_url() -> str:
    require_service("mariadb")
    return MARIADB_URL
