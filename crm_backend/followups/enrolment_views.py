"""Console API for enrolments: list, view, pause, resume, stop.

Nurses, clinicians, supervisors and admins; everyone but supervisors and admins works within their
own teams (an enrolment's team gets its flags and phone list). Every read and change is audited.
URLs in docs/CONSOLE_API.md style: /api/console/followups/enrolments[...]. Enrolling (one patient
or a CSV file) is `crm_backend/patient_record/enrolment_views.py`: it asks who may open the patient,
a rule that sits above this package.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_backend.audit.refusals import AccessRefused
from crm_backend.audit.service import record as audit
from crm_backend.config import HOSPITAL_TZ
from crm_backend.database.core import RowId
from crm_backend.followups.enrolment import (
    EnrolmentError,
    checkins_of,
    pause_enrolment,
    resume_enrolment,
    stop_enrolment,
)
from crm_backend.followups.models import (
    EnrolmentStatus,
    FollowupCheckin,
    FollowupEnrolment,
    FollowupPlan,
    FollowupPlanVersion,
    StopReason,
)
from crm_backend.followups.page import mask_name
from crm_backend.patients.models import Patient
from crm_backend.staff.deps import CurrentStaff, DbSession, require_roles
from crm_backend.staff.models import CARE_ROLES

router = APIRouter(prefix="/api/console/followups", tags=["console"])

FollowupStaffDep = Annotated[
    CurrentStaff,
    Depends(require_roles(*CARE_ROLES)),
]
MAX_LIMIT = 200


# -- what the console (and the HIS) read --------------------------------------------------------------


class CheckinRead(BaseModel):
    id: int
    day: int
    #: ISO 8601 in hospital time (Asia/Shanghai, +08:00).
    due_at: datetime
    window_ends_at: datetime
    status: str
    reason: str


class EnrolmentRead(BaseModel):
    id: int
    patient_id: int
    #: The patient's masked name (张*), filled in by the list for the console; empty elsewhere.
    patient_name: str = ""
    plan_code: str
    plan_version: int
    anchor_date: date
    discharged_on: date
    team_id: int
    attending_doctor: str
    procedure: str
    source: str
    status: str
    stop_reason: str | None
    lost_to_followup: bool
    created_at: datetime
    checkins: list[CheckinRead]


def _local(moment: datetime) -> datetime:
    return moment.astimezone(HOSPITAL_TZ)


async def enrolment_read(session: AsyncSession, enrolment: FollowupEnrolment) -> EnrolmentRead:
    version = await session.get(FollowupPlanVersion, enrolment.plan_version_id)
    assert version is not None
    plan = await session.get(FollowupPlan, version.plan_id)
    assert plan is not None
    checkins = await checkins_of(session, enrolment.id)
    return _read(enrolment, plan.code, version.version, checkins)


def _read(
    enrolment: FollowupEnrolment, plan_code: str, plan_version: int, checkins: list[FollowupCheckin]
) -> EnrolmentRead:
    return EnrolmentRead(
        id=enrolment.id,
        patient_id=enrolment.patient_id,
        plan_code=plan_code,
        plan_version=plan_version,
        anchor_date=enrolment.anchor_date,
        discharged_on=enrolment.discharged_on,
        team_id=enrolment.team_id,
        attending_doctor=enrolment.attending_doctor,
        procedure=enrolment.procedure,
        source=enrolment.source,
        status=enrolment.status,
        stop_reason=enrolment.stop_reason,
        lost_to_followup=enrolment.lost_to_followup,
        created_at=_local(enrolment.created_at),
        checkins=[
            CheckinRead(
                id=c.id,
                day=c.day,
                due_at=_local(c.due_at),
                window_ends_at=_local(c.window_ends_at),
                status=c.status,
                reason=c.reason,
            )
            for c in checkins
        ],
    )


# -- requests ---------------------------------------------------------------------------------------------


class EnrolmentStop(BaseModel):
    reason: StopReason
    note: str = Field(default="", max_length=300)


def _may_work_in(staff: CurrentStaff, team_id: int) -> bool:
    return staff.may_access_team(team_id)


def _refuse(enrolment: FollowupEnrolment, action: str) -> AccessRefused:
    return AccessRefused(
        "this enrolment belongs to another team",
        action=action,
        object_type="followup_enrolment",
        object_id=enrolment.id,
        patient_id=enrolment.patient_id,
    )


async def _enrolment(
    session: AsyncSession, staff: CurrentStaff, enrolment_id: int, action: str
) -> FollowupEnrolment:
    enrolment = await session.get(FollowupEnrolment, enrolment_id)
    if enrolment is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such enrolment")
    if not _may_work_in(staff, enrolment.team_id):
        raise _refuse(enrolment, action)
    return enrolment


def _error(exc: EnrolmentError) -> HTTPException:
    return HTTPException(exc.status_code, exc.message)


# -- endpoints --------------------------------------------------------------------------------------------


@router.get("/enrolments")
async def list_enrolments(
    staff: FollowupStaffDep,
    request: Request,
    session: DbSession,
    status_: Annotated[EnrolmentStatus | None, Query(alias="status")] = None,
    team_id: RowId | None = None,
    plan_code: Annotated[str | None, Query(max_length=40)] = None,
    patient_id: RowId | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
) -> list[EnrolmentRead]:
    """Newest first; nurses and clinicians see their teams' enrolments only."""
    query = (
        select(FollowupEnrolment, FollowupPlan.code, FollowupPlanVersion.version)
        .join(FollowupPlanVersion, FollowupPlanVersion.id == FollowupEnrolment.plan_version_id)
        .join(FollowupPlan, FollowupPlan.id == FollowupPlanVersion.plan_id)
        .order_by(FollowupEnrolment.id.desc())
        .limit(limit)
    )
    if not staff.sees_all_teams:
        query = query.where(FollowupEnrolment.team_id.in_(list(staff.team_ids)))
    if status_ is not None:
        query = query.where(FollowupEnrolment.status == status_.value)
    if team_id is not None:
        query = query.where(FollowupEnrolment.team_id == team_id)
    if plan_code is not None:
        query = query.where(FollowupPlan.code == plan_code)
    if patient_id is not None:
        query = query.where(FollowupEnrolment.patient_id == patient_id)
    rows = (await session.execute(query)).all()
    ids = [enrolment.id for enrolment, _, _ in rows]
    checkins: dict[int, list[FollowupCheckin]] = {enrolment_id: [] for enrolment_id in ids}
    if ids:
        for checkin in await session.scalars(
            select(FollowupCheckin)
            .where(FollowupCheckin.enrolment_id.in_(ids))
            .order_by(FollowupCheckin.time_point)
        ):
            checkins[checkin.enrolment_id].append(checkin)
    patients = sorted({enrolment.patient_id for enrolment, _, _ in rows})
    await audit(
        session,
        staff_id=staff.id,
        action="followup_enrolment.list",
        object_type="followup_enrolment",
        object_id="*",
        patient_id=patients[0] if len(patients) == 1 else None,
        request=request,
        detail={
            "status": status_.value if status_ else None,
            "team_id": team_id,
            "plan_code": plan_code,
            "returned": ids,
            "patients": patients,
        },
    )
    names = {
        patient_id: mask_name(name)
        for patient_id, name in (
            await session.execute(select(Patient.id, Patient.display_name).where(Patient.id.in_(patients)))
            if patients
            else []
        )
    }
    await session.commit()
    reads = [_read(enrolment, code, version, checkins[enrolment.id]) for enrolment, code, version in rows]
    for read in reads:
        read.patient_name = names.get(read.patient_id, "")
    return reads


