"""Staff-console fixtures: a real PostgreSQL database and Redis db 14, both reset at session start."""

from __future__ import annotations

import itertools
import os
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import redis
from fastapi import FastAPI

from crm_backend.audit.views import router as audit_router
from crm_backend.config import Settings
from crm_backend.runtime import Runtime
from crm_backend.staff.service import ensure_first_admin
from crm_backend.staff.views import router as staff_router

ROOT = Path(__file__).resolve().parents[2]
POSTGRES_ADMIN_DSN = os.environ.get("TEST_POSTGRES_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_BASE", "redis://127.0.0.1:6379") + "/14"
DB_NAME = "carebridge_staff_test"
#: The revision that creates these tables; later revisions belong to other packages.
REVISION = "0002"
ADMIN_USERNAME = "root"
ADMIN_PASSWORD = "root-password-123"


def postgres_url(name: str) -> str:
    host_part = POSTGRES_ADMIN_DSN.split("://", 1)[1].rsplit("/", 1)[0]
    return f"postgresql+asyncpg://{host_part}/{name}"


async def recreate_postgres(name: str) -> str:
    conn = await asyncpg.connect(POSTGRES_ADMIN_DSN)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await conn.execute(f"CREATE DATABASE {name}")
    finally:
        await conn.close()
    return postgres_url(name)


async def drop_postgres(name: str) -> None:
    conn = await asyncpg.connect(POSTGRES_ADMIN_DSN)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await conn.close()


def alembic(database_url: str, *args: str) -> None:
    subprocess.run(
        [str(ROOT / ".venv" / "bin" / "alembic"), "-c", "crm_backend/alembic.ini", *args],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": database_url},
        check=True,
        capture_output=True,
    )


def make_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "DATABASE_URL": database_url,
        "REDIS_URL": REDIS_URL,
        "ADMIN_USERNAME": ADMIN_USERNAME,
        "ADMIN_PASSWORD": ADMIN_PASSWORD,
        "SESSION_COOKIE_SECURE": False,
        "LOGIN_MAX_FAILURES": 5,
        "LOGIN_WINDOW_SECONDS": 900,
        **overrides,
    }
    return Settings(**values)


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
    app = FastAPI()
    app.include_router(staff_router)
    app.include_router(audit_router)
    app.state.runtime = runtime
    app.state.events = RecordingEvents()
    await ensure_first_admin(runtime.settings, runtime.db)
    return app


_addresses = itertools.count(1)


def new_client(app: FastAPI) -> httpx.AsyncClient:
    """A client with its own cookie jar and its own address (login throttling counts per address)."""
    n = next(_addresses)
    transport = httpx.ASGITransport(app=app, client=(f"10.0.{n // 250}.{n % 250 + 1}", 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with new_client(app) as c:
        yield c


async def login(client: httpx.AsyncClient, username: str, password: str) -> dict[str, Any]:
    """Log in and make the client send the session's CSRF token from now on."""
    response = await client.post("/api/console/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    me = response.json()
    client.headers["X-CSRF-Token"] = me["csrf_token"]
    return me


@pytest.fixture
async def admin_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with new_client(app) as c:
        await login(c, ADMIN_USERNAME, ADMIN_PASSWORD)
        yield c


_names = itertools.count(1)


async def make_staff(
    admin_client: httpx.AsyncClient, role: str = "agent", team_ids: list[int] | None = None
) -> tuple[dict[str, Any], str]:
    """Create a staff member through the admin API; returns (Staff, password)."""
    username = f"user{next(_names)}"
    password = f"{username}-secret-pw"
    response = await admin_client.post(
        "/api/console/admin/staff",
        json={
            "username": username,
            "display_name": f"护士 {username}",
            "password": password,
            "role": role,
            "capacity": 3,
            "team_ids": team_ids or [],
        },
    )
    assert response.status_code == 200, response.text
    return response.json(), password
