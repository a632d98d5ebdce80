"""Console endpoints for the follow-up work lists, a check-in's detail and recording a phone call.

Nurses, clinicians, supervisors and admins (agents do not follow patients up); a nurse or clinician
sees the check-ins of her teams' enrolments, supervisors and admins every team's. Every view of
patient data is audited, and so is a refused one (AccessRefused: another team's check-in).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_backend.audit.refusals import AccessRefused
from crm_backend.audit.service import record as audit
from crm_backend.database.core import RowId
from crm_backend.followups import worklists
from crm_backend.followups.answers import Checkin, CheckinClosed, answers_of
from crm_backend.followups.enrolment import settle_enrolment
from crm_backend.followups.fhir import questionnaire_response
from crm_backend.followups.models import FollowupAnswer, FollowupPlanVersion
from crm_backend.followups.worklists import (
    CallIn,
    CallOutcomeRead,
    CallRefused,
    CheckinDetailRead,
    CheckinItemRead,
    Scope,
    WorkList,
)
from crm_backend.protection import FieldProtector
from crm_backend.runtime import Runtime
from crm_backend.staff.deps import CurrentStaff, DbSession, require_roles
from crm_backend.staff.models import CARE_ROLES

router = APIRouter(prefix="/api/console/followups", tags=["console"])

#: Who follows patients up.
FollowupStaff = Annotated[
    CurrentStaff,
    Depends(require_roles(*CARE_ROLES)),
]


def _runtime(request: Request) -> Runtime:
    return request.app.state.runtime


def _protector(request: Request) -> FieldProtector:
    return _runtime(request).protector


def scope_of(staff: CurrentStaff) -> Scope:
    return Scope(None if staff.sees_all_teams else staff.team_ids)


async def _checkin(
    session: AsyncSession, staff: CurrentStaff, checkin_id: int, action: str, *, lock: bool = False
) -> Checkin:
    """The check-in if the caller's teams follow it: 404 when there is none, 403 (audited) otherwise."""
    try:
        checkin = await worklists.load_for_staff(session, checkin_id, lock=lock)
    except CheckinClosed:
        raise HTTPException(404, "no such check-in") from None
    if not scope_of(staff).allows(checkin.enrolment.team_id):
        raise AccessRefused(
            "this check-in belongs to another team",
            action=action,
            object_type="followup_checkin",
            object_id=checkin_id,
            patient_id=checkin.patient.id,
            audit_detail={"team_id": checkin.enrolment.team_id},
        )
    return checkin


@router.get("/worklists/{kind}")
async def worklist(
    kind: WorkList,
    staff: FollowupStaff,
    request: Request,
    session: DbSession,
    limit: Annotated[int, Query(ge=1, le=worklists.MAX_ITEMS)] = worklists.MAX_ITEMS,
) -> list[CheckinItemRead]:
    """due_today | overdue | missed | flagged | phone, for the caller's teams. Audited."""
    runtime = _runtime(request)
    items = await worklists.list_checkins(
        session, runtime.protector, runtime.settings, kind, scope_of(staff), runtime.clock(), limit
    )
    patients = sorted({item.patient_id for item in items})
    await audit(
        session,
        staff_id=staff.id,
        action="followup_worklist.view",
        object_type="followup_worklist",
        object_id=kind.value,
        patient_id=patients[0] if len(patients) == 1 else None,
        request=request,
        detail={"list": kind.value, "returned": [item.id for item in items], "patients": patients},
    )
    await session.commit()
    return items


@router.get("/checkins/{checkin_id}")
async def checkin_detail(
    checkin_id: RowId, staff: FollowupStaff, request: Request, session: DbSession
) -> CheckinDetailRead:
    """Questions and answers with their labels and flags, sends and calls. Audited."""
    checkin = await _checkin(session, staff, checkin_id, "followup_checkin.view")
    detail = await worklists.checkin_detail(session, _protector(request), checkin)
    await audit(
        session,
        staff_id=staff.id,
        action="followup_checkin.view",
        object_type="followup_checkin",
        object_id=checkin_id,
        patient_id=checkin.patient.id,
        request=request,
    )
    await session.commit()
    return detail


