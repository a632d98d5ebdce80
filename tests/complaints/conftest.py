"""Complaint fixtures: a database migrated to head on SQLite and on PostgreSQL (one per session,
shared by the complaint tests: each test makes its own patients and cases), and a Runtime on it with
Redis db 9 for console sessions and events. Build a console app from it with
tests.support.api.build_api_app, or use `app` (staff, audit and complaint routers)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest
import redis

from crm_backend.runtime import Runtime
from tests.support.api import api_settings
from tests.support.postgres import database_at_head

REDIS_URL = os.environ.get("TEST_REDIS_BASE", "redis://127.0.0.1:6379") + "/9"
DB_NAME = os.environ.get("TEST_POSTGRES_DB", "carebridge_test") + "_complaints"


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
async def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    async with database_at_head(request.param, DB_NAME, tmp_path_factory.mktemp("complaints")) as url:
        yield url


@pytest.fixture(scope="session")
async def runtime(database_url: str) -> AsyncIterator[Runtime]:
    """Settings, database and Redis as the web app has them."""
    redis.Redis.from_url(REDIS_URL).flushdb()
    runtime = Runtime.create(api_settings(database_url, REDIS_URL, COMPLAINT_REOPEN_DAYS="7"))
    yield runtime
    await runtime.close()
