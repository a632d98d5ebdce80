"""Follow-up rows for tests of the check-in dialogue: a plan version, an enrolment and its check-ins,
written directly (the enrolment service has its own tests), so a test can start a check-in as the
dispatcher does and read back what was stored."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_backend.followups.models import (
    CheckinStatus,
    EnrolmentSource,
    EnrolmentStatus,
    FollowupCheckin,
    FollowupEnrolment,
    FollowupPlanVersion,
)
from crm_backend.followups.plan_service import current_versions, definition_of, ensure_shipped_plans
from crm_backend.staff.models import Team

_teams = itertools.count(1)


@dataclass(frozen=True)
class Enrolled:
    enrolment_id: int
    #: Check-in ids by time point, in order; the first is started (due now), the rest scheduled.
    checkin_ids: list[int]
    team_id: int
    team_name: str


async def shipped_version(session: AsyncSession, code: str) -> FollowupPlanVersion:
    await ensure_shipped_plans(session)
    for version in await current_versions(session):
        if definition_of(version).code == code:
            return version
    raise LookupError(code)


async def enrol(
    session: AsyncSession,
    patient_id: int,
    *,
    plan_code: str = "lap_cholecystectomy",
    identity_id: int | None = None,
    now: datetime | None = None,
    team_name: str | None = None,
) -> Enrolled:
    """Enrol the patient (discharged yesterday) with every check-in of the plan; the first is
    `started` for `identity_id`, as the dispatcher leaves it when it queues the chat dialogue."""
    now = now or datetime.now(UTC)
    version = await shipped_version(session, plan_code)
    plan = definition_of(version)
    name = team_name or f"肝胆外科护理组{next(_teams)}-{now.timestamp():.0f}"
    team = await session.scalar(select(Team).where(Team.name == name))
    if team is None:
        team = Team(name=name)
        session.add(team)
        await session.flush()
    discharged = date.today() - timedelta(days=1)
    enrolment = FollowupEnrolment(
        patient_id=patient_id,
        plan_version_id=version.id,
        anchor_date=discharged,
        discharged_on=discharged,
        team_id=team.id,
        attending_doctor="李医生",
        procedure=plan.procedures[0].text,
        source=EnrolmentSource.console,
        status=EnrolmentStatus.active,
    )
    session.add(enrolment)
    await session.flush()
    ids = []
    for index, point in enumerate(plan.time_points):
        due = now + timedelta(days=point.day - plan.time_points[0].day)
        first = index == 0
        checkin = FollowupCheckin(
            enrolment_id=enrolment.id,
            time_point=index,
            day=point.day,
            due_at=due - timedelta(minutes=1) if first else due,
            window_ends_at=due + timedelta(days=2),
            status=CheckinStatus.started if first else CheckinStatus.scheduled,
            identity_id=identity_id if first else None,
            started_via="chat" if first else None,
            started_at=now if first else None,
        )
        session.add(checkin)
        await session.flush()
        ids.append(checkin.id)
    return Enrolled(enrolment.id, ids, team.id, team.name)
