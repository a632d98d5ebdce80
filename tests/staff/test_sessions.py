"""Login, cookies, CSRF, throttling and session revocation through the HTTP API."""

from __future__ import annotations

import hashlib

import httpx
from fastapi import FastAPI
from sqlalchemy import text
from starlette.responses import Response

from crm_backend.runtime import Runtime
from crm_backend.staff.sessions import COOKIE_NAME, SessionStore
from tests.staff.conftest import make_settings
from tests.support.api import ADMIN_PASSWORD, ADMIN_USERNAME, login, make_staff, new_address, new_client


async def test_login_sets_httponly_session_cookie_and_returns_csrf(
    client: httpx.AsyncClient, runtime: Runtime
):
    response = await client.post(
        "/api/console/login", json={"username": ADMIN_USERNAME, "password": ADMIN_PASSWORD}
    )
    assert response.status_code == 200, response.text
    me = response.json()
    assert set(me) == {
        "id",
        "username",
        "display_name",
        "role",
        "teams",
        "presence",
        "capacity",
        "csrf_token",
    }
    assert me["username"] == ADMIN_USERNAME and me["role"] == "admin"
    assert len(me["csrf_token"]) >= 32

    cookie = response.headers["set-cookie"]
    token = response.cookies[COOKIE_NAME]
    assert len(token) >= 43  # 32 random bytes, base64url
    attributes = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "samesite=strict", "path=/"} <= attributes
    assert "secure" not in attributes  # SESSION_COOKIE_SECURE is off in these tests

    # Redis keeps the token's digest only, never the cookie value itself.
    keys = [k async for k in runtime.redis.scan_iter(match="cb:console:session:*")]
    assert runtime.settings.key("console", "session", hashlib.sha256(token.encode()).hexdigest()) in keys
    assert not any(token in k for k in keys)

    again = await client.get("/api/console/me")
    assert again.status_code == 200
    assert again.json() == me


def test_cookie_is_secure_when_configured(database_url: str):
    settings = make_settings(database_url, SESSION_COOKIE_SECURE=True)
    response = Response()
    SessionStore(None, settings).set_cookie(response, "token")  # type: ignore[arg-type]
    attributes = {p.strip().lower() for p in response.headers["set-cookie"].split(";")[1:]}
    assert "secure" in attributes and "httponly" in attributes


async def test_session_expiry_slides(client: httpx.AsyncClient, runtime: Runtime):
    await login(client, ADMIN_USERNAME, ADMIN_PASSWORD)
    token = client.cookies[COOKIE_NAME]
    key = runtime.settings.key("console", "session", hashlib.sha256(token.encode()).hexdigest())
    await runtime.redis.expire(key, 60)
    assert (await client.get("/api/console/me")).status_code == 200
    assert await runtime.redis.ttl(key) > 60


async def test_no_or_unknown_session_is_401(client: httpx.AsyncClient):
    assert (await client.get("/api/console/me")).status_code == 401
    client.cookies.set(COOKIE_NAME, "forged-token-value")
    response = await client.get("/api/console/me")
    assert response.status_code == 401
    assert response.json() == {"detail": "not logged in"}


async def test_wrong_password_is_401_and_audited(client: httpx.AsyncClient, admin_client, runtime: Runtime):
    staff, _ = await make_staff(admin_client)
    response = await client.post(
        "/api/console/login", json={"username": staff["username"], "password": "not-the-password"}
    )
    assert response.status_code == 401
    assert COOKIE_NAME not in response.cookies
    unknown = await client.post("/api/console/login", json={"username": "nobody-here", "password": "x"})
    assert unknown.status_code == 401
    assert unknown.json() == response.json()  # unknown user and wrong password look the same

    async with runtime.db.sessions() as session:
        rows = (
            await session.execute(
                text(
                    "SELECT staff_id, ip, detail FROM audit_log WHERE action = 'login.failed' "
                    "AND (staff_id = :id OR staff_id IS NULL) ORDER BY id"
                ),
                {"id": staff["id"]},
            )
        ).all()
    by_staff = [r for r in rows if r.staff_id == staff["id"]]
    assert len(by_staff) == 1
    assert by_staff[0].ip and by_staff[0].ip.startswith("10.0.")
    assert any(r.staff_id is None and "nobody-here" in str(r.detail) for r in rows)


