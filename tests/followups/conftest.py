"""Follow-up fixtures: a database migrated to head on SQLite and on PostgreSQL (one per session,
shared by the follow-up tests: give rows unique codes and names), and a Runtime on it with Redis db 8
for console sessions (with HIS_API_TOKEN set). Build a console app from it with
tests.support.api.build_api_app, or use `app` (staff, audit, enrolment and HIS routers); `outbox` is
one worker's outbox on its own Runtime against the fake WeChat API."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import httpx
import pytest
import redis
from fastapi import FastAPI

from channels.outbound.delivery import Outbox
from crm_backend.database.core import Database
from crm_backend.followups.enrolment_views import router as enrolment_router
from crm_backend.followups.his_views import router as his_router
from crm_backend.patient_record.enrolment_views import router as enrol_router
from crm_backend.runtime import Runtime
from crm_backend.staff.audit_views import router as audit_router
from crm_backend.staff.views import router as staff_router
from tests.appointments.test_reminders import worker_outbox
from tests.support.api import ADMIN_PASSWORD, ADMIN_USERNAME, api_settings, build_api_app, login, new_client
from tests.support.postgres import database_at_head
from tests.support.stack import FakeWeChat

REDIS_URL = os.environ.get("TEST_REDIS_BASE", "redis://127.0.0.1:6379") + "/8"
DB_NAME = os.environ.get("TEST_POSTGRES_DB", "carebridge_test") + "_followups"
HIS_TOKEN = "his-token-for-tests-0123456789"
TEMPLATE_ID = "tmpl-followup-checkin-01"


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
async def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    async with database_at_head(request.param, DB_NAME, tmp_path_factory.mktemp("followups")) as url:
        yield url


@pytest.fixture(scope="session")
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    yield database
    await database.dispose()


@pytest.fixture(scope="session")
async def runtime(database_url: str) -> AsyncIterator[Runtime]:
    """Settings, database and Redis as the web app has them (for console-API tests)."""
    redis.Redis.from_url(REDIS_URL).flushdb()
    runtime = Runtime.create(api_settings(database_url, REDIS_URL, HIS_API_TOKEN=HIS_TOKEN))
    yield runtime
    await runtime.close()


@pytest.fixture(scope="session")
async def app(runtime: Runtime) -> FastAPI:
    return await build_api_app(
        runtime, staff_router, audit_router, enrol_router, enrolment_router, his_router
    )


@pytest.fixture
async def admin_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with new_client(app) as c:
        await login(c, ADMIN_USERNAME, ADMIN_PASSWORD)
        yield c


@pytest.fixture
async def outbox(database_url: str, fake_wechat: FakeWeChat) -> AsyncIterator[Outbox]:
    """One worker's outbox (its own Runtime), with the follow-up template configured."""
    async with worker_outbox(database_url, fake_wechat, FOLLOWUP_TEMPLATE_ID=TEMPLATE_ID) as box:
        yield box
