"""How escalations react to what happens in conversations (crm_backend/conversations/events.py)."""

from __future__ import annotations

from sqlalchemy import select, update

from crm_backend.conversations.events import (
    EscalationRequested,
    MessageDelivered,
    PatientMessageForStaff,
    ServiceRated,
)
from crm_backend.escalations.models import Escalation, Priority
from crm_backend.escalations.service import Escalations
from crm_backend.runtime import Runtime


def subscribe(runtime: Runtime) -> None:
    escalations = Escalations(runtime)

    async def to_console(event: PatientMessageForStaff) -> None:
        async with runtime.db.sessions() as session:
            team_id = await session.scalar(
                select(Escalation.team_id)
                .where(Escalation.conversation_id == event.conversation_id)
                .order_by(Escalation.id.desc())
                .limit(1)
            )
        await escalations.publish_message_id(event.message_id, event.conversation_id, team_id=team_id)

    async def escalate(event: EscalationRequested) -> None:
        try:
            priority = Priority(event.priority)
        except ValueError:
            priority = Priority.NORMAL
        await escalations.escalate(
            event.conversation_id, reason=event.reason[:255] or "bot", priority=priority, team=event.team
        )

    async def rated(event: ServiceRated) -> None:
        await event.session.execute(
            update(Escalation)
            .where(Escalation.id == event.escalation_id, Escalation.satisfaction.is_(None))
            .values(satisfaction=event.score, satisfaction_at=event.rated_at)
        )

    async def delivered(event: MessageDelivered) -> None:
        await escalations.publish_delivery(event.message_id, event.conversation_id)

    runtime.events.subscribe(PatientMessageForStaff, to_console)
    runtime.events.subscribe(EscalationRequested, escalate)
    runtime.events.subscribe(ServiceRated, rated)
    runtime.events.subscribe(MessageDelivered, delivered)
