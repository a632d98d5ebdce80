"""Known-device cookies: strangers guessing a password cannot lock staff out of their own browsers."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from itsdangerous import URLSafeTimedSerializer

from crm_backend.runtime import Runtime
from crm_backend.staff.audit_views import router as audit_router
from crm_backend.staff.devices import COOKIE_PATH, COOKIE_PREFIX, DeviceCookies
from crm_backend.staff.views import router as staff_router
from tests.staff.conftest import make_settings
from tests.support.api import ADMIN_PASSWORD, ADMIN_USERNAME, build_api_app, login, make_staff, new_client


@pytest.fixture
async def own_counters_app(database_url: str, request: pytest.FixtureRequest) -> AsyncIterator[FastAPI]:
    """The same accounts, with login counters of its own (a Redis prefix per test), so locking the
    first admin here leaves the other tests' logins alone."""
    runtime = Runtime.create(make_settings(database_url, REDIS_PREFIX=f"cb-devices-{request.node.name}"))
    try:
        yield await build_api_app(runtime, staff_router, audit_router)
    finally:
        await runtime.close()


async def _try(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await client.post("/api/console/login", json={"username": username, "password": password})


async def _fail(client: httpx.AsyncClient, username: str, times: int) -> None:
    for _ in range(times):
        assert (await _try(client, username, "wrong-password")).status_code == 401


def _device_cookie(response: httpx.Response) -> str:
    headers = [h for h in response.headers.get_list("set-cookie") if h.startswith(COOKIE_PREFIX)]
    assert len(headers) == 1, response.headers.get_list("set-cookie")
    return headers[0]


async def test_admin_logs_in_from_a_known_device_while_a_stranger_is_locked_out(own_counters_app: FastAPI):
    async with new_client(own_counters_app) as admins_browser:
        await login(admins_browser, ADMIN_USERNAME, ADMIN_PASSWORD)
        async with new_client(own_counters_app) as stranger:
            await _fail(stranger, ADMIN_USERNAME, 5)
            refused = await _try(stranger, ADMIN_USERNAME, ADMIN_PASSWORD)
            assert refused.status_code == 429
            assert 0 < int(refused.headers["retry-after"]) <= 900
            # A new browser elsewhere is a stranger too: the username is locked for new devices.
            async with new_client(own_counters_app) as new_browser:
                assert (await _try(new_browser, ADMIN_USERNAME, ADMIN_PASSWORD)).status_code == 429
        response = await _try(admins_browser, ADMIN_USERNAME, ADMIN_PASSWORD)
    assert response.status_code == 200, response.text


async def test_the_device_cookie_is_httponly_long_lived_and_only_sent_to_the_login(
    own_counters_app: FastAPI, admin_client: httpx.AsyncClient
):
    staff, password = await make_staff(admin_client)
    async with new_client(own_counters_app) as browser:
        response = await _try(browser, staff["username"], password)
    assert response.status_code == 200
    cookie = _device_cookie(response).lower()
    assert "httponly" in cookie
    assert f"path={COOKIE_PATH}" in cookie
    assert "samesite=strict" in cookie
    assert "max-age=15552000" in cookie  # LOGIN_DEVICE_DAYS, 180 days


async def test_a_known_device_is_throttled_on_its_own_failures(
    own_counters_app: FastAPI, admin_client: httpx.AsyncClient
):
    staff, password = await make_staff(admin_client)
    async with new_client(own_counters_app) as browser:
        await login(browser, staff["username"], password)
        await _fail(browser, staff["username"], 5)
        assert (await _try(browser, staff["username"], password)).status_code == 429
    # Its failures are its own: the user logs in from another browser.
    async with new_client(own_counters_app) as other:
        assert (await _try(other, staff["username"], password)).status_code == 200


async def test_a_cookie_for_another_user_or_a_forged_one_counts_as_a_stranger(
    own_counters_app: FastAPI, admin_client: httpx.AsyncClient, database_url: str
):
    victim, victim_password = await make_staff(admin_client)
    insider, insider_password = await make_staff(admin_client)
    async with new_client(own_counters_app) as stranger:
        await _fail(stranger, victim["username"], 5)
    async with new_client(own_counters_app) as insiders_browser:
        await login(insiders_browser, insider["username"], insider_password)
        # A known device of one user is a stranger to every other account.
        assert (await _try(insiders_browser, victim["username"], victim_password)).status_code == 429
        # A cookie under the victim's cookie name whose signature does not hold is no known device.
        name = DeviceCookies(make_settings(database_url)).cookie_name(victim["username"])
        genuine = insiders_browser.cookies.get(
            DeviceCookies(make_settings(database_url)).cookie_name(insider["username"])
        )
        assert genuine is not None
        # The victim's name in the payload, the insider's genuine timestamp and signature after it.
        payload = URLSafeTimedSerializer(b"a guess", salt="known-device").dumps(
            {"u": victim["username"].casefold(), "d": "x"}
        )
        forged = payload.split(".")[0] + "." + genuine.split(".", 1)[1]
        insiders_browser.cookies.set(name, forged, path=COOKIE_PATH)
        assert (await _try(insiders_browser, victim["username"], victim_password)).status_code == 429
