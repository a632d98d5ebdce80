"""Console endpoint for staff to review triage decisions (nurses, supervisors, admins; audited).

A decision names the rule and data versions it was made with, so a reviewer can tell a rule that
was wrong from one that has since changed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel
from sqlalchemy import select

from crm_backend.audit.service import record as audit
from crm_backend.database.core import RowId
from crm_backend.escalations.access import visible_to
from crm_backend.patients.models import Patient
from crm_backend.staff.deps import CurrentStaff, DbSession, require_roles
from crm_backend.staff.models import StaffRole
from crm_backend.triage.models import TriageDecision
from crm_backend.triage.service import TriageLevel

router = APIRouter(prefix="/api/console", tags=["console"])

#: Clinical reviewers: agents (customer service) do not read triage decisions.
ReviewerDep = Annotated[
    CurrentStaff, Depends(require_roles(StaffRole.nurse, StaffRole.supervisor, StaffRole.admin))
]
MAX_LIMIT = 200


class TriageDecisionRead(BaseModel):
    id: int
    message_id: int | None
    conversation_id: int | None
    patient_id: int | None
    source: str
    level: TriageLevel
    red_flags: list[str]
    departments: list[str]
    rule_version: str
    data_version: str | None
    screen: dict[str, Any]
    recommendation: dict[str, Any] | None
    answer: str
    created_at: datetime


@router.get("/triage-decisions")
async def list_triage_decisions(
    staff: ReviewerDep,
    request: Request,
    session: DbSession,
    conversation_id: RowId | None = None,
    level: TriageLevel | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
) -> list[TriageDecisionRead]:
    """Newest first; filtered by conversation and/or level. Each read is audited."""
    query = select(TriageDecision).order_by(TriageDecision.id.desc()).limit(limit)
    reach = visible_to(staff)
    if reach is not None:  # a nurse reads the decisions of the patients her teams may open
        query = query.where(TriageDecision.patient_id.in_(select(Patient.id).where(reach)))
    if conversation_id is not None:
        query = query.where(TriageDecision.conversation_id == conversation_id)
    if level is not None:
        query = query.where(TriageDecision.level == level.value)
    rows = (await session.scalars(query)).all()
    patients = {row.patient_id for row in rows if row.patient_id is not None}
    await audit(
        session,
        staff_id=staff.id,
        action="triage_decision.list",
        object_type="conversation" if conversation_id is not None else "triage_decision",
        object_id=conversation_id if conversation_id is not None else "*",
        patient_id=next(iter(patients)) if len(patients) == 1 else None,
        request=request,
        detail={
            "conversation_id": conversation_id,
            "level": level.value if level is not None else None,
            "returned": [row.id for row in rows],
            "patients": sorted(patients),
        },
    )
    await session.commit()
    return [TriageDecisionRead.model_validate(row, from_attributes=True) for row in rows]
