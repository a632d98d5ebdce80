"""The complaints report for the console: JSON for its table, CSV for a spreadsheet; each view audited.

The complaints office, supervisors and admins read every department's figures; a department's
liaison reads their departments'; anyone else is refused.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from crm_backend.audit.refusals import AccessRefused
from crm_backend.audit.service import record as audit
from crm_backend.complaints.access import scope_of
from crm_backend.complaints.report import ComplaintReport, complaint_report
from crm_backend.complaints.report_csv import complaint_report_csv, csv_filename
from crm_backend.followups.report import ReportRangeError, report_range
from crm_backend.staff.deps import CurrentStaff, DbSession, current_staff, runtime_of

router = APIRouter(prefix="/api/console", tags=["console"])

Caller = Annotated[CurrentStaff, Depends(current_staff)]
#: Without a range: the last 90 hospital days, today included.
DEFAULT_DAYS = 90
DateFrom = Annotated[date | None, Query(alias="from")]
DateTo = Annotated[date | None, Query(alias="to")]


async def _report(
    request: Request,
    session: AsyncSession,
    staff: CurrentStaff,
    date_from: date | None,
    date_to: date | None,
    form: Literal["json", "csv"],
) -> ComplaintReport:
    scope = await scope_of(session, staff)
    if not scope.office and not scope.departments:
        raise AccessRefused(
            "the complaints report is for the complaints office and department liaisons",
            action=f"complaint.report.{form}",
            object_type="complaint_report",
            object_id="all",
        )
    now = runtime_of(request).clock()
    try:
        date_from, date_to = report_range(now, date_from, date_to, DEFAULT_DAYS)
    except ReportRangeError as exc:
        raise HTTPException(400, str(exc)) from exc
    report = await complaint_report(session, scope, date_from, date_to, now)
    await audit(
        session,
        staff_id=staff.id,
        action="complaint.report",
        object_type="report",
        object_id="complaints",
        request=request,
        detail={"from": date_from.isoformat(), "to": date_to.isoformat(), "format": form},
    )
    await session.commit()
    return report


@router.get("/reports/complaints")
async def report_json(
    request: Request, staff: Caller, session: DbSession, date_from: DateFrom = None, date_to: DateTo = None
) -> ComplaintReport:
    """docs/CONSOLE_API.md `ComplaintReport`: by department, category and month."""
    return await _report(request, session, staff, date_from, date_to, "json")


@router.get("/reports/complaints.csv", response_class=Response)
async def report_csv(
    request: Request, staff: Caller, session: DbSession, date_from: DateFrom = None, date_to: DateTo = None
) -> Response:
    report = await _report(request, session, staff, date_from, date_to, "csv")
    return Response(
        complaint_report_csv(report),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{csv_filename(report)}"'},
    )
