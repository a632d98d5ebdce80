"""Whose address a request has: a real web process, started as the Procfile starts it, believes
X-Forwarded-For only from the proxies in FORWARDED_ALLOW_IPS (none by default)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from tests.support.postgres import alembic
from tests.support.stack import Process, base_env, free_port, wait_until, web_argv

ADMIN = ("address-admin", "address-admin-pw-1")
#: A Redis database no other suite uses.
REDIS_URL = os.environ.get("TEST_REDIS_BASE", "redis://127.0.0.1:6379") + "/7"
FORGED = "203.0.113.7"


def _start_web(tmp_path: Path, forwarded_allow_ips: str) -> tuple[Process, str]:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'carebridge.db'}"
    alembic(database_url, "upgrade", "head")
    port = free_port()
    env = base_env(
        PORT=str(port),
        DATABASE_URL=database_url,
        REDIS_URL=REDIS_URL,
        REDIS_PREFIX=f"cb-address-{port}",
        ADMIN_USERNAME=ADMIN[0],
        ADMIN_PASSWORD=ADMIN[1],
        LOGIN_MAX_FAILURES_PER_ADDRESS="3",
    )
    # The default is the variable left unset, as in a fresh `.env`.
    env.pop("FORWARDED_ALLOW_IPS", None)
    if forwarded_allow_ips:
        env["FORWARDED_ALLOW_IPS"] = forwarded_allow_ips
    web = Process(f"web-address-{forwarded_allow_ips or 'default'}", web_argv(port), env).start()
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: httpx.get(f"{url}/healthz", timeout=5).status_code in (200, 503), 60, "web app")
    return web, url


@pytest.fixture
def web_process(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    redis.Redis.from_url(REDIS_URL).flushdb()
    web, url = _start_web(tmp_path, request.param)
    try:
        yield url
    finally:
        web.stop()


async def _failed_logins_from(url: str, addresses: list[str]) -> list[int]:
    """A wrong password for a different username each time, each claiming another address."""
    async with httpx.AsyncClient(base_url=url) as client:
        return [
            (
                await client.post(
                    "/api/console/login",
                    json={"username": f"nobody{n}", "password": "wrong"},
                    headers={"X-Forwarded-For": address},
                )
            ).status_code
            for n, address in enumerate(addresses)
        ]


async def _audit_reader(url: str) -> httpx.AsyncClient:
    """The admin, logged in before the failures below could throttle this address."""
    admin = httpx.AsyncClient(base_url=url)
    me = (await admin.post("/api/console/login", json={"username": ADMIN[0], "password": ADMIN[1]})).json()
    admin.headers["X-CSRF-Token"] = me["csrf_token"]
    return admin


async def _recorded_addresses(admin: httpx.AsyncClient) -> list[str | None]:
    rows = (await admin.get("/api/console/audit")).json()
    await admin.aclose()
    return [row["ip"] for row in rows if row["action"] == "login.failed"]


@pytest.mark.parametrize("web_process", [""], indirect=True, ids=["default"])
async def test_a_forged_forwarded_for_is_ignored_by_default(web_process: str) -> None:
    admin = await _audit_reader(web_process)
    statuses = await _failed_logins_from(web_process, [FORGED, "203.0.113.8", "203.0.113.9", "203.0.113.10"])
    # Every attempt counts against the real peer, whatever address it claims: the fourth is refused.
    assert statuses == [401, 401, 401, 429]
    recorded = await _recorded_addresses(admin)
    assert recorded and set(recorded) == {"127.0.0.1"}


@pytest.mark.parametrize("web_process", ["127.0.0.1"], indirect=True, ids=["trusted-proxy"])
async def test_a_configured_proxy_names_the_client(web_process: str) -> None:
    admin = await _audit_reader(web_process)
    statuses = await _failed_logins_from(web_process, [FORGED, "203.0.113.8", "203.0.113.9", "203.0.113.10"])
    assert statuses == [401, 401, 401, 401]  # four clients behind the proxy, one failure each
    recorded = await _recorded_addresses(admin)
    assert FORGED in recorded and "127.0.0.1" not in recorded
