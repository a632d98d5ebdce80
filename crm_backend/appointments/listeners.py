"""How appointments react to other domains' events (crm_backend/domains.py subscribes them)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from channels.outbound.delivery import Outbox
from crm_backend.appointments.reminders import REMINDER_DIALOGUE, settle_reminder
from crm_backend.conversations.events import DialogueSettled
from crm_backend.conversations.models import InboundMessage
from crm_backend.runtime import Runtime

_PREFIX = f"dialogue:{REMINDER_DIALOGUE}"


def subscribe(runtime: Runtime) -> None:
    outbox = Outbox(runtime)

    async def dialogue_settled(event: DialogueSettled) -> None:
        async with runtime.db.sessions() as session:
            key = await session.scalar(
                select(InboundMessage.dedupe_key).where(InboundMessage.id == event.turn_id)
            )
        if key and key.startswith(_PREFIX) and key[len(_PREFIX) :].isdigit():
            await settle_reminder(outbox, int(key[len(_PREFIX) :]), datetime.now(UTC))

    runtime.events.subscribe(DialogueSettled, dialogue_settled)
