"""Console: supervisors and admins read and edit departments' triage fields (audited, bad input 400)."""

from __future__ import annotations

from typing import Any

import httpx
import sqlalchemy as sa
from fastapi import FastAPI

from crm_backend.appointments.models import Department
from crm_backend.audit.models import AuditEntry
from crm_backend.runtime import Runtime
from crm_backend.triage.store import seed_departments
from tests.support.api import new_client, staff_client


async def _department(admin_client: httpx.AsyncClient, code: str) -> dict[str, Any]:
    listed = (await admin_client.get("/api/console/departments")).json()
    return next(d for d in listed if d["code"] == code)


async def test_supervisors_read_the_seeded_fields_and_agents_may_not(
    app: FastAPI, admin_client: httpx.AsyncClient
):
    listed = await admin_client.get("/api/console/departments")
    assert listed.status_code == 200
    departments = listed.json()
    assert len(departments) >= 25
    assert all(d["description"] and d["symptom_terms"] for d in departments)
    paediatrics = next(d for d in departments if d["code"] == "PED")
    assert paediatrics["max_age_years"] == 13
    assert next(d for d in departments if d["code"] == "OBS")["sex"] == "female"

    async with staff_client(app, admin_client, "supervisor", []) as (_, supervisor):
        one = await supervisor.get(f"/api/console/departments/{paediatrics['id']}")
        assert one.status_code == 200 and one.json() == paediatrics
    async with staff_client(app, admin_client, "agent", []) as (_, agent):
        assert (await agent.get("/api/console/departments")).status_code == 403
        patch = {"description": "改一下"}
        assert (
            await agent.patch(f"/api/console/departments/{paediatrics['id']}", json=patch)
        ).status_code == 403
    async with new_client(app) as anonymous:
        assert (await anonymous.get("/api/console/departments")).status_code == 401


async def test_an_edit_is_audited_and_changes_what_triage_recommends(
    app: FastAPI, runtime: Runtime, admin_client: httpx.AsyncClient
):
    preview = {"text": "最近老是打嗝不止"}
    before = await admin_client.post("/api/console/departments/triage-preview", json=preview)
    assert before.status_code == 200 and before.json()["departments"][0]["code"] == "GAST"

    tcm = await _department(admin_client, "TCM")
    terms = [*tcm["symptom_terms"], {"term": "打嗝不止/呃逆", "weight": 8}]
    async with staff_client(app, admin_client, "supervisor", []) as (supervisor_staff, supervisor):
        response = await supervisor.patch(
            f"/api/console/departments/{tcm['id']}",
            json={
                "description": "中药、针灸调理，也看顽固的打嗝。",
                "symptom_terms": terms,
                "min_age_years": 3,
            },
        )
        assert response.status_code == 200, response.text
        assert response.json()["description"] == "中药、针灸调理，也看顽固的打嗝。"
        assert response.json()["min_age_years"] == 3

        after = await supervisor.post("/api/console/departments/triage-preview", json=preview)
        assert after.json()["departments"][0]["code"] == "TCM"

    async with runtime.db.sessions() as session:
        entry = (
            await session.scalars(
                sa.select(AuditEntry).where(
                    AuditEntry.action == "department.triage_update", AuditEntry.object_id == str(tcm["id"])
                )
            )
        ).one()
        # Edited fields are kept: seeding again from the file does not undo staff's work.
        assert "TCM" not in await seed_departments(session)
        assert (await session.get(Department, tcm["id"])).min_age_years == 3  # type: ignore[union-attr]
    assert entry.staff_id == supervisor_staff["id"]
    assert entry.detail is not None and entry.detail["code"] == "TCM"
    changes = entry.detail["changes"]
    assert set(changes) == {"description", "symptom_terms", "min_age_years"}
    assert changes["description"]["before"] == tcm["description"]
    assert changes["min_age_years"] == {"before": None, "after": 3}


async def test_bad_input_is_refused_and_changes_nothing(app: FastAPI, admin_client: httpx.AsyncClient):
    ent = await _department(admin_client, "ENT")
    url = f"/api/console/departments/{ent['id']}"
    for body in (
        {"symptom_terms": [{"term": "耳朵…", "weight": 2}]},  # a part missing after "…"
        {"symptom_terms": [{"term": "耳鸣", "weight": 2}, {"term": "耳鸣", "weight": 3}]},  # twice
        {"symptom_terms": [{"term": "耳鸣", "weight": 0}]},
        {"symptom_terms": [{"term": "耳鸣", "weight": 2, "colour": "red"}]},
        {"description": ""},
        {"description": None},
        {"sex": "other"},
        {"min_age_years": -1},
        {"min_age_years": 20, "max_age_years": 10},
        {"name": "改名科"},  # not a triage field
    ):
        response = await admin_client.patch(url, json=body)
        assert response.status_code == 400, (body, response.text)
    assert (
        await admin_client.patch("/api/console/departments/999999", json={"description": "x"})
    ).status_code == 404
    assert (
        await admin_client.patch("/api/console/departments/0", json={"description": "x"})
    ).status_code == 400
    del admin_client.headers["X-CSRF-Token"]
    assert (await admin_client.patch(url, json={"description": "跨站"})).status_code == 403
    assert await _department(admin_client, "ENT") == ent


async def test_clearing_a_limit_with_null_is_an_edit(app: FastAPI, admin_client: httpx.AsyncClient):
    andrology = await _department(admin_client, "ANDR")
    assert andrology["sex"] == "male"
    response = await admin_client.patch(f"/api/console/departments/{andrology['id']}", json={"sex": None})
    assert response.status_code == 200 and response.json()["sex"] is None
    unchanged = {k: v for k, v in response.json().items() if k != "sex"}
    assert unchanged == {k: v for k, v in andrology.items() if k != "sex"}
