"""The 360 view's follow-up: enrolments with plan, version, status, team and doctor; check-ins by day
with the worst flag; each question's answers over time (pain by day), read from the version the
patient was enrolled in; for care staff who may open the patient (not agents), audited as the 360
view is."""

from __future__ import annotations

from datetime import date

import httpx
import sqlalchemy as sa
from fastapi import FastAPI

from crm_backend.audit.models import AuditEntry
from crm_backend.followups.models import FollowupPlanVersion
from crm_backend.patients.models import Patient
from crm_backend.runtime import Runtime
from tests.followups.report_seed import answer, checkin, definition, enrol, make_plan, shanghai
from tests.patients.conftest import make_family, make_team
from tests.support.api import staff_client

DISCHARGED = date(2026, 9, 1)


def _day(n: int) -> date:
    """The n-th day after the discharge."""
    return date(2026, 9, 1 + n)


async def _followed_patient(runtime: Runtime) -> tuple[int, int, str]:
    """A patient enrolled twice: an older, stopped appendectomy plan, and the current cholecystectomy
    plan (version 2, changed to version 3 since) answered on days 1, 3 and 7, day 30 still to come.
    Returns (patient id, team id, team name)."""
    team_id = await make_team(runtime)
    family = await make_family(runtime, team_id)
    async with runtime.db.sessions() as s:
        older = await make_plan(s, f"app{family.patient_id}", "阑尾切除术后随访")
        await enrol(s, older, patient_id=family.patient_id, team_id=team_id, discharged_on=date(2025, 3, 2),
                    status="stopped", stop_reason="opted_out")  # fmt: skip
        v1 = await make_plan(s, f"lc{family.patient_id}", "腹腔镜胆囊切除术后随访")
        v2 = FollowupPlanVersion(plan_id=v1.plan_id, version=2, definition=v1.definition)
        changed = definition(f"lc{family.patient_id}", "腹腔镜胆囊切除术后随访")
        changed["time_points"][0]["questionnaire"]["questions"][0]["text"] = "改版后的疼痛问题？"
        v3 = FollowupPlanVersion(plan_id=v1.plan_id, version=3, definition=changed)
        s.add_all([v2, v3])
        await s.flush()
        current = await enrol(s, v2, patient_id=family.patient_id, team_id=team_id, discharged_on=DISCHARGED,
                              doctor="李主任")  # fmt: skip
        one = await checkin(
            s, current, 0, due_at=shanghai(_day(1), 10), status="answered", started_via="chat",
            channel="chat", answered_at=shanghai(_day(1), 10, 12), worst_flag="green",
        )  # fmt: skip
        await answer(s, one, "pain", 3, "green", channel="chat")
        await answer(s, one, "temperature", 37.2, "green", channel="chat")
        three = await checkin(
            s, current, 1, due_at=shanghai(_day(3), 10), status="answered", started_via="template",
            channel="page", answered_at=shanghai(_day(4), 8), worst_flag="amber",
        )  # fmt: skip
        await answer(s, three, "pain", 5, "amber", channel="page")
        await answer(s, three, "wound_red", True, "amber", channel="page")
        seven = await checkin(
            s, current, 2, due_at=shanghai(_day(7), 10), status="answered", started_via="chat",
            channel="chat", answered_at=shanghai(_day(8), 0, 30), worst_flag="red",
        )  # fmt: skip
        await answer(s, seven, "pain", 8, "red", channel="chat")
        await checkin(s, current, 3, due_at=shanghai(date(2026, 10, 1), 10), status="scheduled")
        await s.commit()
    return family.patient_id, team_id, f"team-{team_id}"


async def test_a_nurse_reads_the_course_of_the_follow_up(
    app: FastAPI, runtime: Runtime, admin_client: httpx.AsyncClient
) -> None:
    patient_id, team_id, _ = await _followed_patient(runtime)
    async with staff_client(app, admin_client, "nurse", [team_id]) as (nurse, client):
        response = await client.get(f"/api/console/patients/{patient_id}/360")
        assert response.status_code == 200, response.text
    current, older = response.json()["followups"]
    assert (older["plan_name"], older["status"], older["stop_reason"]) == (
        "阑尾切除术后随访",
        "stopped",
        "opted_out",
    )
    assert (current["plan_name"], current["version"], current["status"]) == (
        "腹腔镜胆囊切除术后随访",
        2,
        "active",
    )
    assert (current["team_id"], current["attending_doctor"], current["discharged_on"]) == (
        team_id,
        "李主任",
        "2026-09-01",
    )
    assert [(c["day"], c["due_date"], c["status"], c["worst_flag"]) for c in current["checkins"]] == [
        (1, "2026-09-02", "answered", "green"),
        (3, "2026-09-04", "answered", "amber"),
        (7, "2026-09-08", "answered", "red"),
        (30, "2026-10-01", "scheduled", None),
    ]
    series = {s["question"]: s for s in current["answers"]}
    assert list(series) == ["pain", "temperature", "wound_red"]  # the questionnaire's order
    pain = series["pain"]
    assert pain["text"] == "伤口疼痛有几分？"  # version 2's wording, not version 3's
    assert (pain["low"], pain["high"], pain["unit"]) == (0, 10, "分")
    # By the day it was answered in hospital time: day 3 on 5 Sept 08:00, day 7 at 00:30 on the 9th
    # (still the 8th in UTC).
    assert [(p["day"], p["date"], p["value"], p["shown"], p["flag"]) for p in pain["points"]] == [
        (1, "2026-09-02", 3, "3分", "green"),
        (3, "2026-09-05", 5, "5分", "amber"),
        (7, "2026-09-09", 8, "8分", "red"),
    ]
    assert [p["shown"] for p in series["temperature"]["points"]] == ["37.2°C"]
    assert [(p["shown"], p["channel"]) for p in series["wound_red"]["points"]] == [("是", "page")]
    assert series["wound_red"]["low"] is None

    async with runtime.db.sessions() as session:
        views = (
            await session.scalars(
                sa.select(AuditEntry.detail).where(
                    AuditEntry.staff_id == nurse["id"],
                    AuditEntry.action == "patient.view",
                    AuditEntry.patient_id == patient_id,
                )
            )
        ).all()
    assert views == [{"view": "360"}]