@router.get("/enrolments/{enrolment_id}")
async def get_enrolment(
    enrolment_id: RowId, staff: FollowupStaffDep, request: Request, session: DbSession
) -> EnrolmentRead:
    enrolment = await _enrolment(session, staff, enrolment_id, "followup_enrolment.view")
    read = await enrolment_read(session, enrolment)
    await audit(
        session,
        staff_id=staff.id,
        action="followup_enrolment.view",
        object_type="followup_enrolment",
        object_id=enrolment.id,
        patient_id=enrolment.patient_id,
        request=request,
    )
    await session.commit()
    return read


async def _change(
    action: str, enrolment_id: int, staff: CurrentStaff, request: Request, session: AsyncSession, **how: Any
) -> EnrolmentRead:
    enrolment = await _enrolment(session, staff, enrolment_id, f"followup_enrolment.{action}")
    try:
        if action == "pause":
            await pause_enrolment(session, enrolment.id)
        elif action == "resume":
            await resume_enrolment(session, enrolment.id)
        else:
            await stop_enrolment(session, enrolment.id, how["reason"], note=how.get("note", ""))
    except EnrolmentError as exc:
        raise _error(exc) from None
    await audit(
        session,
        staff_id=staff.id,
        action=f"followup_enrolment.{action}",
        object_type="followup_enrolment",
        object_id=enrolment.id,
        patient_id=enrolment.patient_id,
        request=request,
        detail={key: str(value) for key, value in how.items()} or None,
    )
    await session.flush()
    read = await enrolment_read(session, enrolment)
    await session.commit()
    return read


@router.post("/enrolments/{enrolment_id}/pause")
async def pause(
    enrolment_id: RowId, staff: FollowupStaffDep, request: Request, session: DbSession
) -> EnrolmentRead:
    """Nothing new starts until resumed (409 unless active)."""
    return await _change("pause", enrolment_id, staff, request, session)


@router.post("/enrolments/{enrolment_id}/resume")
async def resume(
    enrolment_id: RowId, staff: FollowupStaffDep, request: Request, session: DbSession
) -> EnrolmentRead:
    """Active again; check-ins whose window closed meanwhile are skipped (409 unless paused)."""
    return await _change("resume", enrolment_id, staff, request, session)


@router.post("/enrolments/{enrolment_id}/stop")
async def stop(
    enrolment_id: RowId, body: EnrolmentStop, staff: FollowupStaffDep, request: Request, session: DbSession
) -> EnrolmentRead:
    """Stopped for good (readmitted, deceased, opted out, other): nothing more is sent."""
    return await _change("stop", enrolment_id, staff, request, session, reason=body.reason, note=body.note)
