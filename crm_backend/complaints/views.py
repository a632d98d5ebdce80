"""Console endpoints of the complaints workspace (docs/CONSOLE_API.md, "Complaints").

Who sees what is `access.py`'s rule. Lists are masked; every view of a case's detail is audited,
and so is a refused one (`AccessRefused`, 403). Changes are audited with what changed; a change
the case's state does not allow answers 409 and changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_backend.appointments.models import Department
from crm_backend.audit.service import record as audit
from crm_backend.complaints import reads
from crm_backend.complaints.access import OFFICE_ROLES, CaseScope, refuse, scope_of
from crm_backend.complaints.models import (
    CaseKind,
    CaseStatus,
    Complaint,
    DepartmentLiaison,
    TimelineKind,
)
from crm_backend.complaints.replies import Delivery, write_to_patient
from crm_backend.complaints.service import (
    ComplaintError,
    add_entry,
    case_by_number,
    deadline_start,
    escalate_safety,
    register_case,
    set_deadline,
    transition,
)
from crm_backend.complaints.views_model import (
    AssignIn,
    CaseDetailRead,
    CaseIn,
    CaseItemRead,
    DepartmentLiaisonsRead,
    DepartmentRef,
    LiaisonsIn,
    ReferralIn,
    ScopeRead,
    SentRead,
    StaffRef,
    TextIn,
    TransitionIn,
)
from crm_backend.database.core import RowId
from crm_backend.patients.models import Patient
from crm_backend.runtime import Runtime
from crm_backend.staff.deps import CurrentStaff, DbSession, current_staff, require_roles
from crm_backend.staff.models import Staff

router = APIRouter(prefix="/api/console/complaints", tags=["console"])

Caller = Annotated[CurrentStaff, Depends(current_staff)]
Office = Annotated[CurrentStaff, Depends(require_roles(*OFFICE_ROLES))]


def _runtime(request: Request) -> Runtime:
    return request.app.state.runtime


@contextmanager
def _refusals() -> Iterator[None]:
    """The service's refusals as HTTP answers (404 unknown case, 409 not in this state, 422 input)."""
    try:
        yield
    except ComplaintError as exc:
        raise HTTPException(exc.status_code, str(exc)) from None


async def _case(
    session: AsyncSession, staff: CurrentStaff, case_number: str, action: str, *, lock: bool = False
) -> tuple[Complaint, CaseScope]:
    """The case if the caller may see it: 404 when there is none, 403 (audited) otherwise."""
    with _refusals():
        complaint = await case_by_number(session, case_number, for_update=lock)
    scope = await scope_of(session, staff)
    if not scope.allows(complaint):
        raise refuse(complaint, action, "this case is not assigned to your department")
    return complaint, scope


def _office_only(scope: CaseScope, complaint: Complaint, action: str) -> None:
    if not scope.office:
        raise refuse(complaint, action, "only the complaints office may do this")


async def _audit(
    session: AsyncSession,
    staff: CurrentStaff,
    request: Request,
    action: str,
    complaint: Complaint,
    detail: dict[str, Any] | None = None,
) -> None:
    await audit(
        session,
        staff_id=staff.id,
        action=action,
        object_type="complaint",
        object_id=complaint.case_number,
        patient_id=complaint.patient_id,
        request=request,
        detail=detail,
    )


async def _detail(
    session: AsyncSession, request: Request, complaint: Complaint, scope: CaseScope
) -> CaseDetailRead:
    return await reads.case_detail(
        session, complaint, _runtime(request).clock(), reads.next_states_for(complaint, scope)
    )


async def _done(
    session: AsyncSession,
    staff: CurrentStaff,
    request: Request,
    action: str,
    complaint: Complaint,
    scope: CaseScope,
    detail: dict[str, Any] | None = None,
) -> CaseDetailRead:
    """Audit the change, commit it, and answer the case as it is now."""
    await _audit(session, staff, request, action, complaint, detail)
    await session.commit()
    return await _detail(session, request, complaint, scope)


