"""How appointments react to other domains' events (crm_backend/domains.py subscribes them)."""

from __future__ import annotations

from datetime import UTC, datetime

from channels.outbound.delivery import Outbox
from crm_backend.appointments.reminders import REMINDER_DIALOGUE, settle_reminder
from crm_backend.conversations.events import DialogueSettled
from crm_backend.runtime import Runtime

_PREFIX = f"dialogue:{REMINDER_DIALOGUE}"


def subscribe(runtime: Runtime) -> None:
    outbox = Outbox(runtime)

    async def dialogue_settled(event: DialogueSettled) -> None:
        key = event.key
        if key.startswith(_PREFIX) and key[len(_PREFIX) :].isdigit():
            await settle_reminder(outbox, int(key[len(_PREFIX) :]), datetime.now(UTC))

    runtime.events.subscribe(DialogueSettled, dialogue_settled)
