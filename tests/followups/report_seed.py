"""Follow-up rows made directly, as enrolment, dispatch, the dialogue and the phone list would leave
them: a plan version, enrolments, check-ins with their outcome, answers and calls. The report and the
360 view read these rows only, so their tests state the rows and check the figures."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from crm_backend.followups.models import (
    FollowupAnswer,
    FollowupCall,
    FollowupCheckin,
    FollowupEnrolment,
    FollowupPlan,
    FollowupPlanVersion,
)
from crm_backend.followups.plans import PlanDefinition

SHANGHAI = ZoneInfo("Asia/Shanghai")

QUESTIONNAIRE = {
    "questions": [
        {
            "code": "pain",
            "text": "伤口疼痛有几分？",
            "type": "scale",
            "unit": "分",
            "flags": [{"flag": "amber", "at_least": 4}, {"flag": "red", "at_least": 7}],
        },
        {
            "code": "temperature",
            "text": "今天最高体温多少度？",
            "type": "number",
            "unit": "°C",
            "minimum": 35,
            "maximum": 42,
            "flags": [{"flag": "red", "at_least": 38.5}],
        },
        {
            "code": "wound_red",
            "text": "伤口有没有发红？",
            "type": "yes_no",
            "flags": [{"flag": "amber", "equals": True}],
        },
    ]
}


def definition(code: str, name: str, days: tuple[int, ...] = (1, 3, 7, 30)) -> dict[str, Any]:
    plan = {
        "code": code,
        "name": name,
        "procedures": [{"text": name.removesuffix("术后随访")}],
        "time_points": [{"day": day, "hour": 10, "questionnaire": QUESTIONNAIRE} for day in days],
    }
    return PlanDefinition.model_validate(plan).model_dump(mode="json")


def shanghai(day: date, hour: int, minute: int = 0) -> datetime:
    """A hospital wall-clock time, as stored (UTC)."""
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=SHANGHAI).astimezone(UTC)


async def make_plan(session: AsyncSession, code: str, name: str, version: int = 1) -> FollowupPlanVersion:
    plan = FollowupPlan(code=code, name=name)
    session.add(plan)
    await session.flush()
    row = FollowupPlanVersion(plan_id=plan.id, version=version, definition=definition(code, name))
    session.add(row)
    await session.flush()
    return row


async def enrol(
    session: AsyncSession,
    version: FollowupPlanVersion,
    *,
    patient_id: int,
    team_id: int,
    discharged_on: date,
    status: str = "active",
    stop_reason: str | None = None,
    lost: bool = False,
    doctor: str = "",
) -> FollowupEnrolment:
    enrolment = FollowupEnrolment(
        patient_id=patient_id,
        plan_version_id=version.id,
        anchor_date=discharged_on,
        discharged_on=discharged_on,
        team_id=team_id,
        attending_doctor=doctor,
        source="console",
        status=status,
        stop_reason=stop_reason,
        lost_to_followup=lost,
    )
    session.add(enrolment)
    await session.flush()
    return enrolment


async def checkin(
    session: AsyncSession,
    enrolment: FollowupEnrolment,
    time_point: int,
    *,
    due_at: datetime,
    status: str,
    started_via: str | None = None,
    channel: str | None = None,
    answered_at: datetime | None = None,
    worst_flag: str | None = None,
    first_contact_at: datetime | None = None,
    window_days: int = 2,
) -> FollowupCheckin:
    days = definition("x", "x")["time_points"]
    row = FollowupCheckin(
        enrolment_id=enrolment.id,
        time_point=time_point,
        day=days[time_point]["day"],
        due_at=due_at,
        window_ends_at=due_at + timedelta(days=window_days),
        status=status,
        started_via=started_via,
        started_at=due_at if started_via else None,
        channel=channel,
        answered_at=answered_at,
        worst_flag=worst_flag,
        first_contact_at=first_contact_at,
    )
    session.add(row)
    await session.flush()
    return row


async def answer(
    session: AsyncSession, row: FollowupCheckin, question: str, value: Any, flag: str, *, channel: str
) -> None:
    session.add(
        FollowupAnswer(
            checkin_id=row.id,
            question=question,
            value=value,
            flag=flag,
            channel=channel,
            created_at=row.answered_at or row.due_at,
        )
    )
    await session.flush()


async def call(
    session: AsyncSession, row: FollowupCheckin, staff_id: int, *, reached: bool, at: datetime
) -> None:
    session.add(FollowupCall(checkin_id=row.id, staff_id=staff_id, reached=reached, created_at=at))
    await session.flush()
