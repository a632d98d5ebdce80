"""The SLA of an escalation: time to a person's first answer, counted in staffed hours only.

Every place that says when an escalation is due or whether it is late asks this module, so the
queue, the console events and the service report agree.
"""

from __future__ import annotations

from datetime import datetime

from crm_backend.config import Settings
from crm_backend.escalations.hours import add_staffed_time
from crm_backend.escalations.models import Escalation, Priority


def sla_seconds(settings: Settings, priority: Priority) -> int:
    return {
        Priority.URGENT: settings.sla_urgent_seconds,
        Priority.HIGH: settings.sla_high_seconds,
        Priority.NORMAL: settings.sla_normal_seconds,
    }[Priority(priority)]


def sla_due_at(settings: Settings, created_at: datetime, priority: Priority) -> datetime:
    """Created outside staffed hours: the next opening plus the SLA; near a closing: the rest of
    the SLA carries into the next staffed period."""
    return add_staffed_time(settings, created_at, sla_seconds(settings, priority))


def sla_breached(escalation: Escalation, now: datetime) -> bool:
    """The clock stops at the first answer (or at resolution). Comparing wall times is enough: the
    due time was already placed in staffed time, and staffed time only grows with wall time."""
    end = escalation.first_response_at or escalation.resolved_at or now
    return end > escalation.sla_due_at
