"""One fixture, ``harness``, parametrised over SQLite, PostgreSQL and MariaDB.

Each test gets a fresh place to write (a SQLite file, a PostgreSQL schema, a MariaDB database)
that is dropped afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pymysql
import pytest
import sqlalchemy as sa

from sfsync.connectors.sql.client import ConnectionSettings
from sfsync.connectors.sql.config import MySqlConnection, PostgresConnection, SqliteConnection

from .helpers import Harness


@pytest.fixture(params=["sqlite", "postgresql", "mysql"])
def settings(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[ConnectionSettings, str]]:
    name = f"sfsync_t_{uuid.uuid4().hex[:10]}"
    if request.param == "sqlite":
        yield SqliteConnection(type="sqlite", url=f"sqlite:///{tmp_path / 'target.db'}"), "sqlite"
    elif request.param == "postgresql":
        url = request.getfixturevalue("postgres_url")
        yield PostgresConnection(type="postgres", url=url, schema=name), "postgresql"
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    else:
        url = sa.make_url(request.getfixturevalue("mariadb_url"))
        admin = pymysql.connect(host=url.host, port=url.port or 3306, user=url.username)
        with admin.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{name}`")
        yield (
            MySqlConnection(type="mariadb", url=url.set(database=name).render_as_string(False)),
            "mysql",
        )
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()


@pytest.fixture
async def harness(settings: tuple[ConnectionSettings, str]) -> AsyncIterator[Harness]:
    h = Harness(*settings)
    yield h
    await h.close_all()
