"""First admin, roles, staff and team management, password storage."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
from argon2 import PasswordHasher
from fastapi import FastAPI
from sqlalchemy import select, text

from crm_backend.database.core import Database
from crm_backend.runtime import Runtime
from crm_backend.staff import service
from crm_backend.staff.models import Presence, Staff, StaffRole
from tests.staff.conftest import REVISION, make_settings
from tests.support.api import login, make_staff, new_client
from tests.support.postgres import alembic, drop_postgres, recreate_postgres


async def test_first_admin_is_created_exactly_once_by_racing_processes():
    url = await recreate_postgres("carebridge_staff_test_boot")
    try:
        alembic(url, "upgrade", REVISION)
        settings = make_settings(url, ADMIN_USERNAME="boss", ADMIN_PASSWORD="boss-password-1")
        first, second = Database(url), Database(url)  # two processes, two engines
        try:
            results = await asyncio.gather(
                service.ensure_first_admin(settings, first), service.ensure_first_admin(settings, second)
            )
            assert sum(r is not None for r in results) == 1
            assert await service.ensure_first_admin(settings, first) is None
            async with first.sessions() as session:
                admins = (await session.scalars(select(Staff).where(Staff.role == StaffRole.admin))).all()
                assert [a.username for a in admins] == ["boss"]
                assert await service.authenticate(session, "boss", "boss-password-1") is not None
            # No credentials configured → nothing created.
            empty = make_settings(url, ADMIN_USERNAME="", ADMIN_PASSWORD="")
            assert await service.ensure_first_admin(empty, first) is None
        finally:
            await first.dispose()
            await second.dispose()
    finally:
        await drop_postgres("carebridge_staff_test_boot")


async def test_agent_cannot_use_admin_endpoints(admin_client: httpx.AsyncClient, app: FastAPI):
    staff, password = await make_staff(admin_client, role="agent")
    async with new_client(app) as client:
        await login(client, staff["username"], password)
        assert (await client.get("/api/console/admin/staff")).status_code == 403
        assert (await client.get("/api/console/admin/teams")).status_code == 403
        assert (await client.post("/api/console/admin/teams", json={"name": "黑客组"})).status_code == 403
        created = await client.post(
            "/api/console/admin/staff",
            json={"username": "sneaky", "display_name": "x", "password": "password-123", "role": "admin"},
        )
        assert created.status_code == 403
        promote = await client.patch(f"/api/console/admin/staff/{staff['id']}", json={"role": "admin"})
        assert promote.status_code == 403
        assert (await client.get("/api/console/me")).json()["role"] == "agent"


async def test_supervisor_is_not_an_admin(admin_client: httpx.AsyncClient, app: FastAPI):
    staff, password = await make_staff(admin_client, role="supervisor")
    async with new_client(app) as client:
        await login(client, staff["username"], password)
        assert (await client.get("/api/console/admin/staff")).status_code == 403


async def test_admin_creates_teams_and_staff(admin_client: httpx.AsyncClient, runtime: Runtime):
    ward = await admin_client.post("/api/console/admin/teams", json={"name": "心内科"})
    assert ward.status_code == 200, ward.text
    assert ward.json()["members"] == []
    desk = (await admin_client.post("/api/console/admin/teams", json={"name": "客服中心"})).json()
    duplicate = await admin_client.post("/api/console/admin/teams", json={"name": "心内科"})
    assert duplicate.status_code == 409

    staff, _ = await make_staff(admin_client, role="nurse", team_ids=[ward.json()["id"]])
    assert set(staff) == {"id", "username", "display_name", "role", "capacity", "active", "presence", "teams"}
    assert staff["teams"] == [{"id": ward.json()["id"], "name": "心内科"}]
    assert (staff["role"], staff["active"], staff["presence"], staff["capacity"]) == (
        "nurse",
        True,
        "offline",
        3,
    )

    taken = await admin_client.post(
        "/api/console/admin/staff",
        json={
            "username": staff["username"],
            "display_name": "x",
            "password": "password-123",
            "role": "agent",
        },
    )
    assert taken.status_code == 409
    no_team = await admin_client.post(
        "/api/console/admin/staff",
        json={
            "username": "lost1",
            "display_name": "x",
            "password": "password-123",
            "role": "agent",
            "team_ids": [9999],
        },
    )
    assert no_team.status_code == 400

    patched = await admin_client.patch(
        f"/api/console/admin/staff/{staff['id']}",
        json={"role": "supervisor", "capacity": 5, "team_ids": [ward.json()["id"], desk["id"]]},
    )
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert (body["role"], body["capacity"]) == ("supervisor", 5)
    assert {t["name"] for t in body["teams"]} == {"心内科", "客服中心"}

    teams = {t["name"]: t for t in (await admin_client.get("/api/console/admin/teams")).json()}
    assert staff["id"] in teams["心内科"]["members"] and staff["id"] in teams["客服中心"]["members"]
    listed = {s["id"]: s for s in (await admin_client.get("/api/console/admin/staff")).json()}
    assert listed[staff["id"]]["role"] == "supervisor"
    assert (
        await admin_client.patch("/api/console/admin/staff/999999", json={"capacity": 1})
    ).status_code == 404

    async with runtime.db.sessions() as session:
        actions = (
            await session.execute(
                text(
                    "SELECT action, object_id, detail FROM audit_log "
                    "WHERE action IN ('staff.create', 'staff.update', 'team.create')"
                )
            )
        ).all()
    assert ("team.create", str(ward.json()["id"])) in {(a.action, a.object_id) for a in actions}
    update = next(a for a in actions if a.action == "staff.update" and a.object_id == str(staff["id"]))
    assert update.detail["role"] == "supervisor" and update.detail["capacity"] == 5


async def test_the_last_admin_cannot_be_removed(admin_client: httpx.AsyncClient):
    me = (await admin_client.get("/api/console/me")).json()
    for change in ({"active": False}, {"role": "supervisor"}):
        response = await admin_client.patch(f"/api/console/admin/staff/{me['id']}", json=change)
        assert response.status_code == 400, response.text
    assert (await admin_client.get("/api/console/me")).json()["role"] == "admin"


async def test_passwords_are_stored_as_argon2id(admin_client: httpx.AsyncClient, runtime: Runtime):
    staff, password = await make_staff(admin_client)
    async with runtime.db.sessions() as session:
        stored = await session.scalar(
            text("SELECT password_hash FROM staff WHERE id = :id"), {"id": staff["id"]}
        )
    assert stored.startswith("$argon2id$")
    assert password not in stored


async def test_outdated_hash_is_upgraded_on_login(
    admin_client: httpx.AsyncClient, app: FastAPI, runtime: Runtime
):
    staff, password = await make_staff(admin_client)
    weak = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1).hash(password)
    async with runtime.db.sessions() as session:
        await session.execute(
            text("UPDATE staff SET password_hash = :h WHERE id = :id"), {"h": weak, "id": staff["id"]}
        )
        await session.commit()
    async with new_client(app) as client:
        await login(client, staff["username"], password)
    async with runtime.db.sessions() as session:
        stored = await session.scalar(
            text("SELECT password_hash FROM staff WHERE id = :id"), {"id": staff["id"]}
        )
    assert stored != weak
    assert not PasswordHasher().check_needs_rehash(stored)


async def test_online_members_in_round_robin_order(admin_client: httpx.AsyncClient, runtime: Runtime):
    team = (await admin_client.post("/api/console/admin/teams", json={"name": "轮询组"})).json()
    ids = [(await make_staff(admin_client, team_ids=[team["id"]]))[0]["id"] for _ in range(5)]
    now = datetime.now(UTC)
    async with runtime.db.sessions() as session:
        staff = {s.id: s for s in (await session.scalars(select(Staff).where(Staff.id.in_(ids)))).all()}
        for sid in ids[:4]:
            staff[sid].presence = Presence.online
        staff[ids[0]].last_assigned_at = now - timedelta(minutes=5)
        staff[ids[1]].last_assigned_at = now - timedelta(minutes=10)
        staff[ids[3]].active = False  # online but disabled
        await session.commit()
        members = await service.online_members(session, team["id"])
    # Never assigned first, then longest ago; offline (ids[4]) and disabled (ids[3]) left out.
    assert [m.id for m in members] == [ids[2], ids[1], ids[0]]
