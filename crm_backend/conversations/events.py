"""What the conversations domain tells other domains (see crm_backend/events.py).

Escalations listen: a patient's message in a chat staff hold goes to their console, the bot's
request for people opens an escalation, a rating is stored on the escalation it rates.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from sqlalchemy.ext.asyncio import AsyncSession


@dataclass(frozen=True)
class PatientMessageForStaff:
    """A patient's message arrived in a chat staff hold (stored and committed)."""

    message_id: int
    conversation_id: int


@dataclass(frozen=True)
class EscalationRequested:
    """The bot (or a dialogue) asks for people; the push is marked processed only once this is handled."""

    must_be_handled: ClassVar[bool] = True
    conversation_id: int
    reason: str
    #: urgent, high or normal (anything else is taken as normal).
    priority: str
    #: a team key (service, nursing, complaints) or a team's name.
    team: str


@dataclass(frozen=True)
class ServiceRated:
    """The patient rated the staff's help: stored in `session`, the transaction that records the answer."""

    must_be_handled: ClassVar[bool] = True
    session: AsyncSession
    escalation_id: int
    score: int
    rated_at: datetime


@dataclass(frozen=True)
class MessageDelivered:
    """How sending an outbound message ended changed (sent, undeliverable, failed)."""

    message_id: int
    conversation_id: int
