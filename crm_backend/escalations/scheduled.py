"""Escalations' periodic jobs: offering waiting chats again, and not waiting on staff who left."""

from __future__ import annotations

from crm_backend.config import Settings
from crm_backend.escalations.assignment import assign_waiting_chats
from crm_backend.escalations.presence import mark_absent_staff
from crm_backend.escalations.service import Escalations
from crm_backend.runtime import Runtime
from crm_backend.scheduling import Job

#: Seconds between offers of queued chats to online staff.
AUTO_ASSIGN_EVERY_SECONDS = 5.0


async def _auto_assign(runtime: Runtime) -> None:
    await assign_waiting_chats(Escalations(runtime))


async def _presence(runtime: Runtime) -> None:
    await mark_absent_staff(runtime)


def _presence_every(settings: Settings) -> float:
    # At most half the grace period, so a closed console is noticed soon after it; at least every 30 s.
    return min(30.0, settings.console_gone_after_seconds / 2)


JOBS = [
    Job("presence", _presence, _presence_every),
    Job("auto-assign", _auto_assign, lambda settings: AUTO_ASSIGN_EVERY_SECONDS),
]
