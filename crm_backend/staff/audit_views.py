"""Reading the audit log (supervisors and admins). There is deliberately no way to change it.

It lives with staff, not audit: it needs staff's sign-in and names, while staff write audit rows, so
audit stays a leaf that every console feature may write to.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, ValidationError
from sqlalchemy import select

from crm_backend.audit import service as audit
from crm_backend.audit.models import AuditEntry
from crm_backend.audit.verification import Anchor, ChainReport, EntryId, audit_detail, verify_chain
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


class AnchorOut(BaseModel):
    """The latest entry: write its id and hash down outside the database to check the log later."""

    entry_id: int
    entry_hash: str
    at: datetime


@router.get("/audit/anchor", response_model=AnchorOut)
async def audit_anchor(me: SupervisorDep, session: DbSession) -> AnchorOut:
    """Not itself recorded: it shows no personal data, and recording it would move the anchor."""
    latest = (
        await session.execute(
            select(AuditEntry.id, AuditEntry.entry_hash, AuditEntry.at)
            .order_by(AuditEntry.id.desc())
            .limit(1)
        )
    ).first()
    if latest is None:
        raise HTTPException(status_code=404, detail="the audit log is empty")
    return AnchorOut(entry_id=latest.id, entry_hash=latest.entry_hash, at=latest.at)


@router.get("/audit/verify", response_model=ChainReport)
async def verify_audit(
    request: Request,
    me: SupervisorDep,
    session: DbSession,
    anchor_id: Annotated[EntryId | None, Query()] = None,
    anchor_hash: Annotated[str | None, Query(max_length=64)] = None,
) -> ChainReport:
    """Walks the whole chain (a batch at a time); the check and its outcome are recorded."""
    anchor = _anchor(anchor_id, anchor_hash)
    report = await verify_chain(await session.connection(), anchor)
    await audit.record(
        session,
        staff_id=me.id,
        action="audit.verify",
        object_type="audit_log",
        object_id="",
        request=request,
        detail=audit_detail(report),
    )
    await session.commit()
    return report


def _anchor(anchor_id: int | None, anchor_hash: str | None) -> Anchor | None:
    if anchor_id is None and anchor_hash is None:
        return None
    if anchor_id is None or anchor_hash is None:
        raise HTTPException(status_code=400, detail="anchor_id and anchor_hash go together")
    try:
        return Anchor(entry_id=anchor_id, entry_hash=anchor_hash.strip().lower())
    except ValidationError:
        raise HTTPException(status_code=400, detail="anchor_hash must be 64 hexadecimal digits") from None
