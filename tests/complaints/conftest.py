"""Complaint fixtures: a database migrated to head on SQLite and on PostgreSQL (one per session,
shared by the complaint tests: each test makes its own patients and cases), and a Runtime on it with
Redis db 9 for console sessions and events. Build a console app from it with
tests.support.api.build_api_app, or use `app` (staff, audit and complaint routers)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import httpx
import pytest
import redis
from fastapi import FastAPI

from crm_backend.complaints.report_views import router as complaints_report_router
from crm_backend.complaints.views import router as complaints_router
from crm_backend.runtime import Runtime
from crm_backend.staff.audit_views import router as audit_router
from crm_backend.staff.views import router as staff_router
from tests.support.api import ADMIN_PASSWORD, ADMIN_USERNAME, api_settings, build_api_app, login, new_client
from tests.support.postgres import database_at_head

REDIS_URL = os.environ.get("TEST_REDIS_BASE", "redis://127.0.0.1:6379") + "/9"
DB_NAME = os.environ.get("TEST_POSTGRES_DB", "carebridge_test") + "_complaints"
TEMPLATE_ID = "tmpl-complaint-answer-01"


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
    runtime = Runtime.create(
        api_settings(
            database_url,
            REDIS_URL,
            COMPLAINT_REOPEN_DAYS="7",
            COMPLAINT_TEMPLATE_ID=TEMPLATE_ID,
            # No Rasa here: pausing a tracker on escalation fails fast and is logged.
            RASA_URLS="http://127.0.0.1:9",
        )
    )
    yield runtime
    await runtime.close()


@pytest.fixture(scope="session")
async def app(runtime: Runtime) -> FastAPI:
    return await build_api_app(
        runtime, staff_router, audit_router, complaints_router, complaints_report_router
    )


@pytest.fixture
async def admin_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with new_client(app) as c:
        await login(c, ADMIN_USERNAME, ADMIN_PASSWORD)
        yield c
