"""Audit-chain fixtures: a fresh, migrated database per test on SQLite and on PostgreSQL, copied
from a template migrated once (tampering with one test's chain must not leak into the next)."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest
import redis
from fastapi import FastAPI

from crm_backend.database.core import Database
from crm_backend.runtime import Runtime
from crm_backend.staff.audit_views import router as audit_router
from crm_backend.staff.views import router as staff_router
from tests.support.api import ADMIN_PASSWORD, ADMIN_USERNAME, api_settings, build_api_app, login, new_client
from tests.support.postgres import POSTGRES_ADMIN_DSN, alembic, drop_postgres, postgres_url, recreate_postgres

REDIS_URL = os.environ.get("TEST_REDIS_BASE", "redis://127.0.0.1:6379") + "/10"
DB_PREFIX = os.environ.get("TEST_POSTGRES_DB", "carebridge_test") + "_audit"


@dataclass
class Backend:
    name: str
    template: str


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
async def backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Backend]:
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("audit") / "template.db"
        alembic(f"sqlite+aiosqlite:///{path}", "upgrade", "head")
        yield Backend("sqlite", str(path))
        return
    name = f"{DB_PREFIX}_tpl"
    alembic(await recreate_postgres(name), "upgrade", "head")
    yield Backend("postgresql", name)
    await drop_postgres(name)


@pytest.fixture
async def database_url(backend: Backend, tmp_path: Path) -> AsyncIterator[str]:
    """A copy of the migrated template: an empty audit log and chain head."""
    if backend.name == "sqlite":
        path = tmp_path / "carebridge.db"
        shutil.copy(backend.template, path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    await drop_postgres(DB_PREFIX)
    conn = await asyncpg.connect(POSTGRES_ADMIN_DSN)
    try:
        await conn.execute(f"CREATE DATABASE {DB_PREFIX} TEMPLATE {backend.template}")
    finally:
        await conn.close()
    yield postgres_url(DB_PREFIX)
    await drop_postgres(DB_PREFIX)


@pytest.fixture
async def runtime(database_url: str) -> AsyncIterator[Runtime]:
    redis.Redis.from_url(REDIS_URL).flushdb()
    runtime = Runtime.create(api_settings(database_url, REDIS_URL))
    yield runtime
    await runtime.close()


@pytest.fixture
def db(runtime: Runtime) -> Database:
    return runtime.db


@pytest.fixture
async def app(runtime: Runtime) -> FastAPI:
    return await build_api_app(runtime, staff_router, audit_router)


@pytest.fixture
async def admin_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with new_client(app) as client:
        await login(client, ADMIN_USERNAME, ADMIN_PASSWORD)
        yield client
