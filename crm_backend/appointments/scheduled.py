"""Appointments' periodic jobs: the day-before reminders (reminders.py)."""

from __future__ import annotations

from channels.outbound.delivery import Outbox
from crm_backend.appointments.reminders import send_due_reminders
from crm_backend.config import Settings
from crm_backend.runtime import Runtime
from crm_backend.scheduling import Job


async def _remind(runtime: Runtime) -> None:
    await send_due_reminders(Outbox(runtime))


def _remind_every(settings: Settings) -> float:
    return settings.reminder_interval_seconds


JOBS = [Job("appointment-reminders", _remind, _remind_every)]
