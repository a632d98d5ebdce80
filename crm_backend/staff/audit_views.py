"""Reading the audit log (supervisors and admins). There is deliberately no way to change it.

It lives with staff, not audit: it needs staff's sign-in and names, while staff write audit rows, so
audit stays a leaf that every console feature may write to.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel
from sqlalchemy import select

from crm_backend.audit import service as audit
from crm_backend.audit.models import AuditEntry
from crm_backend.database.core import RowId
from crm_backend.staff.deps import DbSession, SupervisorDep
from crm_backend.staff.models import Staff

router = APIRouter(prefix="/api/console", tags=["console"])


class AuditOut(BaseModel):
    id: int
    at: datetime
    staff_id: int | None
    staff_username: str | None
    action: str
    object_type: str
    object_id: str
    patient_id: int | None
    ip: str | None
    user_agent: str | None


@router.get("/audit", response_model=list[AuditOut])
async def list_audit(
    request: Request,
    me: SupervisorDep,
    session: DbSession,
    patient_id: RowId | None = None,
    staff_id: RowId | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[AuditOut]:
    """Newest first. Reading the log is itself recorded: who watches the watchers."""
    query = (
        select(AuditEntry, Staff.username)
        .outerjoin(Staff, Staff.id == AuditEntry.staff_id)
        .order_by(AuditEntry.id.desc())
        .limit(limit)
    )
    if patient_id is not None:
        query = query.where(AuditEntry.patient_id == patient_id)
    if staff_id is not None:
        query = query.where(AuditEntry.staff_id == staff_id)
    rows = (await session.execute(query)).all()
    await audit.record(
        session,
        staff_id=me.id,
        action="audit.view",
        object_type="audit_log",
        object_id="",
        patient_id=patient_id,
        request=request,
        detail={"staff_id": staff_id, "limit": limit},
    )
    await session.commit()
    return [
        AuditOut(
            id=e.id,
            at=e.at,
            staff_id=e.staff_id,
            staff_username=username,
            action=e.action,
            object_type=e.object_type,
            object_id=e.object_id,
            patient_id=e.patient_id,
            ip=e.ip,
            user_agent=e.user_agent,
        )
        for e, username in rows
    ]
