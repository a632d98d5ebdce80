"""The hospital's own answers to everyday questions, one row per topic, as staff edited them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from crm_backend.database.core import Base, UTCDateTime, utcnow


class HospitalInfoEntry(Base):
    __tablename__ = "hospital_info"

    key: Mapped[str] = mapped_column(String(40), primary_key=True)
    title: Mapped[str] = mapped_column(String(40))
    #: What a patient's question about this topic contains.
    keywords: Mapped[list[str]] = mapped_column(JSON, default=list)
    answer: Mapped[str] = mapped_column(Text)
    #: The order staff see the topics in.
    position: Mapped[int] = mapped_column(Integer, default=0)
    #: The data file version it was seeded from ("" once staff edited it).
    version: Mapped[str] = mapped_column(String(32), default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
