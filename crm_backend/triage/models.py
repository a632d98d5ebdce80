"""Every triage decision, kept with the versions of the rules and data it was made from.

Staff review them (`GET /api/console/triage-decisions`): what the patient wrote is in the message
the row points to; the row keeps what was decided and why, as the screen and the recommendation
returned it, so a later rule change never rewrites a past decision.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from crm_backend.database.core import Base, UTCDateTime, utcnow


class TriageDecision(Base):
    __tablename__ = "triage_decisions"
    __table_args__ = (Index("ix_triage_decisions_conversation", "conversation_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The patient's message decided on (None: a request that came without one, e.g. another system).
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"), index=True)
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id"))
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patients.id"), index=True)
    #: Who asked: "chat" (the route of a turn), "bot_api" (POST /internal/bot/triage), …
    source: Mapped[str] = mapped_column(String(32))
    #: emergency | urgent | routine | self_care
    level: Mapped[str] = mapped_column(String(16), index=True)
    #: Red-flag rule ids that fired (empty when none did).
    red_flags: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: Department codes recommended, best first.
    departments: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: The version of red_flags.yml the screen used.
    rule_version: Mapped[str] = mapped_column(String(64))
    #: The version of the department data (None: red flags decided alone).
    data_version: Mapped[str | None] = mapped_column(String(64))
    #: RedFlagResult as JSON.
    screen: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: Recommendation as JSON (None for an emergency: departments were not considered).
    recommendation: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    answer: Mapped[str] = mapped_column(String(4000), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
