"""Console-API tests without the Rasa stack: an app with chosen routers, clients, staff accounts."""

from __future__ import annotations

import base64
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import APIRouter, FastAPI

from crm_backend.app import add_error_answers
from crm_backend.config import SANDBOX_INTERNAL_TOKEN, Settings
from crm_backend.domains import subscribe_listeners
from crm_backend.runtime import Runtime
from crm_backend.staff.service import ensure_first_admin

ADMIN_USERNAME = "root"
ADMIN_PASSWORD = "root-password-123"
#: Deterministic patient-data keys for tests (never used anywhere else).
KEY_A = base64.b64encode(b"A" * 32).decode()
KEY_B = base64.b64encode(b"B" * 32).decode()
LOOKUP_KEY = base64.b64encode(b"L" * 32).decode()

_addresses = itertools.count(1)
_names = itertools.count(1)


def api_settings(database_url: str, redis_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "ADMIN_USERNAME": ADMIN_USERNAME,
        "ADMIN_PASSWORD": ADMIN_PASSWORD,
        "PATIENT_DATA_KEYS": f"a:{KEY_A}",
        "PATIENT_LOOKUP_KEY": LOOKUP_KEY,
        **overrides,
    }
    return Settings(**values)


async def build_api_app(runtime: Runtime, *routers: APIRouter) -> FastAPI:
    app = FastAPI()
    add_error_answers(app)  # 400 for malformed input, the console's refusals: as in the web app
    for router in routers:
        app.include_router(router)
    app.state.runtime = runtime
    await ensure_first_admin(runtime.settings, runtime.db)
    return app


def new_address() -> str:
    n = next(_addresses)
    return f"10.0.{n // 250}.{n % 250 + 1}"


def bot_client(app: FastAPI) -> httpx.AsyncClient:
    """A client of the bot API (/internal/bot/...) as the action server calls it in the sandbox."""
    headers = {"Authorization": f"Bearer {SANDBOX_INTERNAL_TOKEN}"}
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver", headers=headers
    )


def new_client(app: FastAPI, address: str | None = None) -> httpx.AsyncClient:
    """A client with its own cookie jar (a browser) and its own address unless `address` is given
    (login throttling counts per address)."""
    transport = httpx.ASGITransport(app=app, client=(address or new_address(), 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def login(client: httpx.AsyncClient, username: str, password: str) -> dict[str, Any]:
    """Log in and make the client send the session's CSRF token from now on."""
    response = await client.post("/api/console/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    me = response.json()
    client.headers["X-CSRF-Token"] = me["csrf_token"]
    return me


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


@asynccontextmanager
async def staff_client(
    app: FastAPI, admin_client: httpx.AsyncClient, role: str, team_ids: list[int]
) -> AsyncIterator[tuple[dict[str, Any], httpx.AsyncClient]]:
    """A new staff member of `role` in `team_ids`, and a client logged in as them."""
    staff, password = await make_staff(admin_client, role, team_ids)
    async with new_client(app) as client:
        await login(client, staff["username"], password)
        yield staff, client


@asynccontextmanager
async def crm_runtime(stack: Any, **overrides: Any) -> AsyncIterator[Runtime]:
    """The CRM as its jobs and staff use it (a dispatcher, a reminder job, an answer to a
    complaint), on a running stack's database, Redis, Rasa and fake WeChat API, with every domain's
    listeners; `overrides` are settings (send hours, say)."""
    settings = api_settings(
        stack.database_url,
        stack.redis_url,
        RASA_PORT=str(stack.rasa.rasa_port),
        WECHAT_API_BASE=stack.wechat.base,
        **overrides,
    )
    runtime = Runtime.create(settings)
    subscribe_listeners(runtime)
    try:
        yield runtime
    finally:
        await runtime.close()
