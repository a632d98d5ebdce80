"""What a conversation turn asks of other domains, as events: conversations import none of them.

Escalations subscribe (crm_backend/escalations/listeners.py). Handlers run before `publish`
returns and their errors reach the publisher, so a push that asked for people can still be marked
processed only once the escalation exists. An event marked `must_be_handled` fails loudly when
nothing listens (crm_backend/events.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from sqlalchemy.ext.asyncio import AsyncSession

from crm_backend.staff.models import StaffRole


@dataclass(frozen=True)
class EscalationRequested:
    """The bot asked for people (the instruction {"escalate": {...}}): the conversation goes to a
    team. `priority` is "urgent", "high" or "normal" (anything else counts as normal); `team` a team
    key ("service", "nursing", "complaints") or name. `summary`: what the patient said that
    raised it, shown to staff on the escalation."""

    must_be_handled: ClassVar[bool] = True
    conversation_id: int
    reason: str
    priority: str = "normal"
    team: str = "service"
    summary: str | None = None


@dataclass(frozen=True)
class PatientMessageForStaff:
    """A patient wrote in an escalated conversation: the stored message goes to the console
    instead of the bot. `team_id` may be left out: the conversation's latest escalation decides."""

    message_id: int
    conversation_id: int
    team_id: int | None = None
    #: The message's route (route.Route): only on STAFF may the system acknowledge it; on
    #: CONSENT (a withdrawal) it was answered already.
    route: str = "staff"


@dataclass(frozen=True)
class ServiceRated:
    """The patient rated the staff's help (1 to 5): stored in `session`, the transaction that
    records the patient's answer, so the rating and the answer commit together."""

    must_be_handled: ClassVar[bool] = True
    session: AsyncSession
    escalation_id: int
    score: int
    at: datetime


@dataclass(frozen=True)
class DialogueSettled:
    """A dialogue a domain started (turns.py) took a step the domain may want to record: it was
    answered and sent, its template invitation went out, or it was dropped. The turn, its answers
    and their delivery status are in the database; the domain reads what it needs."""

    turn_id: int
    #: The turn's dedupe key, "dialogue:<the key the domain gave>": a domain tells its own by it.
    key: str


@dataclass(frozen=True)
class StaffWrote:
    """Staff wrote to the patient (a reply in an escalated chat, or a message they started): the
    first contact after a worrying follow-up answer, for instance. Published after the commit;
    nothing relies on it being handled."""

    conversation_id: int
    identity_id: int
    #: The conversation's patient: the identity's own (a family member writing about a parent is
    #: their own patient here; domains that address 就诊人 match the identity too).
    patient_id: int
    at: datetime
    #: Who wrote: a nurse's message is a clinical contact, a customer-service agent's is not.
    staff_role: StaffRole
