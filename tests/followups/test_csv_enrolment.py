"""Enrolment by CSV upload: all rows enrolled, or 422 listing every bad row by line and nothing written."""

from __future__ import annotations

import httpx
import sqlalchemy as sa
from fastapi import FastAPI

from crm_backend.audit.models import AuditEntry
from crm_backend.followups.models import FollowupEnrolment
from crm_backend.runtime import Runtime
from tests.followups.enrolment_support import definition, make_patient, make_plan, make_team, unique_code
from tests.support.api import staff_client

URL = "/api/console/followups/enrolments/csv"


async def _enrolled(runtime: Runtime, patient_ids: list[int]) -> int:
    async with runtime.db.sessions() as session:
        return (
            await session.scalar(
                sa.select(sa.func.count())
                .select_from(FollowupEnrolment)
                .where(FollowupEnrolment.patient_id.in_(patient_ids))
            )
            or 0
        )


async def test_one_bad_row_and_nothing_is_enrolled(
    app: FastAPI, admin_client: httpx.AsyncClient, runtime: Runtime
):
    plan = definition(unique_code(), days=(1, 3))
    await make_plan(runtime, plan)
    ward, other_ward = await make_team(runtime), await make_team(runtime)
    patients = [(await make_patient(runtime))[0] for _ in range(4)]
    rows = [
        "patient_id,plan_code,anchor_date,team_id,attending_doctor",
        f"{patients[0]},{plan.code},2030-07-01,{ward},陈志远",
        f"{patients[1]},no_such_plan,2030-07-01,{ward},",
        f"{patients[2]},{plan.code},2030-07-32,{other_ward},",
        f"{patients[3]},{plan.code},2030-07-02,{ward},",
        f"999999999,{plan.code},2030-07-02,{ward},",
    ]
    async with staff_client(app, admin_client, "nurse", [ward]) as (_, nurse):
        response = await nurse.post(
            URL, content="\n".join(rows).encode(), headers={"Content-Type": "text/csv"}
        )
        assert response.status_code == 422, response.text
        problems = {row["line"]: row["problems"] for row in response.json()["rows"]}
        assert sorted(problems) == [3, 4, 6]
        assert problems[3] == ["plan_code 'no_such_plan': no such plan"]
        assert problems[4] == [
            "anchor_date '2030-07-32': not a date (YYYY-MM-DD)",
            f"team_id {other_ward}: you may enrol only into your own teams",
        ]
        assert problems[6] == ["patient_id '999999999': no such patient"]
        assert await _enrolled(runtime, patients) == 0

        missing = await nurse.post(
            URL, content=b"patient_id,plan_code\n1,x\n", headers={"Content-Type": "text/csv"}
        )
        assert missing.status_code == 422
        assert missing.json()["file"] == ["missing columns: anchor_date, team_id"]

        fixed = [rows[0], rows[1], rows[4]]
        response = await nurse.post(
            URL, content=("\ufeff" + "\n".join(fixed)).encode(), headers={"Content-Type": "text/csv"}
        )
    assert response.status_code == 201, response.text
    enrolled = response.json()["enrolled"]
    assert [row["line"] for row in enrolled] == [2, 3]
    assert await _enrolled(runtime, patients) == 2
    async with runtime.db.sessions() as session:
        entry = await session.scalar(
            sa.select(AuditEntry)
            .where(AuditEntry.action == "followup_enrolment.csv")
            .order_by(AuditEntry.id.desc())
        )
        assert entry is not None and entry.detail is not None
        assert entry.detail["enrolments"] == [row["enrolment_id"] for row in enrolled]
        first = await session.get(FollowupEnrolment, enrolled[0]["enrolment_id"])
        assert first is not None and (first.source, first.attending_doctor) == ("csv", "陈志远")


async def test_a_file_uploaded_twice_or_a_repeated_row_enrols_nobody_twice(
    app: FastAPI, admin_client: httpx.AsyncClient, runtime: Runtime
):
    """Uploading again after a timeout must not ask every patient each question twice a day."""
    plan = definition(unique_code(), days=(1, 3))
    await make_plan(runtime, plan)
    ward = await make_team(runtime)
    patients = [(await make_patient(runtime))[0] for _ in range(2)]
    header = "patient_id,plan_code,anchor_date,team_id"
    rows = [header, *(f"{p},{plan.code},2030-08-01,{ward}" for p in patients)]
    headers = {"Content-Type": "text/csv"}
    async with staff_client(app, admin_client, "nurse", [ward]) as (_, nurse):
        repeated = await nurse.post(URL, content="\n".join([*rows, rows[1]]).encode(), headers=headers)
        assert repeated.status_code == 422, repeated.text
        assert repeated.json()["rows"] == [
            {"line": 4, "problems": ["the same patient, plan and anchor_date as line 2"]}
        ]
        assert await _enrolled(runtime, patients) == 0

        assert (await nurse.post(URL, content="\n".join(rows).encode(), headers=headers)).status_code == 201
        again = await nurse.post(URL, content="\n".join(rows).encode(), headers=headers)
        assert again.status_code == 422, again.text
        assert [row["line"] for row in again.json()["rows"]] == [2, 3]
        assert "already enrolled" in again.json()["rows"][0]["problems"][0]
    assert await _enrolled(runtime, patients) == 2