async def test_sixth_attempt_is_throttled_even_with_the_right_password(app: FastAPI, admin_client):
    staff, password = await make_staff(admin_client)
    async with new_client(app) as client:
        for _ in range(5):
            response = await client.post(
                "/api/console/login", json={"username": staff["username"], "password": "wrong-password"}
            )
            assert response.status_code == 401
        response = await client.post(
            "/api/console/login", json={"username": staff["username"], "password": password}
        )
        assert response.status_code == 429
        assert 0 < int(response.headers["retry-after"]) <= 900
        assert COOKIE_NAME not in response.cookies
    # The username stays locked from another address too.
    async with new_client(app) as other:
        response = await other.post(
            "/api/console/login", json={"username": staff["username"], "password": password}
        )
        assert response.status_code == 429


async def _fail(client: httpx.AsyncClient, username: str, times: int = 1) -> None:
    for _ in range(times):
        response = await client.post(
            "/api/console/login", json={"username": username, "password": "wrong-pw"}
        )
        assert response.status_code == 401, response.text


async def _try(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await client.post("/api/console/login", json={"username": username, "password": password})


async def test_a_colleagues_typos_do_not_lock_out_others_at_the_same_address(app: FastAPI, admin_client):
    """One hospital NAT address: five wrong passwords for one account leave every other account alone."""
    careless, _ = await make_staff(admin_client)
    colleague, colleague_password = await make_staff(admin_client)
    ward_nat = new_address()
    async with new_client(app, ward_nat) as first_browser, new_client(app, ward_nat) as second_browser:
        await _fail(first_browser, careless["username"], 5)
        response = await _try(second_browser, colleague["username"], colleague_password)
    assert response.status_code == 200, response.text


async def test_a_spray_over_many_usernames_is_stopped_per_address(app: FastAPI, admin_client):
    staff, password = await make_staff(admin_client)
    address = new_address()
    async with new_client(app, address) as known:
        await login(known, staff["username"], password)  # this browser becomes a known device
        async with new_client(app, address) as attacker:
            for n in range(8):  # LOGIN_MAX_FAILURES_PER_ADDRESS in these tests
                await _fail(attacker, f"guess{n}")
            refused = await _try(attacker, staff["username"], password)
        assert refused.status_code == 429
        assert 0 < int(refused.headers["retry-after"]) <= 900
        # From a fresh address the username itself is not locked ...
        async with new_client(app) as elsewhere:
            assert (await _try(elsewhere, staff["username"], password)).status_code == 200
        # ... and the user's own browser behind that address still logs in.
        assert (await _try(known, staff["username"], password)).status_code == 200


async def test_success_resets_the_username_count(app: FastAPI, admin_client):
    staff, password = await make_staff(admin_client)
    for _ in range(2):  # 4 + 4 failures would lock the account if success did not reset the count
        async with new_client(app) as client:
            for _ in range(4):
                response = await client.post(
                    "/api/console/login", json={"username": staff["username"], "password": "wrong"}
                )
                assert response.status_code == 401
            await login(client, staff["username"], password)


async def test_unsafe_methods_need_the_csrf_token(admin_client, app: FastAPI):
    staff, password = await make_staff(admin_client)
    async with new_client(app) as client:
        me = await login(client, staff["username"], password)
        del client.headers["X-CSRF-Token"]
        for method, path, body in (
            ("POST", "/api/console/logout", None),
            ("PUT", "/api/console/me/presence", {"presence": "online"}),
        ):
            missing = await client.request(method, path, json=body)
            assert missing.status_code == 403, (path, missing.text)
            wrong = await client.request(method, path, json=body, headers={"X-CSRF-Token": "x" * 43})
            assert wrong.status_code == 403
        assert (await client.get("/api/console/me")).json()["presence"] == "offline"  # nothing happened
        ok = await client.put(
            "/api/console/me/presence",
            json={"presence": "online"},
            headers={"X-CSRF-Token": me["csrf_token"]},
        )
        assert ok.status_code == 200
        assert ok.json()["presence"] == "online"


async def test_csrf_token_of_another_session_is_refused(admin_client, app: FastAPI):
    staff, password = await make_staff(admin_client)
    async with new_client(app) as first, new_client(app) as second:
        me1 = await login(first, staff["username"], password)
        me2 = await login(second, staff["username"], password)
        assert me1["csrf_token"] != me2["csrf_token"]
        response = await first.put(
            "/api/console/me/presence", json={"presence": "away"}, headers={"X-CSRF-Token": me2["csrf_token"]}
        )
        assert response.status_code == 403


async def test_presence_change_is_published(admin_client, app: FastAPI):
    staff, password = await make_staff(admin_client)
    async with new_client(app) as client:
        await login(client, staff["username"], password)
        response = await client.put("/api/console/me/presence", json={"presence": "away"})
        assert response.status_code == 200
        assert response.json()["presence"] == "away"
        bad = await client.put("/api/console/me/presence", json={"presence": "sleeping"})
        assert bad.status_code in (400, 422)
    event = app.state.events.published[-1]
    assert event["type"] == "presence"
    assert (event["staff_id"], event["presence"]) == (staff["id"], "away")


async def test_logout_ends_the_session(admin_client, app: FastAPI, runtime: Runtime):
    staff, password = await make_staff(admin_client)
    async with new_client(app) as client:
        await login(client, staff["username"], password)
        await client.put("/api/console/me/presence", json={"presence": "online"})
        token = client.cookies[COOKIE_NAME]
        response = await client.post("/api/console/logout")
        assert response.status_code == 204
        assert (
            'cb_session=""' in response.headers["set-cookie"] or "Max-Age=0" in response.headers["set-cookie"]
        )
        key = runtime.settings.key("console", "session", hashlib.sha256(token.encode()).hexdigest())
        assert not await runtime.redis.exists(key)
        client.cookies.set(COOKIE_NAME, token)  # replaying the old cookie does not help
        assert (await client.get("/api/console/me")).status_code == 401
    listed = {s["id"]: s for s in (await admin_client.get("/api/console/admin/staff")).json()}
    assert listed[staff["id"]]["presence"] == "offline"


async def test_login_replaces_an_existing_session(admin_client, app: FastAPI):
    staff, password = await make_staff(admin_client)
    async with new_client(app) as client:
        await login(client, staff["username"], password)
        old = client.cookies[COOKIE_NAME]
        await login(client, staff["username"], password)
        assert client.cookies[COOKIE_NAME] != old
        async with new_client(app) as replay:
            replay.cookies.set(COOKIE_NAME, old)
            assert (await replay.get("/api/console/me")).status_code == 401


async def test_disabled_staff_loses_every_session(admin_client, app: FastAPI):
    staff, password = await make_staff(admin_client)
    async with new_client(app) as phone, new_client(app) as desk:
        await login(phone, staff["username"], password)
        await login(desk, staff["username"], password)
        response = await admin_client.patch(f"/api/console/admin/staff/{staff['id']}", json={"active": False})
        assert response.status_code == 200
        assert response.json()["active"] is False
        assert (await phone.get("/api/console/me")).status_code == 401
        assert (await desk.get("/api/console/me")).status_code == 401
        again = await desk.post(
            "/api/console/login", json={"username": staff["username"], "password": password}
        )
        assert again.status_code == 401


async def test_account_disabled_in_the_database_stops_working_at_once(admin_client, app, runtime: Runtime):
    """Even without the admin API revoking sessions, the next request checks the account."""
    staff, password = await make_staff(admin_client)
    async with new_client(app) as client:
        await login(client, staff["username"], password)
        async with runtime.db.sessions() as session:
            await session.execute(text("UPDATE staff SET active = false WHERE id = :id"), {"id": staff["id"]})
            await session.commit()
        assert (await client.get("/api/console/me")).status_code == 401


async def test_password_change_ends_sessions(admin_client, app: FastAPI):
    staff, password = await make_staff(admin_client)
    async with new_client(app) as client:
        await login(client, staff["username"], password)
        response = await admin_client.patch(
            f"/api/console/admin/staff/{staff['id']}", json={"password": "a-brand-new-password"}
        )
        assert response.status_code == 200
        assert (await client.get("/api/console/me")).status_code == 401
        failed = await client.post(
            "/api/console/login", json={"username": staff["username"], "password": password}
        )
        assert failed.status_code == 401
        await login(client, staff["username"], "a-brand-new-password")
