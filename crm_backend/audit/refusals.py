"""Refused accesses to patient data: a 403 that leaves an audit row although the request fails.

An access rule raises `AccessRefused` naming what was asked for; the console's sign-in dependency
(`crm_backend/staff/deps.py` `current_staff`, which knows who asked) catches it on its way out
and calls `record_refusal`, which commits the row in a transaction of its own: the request's
own transaction is rolled back or never commits.
"""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection

from crm_backend.audit.service import record
from crm_backend.database.core import Database


class AccessRefused(HTTPException):
    """403 for a read or change of patient data this staff member may not make."""

    def __init__(
        self,
        detail: str,
        *,
        action: str,
        object_type: str,
        object_id: str | int,
        patient_id: int | None = None,
        audit_detail: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(403, detail)
        #: What was refused, as the audit log names the granted access ("conversation.view").
        self.action = action
        self.object_type = object_type
        self.object_id = object_id
        self.patient_id = patient_id
        self.audit_detail = audit_detail


async def record_refusal(
    db: Database, refusal: AccessRefused, *, staff_id: int, conn: HTTPConnection | None
) -> None:
    """Write `<action>.denied` for `staff_id` and commit it, apart from any other transaction."""
    async with db.sessions() as session:
        await record(
            session,
            staff_id=staff_id,
            action=f"{refusal.action}.denied",
            object_type=refusal.object_type,
            object_id=refusal.object_id,
            patient_id=refusal.patient_id,
            request=conn,
            detail={"reason": refusal.detail, **(refusal.audit_detail or {})},
        )
        await session.commit()
