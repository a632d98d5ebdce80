"""Enrolment by CSV upload: all rows enrolled, or 422 listing every bad row by line and nothing written."""

from __future__ import annotations

import httpx
import sqlalchemy as sa
from fastapi import FastAPI

from crm_backend.audit.models import AuditEntry
from crm_backend.followups.models import FollowupEnrolment
from crm_backend.runtime import Runtime
from tests.followups.enrolment_support import (
    definition,
    make_patient,
    make_plan,
    make_team,
    open_to,
    unique_code,
)
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
    for patient_id in patients:
        await open_to(runtime, patient_id, ward)
    rows = [
        "patient_id,plan_code,anchor_date,team_id,attending_doctor",
        f"{patients[0]},{plan.code},2030-07-01,{ward},陈志远",
        f"{patients[1]},no_such_plan,2030-07-01,{ward},",
        f"{patients[2]},{plan.code},2030-07-32,{other_ward},",
        f"{patients[3]},{plan.code},2030-07-02,{ward},",
        f"{patients[3]},{plan.code},9999-12-30,{ward},",
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
        assert problems[6] == ["anchor_date 9999-12-30: outside 2000-01-01 to 2100-12-31"]
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
    for patient_id in patients:
        await open_to(runtime, patient_id, ward)
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


async def test_a_row_naming_a_patient_out_of_reach_is_403_naming_the_line_and_audited(
    app: FastAPI, admin_client: httpx.AsyncClient, runtime: Runtime
):
    """A file must not be a way round the patient record's rule, nor a way to learn which ids exist."""
    plan = definition(unique_code(), days=(1, 3))
    await make_plan(runtime, plan)
    ward = await make_team(runtime)
    mine, stranger = (await make_patient(runtime))[0], (await make_patient(runtime))[0]
    await open_to(runtime, mine, ward)
    headers = {"Content-Type": "text/csv"}
    rows = [
        "patient_id,plan_code,anchor_date,team_id",
        f"{mine},{plan.code},2030-07-01,{ward}",
        f"{stranger},{plan.code},2030-07-01,{ward}",
        f"1999999999,{plan.code},2030-07-01,{ward}",
    ]
    async with staff_client(app, admin_client, "nurse", [ward]) as (nurse_staff, nurse):
        response = await nurse.post(URL, content="\n".join(rows).encode(), headers=headers)
        assert response.status_code == 403, response.text
        assert response.json()["detail"] == (
            "lines 3, 4: you may enrol only patients you may open; nothing was enrolled"
        )
    assert await _enrolled(runtime, [mine, stranger]) == 0
    async with runtime.db.sessions() as session:
        denied = await session.scalar(
            sa.select(AuditEntry).where(
                AuditEntry.staff_id == nurse_staff["id"], AuditEntry.action == "followup_enrolment.csv.denied"
            )
        )
    assert denied is not None and denied.detail is not None
    assert (denied.detail["lines"], denied.detail["patient_ids"]) == ([3, 4], [str(stranger), "1999999999"])
    # An admin may open everyone: the unknown id is a row problem, the rest is enrolled once fixed.
    response = await admin_client.post(URL, content="\n".join(rows).encode(), headers=headers)
    assert response.status_code == 422
    assert response.json()["rows"] == [{"line": 4, "problems": ["patient_id '1999999999': no such patient"]}]


async def test_malformed_numbers_and_fields_are_row_problems_not_server_errors(
    app: FastAPI, admin_client: httpx.AsyncClient, runtime: Runtime
):
    plan = definition(unique_code(), days=(1, 3))
    await make_plan(runtime, plan)
    ward = await make_team(runtime)
    patient_id, _ = await make_patient(runtime)
    headers = {"Content-Type": "text/csv"}
    superscript = "\n".join(
        [
            "patient_id,plan_code,anchor_date,team_id",
            f"²,{plan.code},2030-07-01,{ward}",
            f"{patient_id},{plan.code},2030-07-01,²",
        ]
    )
    response = await admin_client.post(URL, content=superscript.encode(), headers=headers)
    assert response.status_code == 422, response.text
    assert response.json()["rows"] == [
        {"line": 2, "problems": ["patient_id '²': no such patient"]},
        {"line": 3, "problems": ["team_id '²': no such team"]},
    ]
    huge = "\n".join(
        [
            "patient_id,plan_code,anchor_date,team_id,procedure",
            f"{patient_id},{plan.code},2030-07-01,{ward},{'x' * 140_000}",
        ]
    )
    response = await admin_client.post(URL, content=huge.encode(), headers=headers)
    assert response.status_code == 422, response.text
    [row] = response.json()["rows"]
    assert row["line"] == 2 and row["problems"][0].startswith("not readable as CSV (field larger than")
    assert await _enrolled(runtime, [patient_id]) == 0
