"""PIPL: health information is sensitive, so processing it needs its own recorded consent."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from crm_backend.database.core import Base, UTCDateTime, utcnow

HEALTH_INFORMATION = "health_information"


class ConsentRecord(Base):
    """Append-only: a change of mind is a new row, so the history of decisions is kept."""

    __tablename__ = "consent_records"

    id: Mapped[int] = mapped_column(primary_key=True)
    identity_id: Mapped[int] = mapped_column(ForeignKey("wechat_identities.id"), index=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(64), default=HEALTH_INFORMATION)
    granted: Mapped[bool]
    notice_version: Mapped[str] = mapped_column(String(32))
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: The patient's message that carried the answer.
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))
