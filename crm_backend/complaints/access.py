"""Who may read and work on which case: the one rule behind every complaint endpoint.

- The complaints office (role `complaints_office`), supervisors and admins: every case; they
  assign, answer, refer and close.
- A department's liaison (a `complaint_liaisons` row, whatever their role): the cases assigned to
  that department; they add notes and mark a case under investigation.
- Anyone who registered a case (an agent who took the chat): that case, to read and add notes.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, false, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_backend.audit.refusals import AccessRefused
from crm_backend.complaints.models import Complaint, DepartmentLiaison
from crm_backend.staff.deps import CurrentStaff
from crm_backend.staff.models import StaffRole

#: Roles that see, assign and answer every case.
OFFICE_ROLES = frozenset({StaffRole.complaints_office, StaffRole.supervisor, StaffRole.admin})


@dataclass(frozen=True, slots=True)
class CaseScope:
    staff_id: int
    office: bool
    #: Departments whose liaison the staff member is.
    departments: frozenset[int]

    def allows(self, complaint: Complaint) -> bool:
        return (
            self.office
            or (complaint.department_id is not None and complaint.department_id in self.departments)
            or complaint.registered_by_staff_id == self.staff_id
        )

    def liaison_of(self, complaint: Complaint) -> bool:
        return complaint.department_id is not None and complaint.department_id in self.departments

    def condition(self) -> ColumnElement[bool]:
        """The same rule as a WHERE clause, for lists and reports."""
        if self.office:
            return Complaint.id.is_not(None)
        clauses: list[ColumnElement[bool]] = [Complaint.registered_by_staff_id == self.staff_id]
        if self.departments:
            clauses.append(Complaint.department_id.in_(sorted(self.departments)))
        return or_(false(), *clauses)


async def scope_of(session: AsyncSession, staff: CurrentStaff) -> CaseScope:
    departments = await session.scalars(
        select(DepartmentLiaison.department_id).where(DepartmentLiaison.staff_id == staff.id)
    )
    return CaseScope(staff.id, staff.role in OFFICE_ROLES, frozenset(departments))


def refuse(complaint: Complaint, action: str, why: str) -> AccessRefused:
    """A 403 that the sign-in dependency writes to the audit log as `<action>.denied`."""
    return AccessRefused(
        why,
        action=action,
        object_type="complaint",
        object_id=complaint.case_number,
        patient_id=complaint.patient_id,
        audit_detail={"department_id": complaint.department_id},
    )
