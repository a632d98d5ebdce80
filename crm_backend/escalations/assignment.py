"""Queued escalations are offered again every few seconds: an agent coming online, or finishing a
chat, frees capacity that no single request would notice."""

from __future__ import annotations

from sqlalchemy import select

from crm_backend.escalations.models import Escalation, EscalationStatus
from crm_backend.escalations.service import Escalations


async def assign_waiting_chats(escalations: Escalations) -> int:
    async with escalations.runtime.db.sessions() as session:
        team_ids = (
            await session.scalars(
                select(Escalation.team_id).where(Escalation.status == EscalationStatus.QUEUED).distinct()
            )
        ).all()
    assigned = 0
    for team_id in team_ids:
        assigned += len(await escalations.auto_assign(team_id))
    return assigned
