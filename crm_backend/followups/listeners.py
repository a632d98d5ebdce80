"""How follow-up reacts to other domains' events (crm_backend/domains.py subscribes them)."""

from __future__ import annotations

import logging

from channels.outbound.delivery import Outbox
from crm_backend.conversations.events import DialogueSettled, EscalationRequested, StaffWrote
from crm_backend.followups.contacts import record_first_contact
from crm_backend.followups.dispatch import checkin_id_of_key, settle_checkin_send
from crm_backend.followups.emergencies import end_checkins_on_emergency
from crm_backend.runtime import Runtime

log = logging.getLogger(__name__)


def subscribe(runtime: Runtime) -> None:
    outbox = Outbox(runtime)

    async def dialogue_settled(event: DialogueSettled) -> None:
        """A check-in's dialogue took a step: record its send's outcome (chat, template, refused)."""
        if checkin_id_of_key(event.key) is not None:
            await settle_checkin_send(outbox, event.key)

    async def escalation_requested(event: EscalationRequested) -> None:
        """An emergency the route screened ends the check-in under way (emergencies.py); never in
        the way of the emergency itself, whose escalation is what matters."""
        try:
            await end_checkins_on_emergency(runtime, event)
        except Exception:
            log.exception("check-ins of conversation %s not closed after an emergency", event.conversation_id)

    async def staff_wrote(event: StaffWrote) -> None:
        """A person wrote to the patient: the first contact after a flagged check-in (contacts.py)."""
        await record_first_contact(runtime, event)

    runtime.events.subscribe(DialogueSettled, dialogue_settled)
    runtime.events.subscribe(StaffWrote, staff_wrote)
    runtime.events.subscribe(EscalationRequested, escalation_requested)
