"""Labels staff put on conversations ("复诊", "投诉跟进"): one shared set for the hospital."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from crm_backend.database.core import Base, UTCDateTime, utcnow

#: Labels are short, so a queue card can show several.
LABEL_MAX_CHARS = 16


class Label(Base):
    __tablename__ = "labels"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(LABEL_MAX_CHARS))
    #: The name case-folded: what makes two names the same label (unique).
    key: Mapped[str] = mapped_column(String(4 * LABEL_MAX_CHARS), unique=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ConversationLabel(Base):
    """A label on a conversation; taken off by deleting the row (the audit log keeps the history)."""

    __tablename__ = "conversation_labels"

    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"), primary_key=True)
    label_id: Mapped[int] = mapped_column(ForeignKey("labels.id"), primary_key=True, index=True)
    added_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    added_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
