"""Console API for follow-up plans (随访计划): clinicians, supervisors and admins define and change
plans (each change a new version, audited); nurses read them; plans travel as FHIR R4B.

A plan that fails PlanDefinition's checks is a 422 naming each problem in Chinese with where it is
(plan_problems.py), for the plan editor to show at the field; FHIR we cannot read is a 400.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from sqlalchemy import select

from crm_backend.audit.service import record as audit
from crm_backend.database.core import RowId
from crm_backend.followups import fhir, plan_service
from crm_backend.followups.models import FollowupPlan, FollowupPlanVersion
from crm_backend.followups.plan_problems import plan_problems, summary
from crm_backend.followups.plan_service import PlanConflict, PlanNotFound, definition_of
from crm_backend.followups.plans import PlanDefinition
from crm_backend.staff.deps import CurrentStaff, DbSession, require_roles
from crm_backend.staff.models import Staff, StaffRole

router = APIRouter(prefix="/api/console/followup-plans", tags=["console"])

#: Who may change plans: the clinical content is theirs to confirm.
WRITERS = (StaffRole.clinician, StaffRole.supervisor, StaffRole.admin)
ReaderDep = Annotated[CurrentStaff, Depends(require_roles(StaffRole.nurse, *WRITERS))]
WriterDep = Annotated[CurrentStaff, Depends(require_roles(*WRITERS))]
FHIR_JSON = "application/fhir+json"


class VersionRead(BaseModel):
    version: int
    created_at: datetime
    #: None: shipped with CareBridge.
    created_by_staff_id: int | None
    created_by_name: str | None = None
    definition: PlanDefinition


class PlanSummary(BaseModel):
    id: int
    code: str
    name: str
    active: bool
    current_version: int
    procedures: list[str]
    days: list[int]
    review_note: str
    updated_at: datetime


class PlanRead(BaseModel):
    id: int
    code: str
    name: str
    active: bool
    created_at: datetime
    #: Newest first.
    versions: list[VersionRead]


class PlanWritten(BaseModel):
    plan: PlanRead
    #: False when the definition sent equals the newest version (nothing stored).
    changed: bool


def _summary(plan: FollowupPlan, version: FollowupPlanVersion) -> PlanSummary:
    definition = definition_of(version)
    return PlanSummary(
        id=plan.id,
        code=plan.code,
        name=plan.name,
        active=plan.active,
        current_version=version.version,
        procedures=[procedure.text for procedure in definition.procedures],
        days=[point.day for point in definition.time_points],
        review_note=definition.review_note,
        updated_at=version.created_at,
    )


async def _staff_names(session: DbSession, ids: set[int | None]) -> dict[int | None, str]:
    if not ids:
        return {}
    rows = await session.execute(select(Staff.id, Staff.display_name).where(Staff.id.in_(ids)))
    return {staff_id: name for staff_id, name in rows}


async def _plan_read(session: DbSession, plan: FollowupPlan) -> PlanRead:
    versions = await plan_service.plan_versions(session, plan.id)
    names = await _staff_names(session, {v.created_by_staff_id for v in versions} - {None})
    return PlanRead(
        id=plan.id,
        code=plan.code,
        name=plan.name,
        active=plan.active,
        created_at=plan.created_at,
        versions=[
            VersionRead(
                version=v.version,
                created_at=v.created_at,
                created_by_staff_id=v.created_by_staff_id,
                created_by_name=names.get(v.created_by_staff_id),
                definition=definition_of(v),
            )
            for v in versions
        ],
    )


class InvalidPlan(Exception):
    """A definition that failed PlanDefinition's checks; answered as `refusal()`."""

    def __init__(self, error: ValidationError) -> None:
        super().__init__(str(error))
        self.problems = plan_problems(error)

    def refusal(self) -> JSONResponse:
        """422 `{"detail": one Chinese sentence, "errors": [{"loc", "msg", "type"}]}`: `loc` is the
        path in the definition (as the editor's fields are named), `msg` Chinese, `type` the check."""
        errors = [problem.model_dump() for problem in self.problems]
        return JSONResponse({"detail": summary(self.problems), "errors": errors}, status_code=422)


def _definition(body: dict[str, Any]) -> PlanDefinition:
    try:
        return PlanDefinition.model_validate(body)
    except ValidationError as exc:
        raise InvalidPlan(exc) from None


async def _get_plan(session: DbSession, plan_id: int) -> FollowupPlan:
    try:
        return await plan_service.get_plan(session, plan_id)
    except PlanNotFound as exc:
        raise HTTPException(404, str(exc)) from None


@router.get("")
async def list_plans(staff: ReaderDep, session: DbSession) -> list[PlanSummary]:
    return [_summary(plan, version) for plan, version in await plan_service.list_plans(session)]


@router.get("/{plan_id}")
async def read_plan(plan_id: RowId, staff: ReaderDep, session: DbSession) -> PlanRead:
    return await _plan_read(session, await _get_plan(session, plan_id))


async def _store_new(
    session: DbSession, definition: PlanDefinition, staff: CurrentStaff, request: Request, how: str
) -> PlanWritten:
    try:
        plan, version = await plan_service.create_plan(session, definition, staff_id=staff.id)
    except PlanConflict as exc:
        raise HTTPException(409, str(exc)) from None
    await audit(
        session,
        staff_id=staff.id,
        action="followup_plan.create",
        object_type="followup_plan",
        object_id=plan.id,
        request=request,
        detail={"code": plan.code, "version": version.version, "how": how},
    )
    await session.commit()
    return PlanWritten(plan=await _plan_read(session, plan), changed=True)


