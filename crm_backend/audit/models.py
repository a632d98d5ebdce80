"""One row per access to or change of personal data or accounts; the database forbids edits, and a
hash chain (chain.py) makes an edit by someone who can bypass the database's refusal detectable."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from crm_backend.database.core import Base, UTCDateTime, utcnow

#: BIGINT on PostgreSQL (the log only grows); SQLite needs INTEGER for its rowid primary key.
ENTRY_ID = BigInteger().with_variant(Integer(), "sqlite")


class AuditEntry(Base):
    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_patient_at", "patient_id", "at"),
        Index("ix_audit_log_staff_at", "staff_id", "at"),
    )

    id: Mapped[int] = mapped_column(ENTRY_ID, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: Null for failed logins with an unknown username and for actions of the system itself.
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[str] = mapped_column(String(64))
    #: No foreign key on purpose: the trail must outlive an erased patient record.
    patient_id: Mapped[int | None] = mapped_column()
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(255))
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    #: The entry_hash of the entry before this one (chain.GENESIS for the first).
    prev_hash: Mapped[str] = mapped_column(String(64))
    #: SHA-256 over this entry's fields and prev_hash (chain.py says exactly which bytes).
    entry_hash: Mapped[str] = mapped_column(String(64))


class AuditChainHead(Base):
    """The single row every append locks, so appends from all processes form one chain; it also
    remembers the last entry, so removing entries from the end is noticed by the next append."""

    __tablename__ = "audit_chain_head"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_id: Mapped[int | None] = mapped_column(ENTRY_ID)
    last_hash: Mapped[str] = mapped_column(String(64))
