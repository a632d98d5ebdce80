"""The service report: how escalated chats were handled over a range of days, per agent and team.

Each escalation created in the range counts once, for its team (where it ended up) and for its
agent (who resolved it, else who has it now). Response time runs from the escalation to a person's
first answer, resolution time to its resolution; both are counted in staffed hours only, the same
clock as the SLA, so a chat that came in at night is not held against the morning shift.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_backend.config import Settings
from crm_backend.escalations.hours import HOSPITAL_TZ, staffed_seconds
from crm_backend.escalations.models import Escalation
from crm_backend.escalations.sla import sla_breached
from crm_backend.escalations.views_model import StaffRef, TeamRef
from crm_backend.staff.models import Staff, Team

#: The longest range one report covers, in days.
MAX_REPORT_DAYS = 366
#: Ratings counted as satisfied.
SATISFIED = (4, 5)


class ServiceFigures(BaseModel):
    escalations: int
    responded: int
    resolved: int
    sla_breached: int
    rated: int
    #: Mean rating 1-5 (two decimals), null without ratings.
    csat_average: float | None
    #: Share of ratings that are 4 or 5 (0-1, three decimals), null without ratings.
    csat_satisfied_share: float | None
    #: Mean staffed seconds from escalation to first answer, over the responded ones.
    response_seconds_average: int | None
    #: Mean staffed seconds from escalation to resolution, over the resolved ones.
    resolution_seconds_average: int | None


class TeamFigures(ServiceFigures):
    team: TeamRef


class AgentFigures(ServiceFigures):
    agent: StaffRef
    teams: list[TeamRef]


class ServiceReport(BaseModel):
    date_from: date
    date_to: date
    time_zone: str
    #: Response and resolution times count staffed hours only (STAFFED_HOURS / STAFFED_DAYS).
    time_basis: str
    total: ServiceFigures
    teams: list[TeamFigures]
    agents: list[AgentFigures]


class ReportRangeError(ValueError):
    """The range asked for cannot be reported (reversed or too long)."""


def check_range(date_from: date, date_to: date) -> None:
    if date_from > date_to:
        raise ReportRangeError("from is after to")
    if (date_to - date_from).days + 1 > MAX_REPORT_DAYS:
        raise ReportRangeError(f"a report covers at most {MAX_REPORT_DAYS} days")


def _local_midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=HOSPITAL_TZ).astimezone(UTC)


def _figures(settings: Settings, escalations: Iterable[Escalation], now: datetime) -> ServiceFigures:
    rows = list(escalations)
    responses = [
        staffed_seconds(settings, e.created_at, e.first_response_at) for e in rows if e.first_response_at
    ]
    resolutions = [staffed_seconds(settings, e.created_at, e.resolved_at) for e in rows if e.resolved_at]
    ratings = [e.satisfaction for e in rows if e.satisfaction is not None]
    return ServiceFigures(
        escalations=len(rows),
        responded=len(responses),
        resolved=len(resolutions),
        sla_breached=sum(sla_breached(e, now) for e in rows),
        rated=len(ratings),
        csat_average=round(sum(ratings) / len(ratings), 2) if ratings else None,
        csat_satisfied_share=(
            round(sum(r in SATISFIED for r in ratings) / len(ratings), 3) if ratings else None
        ),
        response_seconds_average=round(sum(responses) / len(responses)) if responses else None,
        resolution_seconds_average=round(sum(resolutions) / len(resolutions)) if resolutions else None,
    )


async def service_report(
    session: AsyncSession, settings: Settings, date_from: date, date_to: date, now: datetime
) -> ServiceReport:
    """Escalations created from `date_from` to `date_to` inclusive, hospital calendar days."""
    check_range(date_from, date_to)
    escalations = (
        await session.scalars(
            select(Escalation)
            .where(
                Escalation.created_at >= _local_midnight(date_from),
                Escalation.created_at < _local_midnight(date_to + timedelta(days=1)),
            )
            .order_by(Escalation.id)
        )
    ).all()
    teams = {t.id: TeamRef(id=t.id, name=t.name) for t in (await session.scalars(select(Team))).all()}
    by_team: dict[int, list[Escalation]] = defaultdict(list)
    by_agent: dict[int, list[Escalation]] = defaultdict(list)
    for escalation in escalations:
        by_team[escalation.team_id].append(escalation)
        agent_id = escalation.resolved_by_id or escalation.assigned_to_id
        if agent_id is not None:
            by_agent[agent_id].append(escalation)
    staff = {
        s.id: s for s in (await session.scalars(select(Staff).where(Staff.id.in_(list(by_agent))))).all()
    }
    team_rows = [
        TeamFigures(team=teams[team_id], **_figures(settings, rows, now).model_dump())
        for team_id, rows in by_team.items()
    ]
    agent_rows = [
        AgentFigures(
            agent=StaffRef(id=agent_id, display_name=staff[agent_id].display_name),
            teams=[teams[t] for t in sorted({e.team_id for e in rows}, key=lambda t: teams[t].name)],
            **_figures(settings, rows, now).model_dump(),
        )
        for agent_id, rows in by_agent.items()
    ]
    return ServiceReport(
        date_from=date_from,
        date_to=date_to,
        time_zone=str(HOSPITAL_TZ),
        time_basis="staffed",
        total=_figures(settings, escalations, now),
        teams=sorted(team_rows, key=lambda row: row.team.name),
        agents=sorted(agent_rows, key=lambda row: (row.agent.display_name, row.agent.id)),
    )
