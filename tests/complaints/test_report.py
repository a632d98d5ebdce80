"""The complaints report: figures by department, category and month from cases handled in known
ways, the CSV for Excel, and who may read it."""

from __future__ import annotations

from datetime import date, timedelta

import httpx
from fastapi import FastAPI

from crm_backend.complaints.models import CaseStatus, Category, Complaint
from crm_backend.complaints.service import case_by_number, record_outcome_reply, transition
from crm_backend.runtime import Runtime
from tests.complaints.support import complainant, local, registered
from tests.complaints.support_console import department, make_liaison
from tests.support.api import staff_client

RANGE = {"from": "2025-03-01", "to": "2025-04-30"}


async def _handled(
    runtime: Runtime,
    who,
    at,
    *,
    department_id: int,
    category: Category,
    answer_after: timedelta | None = None,
    response_after: timedelta | None = None,
    reply: tuple[bool, int] | None = None,
) -> Complaint:
    case = await registered(runtime, who, at=at)
    async with runtime.db.sessions() as session:
        row = await case_by_number(session, case.case_number)
        row.department_id = department_id
        row.category = category
        await transition(session, row, CaseStatus.assigned, "office", now=at)
        if response_after is not None:
            row.first_response_at = at + response_after
        if answer_after is not None:
            await transition(session, row, CaseStatus.answered, "office", now=at + answer_after)
        await session.commit()
        if reply is not None:
            await record_outcome_reply(
                session,
                case.case_number,
                who.patient_id,
                *reply,
                reopen_days=7,
                now=at + answer_after + timedelta(days=1),
            )
            await session.commit()
        return row


async def test_the_report_counts_by_department_category_and_month(
    app: FastAPI, admin_client: httpx.AsyncClient, runtime: Runtime
):
    outpatients = await department(runtime, "门诊部")
    surgery = await department(runtime, "普外科")
    who = await complainant(runtime)
    monday = local(date(2025, 3, 3), 10)  # due Monday 3-10
    # On time (2 days), accepted, 5 points; first response after 4 hours.
    await _handled(
        runtime,
        who,
        monday,
        department_id=outpatients,
        category=Category.waiting,
        answer_after=timedelta(days=2),
        response_after=timedelta(hours=4),
        reply=(True, 5),
    )
    # Late (answered on 3-12), not accepted within the window: reopened, 2 points; response after 8 hours.
    await _handled(
        runtime,
        who,
        monday,
        department_id=outpatients,
        category=Category.attitude,
        answer_after=timedelta(days=9),
        response_after=timedelta(hours=8),
        reply=(False, 2),
    )
    # Never answered, long past its deadline.
    await _handled(
        runtime, who, local(date(2025, 4, 1), 9), department_id=surgery, category=Category.attitude
    )
    await registered(runtime, who, at=local(date(2025, 4, 2), 9), kind="praise", what="张医生手术做得好")

    async with staff_client(app, admin_client, "complaints_office", []) as (_, office):
        answer = await office.get("/api/console/reports/complaints", params=RANGE)
        assert answer.status_code == 200, answer.text
        report = answer.json()
        total = report["total"]
        assert (total["complaints"], total["praise"], total["answered"]) == (3, 1, 2)
        assert (total["due"], total["on_time"], total["on_time_rate"]) == (3, 1, 1 / 3)
        assert (total["first_response_hours_median"], total["first_response_hours_p90"]) == (6.0, 8.0)
        assert (total["reopened"], total["reopen_rate"]) == (1, 0.5)
        assert (total["rated"], total["satisfaction_average"], total["satisfied_share"]) == (2, 3.5, 0.5)
        by_department = {g["label"]: g for g in report["by_department"]}
        assert by_department["门诊部"]["complaints"] == 2 and by_department["普外科"]["on_time"] == 0
        assert by_department["未分派"]["praise"] == 1
        assert {g["label"]: g["complaints"] for g in report["by_category"]} == {
            "服务态度": 2,
            "等候时间": 1,
            "未分类": 0,
        }
        assert [(g["key"], g["complaints"], g["praise"]) for g in report["by_month"]] == [
            ("2025-03", 2, 0),
            ("2025-04", 1, 1),
        ]

        csv = await office.get("/api/console/reports/complaints.csv", params=RANGE)
        assert csv.headers["content-type"].startswith("text/csv")
        assert csv.content.startswith("\ufeff".encode())
        lines = csv.content.decode("utf-8-sig").splitlines()
        assert lines[0].startswith("分组,名称,投诉,表扬")
        assert any(line.startswith("科室,门诊部,2,0,2,2,1,50.0%") for line in lines)

    async with staff_client(app, admin_client, "nurse", []) as (liaison_staff, liaison):
        async with staff_client(app, admin_client, "complaints_office", []) as (_, office):
            await make_liaison(office, surgery, liaison_staff["id"])
        mine = (await liaison.get("/api/console/reports/complaints", params=RANGE)).json()
        assert [g["label"] for g in mine["by_department"]] == ["普外科"]
    async with staff_client(app, admin_client, "agent", []) as (_, agent):
        assert (await agent.get("/api/console/reports/complaints", params=RANGE)).status_code == 403
