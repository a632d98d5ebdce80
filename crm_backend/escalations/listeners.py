"""How escalations react to other domains' events (crm_backend/domains.py subscribes them)."""

from __future__ import annotations

from channels.outbound.events import DeliveryRecorded
from crm_backend.conversations.events import EscalationRequested, PatientMessageForStaff, ServiceRated
from crm_backend.escalations.models import Priority
from crm_backend.escalations.service import Escalations
from crm_backend.runtime import Runtime


def subscribe(runtime: Runtime) -> None:
    escalations = Escalations(runtime)

    async def delivery_recorded(event: DeliveryRecorded) -> None:
        await escalations.publish_delivery(event.message_id, event.conversation_id)

    async def escalation_requested(event: EscalationRequested) -> None:
        try:
            priority = Priority(event.priority)
        except ValueError:
            priority = Priority.NORMAL
        await escalations.escalate(
            event.conversation_id,
            reason=event.reason[:255] or "bot",
            priority=priority,
            team=event.team,
            summary=event.summary,
        )

    async def patient_message(event: PatientMessageForStaff) -> None:
        await escalations.patient_wrote(event.message_id, event.conversation_id, event.team_id, event.route)

    async def service_rated(event: ServiceRated) -> None:
        await escalations.record_rating(event.session, event.escalation_id, event.score, event.at)

    runtime.events.subscribe(DeliveryRecorded, delivery_recorded)
    runtime.events.subscribe(EscalationRequested, escalation_requested)
    runtime.events.subscribe(PatientMessageForStaff, patient_message)
    runtime.events.subscribe(ServiceRated, service_rated)
