"""The audit log: who may read it, what it holds, and that the database refuses to change it."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from sqlalchemy.exc import DBAPIError

from crm_backend.audit import service as audit
from crm_backend.database.core import Database
from crm_backend.runtime import Runtime
from tests.staff.conftest import DB_NAME, REVISION
from tests.support.api import login, make_staff, new_client
from tests.support.postgres import alembic, drop_postgres, recreate_postgres


async def test_supervisor_reads_the_audit_log_newest_first(admin_client: httpx.AsyncClient, app: FastAPI):
    supervisor, password = await make_staff(admin_client, role="supervisor")
    async with new_client(app) as client:
        await login(client, supervisor["username"], password)
        response = await client.get("/api/console/audit", params={"staff_id": supervisor["id"]})
        assert response.status_code == 200, response.text
        entries = response.json()
        assert entries[0]["action"] == "login"
        assert entries[0]["staff_username"] == supervisor["username"]
        assert set(entries[0]) == {
            "id", "at", "staff_id", "staff_username", "action", "object_type", "object_id", "patient_id",
            "ip", "user_agent",
        }  # fmt: skip
        assert all(e["staff_id"] == supervisor["id"] for e in entries)

        everything = (await client.get("/api/console/audit", params={"limit": 500})).json()
        ids = [e["id"] for e in everything]
        assert ids == sorted(ids, reverse=True)
        assert everything[0]["action"] == "audit.view"  # reading the log is itself recorded
        assert {"staff.create", "login"} <= {e["action"] for e in everything}
        assert len((await client.get("/api/console/audit", params={"limit": 2})).json()) == 2
        assert (await client.get("/api/console/audit", params={"limit": 501})).status_code in (400, 422)


async def test_audit_filters_by_patient(admin_client: httpx.AsyncClient, runtime: Runtime):
    admin_id = (await admin_client.get("/api/console/me")).json()["id"]
    async with runtime.db.sessions() as session:
        for patient_id in (424242, 424242, 515151):
            await audit.record(
                session,
                staff_id=admin_id,
                action="patient.view",
                object_type="patient",
                object_id=patient_id,
                patient_id=patient_id,
            )
        await session.commit()
    entries = (await admin_client.get("/api/console/audit", params={"patient_id": 424242})).json()
    assert [e["patient_id"] for e in entries] == [424242, 424242]
    assert entries[0]["object_id"] == "424242"


async def test_agent_may_not_read_the_audit_log(admin_client: httpx.AsyncClient, app: FastAPI):
    agent, password = await make_staff(admin_client, role="agent")
    async with new_client(app) as client:
        await login(client, agent["username"], password)
        assert (await client.get("/api/console/audit")).status_code == 403


async def _assert_append_only(db: Database, *, truncate: bool) -> None:
    async with db.sessions() as session:
        await audit.record(session, staff_id=None, action="test.entry", object_type="test", object_id=1)
        await session.commit()
    statements = ["UPDATE audit_log SET action = 'forged'", "DELETE FROM audit_log"]
    if truncate:
        statements.append("TRUNCATE audit_log")
    for statement in statements:
        async with db.engine.connect() as conn:
            with pytest.raises(DBAPIError, match="append-only"):
                await conn.execute(sa.text(statement))
            await conn.rollback()
    async with db.engine.connect() as conn:
        assert await conn.scalar(sa.text("SELECT count(*) FROM audit_log WHERE action = 'forged'")) == 0
        assert await conn.scalar(sa.text("SELECT count(*) FROM audit_log WHERE action = 'test.entry'")) >= 1


async def test_postgres_refuses_update_delete_and_truncate(runtime: Runtime):
    await _assert_append_only(runtime.db, truncate=True)


async def test_sqlite_migration_triggers_and_downgrade(tmp_path: Path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'audit.db'}"
    alembic(url, "upgrade", REVISION)
    db = Database(url)
    try:
        await _assert_append_only(db, truncate=False)
        alembic(url, "downgrade", "0001")
        async with db.engine.connect() as conn:
            names = set(
                (
                    await conn.execute(
                        sa.text("SELECT name FROM sqlite_master WHERE type IN ('table', 'trigger')")
                    )
                )
                .scalars()
                .all()
            )
        assert names.isdisjoint({"staff", "teams", "team_members", "audit_log", "audit_log_no_update"})
        assert "patients" in names
    finally:
        await db.dispose()


async def test_postgres_downgrade_removes_tables_and_trigger_function():
    name = f"{DB_NAME}_migrate"
    url = await recreate_postgres(name)
    try:
        alembic(url, "upgrade", REVISION)
        alembic(url, "downgrade", "0001")
        db = Database(url)
        try:
            async with db.engine.connect() as conn:
                tables = set(
                    (
                        await conn.execute(
                            sa.text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
                        )
                    )
                    .scalars()
                    .all()
                )
                functions = await conn.scalar(
                    sa.text("SELECT count(*) FROM pg_proc WHERE proname = 'audit_log_append_only'")
                )
        finally:
            await db.dispose()
        assert tables.isdisjoint({"staff", "teams", "team_members", "audit_log"})
        assert "patients" in tables and functions == 0
        alembic(url, "upgrade", REVISION)  # and back up again cleanly
    finally:
        await drop_postgres(name)