async def _move(
    session: AsyncSession,
    staff: CurrentStaff,
    request: Request,
    complaint: Complaint,
    to: CaseStatus,
    text: str | None,
    data: dict[str, Any] | None = None,
) -> None:
    with _refusals():
        await transition(
            session,
            complaint,
            to,
            staff.username,
            staff_id=staff.id,
            text=text,
            data=data,
            now=_runtime(request).clock(),
        )


async def _sent(
    session: AsyncSession, request: Request, complaint: Complaint, scope: CaseScope, delivery: Delivery
) -> SentRead:
    """The case as the delivery left it (first response, the timeline's message entry)."""
    await session.refresh(complaint)
    return SentRead(case=await _detail(session, request, complaint, scope), delivery=delivery)


# -- reading -------------------------------------------------------------------------------------------


@router.get("")
async def list_cases(
    staff: Caller,
    request: Request,
    session: DbSession,
    status: CaseStatus | None = None,
    kind: CaseKind | None = None,
    department_id: RowId | None = None,
    flagged: bool = False,
    limit: Annotated[int, Query(ge=1, le=reads.MAX_ITEMS)] = reads.MAX_ITEMS,
) -> list[CaseItemRead]:
    """The caller's cases (all for the office, their department's for a liaison, the ones they
    registered for anyone), masked, the nearest deadline first. Audited."""
    scope = await scope_of(session, staff)
    items = await reads.list_cases(
        session,
        scope,
        _runtime(request).clock(),
        status=status,
        kind=kind,
        department_id=department_id,
        flagged=flagged,
        limit=limit,
    )
    await audit(
        session,
        staff_id=staff.id,
        action="complaint.list",
        object_type="complaint_list",
        object_id=status.value if status else "all",
        request=request,
        detail={"returned": [item.case_number for item in items]},
    )
    await session.commit()
    return items


@router.get("/scope")
async def my_scope(staff: Caller, session: DbSession) -> ScopeRead:
    """Whether the caller is the office and which departments' liaison (the console shows the
    report to whoever the report endpoint answers)."""
    scope = await scope_of(session, staff)
    departments = await session.scalars(
        select(Department).where(Department.id.in_(sorted(scope.departments))).order_by(Department.name)
    )
    return ScopeRead(
        office=scope.office, liaison_of=[DepartmentRef(id=d.id, name=d.name) for d in departments]
    )


@router.get("/departments")
async def departments(staff: Caller, session: DbSession) -> list[DepartmentRef]:
    """The hospital's departments by name, for whoever registers a case to say where it happened."""
    rows = await session.execute(select(Department.id, Department.name).order_by(Department.name))
    return [DepartmentRef(id=row.id, name=row.name) for row in rows]


@router.get("/{case_number}")
async def case_detail(
    case_number: str, staff: Caller, request: Request, session: DbSession
) -> CaseDetailRead:
    """The whole case with its timeline. Audited on every view; out of scope 403, audited too."""
    complaint, scope = await _case(session, staff, case_number, "complaint.view")
    detail = await _detail(session, request, complaint, scope)
    await _audit(session, staff, request, "complaint.view", complaint)
    await session.commit()
    return detail


# -- registering and working on a case -----------------------------------------------------------------


@router.post("", status_code=201)
async def register(body: CaseIn, staff: Caller, request: Request, session: DbSession) -> CaseDetailRead:
    """A case received by phone, at the desk, by letter or in a chat staff hold; whoever receives
    it registers it.

    The intake's `intake_key` is dropped: it is the chat intake's key, and a key that matched would
    answer that case to whoever guessed it. Every console registration is a new case.
    """
    runtime = _runtime(request)
    if await session.get(Patient, body.patient_id) is None:
        raise HTTPException(404, "no such patient")
    intake = body.intake.model_copy(update={"intake_key": None})
    with _refusals():
        complaint = await register_case(
            session,
            body.patient_id,
            body.conversation_id,
            intake,
            staff.username,
            registered_by_staff_id=staff.id,
            several_departments=body.several_departments,
            now=runtime.clock(),
        )
    await _audit(session, staff, request, "complaint.register", complaint)
    await session.commit()
    if complaint.safety_risk:
        await escalate_safety(runtime, complaint.id)
        await session.refresh(complaint)
    return await _detail(session, request, complaint, await scope_of(session, staff))


