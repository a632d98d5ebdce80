"""Where each WeChat identity stands on consent to health information, for the 360 view."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_backend.consent.models import HEALTH_INFORMATION, ConsentRecord
from crm_backend.patient_record.models import ConsentRead

UNANSWERED = ConsentRead(status="unanswered", decided_at=None, notice_version=None)


async def consent_of(session: AsyncSession, identity_ids: list[int]) -> dict[int, ConsentRead]:
    """The latest decision of each identity (append-only records: the newest one counts)."""
    if not identity_ids:
        return {}
    records = (
        await session.scalars(
            select(ConsentRecord)
            .where(ConsentRecord.identity_id.in_(identity_ids), ConsentRecord.purpose == HEALTH_INFORMATION)
            .order_by(ConsentRecord.decided_at, ConsentRecord.id)
        )
    ).all()
    latest = {record.identity_id: record for record in records}
    return {
        identity_id: ConsentRead(
            status="granted" if record.granted else "declined",
            decided_at=record.decided_at,
            notice_version=record.notice_version,
        )
        for identity_id, record in latest.items()
    }
