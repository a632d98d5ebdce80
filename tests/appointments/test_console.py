"""Console: schedule CSV import (all or nothing, per-row errors, audited) and the schedule list."""

from __future__ import annotations

import httpx
import sqlalchemy as sa
from fastapi import FastAPI

from crm_backend.appointments.models import Schedule
from crm_backend.appointments.service import book
from crm_backend.audit.models import AuditEntry
from crm_backend.runtime import Runtime
from tests.appointments.conftest import make_department, make_patients
from tests.support.api import staff_client

HEADER = "department_code,doctor_name,title,date,half_day,capacity\n"
CSV = {"Content-Type": "text/csv"}


async def _schedules(runtime: Runtime) -> int:
    async with runtime.db.sessions() as session:
        return int(await session.scalar(sa.select(sa.func.count()).select_from(Schedule)) or 0)


async def test_import_is_all_or_nothing_with_errors_per_row(
    app: FastAPI, runtime: Runtime, admin_client: httpx.AsyncClient
):
    department = await make_department(runtime, code="IMPA", aliases=["导入科"])
    before = await _schedules(runtime)
    bad = (
        HEADER + "IMPA,王一,主任医师,2027-05-10,am,12\n"
        "NOPE,王二,主治医师,2027-05-10,pm,20\n"
        "IMPA,王三,主治医师,2027-13-01,evening,-1\n"
        "IMPA,王一,主任医师,2027-05-10,am,12\n"
    )
    response = await admin_client.post("/api/console/schedules/import", content=bad.encode(), headers=CSV)
    assert response.status_code == 400, response.text
    errors = {e["line"]: e["errors"] for e in response.json()["errors"]}
    assert sorted(errors) == [3, 4, 5]
    assert "unknown department_code 'NOPE'" in errors[3]
    assert len(errors[4]) == 3  # date, half_day and capacity all reported at once
    assert "same doctor, date and half_day as line 2" in errors[5]
    assert await _schedules(runtime) == before

    good = "\ufeff" + HEADER + "IMPA,王一,主任医师,2027-05-10,am,12\nIMPA,王一,主任医师,2027-05-10,下午,8\n"
    response = await admin_client.post("/api/console/schedules/import", content=good.encode(), headers=CSV)
    assert response.status_code == 200, response.text
    assert response.json() == {"rows": 2, "created": 2, "updated": 0, "doctors_created": 1}

    # Re-importing updates capacities, but never below what patients already booked.
    params = {"department": "导入科", "date_from": "2027-05-10", "date_to": "2027-05-10"}
    listed = (await admin_client.get("/api/console/schedules", params=params)).json()
    assert [(s["doctor_name"], s["half_day"], s["capacity"]) for s in listed] == [
        ("王一", "am", 12),
        ("王一", "pm", 8),
    ]
    [(patient, identity), (other, other_identity)] = await make_patients(runtime, 2)
    async with runtime.db.sessions() as session:
        await book(session, patient, listed[0]["id"], identity)
        await book(session, other, listed[0]["id"], other_identity)
        await session.commit()
    shrink = HEADER + "IMPA,王一,主任医师,2027-05-10,am,1\n"
    response = await admin_client.post("/api/console/schedules/import", content=shrink.encode(), headers=CSV)
    assert response.status_code == 400
    assert "below the 2 already booked" in response.json()["errors"][0]["errors"][0]
    grow = HEADER + "IMPA,王一,主任医师,2027-05-10,am,30\n"
    response = await admin_client.post("/api/console/schedules/import", content=grow.encode(), headers=CSV)
    assert response.json()["updated"] == 1

    async with runtime.db.sessions() as session:
        actions = (
            await session.scalars(sa.select(AuditEntry.detail).where(AuditEntry.action == "schedule.import"))
        ).all()
    assert [a["created"] for a in actions] == [2, 0]
    assert department.id


async def test_import_needs_a_supervisor_and_listing_any_staff(
    app: FastAPI, runtime: Runtime, admin_client: httpx.AsyncClient
):
    await make_department(runtime, code="IMPB")
    body = (HEADER + "IMPB,李四,主治医师,2027-06-01,am,10\n").encode()
    async with staff_client(app, admin_client, "agent", []) as (_agent, agent_client):
        response = await agent_client.post("/api/console/schedules/import", content=body, headers=CSV)
        assert response.status_code == 403
        listed = await agent_client.get(
            "/api/console/schedules", params={"department": "IMPB", "date_from": "2027-06-01"}
        )
        assert listed.status_code == 200 and listed.json() == []
        assert (
            await agent_client.get("/api/console/schedules", params={"department": "无此科"})
        ).status_code == 404
    async with staff_client(app, admin_client, "supervisor", []) as (_sup, sup_client):
        response = await sup_client.post("/api/console/schedules/import", content=body, headers=CSV)
        assert response.status_code == 200, response.text
        missing = await sup_client.post("/api/console/schedules/import", content=b"a,b\n1,2\n", headers=CSV)
        assert missing.status_code == 400 and "missing columns" in missing.json()["errors"][0]["errors"][0]
