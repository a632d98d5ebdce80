"""Staff-console fixtures: a real PostgreSQL database and Redis db 14, both reset at session start."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import redis
from fastapi import FastAPI

from crm_backend.config import Settings
from crm_backend.runtime import Runtime
from crm_backend.staff.audit_views import router as audit_router
from crm_backend.staff.views import router as staff_router
from tests.support.api import (
    ADMIN_PASSWORD,
    ADMIN_USERNAME,
    api_settings,
    build_api_app,
    login,
    new_client,
)
from tests.support.postgres import alembic, drop_postgres, recreate_postgres

REDIS_URL = os.environ.get("TEST_REDIS_BASE", "redis://127.0.0.1:6379") + "/14"
#: TEST_POSTGRES_DB names this suite's database too, so two checkouts can run it side by side.
DB_NAME = f"{os.environ.get('TEST_POSTGRES_DB', 'carebridge')}_staff_test"
#: Head, not 0002 that creates these tables: 0007 chains the audit log, which the app writes.
REVISION = "head"


def make_settings(database_url: str, **overrides: Any) -> Settings:
    return api_settings(
        database_url,
        REDIS_URL,
        **{
            "SESSION_COOKIE_SECURE": False,
            "LOGIN_MAX_FAILURES": 5,
            # Above one username's limit, so a colleague's typos at one address hold nobody else up.
            "LOGIN_MAX_FAILURES_PER_ADDRESS": 8,
            "LOGIN_WINDOW_SECONDS": 900,
            **overrides,
        },
    )


class RecordingEvents:
    """Stands in for the real-time publisher the lead installs at app.state.events."""

    def __init__(self) -> None:
        self.published: list[dict[str, Any]] = []

    async def publish(self, event: dict[str, Any]) -> None:
        self.published.append(event)


@pytest.fixture(scope="session")
async def database_url() -> AsyncIterator[str]:
    url = await recreate_postgres(DB_NAME)
    alembic(url, "upgrade", REVISION)
    yield url
    await drop_postgres(DB_NAME)


@pytest.fixture(scope="session")
async def runtime(database_url: str) -> AsyncIterator[Runtime]:
    redis.Redis.from_url(REDIS_URL).flushdb()
    runtime = Runtime.create(make_settings(database_url))
    yield runtime
    await runtime.close()


@pytest.fixture(scope="session")
async def app(runtime: Runtime) -> FastAPI:
    app = await build_api_app(runtime, staff_router, audit_router)
    app.state.events = RecordingEvents()
    return app


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with new_client(app) as c:
        yield c


@pytest.fixture
async def admin_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with new_client(app) as c:
        await login(c, ADMIN_USERNAME, ADMIN_PASSWORD)
        yield c
