from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from rest_fakes import FakeCompiler, FakeOrg, build_test_app

V = "/services/data/v59.0"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def fake() -> tuple[object, FakeOrg, FakeCompiler]:
    return build_test_app()


@pytest.fixture
def org(fake: tuple[object, FakeOrg, FakeCompiler]) -> FakeOrg:
    return fake[1]


@pytest.fixture
def compiler(fake: tuple[object, FakeOrg, FakeCompiler]) -> FakeCompiler:
    return fake[2]


@pytest.fixture
async def client(fake: tuple[object, FakeOrg, FakeCompiler]) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=fake[0])  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="https://emulator.test") as c:
        yield c
