"""Follow-up fixtures: a database migrated to head on SQLite and on PostgreSQL (one per session,
shared by the follow-up tests: give rows unique codes and names), and a Runtime on it with Redis db 8
for console sessions. Build a console app from it with tests.support.api.build_api_app."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis

from crm_backend.database.core import Database
from crm_backend.runtime import Runtime
from tests.support.api import api_settings
from tests.support.postgres import alembic, drop_postgres, recreate_postgres

REDIS_URL = os.environ.get("TEST_REDIS_BASE", "redis://127.0.0.1:6379") + "/8"
DB_NAME = os.environ.get("TEST_POSTGRES_DB", "carebridge_test") + "_followups"


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
async def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{Path(tmp_path_factory.mktemp('followups')) / 'carebridge.db'}"
        alembic(url, "upgrade", "head")
        yield url
        return
    url = await recreate_postgres(DB_NAME)
    alembic(url, "upgrade", "head")
    yield url
    await drop_postgres(DB_NAME)


@pytest.fixture(scope="session")
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    yield database
    await database.dispose()


@pytest.fixture(scope="session")
async def runtime(database_url: str) -> AsyncIterator[Runtime]:
    """Settings, database and Redis as the web app has them (for console-API tests)."""
    redis.Redis.from_url(REDIS_URL).flushdb()
    runtime = Runtime.create(api_settings(database_url, REDIS_URL))
    yield runtime
    await runtime.close()
