"""The follow-up report for the console: JSON for its table, CSV for a spreadsheet; each view audited.

Nurses and clinicians read their own teams' figures, supervisors and admins every team's; agents are
refused. A team filter naming another team is refused (and audited) rather than silently emptied.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from crm_backend.audit.refusals import AccessRefused
from crm_backend.audit.service import record as audit
from crm_backend.database.core import RowId
from crm_backend.followups.models import FollowupPlan
from crm_backend.followups.report import (
    FollowupReport,
    ReportRangeError,
    Scope,
    followup_report,
    report_range,
)
from crm_backend.followups.report_csv import csv_filename, followup_report_csv
from crm_backend.staff.deps import CurrentStaff, DbSession, require_roles, runtime_of
from crm_backend.staff.models import StaffRole, Team

router = APIRouter(prefix="/api/console", tags=["console"])

#: Who reads the follow-up report (their teams; supervisors and admins every team).
READERS = (StaffRole.nurse, StaffRole.clinician, StaffRole.supervisor, StaffRole.admin)
ReaderDep = Annotated[CurrentStaff, Depends(require_roles(*READERS))]

#: Without a range: the last 30 hospital days, today included (day-30 check-ins fall inside).
DEFAULT_DAYS = 30
DateFrom = Annotated[date | None, Query(alias="from")]
DateTo = Annotated[date | None, Query(alias="to")]
TeamFilter = Annotated[RowId | None, Query(alias="team_id")]
PlanFilter = Annotated[RowId | None, Query(alias="plan_id")]


async def _scope(
    session: AsyncSession, staff: CurrentStaff, team_id: int | None, plan_id: int | None
) -> Scope:
    if team_id is not None:
        if await session.get(Team, team_id) is None:
            raise HTTPException(404, "no such team")
        if not staff.may_access_team(team_id):
            raise AccessRefused(
                "you may read the follow-up report of your own teams only",
                action="followup.report",
                object_type="team",
                object_id=team_id,
                audit_detail={"team_id": team_id},
            )
    if plan_id is not None and await session.get(FollowupPlan, plan_id) is None:
        raise HTTPException(404, "no such follow-up plan")
    visible = None if staff.sees_all_teams else staff.team_ids
    return Scope(team_ids=visible, team_id=team_id, plan_id=plan_id)


async def _report(
    request: Request,
    session: AsyncSession,
    staff: CurrentStaff,
    date_from: date | None,
    date_to: date | None,
    team_id: int | None,
    plan_id: int | None,
    form: Literal["json", "csv"],
) -> FollowupReport:
    now = runtime_of(request).clock()
    try:
        date_from, date_to = report_range(now, date_from, date_to, DEFAULT_DAYS)
    except ReportRangeError as exc:
        raise HTTPException(400, str(exc)) from exc
    scope = await _scope(session, staff, team_id, plan_id)
    report = await followup_report(session, scope, date_from, date_to, now)
    # Aggregates only, but read from patients' answers: who looked at which figures is kept.
    await audit(
        session,
        staff_id=staff.id,
        action="followup.report",
        object_type="report",
        object_id="followup",
        request=request,
        detail={
            "from": date_from.isoformat(),
            "to": date_to.isoformat(),
            "team_id": team_id,
            "plan_id": plan_id,
            "format": form,
        },
    )
    await session.commit()
    return report


@router.get("/reports/followup")
async def report_json(
    request: Request,
    staff: ReaderDep,
    session: DbSession,
    date_from: DateFrom = None,
    date_to: DateTo = None,
    team_id: TeamFilter = None,
    plan_id: PlanFilter = None,
) -> FollowupReport:
    """docs/CONSOLE_API.md `FollowupReport`: coverage (出院患者随访比例), response by channel, red flag
    to first contact, flag rates per plan, lost to follow-up; per team and per plan."""
    return await _report(request, session, staff, date_from, date_to, team_id, plan_id, "json")


@router.get("/reports/followup.csv", response_class=Response)
async def report_csv(
    request: Request,
    staff: ReaderDep,
    session: DbSession,
    date_from: DateFrom = None,
    date_to: DateTo = None,
    team_id: TeamFilter = None,
    plan_id: PlanFilter = None,
) -> Response:
    report = await _report(request, session, staff, date_from, date_to, team_id, plan_id, "csv")
    return Response(
        followup_report_csv(report),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{csv_filename(report)}"'},
    )