@router.get("/checkins/{checkin_id}/fhir")
async def checkin_fhir(
    checkin_id: RowId, staff: FollowupStaff, request: Request, session: DbSession
) -> JSONResponse:
    """The check-in's stored answers as a FHIR R4B QuestionnaireResponse (application/fhir+json) to
    its time point's Questionnaire, for another system to file. Status `completed` once the check-in
    is answered, `in-progress` while answers are partial; 409 when it has no answers yet (the
    check-in exists, there is nothing to export). Same team scoping as the detail. Audited."""
    checkin = await _checkin(session, staff, checkin_id, "followup_checkin.export")
    answers = await answers_of(session, checkin_id)
    if not answers:
        raise HTTPException(409, "this check-in has no answers yet")
    version = await session.get(FollowupPlanVersion, checkin.enrolment.plan_version_id)
    last_answer = await session.scalar(
        select(func.max(FollowupAnswer.created_at)).where(FollowupAnswer.checkin_id == checkin_id)
    )
    authored = checkin.row.answered_at or last_answer or _runtime(request).clock()
    resource = questionnaire_response(
        checkin.plan,
        checkin.row.day,
        answers,
        patient_reference=f"Patient/{checkin.patient.id}",
        authored=authored,
        version=version.version if version is not None else None,
    )
    if checkin.row.answered_at is None:
        resource["status"] = "in-progress"
    await audit(
        session,
        staff_id=staff.id,
        action="followup_checkin.export",
        object_type="followup_checkin",
        object_id=checkin_id,
        patient_id=checkin.patient.id,
        request=request,
        detail={"format": "fhir", "answers": sorted(answers)},
    )
    await session.commit()
    return JSONResponse(
        resource,
        media_type="application/fhir+json",
        headers={"Content-Disposition": f'attachment; filename="checkin-{checkin_id}-fhir.json"'},
    )


@router.post("/checkins/{checkin_id}/calls", response_model=CallOutcomeRead)
async def record_call(
    checkin_id: RowId, body: CallIn, staff: FollowupStaff, request: Request, session: DbSession
) -> CallOutcomeRead | JSONResponse:
    """A nurse's call: reached or not, a note, and the answers the patient gave (channel phone).
    Answers not allowed: 422 with `errors` ([{loc: ["body", "answers", code], msg}], the shape of
    the console's 400s); answers to a check-in that can no longer take them: 409. Either way
    nothing is written. Audited."""
    runtime = _runtime(request)
    checkin = await _checkin(session, staff, checkin_id, "followup_call.create", lock=True)
    try:
        call, flag, advice = await worklists.record_call(
            session, checkin, body, staff_id=staff.id, now=runtime.clock()
        )
    except CallRefused as refused:
        await session.rollback()
        errors = [{"loc": ["body", "answers", code], "msg": msg} for code, msg in refused.errors.items()]
        return JSONResponse({"detail": refused.detail, "errors": errors}, status_code=refused.status)
    if flag is not None:  # answered: no longer missed (lost to follow-up recounted), maybe the last one
        await settle_enrolment(session, checkin.enrolment, runtime.settings)
    await audit(
        session,
        staff_id=staff.id,
        action="followup_call.create",
        object_type="followup_checkin",
        object_id=checkin_id,
        patient_id=checkin.patient.id,
        request=request,
        detail={"reached": body.reached, "answers": sorted(body.answers), "completed": flag is not None},
    )
    await session.commit()
    detail = await worklists.checkin_detail(
        session, runtime.protector, await worklists.load_for_staff(session, checkin_id)
    )
    return CallOutcomeRead(call_id=call.id, flag=flag, advice=advice, detail=detail)