@router.post("/{case_number}/assign")
async def assign(
    case_number: str, body: AssignIn, staff: Caller, request: Request, session: DbSession
) -> CaseDetailRead:
    """To a department (and one of its liaisons); again to move it. Office only."""
    complaint, scope = await _case(session, staff, case_number, "complaint.assign", lock=True)
    _office_only(scope, complaint, "complaint.assign")
    department = await session.get(Department, body.department_id)
    if department is None:
        raise HTTPException(422, "no such department")
    if body.liaison_staff_id is not None:
        liaison = await session.get(
            DepartmentLiaison, {"department_id": body.department_id, "staff_id": body.liaison_staff_id}
        )
        if liaison is None:
            raise HTTPException(422, "that staff member is not a liaison of the department")
    now = _runtime(request).clock()
    assignment = {
        "department_id": department.id,
        "department": department.name,
        "liaison": body.liaison_staff_id,
    }
    await _move(session, staff, request, complaint, CaseStatus.assigned, body.note, assignment)
    complaint.department_id = department.id
    complaint.liaison_staff_id = body.liaison_staff_id
    if body.category is not None and body.category != complaint.category:
        add_entry(
            session,
            complaint,
            TimelineKind.category,
            staff.username,
            at=now,
            staff_id=staff.id,
            data={"from": complaint.category, "to": body.category.value},
        )
        complaint.category = body.category
    if body.several_departments is not None and body.several_departments != complaint.several_departments:
        complaint.several_departments = body.several_departments
        set_deadline(complaint, await deadline_start(session, complaint))
    assigned = {
        "department_id": department.id,
        "liaison_staff_id": body.liaison_staff_id,
        "due_on": complaint.due_on.isoformat(),
    }
    return await _done(session, staff, request, "complaint.assign", complaint, scope, assigned)


@router.post("/{case_number}/transition")
async def move(
    case_number: str, body: TransitionIn, staff: Caller, request: Request, session: DbSession
) -> CaseDetailRead:
    """Under investigation (the office or the department's liaison), or praise closed (the office)."""
    complaint, scope = await _case(session, staff, case_number, "complaint.transition", lock=True)
    wanted = CaseStatus(body.to)
    if not scope.office and not (scope.liaison_of(complaint) and wanted is CaseStatus.investigating):
        raise refuse(complaint, "complaint.transition", "only the complaints office may do this")
    await _move(session, staff, request, complaint, wanted, body.note)
    return await _done(
        session, staff, request, "complaint.transition", complaint, scope, {"to": wanted.value}
    )


@router.post("/{case_number}/notes", status_code=201)
async def add_note(
    case_number: str, body: TextIn, staff: Caller, request: Request, session: DbSession
) -> CaseDetailRead:
    """An internal note on the timeline (never sent to the patient)."""
    complaint, scope = await _case(session, staff, case_number, "complaint.note")
    add_entry(
        session,
        complaint,
        TimelineKind.note,
        staff.username,
        at=_runtime(request).clock(),
        staff_id=staff.id,
        text=body.text,
    )
    return await _done(session, staff, request, "complaint.note", complaint, scope)


@router.post("/{case_number}/referral")
async def refer(
    case_number: str, body: ReferralIn, staff: Caller, request: Request, session: DbSession
) -> CaseDetailRead:
    """Out of the hospital's own handling: mediation, appraisal or a lawsuit. Office only."""
    complaint, scope = await _case(session, staff, case_number, "complaint.refer", lock=True)
    _office_only(scope, complaint, "complaint.refer")
    referral = {"referral": body.to.value}
    await _move(session, staff, request, complaint, CaseStatus.referred, body.note, referral)
    complaint.referral = body.to
    return await _done(session, staff, request, "complaint.refer", complaint, scope, referral)