async def test_another_teams_nurse_sees_no_follow_up_and_a_new_patient_has_none(
    app: FastAPI, runtime: Runtime, admin_client: httpx.AsyncClient
) -> None:
    patient_id, _, _ = await _followed_patient(runtime)
    async with staff_client(app, admin_client, "nurse", [await make_team(runtime)]) as (_, client):
        refused = await client.get(f"/api/console/patients/{patient_id}/360")
        assert refused.status_code == 403
        assert "腹腔镜" not in refused.text
    stranger = await make_family(runtime, await make_team(runtime))
    view = (await admin_client.get(f"/api/console/patients/{stranger.patient_id}/360")).json()
    assert view["followups"] == []


async def test_the_enrolment_team_opens_a_patient_who_never_chatted(
    app: FastAPI, runtime: Runtime, admin_client: httpx.AsyncClient
) -> None:
    """A HIS enrols a patient at discharge: the team that calls them may open their record."""
    team_id = await make_team(runtime)
    async with runtime.db.sessions() as s:
        patient = Patient(display_name="赵六")
        s.add(patient)
        await s.flush()
        version = await make_plan(s, f"his{patient.id}", "腹腔镜胆囊切除术后随访")
        await enrol(s, version, patient_id=patient.id, team_id=team_id, discharged_on=DISCHARGED)
        await s.commit()
    async with staff_client(app, admin_client, "nurse", [team_id]) as (_, client):
        view = await client.get(f"/api/console/patients/{patient.id}/360")
        assert view.status_code == 200, view.text
        assert view.json()["followups"][0]["plan_name"] == "腹腔镜胆囊切除术后随访"
    async with staff_client(app, admin_client, "nurse", [await make_team(runtime)]) as (_, client):
        assert (await client.get(f"/api/console/patients/{patient.id}/360")).status_code == 403


async def test_an_agent_who_may_open_the_patient_does_not_see_clinical_answers(
    app: FastAPI, runtime: Runtime, admin_client: httpx.AsyncClient
) -> None:
    """Least privilege: agents answer chats about bookings and complaints; check-in answers are
    health data for the care team."""
    patient_id, team_id, _ = await _followed_patient(runtime)
    async with staff_client(app, admin_client, "agent", [team_id]) as (_, client):
        view = await client.get(f"/api/console/patients/{patient_id}/360")
        assert view.status_code == 200, view.text
        assert view.json()["followups"] is None
        assert "腹腔镜" not in view.text and "疼痛" not in view.text


async def test_a_nurse_sees_only_her_teams_follow_ups_of_a_patient_she_may_open(
    app: FastAPI, runtime: Runtime, admin_client: httpx.AsyncClient
) -> None:
    """Another team's check-in answers are refused in its detail (403): the 360 view must not show
    them either. Supervisors see every team's."""
    patient_id, _, _ = await _followed_patient(runtime)
    ward = await make_team(runtime)
    async with runtime.db.sessions() as s:
        version = await make_plan(s, f"ward{patient_id}", "全髋关节置换术后随访")
        theirs = await enrol(s, version, patient_id=patient_id, team_id=ward, discharged_on=date(2026, 11, 2))
        day_one = await checkin(
            s, theirs, 0, due_at=shanghai(date(2026, 11, 3), 10), status="answered", started_via="chat",
            channel="chat", answered_at=shanghai(date(2026, 11, 3), 11), worst_flag="amber",
        )  # fmt: skip
        await answer(s, day_one, "pain", 6, "amber", channel="chat")
        await s.commit()
    async with staff_client(app, admin_client, "nurse", [ward]) as (_, nurse):
        view = await nurse.get(f"/api/console/patients/{patient_id}/360")
        assert view.status_code == 200, view.text  # the patient is enrolled with her ward
        assert [e["plan_name"] for e in view.json()["followups"]] == ["全髋关节置换术后随访"]
        assert "腹腔镜" not in view.text and "阑尾" not in view.text
    async with staff_client(app, admin_client, "supervisor", []) as (_, supervisor):
        names = [
            e["plan_name"]
            for e in (await supervisor.get(f"/api/console/patients/{patient_id}/360")).json()["followups"]
        ]
        assert sorted(names) == sorted(["全髋关节置换术后随访", "腹腔镜胆囊切除术后随访", "阑尾切除术后随访"])
