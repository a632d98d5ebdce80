"""Enrolling patients in follow-up from the console: one patient, or a CSV file of them.

An enrolment makes the patient one the enrolment's team may open (`escalations/access.py`
`visible_to`), with their record, phone and answers. So enrolling is itself under that rule: staff
enrol only patients they may open already (a nurse, those her patient search finds), or anyone
could read any record by enrolling it. A patient who does not exist gets the same 403 as one out of
reach, so ids cannot be probed; supervisors and admins, who may open every patient, are told 422.
The rule sits above the follow-up package, so these two endpoints live here; the rest of the
enrolment API is `crm_backend/followups/enrolment_views.py`. Every enrolment and every refusal is
audited (`followup_enrolment.create`, `.csv`, and `….denied`).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from crm_backend.audit.refusals import AccessRefused
from crm_backend.audit.service import record as audit
from crm_backend.database.core import RowId
from crm_backend.followups.csv_enrolment import read_csv
from crm_backend.followups.enrolment import (
    EnrolmentError,
    EnrolmentRequest,
    already_enrolled,
    enrol,
    hold_patients,
)
from crm_backend.followups.enrolment_views import EnrolmentRead, FollowupStaffDep, enrolment_read
from crm_backend.followups.matching import current_versions
from crm_backend.followups.models import EnrolmentSource, FollowupEnrolment
from crm_backend.patient_record.access import may_view, viewable
from crm_backend.patients.models import Patient
from crm_backend.staff.deps import DbSession, runtime_of
from crm_backend.staff.models import Team

router = APIRouter(prefix="/api/console/followups", tags=["console"])

#: Why a patient may not be enrolled by this caller (also for one that does not exist).
OUT_OF_REACH = "you may enrol only patients you may open"


class EnrolmentCreate(BaseModel):
    patient_id: RowId
    plan_code: str = Field(min_length=1, max_length=40)
    anchor_date: date
    #: Defaults to the anchor date (a plan counted from discharge).
    discharged_on: date | None = None
    team_id: RowId
    attending_doctor: str = Field(default="", max_length=64)
    procedure: str = Field(default="", max_length=200)


@router.post("/enrolments", status_code=status.HTTP_201_CREATED)
async def create_enrolment(
    body: EnrolmentCreate, staff: FollowupStaffDep, request: Request, session: DbSession
) -> EnrolmentRead:
    """Enrol one patient the caller may open in the newest version of a plan; 403 (audited) for a
    patient out of reach, 422 for an unknown plan or team, 409 when already enrolled."""
    await hold_patients(session, [body.patient_id])  # first: a double click waits, then gets 409
    if not await may_view(session, staff, body.patient_id):
        raise AccessRefused(
            OUT_OF_REACH,
            action="followup_enrolment.create",
            object_type="patient",
            object_id=body.patient_id,
            patient_id=body.patient_id,
        )
    if await session.get(Patient, body.patient_id) is None:  # only those who may open everyone
        raise HTTPException(422, f"no patient {body.patient_id}")
    if await session.get(Team, body.team_id) is None:
        raise HTTPException(422, f"no team {body.team_id}")
    if not staff.may_access_team(body.team_id):
        raise AccessRefused(
            "you may enrol only into your own teams",
            action="followup_enrolment.create",
            object_type="team",
            object_id=body.team_id,
            patient_id=body.patient_id,
        )
    versions = {definition.code: version for version, definition in await current_versions(session)}
    version = versions.get(body.plan_code)
    if version is None:
        raise HTTPException(422, f"no active plan {body.plan_code!r}; known: {sorted(versions)}")
    earlier = await already_enrolled(session, body.patient_id, version.id, body.anchor_date)
    if earlier is not None:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"the patient is already enrolled in {body.plan_code} from {body.anchor_date} "
            f"(enrolment {earlier.id}, {earlier.status}): stop it first to enrol again",
        )
    try:
        enrolment = await enrol(
            session,
            EnrolmentRequest(
                patient_id=body.patient_id,
                plan_version_id=version.id,
                anchor_date=body.anchor_date,
                discharged_on=body.discharged_on or body.anchor_date,
                team_id=body.team_id,
                source=EnrolmentSource.console,
                attending_doctor=body.attending_doctor.strip(),
                procedure=body.procedure.strip(),
                created_by_staff_id=staff.id,
            ),
            runtime_of(request).settings,
        )
    except EnrolmentError as exc:
        raise HTTPException(exc.status_code, exc.message) from None
    await audit(
        session,
        staff_id=staff.id,
        action="followup_enrolment.create",
        object_type="followup_enrolment",
        object_id=enrolment.id,
        patient_id=body.patient_id,
        request=request,
        detail={
            "plan": body.plan_code,
            "version": version.version,
            "team_id": body.team_id,
            "source": "console",
        },
    )
    read = await enrolment_read(session, enrolment)
    await session.commit()
    return read


def _lines(lines: list[int]) -> str:
    return f"line{'s' if len(lines) > 1 else ''} {', '.join(str(line) for line in lines)}"


@router.post("/enrolments/csv", status_code=status.HTTP_201_CREATED, response_model=None)
async def upload_enrolments(staff: FollowupStaffDep, request: Request, session: DbSession) -> Any:
    """A CSV file (csv_enrolment.py): all enrolled, or nothing written and 422 listing every bad row;
    403 (audited) naming the lines whose patient the caller may not open."""
    body = await request.body()
    rows, problems = await read_csv(session, body, staff, lambda ids: viewable(session, staff, ids))
    if problems.refused:
        await session.rollback()
        lines = sorted(problems.refused)
        raise AccessRefused(
            f"{_lines(lines)}: {OUT_OF_REACH}; nothing was enrolled",
            action="followup_enrolment.csv",
            object_type="patient",
            object_id="*",
            audit_detail={"lines": lines, "patient_ids": [problems.refused[line] for line in lines]},
        )
    if problems:
        await session.rollback()
        return JSONResponse(problems.as_detail(), status_code=422)
    settings = runtime_of(request).settings
    enrolled: list[FollowupEnrolment] = []
    for row in rows:
        enrolled.append(
            await enrol(
                session,
                EnrolmentRequest(
                    patient_id=row.patient_id,
                    plan_version_id=row.plan_version_id,
                    anchor_date=row.anchor_date,
                    discharged_on=row.discharged_on,
                    team_id=row.team_id,
                    source=EnrolmentSource.csv,
                    attending_doctor=row.attending_doctor,
                    procedure=row.procedure,
                    created_by_staff_id=staff.id,
                ),
                settings,
            )
        )
    await audit(
        session,
        staff_id=staff.id,
        action="followup_enrolment.csv",
        object_type="followup_enrolment",
        object_id="*",
        request=request,
        detail={
            "rows": len(rows),
            "enrolments": [e.id for e in enrolled],
            "patients": sorted({e.patient_id for e in enrolled}),
        },
    )
    await session.commit()
    return {
        "enrolled": [{"line": row.line, "enrolment_id": e.id} for row, e in zip(rows, enrolled, strict=True)]
    }
