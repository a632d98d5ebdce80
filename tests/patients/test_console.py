"""Console: search and 360 view, masked for every role, ID reveal for admins only and audited,
team scoping."""

from __future__ import annotations

from datetime import date

import httpx
import sqlalchemy as sa
from fastapi import FastAPI

from crm_backend.appointments.models import Department, Doctor, Schedule
from crm_backend.appointments.service import book
from crm_backend.audit.models import AuditEntry
from crm_backend.patients.records import add_managed_patient
from crm_backend.runtime import Runtime
from tests.patients.conftest import Family, make_family, make_team
from tests.support.api import staff_client

PHONE = "13512348888"
ID_NUMBER = "370202199007071011"


async def _family_with_child(runtime: Runtime, id_number: str, phone: str) -> tuple[Family, int]:
    family = await make_family(runtime, await make_team(runtime))
    async with runtime.db.sessions() as session:
        child = await add_managed_patient(
            session, runtime.protector, family.identity, "child", name="孙小宝", sex=None,
            birth_date=None, phone=phone, id_number=id_number,
        )  # fmt: skip
        await session.commit()
    return family, child.patient_id


async def _audit(runtime: Runtime, staff_id: int) -> list[AuditEntry]:
    async with runtime.db.sessions() as session:
        return list(
            (await session.scalars(sa.select(AuditEntry).where(AuditEntry.staff_id == staff_id))).all()
        )


async def _booked(runtime: Runtime, family: Family) -> None:
    """One appointment of the family's own patient, booked in chat by their identity."""
    async with runtime.db.sessions() as session:
        department = Department(
            code=f"P360-{family.patient_id}", name="三百六十科", patient_name="三百六十科"
        )
        session.add(department)
        await session.flush()
        doctor = Doctor(department_id=department.id, name="全景医生", title="主治医师")
        session.add(doctor)
        await session.flush()
        schedule = Schedule(doctor_id=doctor.id, date=date(2027, 3, 10), half_day="am", capacity=5)
        session.add(schedule)
        await session.flush()
        await book(session, family.patient_id, schedule.id, family.identity.id)
        await session.commit()


async def test_roles_see_masked_or_full_values(
    app: FastAPI, runtime: Runtime, admin_client: httpx.AsyncClient
):
    family, child_id = await _family_with_child(runtime, "510107197505030048", "13512347777")
    # The parent's own record: phone and ID bound through "self".
    async with runtime.db.sessions() as session:
        await add_managed_patient(
            session, runtime.protector, family.identity, "self", name="孙先生", sex=None,
            birth_date=None, phone=PHONE, id_number=ID_NUMBER,
        )  # fmt: skip
        await session.commit()
    url = f"/api/console/patients/{family.patient_id}/360"
    await _booked(runtime, family)

    async with staff_client(app, admin_client, "agent", [family.team_id]) as (agent, agent_client):
        view = (await agent_client.get(url)).json()
        assert view["patient"]["phone"] == "135****8888"
        assert view["patient"]["id_number"] == "3702**********1011"
        assert view["managed_patients"][0]["id"] == child_id
        assert view["managed_patients"][0]["relationship"] == "child"
        assert view["managed_patients"][0]["phone"] == "135****7777"
        assert view["conversations"][0]["id"] == family.conversation_id
        [appointment] = view["appointments"]
        assert (appointment["department"], appointment["doctor"], appointment["status"]) == (
            "三百六十科",
            "全景医生",
            "booked",
        )
        assert appointment["booked_by_identity_id"] == family.identity.id and appointment["reminder"] is None
        assert view["identities"][0]["relationship"] == "self"
        assert (await agent_client.get(url, params={"reveal": "true"})).status_code == 403
        # The existing panel now lists the dependants, masked.
        panel = (await agent_client.get(f"/api/console/patients/{family.patient_id}")).json()
        assert [(d["id"], d["phone"]) for d in panel["dependants"]] == [(child_id, "135****7777")]
        assert "13512347777" not in str(panel) and PHONE not in str(view) and ID_NUMBER not in str(view)

    async with staff_client(app, admin_client, "nurse", [family.team_id]) as (nurse, nurse_client):
        # Masked for nurses too: a full phone number is an audited reveal (POST .../reveal).
        view = (await nurse_client.get(url)).json()
        assert view["patient"]["phone"] == "135****8888"
        assert view["patient"]["id_number"] == "3702**********1011"

    view = (await admin_client.get(url)).json()
    assert view["patient"]["id_number"] == "3702**********1011"
    revealed = (await admin_client.get(url, params={"reveal": "true"})).json()
    assert revealed["patient"]["id_number"] == ID_NUMBER
    assert revealed["managed_patients"][0]["id_number"] == "5101**********0048"  # only the subject

    me = (await admin_client.get("/api/console/me")).json()
    actions = [(e.action, e.patient_id) for e in await _audit(runtime, me["id"])]
    assert actions.count(("patient.reveal", family.patient_id)) == 1
    assert actions.count(("patient.view", family.patient_id)) == 2
    assert [e.action for e in await _audit(runtime, agent["id"])].count("patient.view") == 2
    assert "patient.reveal" not in [e.action for e in await _audit(runtime, nurse["id"])]


async def test_agent_cannot_open_or_find_another_teams_patient(
    app: FastAPI, runtime: Runtime, admin_client: httpx.AsyncClient
):
    family, child_id = await _family_with_child(runtime, "230102201009095520", "13611112222")
    elsewhere = await make_team(runtime)
    async with staff_client(app, admin_client, "agent", [elsewhere]) as (_outsider, client):
        for patient_id in (family.patient_id, child_id):
            response = await client.get(f"/api/console/patients/{patient_id}/360")
            assert response.status_code == 403, response.text
        assert (await client.get("/api/console/patients", params={"query": "13611112222"})).json() == []
        assert (await client.get("/api/console/patients/999999/360")).status_code == 404
    async with staff_client(app, admin_client, "agent", [family.team_id]) as (insider, client):
        # The team's conversation is the parent's; the child they manage is reachable through it.
        assert (await client.get(f"/api/console/patients/{child_id}/360")).status_code == 200
        found = (await client.get("/api/console/patients", params={"query": "13611112222"})).json()
        assert [(p["id"], p["phone"], p["id_number"]) for p in found] == [
            (child_id, "136****2222", "2301**********5520")
        ]
    search = [e for e in await _audit(runtime, insider["id"]) if e.action == "patient.search"]
    assert search[0].detail == {"kinds": ["phone", "card_number"], "results": 1}
    assert "13611112222" not in str([(e.object_id, e.detail) for e in search])


async def test_supervisor_searches_everyone_by_id_and_name(
    app: FastAPI, runtime: Runtime, admin_client: httpx.AsyncClient
):
    _, child_id = await _family_with_child(runtime, "44030520150601126X", "13722223333")
    async with staff_client(app, admin_client, "supervisor", []) as (_supervisor, client):
        by_id = (await client.get("/api/console/patients", params={"query": "44030520150601126X"})).json()
        assert [p["id"] for p in by_id] == [child_id]
        assert by_id[0]["phone"] == "137****3333"  # search results are masked for every role
        by_name = (await client.get("/api/console/patients", params={"query": "孙小"})).json()
        assert child_id in [p["id"] for p in by_name]
        assert (await client.get("/api/console/patients", params={"query": "%"})).json() == []
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as anonymous:
        assert (await anonymous.get("/api/console/patients", params={"query": "孙"})).status_code == 401
