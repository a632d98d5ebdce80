"""The console's enrolment API: enrol, list by team, pause / resume / stop, roles, audit."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime

import httpx
import sqlalchemy as sa
from fastapi import FastAPI

from crm_backend.audit.models import AuditEntry
from crm_backend.followups.models import FollowupEnrolment
from crm_backend.runtime import Runtime
from tests.followups.enrolment_support import (
    definition,
    enrol_patient,
    make_patient,
    make_plan,
    make_team,
    open_to,
    unique_code,
)
from tests.support.api import staff_client


async def test_nurses_enrol_and_see_their_own_teams_enrolments(
    app: FastAPI, admin_client: httpx.AsyncClient, runtime: Runtime
):
    plan = definition(unique_code(), days=(1, 7))
    await make_plan(runtime, plan)
    ward, other_ward = await make_team(runtime), await make_team(runtime)
    patient_id, _ = await make_patient(runtime, name="陈建国")
    await open_to(runtime, patient_id, ward)
    async with (
        staff_client(app, admin_client, "nurse", [ward]) as (_, nurse),
        staff_client(app, admin_client, "nurse", [other_ward]) as (_, other_nurse),
        staff_client(app, admin_client, "agent", [ward]) as (_, agent),
    ):
        body = {
            "patient_id": patient_id,
            "plan_code": plan.code,
            "anchor_date": "2030-06-01",
            "team_id": ward,
            "attending_doctor": "陈志远",
        }
        created = await nurse.post("/api/console/followups/enrolments", json=body)
        assert created.status_code == 201, created.text
        enrolment = created.json()
        assert (enrolment["source"], enrolment["discharged_on"]) == ("console", "2030-06-01")
        assert [(c["day"], c["due_at"]) for c in enrolment["checkins"]] == [
            (1, "2030-06-02T10:00:00+08:00"),
            (7, "2030-06-08T10:00:00+08:00"),
        ]

        # Another ward's nurse neither enrols into this ward nor sees or stops its enrolments.
        assert (await other_nurse.post("/api/console/followups/enrolments", json=body)).status_code == 403
        listed = await other_nurse.get("/api/console/followups/enrolments", params={"plan_code": plan.code})
        assert listed.status_code == 200 and listed.json() == []
        url = f"/api/console/followups/enrolments/{enrolment['id']}"
        assert (await other_nurse.get(url)).status_code == 403
        assert (await other_nurse.post(f"{url}/stop", json={"reason": "deceased"})).status_code == 403
        # Customer-service agents have no follow-up access.
        assert (await agent.get("/api/console/followups/enrolments")).status_code == 403

        mine = await nurse.get("/api/console/followups/enrolments", params={"plan_code": plan.code})
        assert [e["id"] for e in mine.json()] == [enrolment["id"]]
        assert mine.json()[0]["patient_name"] == "陈**"  # masked in the list

        paused = await nurse.post(f"{url}/pause")
        assert paused.status_code == 200 and paused.json()["status"] == "paused"
        assert (await nurse.post(f"{url}/pause")).status_code == 409
        filtered = await nurse.get(
            "/api/console/followups/enrolments", params={"status": "paused", "team_id": ward}
        )
        assert [e["id"] for e in filtered.json()] == [enrolment["id"]]
        assert (await nurse.post(f"{url}/resume")).json()["status"] == "active"
        stopped = await nurse.post(f"{url}/stop", json={"reason": "readmitted", "note": "再次入院"})
        assert stopped.status_code == 200
        assert (stopped.json()["status"], stopped.json()["stop_reason"]) == ("stopped", "readmitted")
        assert {c["status"] for c in stopped.json()["checkins"]} == {"skipped"}
        assert (await nurse.post(f"{url}/stop", json={"reason": "because"})).status_code == 400

    async with runtime.db.sessions() as session:
        actions = (
            await session.scalars(
                sa.select(AuditEntry.action)
                .where(
                    AuditEntry.object_type == "followup_enrolment",
                    AuditEntry.object_id == str(enrolment["id"]),
                )
                .order_by(AuditEntry.id)
            )
        ).all()
    assert actions == [
        "followup_enrolment.create",
        # The other ward's refused reads and changes are audited too.
        "followup_enrolment.view.denied",
        "followup_enrolment.stop.denied",
        "followup_enrolment.pause",
        "followup_enrolment.resume",
        "followup_enrolment.stop",
    ]


async def test_enrolling_with_unknown_patient_plan_or_team_is_422(
    app: FastAPI, admin_client: httpx.AsyncClient, runtime: Runtime
):
    plan = definition(unique_code())
    await make_plan(runtime, plan)
    ward = await make_team(runtime)
    patient_id, _ = await make_patient(runtime)
    good = {
        "patient_id": patient_id,
        "plan_code": plan.code,
        "anchor_date": str(date(2030, 6, 1)),
        "team_id": ward,
    }
    for bad in ({"patient_id": 2_000_000_000}, {"plan_code": "no_such_plan"}, {"team_id": 2_000_000_000}):
        response = await admin_client.post("/api/console/followups/enrolments", json={**good, **bad})
        assert response.status_code == 422, response.text
    assert (
        await admin_client.post("/api/console/followups/enrolments", json={**good, "anchor_date": "x"})
    ).status_code == 400


async def test_enrolling_a_patient_twice_in_one_plan_from_one_date_is_409(
    app: FastAPI, admin_client: httpx.AsyncClient, runtime: Runtime
):
    """A double click (or a second nurse) would ask the patient every question twice a day."""
    plan = definition(unique_code(), days=(1, 7))
    await make_plan(runtime, plan)
    ward = await make_team(runtime)
    patient_id, _ = await make_patient(runtime)
    await open_to(runtime, patient_id, ward)
    body = {"patient_id": patient_id, "plan_code": plan.code, "anchor_date": "2030-06-01", "team_id": ward}
    async with staff_client(app, admin_client, "nurse", [ward]) as (_, nurse):
        first = await nurse.post("/api/console/followups/enrolments", json=body)
        assert first.status_code == 201, first.text
        again = await nurse.post("/api/console/followups/enrolments", json=body)
        assert again.status_code == 409 and str(first.json()["id"]) in again.json()["detail"]
        # Another anchor date (a second operation) is another enrolment.
        later = await nurse.post(
            "/api/console/followups/enrolments", json={**body, "anchor_date": "2030-09-01"}
        )
        assert later.status_code == 201
        # Once the first is stopped (readmitted), the patient may be enrolled again from that date.
        url = f"/api/console/followups/enrolments/{first.json()['id']}/stop"
        assert (await nurse.post(url, json={"reason": "readmitted"})).status_code == 200
        assert (await nurse.post("/api/console/followups/enrolments", json=body)).status_code == 201


async def _denials(runtime: Runtime, staff_id: int) -> list[tuple[str, str, int | None]]:
    async with runtime.db.sessions() as session:
        rows = await session.execute(
            sa.select(AuditEntry.action, AuditEntry.object_id, AuditEntry.patient_id)
            .where(AuditEntry.staff_id == staff_id, AuditEntry.action.like("%.denied"))
            .order_by(AuditEntry.id)
        )
        return [tuple(row) for row in rows.all()]


async def test_a_nurse_enrols_only_patients_she_may_open_and_cannot_probe_ids(
    app: FastAPI, admin_client: httpx.AsyncClient, runtime: Runtime
):
    """Enrolling gives her team the patient's record and phone: it must not be a way to get them."""
    plan = definition(unique_code(), days=(1, 7))
    version = await make_plan(runtime, plan)
    ward, other_ward = await make_team(runtime), await make_team(runtime)
    stranger, _ = await make_patient(runtime)
    escalated, _ = await make_patient(runtime)
    await open_to(runtime, escalated, ward)
    enrolled_by_his, _ = await make_patient(runtime)  # the HIS enrolled them with her ward
    await enrol_patient(runtime, version, enrolled_by_his, date(2030, 5, 1), datetime.now(UTC), ward)
    url = "/api/console/followups/enrolments"
    body = {"plan_code": plan.code, "anchor_date": "2030-06-01", "team_id": ward}
    async with staff_client(app, admin_client, "nurse", [ward]) as (nurse_staff, nurse):
        refused = await nurse.post(url, json={**body, "patient_id": stranger})
        missing = await nurse.post(url, json={**body, "patient_id": 1_999_999_999})
        # The same answer for a patient out of reach and one that does not exist.
        assert refused.status_code == missing.status_code == 403
        assert refused.json() == missing.json() == {"detail": "you may enrol only patients you may open"}
        for patient_id in (escalated, enrolled_by_his):
            created = await nurse.post(url, json={**body, "patient_id": patient_id})
            assert created.status_code == 201, created.text
    assert await _denials(runtime, nurse_staff["id"]) == [
        ("followup_enrolment.create.denied", str(stranger), stranger),
        ("followup_enrolment.create.denied", "1999999999", 1_999_999_999),
    ]
    async with staff_client(app, admin_client, "nurse", [other_ward]) as (_, other_nurse):
        own_ward = await other_nurse.post(url, json={**body, "patient_id": stranger, "team_id": other_ward})
        assert own_ward.status_code == 403
    # Admins may open every patient: an unknown id is simply unknown.
    assert (await admin_client.post(url, json={**body, "patient_id": 1_999_999_999})).status_code == 422
    assert (await admin_client.post(url, json={**body, "patient_id": stranger})).status_code == 201