async def _store_change(
    session: DbSession,
    plan_id: int,
    definition: PlanDefinition,
    staff: CurrentStaff,
    request: Request,
    how: str,
) -> PlanWritten:
    try:
        version, changed = await plan_service.change_plan(session, plan_id, definition, staff_id=staff.id)
    except PlanNotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except PlanConflict as exc:
        raise HTTPException(409, str(exc)) from None
    if changed:
        await audit(
            session,
            staff_id=staff.id,
            action="followup_plan.change",
            object_type="followup_plan",
            object_id=plan_id,
            request=request,
            detail={"code": definition.code, "version": version.version, "how": how},
        )
    await session.commit()
    return PlanWritten(plan=await _plan_read(session, await _get_plan(session, plan_id)), changed=changed)


@router.post("", status_code=201, response_model=PlanWritten)
async def create_plan(
    body: Annotated[dict[str, Any], Body()], staff: WriterDep, request: Request, session: DbSession
) -> PlanWritten | JSONResponse:
    """A new plan, version 1. The body is a plan definition (plans.PlanDefinition)."""
    try:
        definition = _definition(body)
    except InvalidPlan as invalid:
        return invalid.refusal()
    return await _store_new(session, definition, staff, request, "console")


@router.put("/{plan_id}", response_model=PlanWritten)
async def change_plan(
    plan_id: RowId,
    body: Annotated[dict[str, Any], Body()],
    staff: WriterDep,
    request: Request,
    session: DbSession,
) -> PlanWritten | JSONResponse:
    """The changed definition becomes the next version; enrolled patients keep theirs."""
    await _get_plan(session, plan_id)
    try:
        definition = _definition(body)
    except InvalidPlan as invalid:
        return invalid.refusal()
    return await _store_change(session, plan_id, definition, staff, request, "console")


async def _set_active(
    plan_id: int, active: bool, staff: CurrentStaff, request: Request, session: DbSession
) -> PlanSummary:
    plan = await _get_plan(session, plan_id)
    if plan.active != active:
        await plan_service.set_active(session, plan_id, active)
        await audit(
            session,
            staff_id=staff.id,
            action="followup_plan.activate" if active else "followup_plan.deactivate",
            object_type="followup_plan",
            object_id=plan_id,
            request=request,
            detail={"code": plan.code},
        )
        await session.commit()
    newest = (await plan_service.plan_versions(session, plan_id))[0]
    return _summary(plan, newest)


@router.post("/{plan_id}/deactivate")
async def deactivate_plan(
    plan_id: RowId, staff: WriterDep, request: Request, session: DbSession
) -> PlanSummary:
    """No new enrolments; patients already enrolled carry on with their version."""
    return await _set_active(plan_id, False, staff, request, session)


@router.post("/{plan_id}/activate")
async def activate_plan(
    plan_id: RowId, staff: WriterDep, request: Request, session: DbSession
) -> PlanSummary:
    return await _set_active(plan_id, True, staff, request, session)


@router.get("/{plan_id}/versions/{number}/fhir")
async def export_fhir(plan_id: RowId, number: RowId, staff: ReaderDep, session: DbSession) -> JSONResponse:
    """The version as a FHIR R4B Bundle of Questionnaires, one per time point."""
    try:
        version = await plan_service.get_version(session, plan_id, number)
    except PlanNotFound as exc:
        raise HTTPException(404, str(exc)) from None
    # Building and checking the FHIR takes tens of milliseconds: off the event loop, which serves
    # patients' webhooks too.
    definition = definition_of(version)
    bundle = await asyncio.to_thread(fhir.plan_bundle, definition, version=version.version)
    filename = f"{definition.code}-v{version.version}.json"
    return JSONResponse(
        bundle,
        media_type=FHIR_JSON,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _read_fhir(raw: bytes) -> PlanDefinition:
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise fhir.FhirError(f"not JSON: {exc}") from None
    except RecursionError:
        raise fhir.FhirError("the JSON is nested too deeply") from None
    return fhir.plan_from_fhir(data)


@router.post("/import-fhir")
async def import_fhir(staff: WriterDep, request: Request, session: DbSession) -> JSONResponse:
    """A plan from FHIR R4B (a Bundle of Questionnaires, or one Questionnaire): a new plan, or the
    next version of the plan with the same code. 400 for FHIR we cannot read, 422 for an invalid plan."""
    try:
        definition = await asyncio.to_thread(_read_fhir, await request.body())
    except fhir.FhirError as exc:
        raise HTTPException(400, f"cannot import this FHIR: {exc}") from None
    except ValidationError as exc:
        return InvalidPlan(exc).refusal()
    existing = await plan_service.plan_by_code(session, definition.code)
    if existing is None:
        written = await _store_new(session, definition, staff, request, "fhir")
        return JSONResponse(written.model_dump(mode="json"), status_code=201)
    written = await _store_change(session, existing.id, definition, staff, request, "fhir")
    return JSONResponse(written.model_dump(mode="json"))
