"""A patient record, and the WeChat identities through which the patient (or family) reaches us."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm_backend.database.core import Base, UTCDateTime, utcnow


class Patient(Base):
    __tablename__ = "patients"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Filled in when the patient binds their details; unknown on first contact.
    display_name: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: "M" or "F"; filled in with the patient's details (from the ID number when not given).
    sex: Mapped[str | None] = mapped_column(String(1))
    birth_date: Mapped[date | None] = mapped_column(Date)
    # Protected fields (crm_backend/protection.py): ciphertext "<kid>:<base64>" plus a keyed
    # hash for exact search. Never read the cipher columns directly; use patients.records.
    phone_cipher: Mapped[str | None] = mapped_column(String(255))
    phone_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    #: Keyed hash of the masked phone (138****1234), so staff can search by the masked form.
    masked_phone_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    #: Unique: one person, one record, however many family members register them.
    id_number_cipher: Mapped[str | None] = mapped_column(String(255))
    id_number_hash: Mapped[str | None] = mapped_column(String(64), index=True, unique=True)
    card_number_cipher: Mapped[str | None] = mapped_column(String(255))
    card_number_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, onupdate=utcnow)

    identities: Mapped[list[WeChatIdentity]] = relationship(back_populates="patient")


class WeChatIdentity(Base):
    """One openid under one app id; unionid links one person across our official account and mini program."""

    __tablename__ = "wechat_identities"
    __table_args__ = (UniqueConstraint("app_id", "openid"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    app_id: Mapped[str] = mapped_column(String(64))
    openid: Mapped[str] = mapped_column(String(128))
    unionid: Mapped[str | None] = mapped_column(String(128), index=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    subscribed: Mapped[bool] = mapped_column(default=True)
    subscribed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    unsubscribed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: WeChat only lets us send customer-service messages within 48 hours of the patient's last message.
    last_inbound_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    patient: Mapped[Patient] = relationship(back_populates="identities")


class PatientRelation(enum.StrEnum):
    """How the account holder is related to a patient they manage (就诊人)."""

    SELF = "self"
    CHILD = "child"
    PARENT = "parent"
    SPOUSE = "spouse"
    OTHER = "other"


class PatientLink(Base):
    """A WeChat identity may book for this patient. `WeChatIdentity.patient_id` stays the holder's own
    record (where conversations are filed); its `self` link appears once the holder binds details."""

    __tablename__ = "patient_links"
    __table_args__ = (
        Index(
            "uq_patient_links_one_self",
            "identity_id",
            unique=True,
            sqlite_where=text("relationship = 'self'"),
            postgresql_where=text("relationship = 'self'"),
        ),
    )

    identity_id: Mapped[int] = mapped_column(
        ForeignKey("wechat_identities.id", ondelete="CASCADE"), primary_key=True
    )
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), primary_key=True, index=True)
    relationship: Mapped[PatientRelation] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
