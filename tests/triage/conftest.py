"""Triage console-API fixtures: our own PostgreSQL database (named after TEST_POSTGRES_DB) and Redis
db 9, the demo hospital loaded and seeded once per session."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import httpx
import pytest
import redis
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError

from crm_backend.app import _bad_request
from crm_backend.appointments.demo_data import load_demo_data_if_empty
from crm_backend.runtime import Runtime
from crm_backend.staff.audit_views import router as audit_router
from crm_backend.staff.views import router as staff_router
from crm_backend.triage.decision_views import router as decisions_router
from crm_backend.triage.store import seed_departments
from crm_backend.triage.views import router as triage_router
from tests.support.api import ADMIN_PASSWORD, ADMIN_USERNAME, api_settings, build_api_app, login, new_client
from tests.support.postgres import alembic, drop_postgres, recreate_postgres

REDIS_URL = os.environ.get("TEST_REDIS_BASE", "redis://127.0.0.1:6379") + "/9"
DB_NAME = os.environ.get("TEST_POSTGRES_DB", "carebridge_test") + "_triage"


@pytest.fixture(scope="session")
async def database_url() -> AsyncIterator[str]:
    url = await recreate_postgres(DB_NAME)
    alembic(url, "upgrade", "head")
    yield url
    await drop_postgres(DB_NAME)


@pytest.fixture(scope="session")
async def runtime(database_url: str) -> AsyncIterator[Runtime]:
    redis.Redis.from_url(REDIS_URL).flushdb()
    runtime = Runtime.create(api_settings(database_url, REDIS_URL))
    assert await load_demo_data_if_empty(runtime.db)
    async with runtime.db.sessions() as session:
        await seed_departments(session)
        await session.commit()
    yield runtime
    await runtime.close()


@pytest.fixture(scope="session")
async def app(runtime: Runtime) -> FastAPI:
    app = await build_api_app(runtime, staff_router, audit_router, triage_router, decisions_router)
    # As in the real app: malformed console input is a 400.
    app.add_exception_handler(RequestValidationError, _bad_request)
    return app


@pytest.fixture
async def admin_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with new_client(app) as c:
        await login(c, ADMIN_USERNAME, ADMIN_PASSWORD)
        yield c
