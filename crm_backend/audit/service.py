"""Writing audit entries inside the caller's transaction, so the entry and the change commit together."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection

from crm_backend.audit.models import AuditEntry


def client_ip(conn: HTTPConnection | None) -> str | None:
    """The client's address: the peer, or what a proxy in FORWARDED_ALLOW_IPS says (crm_backend/web.py)."""
    if conn is None or conn.client is None:
        return None
    return conn.client.host[:64]


async def record(
    session: AsyncSession,
    *,
    staff_id: int | None,
    action: str,
    object_type: str,
    object_id: str | int,
    patient_id: int | None = None,
    request: HTTPConnection | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEntry:
    """Add an entry to `session`; the caller commits (no commit here, so a rolled-back change leaves none)."""
    user_agent = request.headers.get("user-agent") if request is not None else None
    entry = AuditEntry(
        staff_id=staff_id,
        action=action,
        object_type=object_type,
        object_id=str(object_id)[:64],
        patient_id=patient_id,
        ip=client_ip(request),
        user_agent=user_agent[:255] if user_agent else None,
        detail=detail,
    )
    session.add(entry)
    return entry
