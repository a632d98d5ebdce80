"""How follow-up reacts to other domains' events (crm_backend/domains.py subscribes them)."""

from __future__ import annotations

from sqlalchemy import select

from channels.outbound.delivery import Outbox
from crm_backend.conversations.events import DialogueSettled
from crm_backend.conversations.models import InboundMessage
from crm_backend.followups.dispatch import checkin_id_of_key, settle_checkin_send
from crm_backend.runtime import Runtime


def subscribe(runtime: Runtime) -> None:
    outbox = Outbox(runtime)

    async def dialogue_settled(event: DialogueSettled) -> None:
        """A check-in's dialogue took a step: record its send's outcome (chat, template, refused)."""
        async with runtime.db.sessions() as session:
            key = await session.scalar(
                select(InboundMessage.dedupe_key).where(InboundMessage.id == event.turn_id)
            )
        if key is not None and checkin_id_of_key(key) is not None:
            await settle_checkin_send(outbox, key)

    runtime.events.subscribe(DialogueSettled, dialogue_settled)
