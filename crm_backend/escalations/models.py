"""An escalation hands one conversation from the bot to a team of people, until it is resolved."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from crm_backend.database.core import Base, UTCDateTime, utcnow


class Priority(enum.StrEnum):
    URGENT = "urgent"
    HIGH = "high"
    NORMAL = "normal"

    @property
    def rank(self) -> int:
        """Lower is served first."""
        return {"urgent": 0, "high": 1, "normal": 2}[self.value]


class EscalationStatus(enum.StrEnum):
    QUEUED = "queued"
    ASSIGNED = "assigned"
    RESOLVED = "resolved"


class Escalation(Base):
    __tablename__ = "escalations"
    __table_args__ = (
        # At most one open escalation per conversation, enforced by the database.
        Index(
            "uq_escalations_open_conversation",
            "conversation_id",
            unique=True,
            sqlite_where=text("status != 'resolved'"),
            postgresql_where=text("status != 'resolved'"),
        ),
        Index("ix_escalations_queue", "team_id", "status", "priority_rank", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"), index=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id"))
    reason: Mapped[str] = mapped_column(String(255))
    #: What the patient said that raised it, for staff to read first (a safety risk in a complaint
    #: the patient may never confirm); later words for the same open escalation are added below.
    summary: Mapped[str | None] = mapped_column(Text)
    priority: Mapped[Priority] = mapped_column(String(16), default=Priority.NORMAL)
    #: Denormalised from priority so the queue sorts in the database.
    priority_rank: Mapped[int] = mapped_column(default=2)
    status: Mapped[EscalationStatus] = mapped_column(String(16), default=EscalationStatus.QUEUED)
    assigned_to_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: When a person first answered the patient: the SLA clock stops here.
    first_response_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sla_due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    #: The patient's 1-5 answer to the satisfaction question after resolution.
    satisfaction: Mapped[int | None]
    satisfaction_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ConversationNote(Base):
    """Internal notes: shown to staff beside the chat, never sent to the patient."""

    __tablename__ = "conversation_notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"), index=True)
    escalation_id: Mapped[int | None] = mapped_column(ForeignKey("escalations.id"))
    author_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CannedReply(Base):
    __tablename__ = "canned_replies"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
