"""Cases as the console reads them: lists (masked) and the detail with its timeline."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_backend.appointments.models import Department
from crm_backend.complaints.access import CaseScope
from crm_backend.complaints.models import CaseKind, CaseStatus, Complaint, ComplaintTimelineEntry
from crm_backend.complaints.service import OPEN_STATUSES, TRANSITIONS
from crm_backend.complaints.views_model import (
    CaseDetailRead,
    CaseItemRead,
    DepartmentRef,
    PatientRef,
    StaffRef,
    TimelineEntryRead,
)
from crm_backend.followups.page import mask_name
from crm_backend.patients.models import Patient
from crm_backend.staff.models import Staff

#: Most cases one list answers.
MAX_ITEMS = 500


def flag_of(complaint: Complaint, now: datetime) -> Literal["nearing", "overdue"] | None:
    if complaint.status not in OPEN_STATUSES:
        return None
    if complaint.due_at <= now:
        return "overdue"
    if complaint.nearing_at <= now:
        return "nearing"
    return None


class _Names:
    """Departments, staff and patients named by a page of cases, read in three queries."""

    def __init__(self) -> None:
        self.departments: dict[int, str] = {}
        self.staff: dict[int, str] = {}
        self.patients: dict[int, str | None] = {}

    @classmethod
    async def of(cls, session: AsyncSession, cases: Sequence[Complaint]) -> _Names:
        names = cls()
        department_ids = {c.department_id for c in cases if c.department_id is not None}
        staff_ids = {c.liaison_staff_id for c in cases if c.liaison_staff_id is not None}
        patient_ids = {c.patient_id for c in cases}
        if department_ids:
            rows = await session.execute(
                select(Department.id, Department.name).where(Department.id.in_(department_ids))
            )
            names.departments = {row.id: row.name for row in rows}
        if staff_ids:
            rows = await session.execute(select(Staff.id, Staff.display_name).where(Staff.id.in_(staff_ids)))
            names.staff = {row.id: row.display_name for row in rows}
        if patient_ids:
            rows = await session.execute(
                select(Patient.id, Patient.display_name).where(Patient.id.in_(patient_ids))
            )
            names.patients = {row.id: row.display_name for row in rows}
        return names

    def item(self, complaint: Complaint, now: datetime) -> CaseItemRead:
        department = complaint.department_id
        liaison = complaint.liaison_staff_id
        return CaseItemRead(
            case_number=complaint.case_number,
            kind=CaseKind(complaint.kind),
            status=CaseStatus(complaint.status),
            category=complaint.category,
            safety_risk=complaint.safety_risk,
            patient_label=mask_name(self.patients.get(complaint.patient_id)),
            department=DepartmentRef(id=department, name=self.departments.get(department, ""))
            if department is not None
            else None,
            liaison=StaffRef(id=liaison, display_name=self.staff.get(liaison, ""))
            if liaison is not None
            else None,
            several_departments=complaint.several_departments,
            registered_at=complaint.registered_at,
            registered_by=complaint.registered_by,
            due_on=complaint.due_on,
            due_at=complaint.due_at,
            flag=flag_of(complaint, now),
        )


async def list_cases(
    session: AsyncSession,
    scope: CaseScope,
    now: datetime,
    *,
    status: CaseStatus | None = None,
    kind: CaseKind | None = None,
    department_id: int | None = None,
    flagged: bool = False,
    limit: int = MAX_ITEMS,
) -> list[CaseItemRead]:
    """The caller's cases, the most urgent deadline first."""
    where: list[ColumnElement[bool]] = [scope.condition()]
    if status is not None:
        where.append(Complaint.status == status)
    if kind is not None:
        where.append(Complaint.kind == kind)
    if department_id is not None:
        where.append(Complaint.department_id == department_id)
    if flagged:
        where += [
            Complaint.status.in_([s.value for s in OPEN_STATUSES]),
            Complaint.nearing_at <= now,
        ]
    cases = (
        await session.scalars(
            select(Complaint).where(*where).order_by(Complaint.due_at, Complaint.id).limit(limit)
        )
    ).all()
    names = await _Names.of(session, cases)
    return [names.item(case, now) for case in cases]


async def case_detail(
    session: AsyncSession, complaint: Complaint, now: datetime, next_states: list[CaseStatus]
) -> CaseDetailRead:
    names = await _Names.of(session, [complaint])
    entries = (
        await session.scalars(
            select(ComplaintTimelineEntry)
            .where(ComplaintTimelineEntry.complaint_id == complaint.id)
            .order_by(ComplaintTimelineEntry.at, ComplaintTimelineEntry.id)
        )
    ).all()
    item = names.item(complaint, now)
    return CaseDetailRead(
        **item.model_dump(),
        patient=PatientRef(id=complaint.patient_id, name=names.patients.get(complaint.patient_id)),
        what=complaint.what,
        when_text=complaint.when_text,
        when_date=complaint.when_date,
        where_department=complaint.where_department,
        where_ward=complaint.where_ward,
        who=complaint.who,
        wish=complaint.wish,
        official_calendar=complaint.official_calendar,
        first_response_at=complaint.first_response_at,
        answer=complaint.answer,
        answered_at=complaint.answered_at,
        accepted=complaint.accepted,
        satisfaction=complaint.satisfaction,
        reopen_count=complaint.reopen_count,
        referral=complaint.referral,
        closed_at=complaint.closed_at,
        timeline=[TimelineEntryRead.model_validate(entry, from_attributes=True) for entry in entries],
        next_states=next_states,
    )


def next_states_for(complaint: Complaint, scope: CaseScope) -> list[CaseStatus]:
    """What the caller may do now: the office everything the state allows except the patient's
    own reopening; a department's liaison only to mark it under investigation."""
    allowed = TRANSITIONS[CaseStatus(complaint.status)] - {CaseStatus.reopened}
    if complaint.kind != CaseKind.praise and complaint.status == CaseStatus.registered:
        allowed -= {CaseStatus.closed}
    if not scope.office:
        allowed &= {CaseStatus.investigating} if scope.liaison_of(complaint) else frozenset()
    return sorted(allowed, key=list(CaseStatus).index)
