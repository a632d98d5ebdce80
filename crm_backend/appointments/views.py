"""Console endpoints for hospital schedules: list sessions, and import them from CSV (audited)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from crm_backend.appointments.schedules import DatabaseScheduleSource, ImportRejected, import_schedules
from crm_backend.appointments.service import find_department, hospital_today
from crm_backend.audit.service import record as audit
from crm_backend.database.core import utcnow
from crm_backend.staff.deps import DbSession, StaffDep, SupervisorDep

router = APIRouter(prefix="/api/console", tags=["console"])

#: Largest CSV accepted (5000 rows of schedule fit in well under this).
MAX_IMPORT_BYTES = 1024 * 1024
MAX_RANGE_DAYS = 92


class ScheduleRead(BaseModel):
    """One bookable half-day session."""

    id: int
    department_code: str
    doctor_id: int
    doctor_name: str
    title: str
    date: date
    half_day: str
    capacity: int
    booked_count: int
    available: int
    status: str


class ScheduleImportRead(BaseModel):
    rows: int
    created: int
    updated: int
    doctors_created: int


@router.get("/schedules")
async def list_schedules(
    staff: StaffDep,
    session: DbSession,
    department: Annotated[str | None, Query(max_length=64)] = None,
    date_from: date | None = None,
    date_to: date | None = None,
) -> list[ScheduleRead]:
    """Sessions between two dates (default: the next 14 days), optionally of one department (code,
    name or alias)."""
    start = date_from or hospital_today(utcnow())
    end = date_to or start + timedelta(days=13)
    if end < start or (end - start).days > MAX_RANGE_DAYS:
        raise HTTPException(400, f"date_to must be on or after date_from, at most {MAX_RANGE_DAYS} days on")
    code = None
    if department:
        found = await find_department(session, department)
        if found is None:
            raise HTTPException(404, "no such department")
        code = found.code
    sessions = await DatabaseScheduleSource(session).sessions(start, end, department_code=code)
    return [
        ScheduleRead(
            id=s.schedule_id,
            department_code=s.department_code,
            doctor_id=s.doctor_id,
            doctor_name=s.doctor_name,
            title=s.title,
            date=s.date,
            half_day=s.half_day.value,
            capacity=s.capacity,
            booked_count=s.booked_count,
            available=s.available,
            status=s.status.value,
        )
        for s in sessions
    ]


@router.post("/schedules/import", response_model=None)
async def import_csv(
    staff: SupervisorDep, request: Request, session: DbSession
) -> ScheduleImportRead | JSONResponse:
    """CSV (department_code,doctor_name,title,date,half_day,capacity) as the request body, e.g.
    `curl --data-binary @schedules.csv -H 'Content-Type: text/csv'`; all rows or none."""
    body = await request.body()
    if len(body) > MAX_IMPORT_BYTES:
        raise HTTPException(413, f"CSV larger than {MAX_IMPORT_BYTES} bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise HTTPException(400, "CSV must be UTF-8") from None
    try:
        result = await import_schedules(session, text)
    except ImportRejected as exc:
        await session.rollback()
        return JSONResponse(
            {"detail": "nothing imported: fix these rows", "errors": exc.errors}, status_code=400
        )
    summary = ScheduleImportRead(
        rows=result.rows,
        created=result.created,
        updated=result.updated,
        doctors_created=result.doctors_created,
    )
    await audit(
        session,
        staff_id=staff.id,
        action="schedule.import",
        object_type="schedule",
        object_id="import",
        request=request,
        detail=summary.model_dump(),
    )
    await session.commit()
    return summary