async def test_two_enrol_clicks_at_once_enrol_the_patient_once(
    app: FastAPI, admin_client: httpx.AsyncClient, runtime: Runtime
):
    plan = definition(unique_code(), days=(1, 7))
    await make_plan(runtime, plan)
    ward = await make_team(runtime)
    patients = [(await make_patient(runtime))[0] for _ in range(3)]
    url = "/api/console/followups/enrolments"
    for patient_id in patients:
        body = {
            "patient_id": patient_id,
            "plan_code": plan.code,
            "anchor_date": "2030-06-01",
            "team_id": ward,
        }
        answers = await asyncio.gather(admin_client.post(url, json=body), admin_client.post(url, json=body))
        assert sorted(a.status_code for a in answers) == [201, 409], [a.text for a in answers]
        async with runtime.db.sessions() as session:
            count = await session.scalar(
                sa.select(sa.func.count()).where(FollowupEnrolment.patient_id == patient_id)
            )
        assert count == 1


async def test_an_anchor_date_outside_the_calendar_we_follow_is_422_not_500(
    app: FastAPI, admin_client: httpx.AsyncClient, runtime: Runtime
):
    plan = definition(unique_code(), days=(1, 30))
    await make_plan(runtime, plan)
    ward = await make_team(runtime)
    patient_id, _ = await make_patient(runtime)
    url = "/api/console/followups/enrolments"
    body = {"patient_id": patient_id, "plan_code": plan.code, "team_id": ward}
    for anchor in ("9999-12-30", "1999-12-31"):
        response = await admin_client.post(url, json={**body, "anchor_date": anchor})
        assert response.status_code == 422, response.text
        assert response.json()["detail"] == f"anchor_date {anchor}: outside 2000-01-01 to 2100-12-31"
    late_discharge = await admin_client.post(
        url, json={**body, "anchor_date": "2030-06-01", "discharged_on": "9999-12-31"}
    )
    assert late_discharge.status_code == 422
