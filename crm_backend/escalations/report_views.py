"""The supervisors' service report: JSON for the console's table, CSV for a spreadsheet."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, Response

from crm_backend.escalations.hours import HOSPITAL_TZ
from crm_backend.escalations.report import ReportRangeError, ServiceReport, service_report
from crm_backend.escalations.report_csv import csv_filename, service_report_csv
from crm_backend.staff.deps import DbSession, SupervisorDep

router = APIRouter(prefix="/api/console", tags=["console"])

#: Without a range: the last seven hospital days, today included.
DEFAULT_DAYS = 7

#: Years a report may name; beyond them date arithmetic overflows (9999-12-31 + 1 day).
EARLIEST, LATEST = 2000, 2100
DateFrom = Annotated[date | None, Query(alias="from")]
DateTo = Annotated[date | None, Query(alias="to")]


async def _report(
    request: Request, session: DbSession, date_from: date | None, date_to: date | None
) -> ServiceReport:
    runtime = request.app.state.runtime
    now = runtime.clock()
    date_to = date_to or now.astimezone(HOSPITAL_TZ).date()
    date_from = date_from or date_to - timedelta(days=DEFAULT_DAYS - 1)
    if not (EARLIEST <= date_from.year and date_to.year <= LATEST):
        raise HTTPException(400, f"dates must lie in the years {EARLIEST}–{LATEST}")
    try:
        return await service_report(session, runtime.settings, date_from, date_to, now)
    except ReportRangeError as exc:
        raise HTTPException(400, str(exc)) from exc


@router.get("/reports/service")
async def report_json(
    request: Request,
    me: SupervisorDep,
    session: DbSession,
    date_from: DateFrom = None,
    date_to: DateTo = None,
) -> ServiceReport:
    return await _report(request, session, date_from, date_to)


@router.get("/reports/service.csv", response_class=Response)
async def report_csv(
    request: Request,
    me: SupervisorDep,
    session: DbSession,
    date_from: DateFrom = None,
    date_to: DateTo = None,
) -> Response:
    report = await _report(request, session, date_from, date_to)
    return Response(
        service_report_csv(report),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{csv_filename(report)}"'},
    )