@router.post("/{case_number}/answer")
async def answer(
    case_number: str, body: TextIn, staff: Caller, request: Request, session: DbSession
) -> SentRead:
    """The answer to the patient: recorded, sent in the chat (or by template outside WeChat's
    window), then the bot asks whether they accept it and how satisfied they are. Office only."""
    runtime = _runtime(request)
    complaint, scope = await _case(session, staff, case_number, "complaint.answer", lock=True)
    _office_only(scope, complaint, "complaint.answer")
    await _move(session, staff, request, complaint, CaseStatus.answered, body.text)
    complaint.answer = body.text
    await _audit(session, staff, request, "complaint.answer", complaint)
    await session.commit()
    delivery = await write_to_patient(
        runtime, complaint.id, body.text, staff_id=staff.id, actor=staff.username, answer=True
    )
    if complaint.kind == CaseKind.praise:
        # Praise is thanked, not disputed: nothing to wait for.
        await transition(
            session, complaint, CaseStatus.closed, "system", text="表扬已反馈", now=runtime.clock()
        )
        await session.commit()
    return await _sent(session, request, complaint, scope, delivery)


@router.post("/{case_number}/messages")
async def message(
    case_number: str, body: TextIn, staff: Caller, request: Request, session: DbSession
) -> SentRead:
    """A message to the patient about an open case (progress, a question), inside WeChat's window
    only; outside it the timeline says it was not sent. Office only."""
    complaint, scope = await _case(session, staff, case_number, "complaint.message")
    _office_only(scope, complaint, "complaint.message")
    if complaint.status in (CaseStatus.closed, CaseStatus.referred):
        raise HTTPException(409, f"case {complaint.case_number} is {complaint.status}")
    await _audit(session, staff, request, "complaint.message", complaint)
    await session.commit()
    delivery = await write_to_patient(
        _runtime(request), complaint.id, body.text, staff_id=staff.id, actor=staff.username, answer=False
    )
    return await _sent(session, request, complaint, scope, delivery)


# -- department liaisons -------------------------------------------------------------------------------


@router.get("/liaisons/departments")
async def liaisons(staff: Office, session: DbSession) -> list[DepartmentLiaisonsRead]:
    """Every department with its liaisons (an empty list: none yet)."""
    departments = (await session.scalars(select(Department).order_by(Department.name))).all()
    rows = await session.execute(
        select(DepartmentLiaison.department_id, Staff.id, Staff.display_name)
        .join(Staff, Staff.id == DepartmentLiaison.staff_id)
        .order_by(Staff.display_name)
    )
    by_department: dict[int, list[StaffRef]] = {}
    for department_id, staff_id, name in rows:
        by_department.setdefault(department_id, []).append(StaffRef(id=staff_id, display_name=name))
    return [
        DepartmentLiaisonsRead(
            department=DepartmentRef(id=d.id, name=d.name), liaisons=by_department.get(d.id, [])
        )
        for d in departments
    ]


@router.put("/liaisons/departments/{department_id}")
async def set_liaisons(
    department_id: RowId,
    body: LiaisonsIn,
    staff: Office,
    request: Request,
    session: DbSession,
) -> DepartmentLiaisonsRead:
    """Who answers for the department's complaints (replaces the list). Audited."""
    department = await session.get(Department, department_id)
    if department is None:
        raise HTTPException(404, "no such department")
    wanted = sorted(set(body.staff_ids))
    found = (await session.scalars(select(Staff).where(Staff.id.in_(wanted), Staff.active.is_(True)))).all()
    if len(found) != len(wanted):
        raise HTTPException(422, "unknown or inactive staff member")
    await session.execute(delete(DepartmentLiaison).where(DepartmentLiaison.department_id == department_id))
    session.add_all(DepartmentLiaison(department_id=department_id, staff_id=staff_id) for staff_id in wanted)
    await audit(
        session,
        staff_id=staff.id,
        action="complaint_liaisons.update",
        object_type="department",
        object_id=department_id,
        request=request,
        detail={"staff_ids": wanted},
    )
    await session.commit()
    return DepartmentLiaisonsRead(
        department=DepartmentRef(id=department.id, name=department.name),
        liaisons=[
            StaffRef(id=s.id, display_name=s.display_name)
            for s in sorted(found, key=lambda s: s.display_name)
        ],
    )
