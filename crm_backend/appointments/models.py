"""Hospital schedules and appointments.

A `Schedule` is one bookable half-day session of one doctor; the "slot" a patient books is one of its
`capacity` places. The database itself guarantees the invariants (places never oversold, one booking
per patient and session), so concurrent bookings from many web processes stay correct.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Date, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm_backend.database.core import Base, UTCDateTime, utcnow


class HalfDay(enum.StrEnum):
    AM = "am"
    PM = "pm"


class ScheduleStatus(enum.StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class AppointmentStatus(enum.StrEnum):
    BOOKED = "booked"
    CANCELLED = "cancelled"
    COMPLETED = "completed"


class Department(Base):
    __tablename__ = "departments"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Stable code used by imports and a future HIS adapter, e.g. "CARD".
    code: Mapped[str] = mapped_column(String(32), unique=True)
    #: The hospital's official name, e.g. "心血管内科".
    name: Mapped[str] = mapped_column(String(64))
    #: What patients are shown, e.g. "心内科（心血管内科）".
    patient_name: Mapped[str] = mapped_column(String(64))
    #: Other names patients use for it (["心内科", "心脏科"]), matched when they type a department.
    aliases: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Triage (crm_backend/triage): seeded from crm_backend/triage/departments.yml, then edited by staff.
    #: One patient-facing sentence: what the department sees.
    description: Mapped[str] = mapped_column(Text, default="", server_default="")
    #: The words that point here, with weights: [{"term": "咳嗽/咳痰", "weight": 2.0}, ...].
    symptom_terms: Mapped[list[dict[str, Any]]] = mapped_column(
        JSON, default=list, server_default=text("'[]'")
    )
    #: Ages (years, inclusive) it sees; None = no limit (儿科: max 13; adult internal medicine: min 14).
    min_age_years: Mapped[int | None]
    max_age_years: Mapped[int | None]
    #: "female" / "male" when it sees one sex only (妇科, 产科, 男科).
    sex: Mapped[str | None] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    doctors: Mapped[list[Doctor]] = relationship(back_populates="department")

    def matches(self, text_: str) -> bool:
        """True if a patient's words name this department (code, names or an alias)."""
        wanted = text_.strip().casefold()
        names = [self.code, self.name, self.patient_name, *(self.aliases or [])]
        return any(wanted == n.casefold() for n in names)


class Doctor(Base):
    __tablename__ = "doctors"
    # Imports find a doctor by department and name.
    __table_args__ = (UniqueConstraint("department_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"), index=True)
    name: Mapped[str] = mapped_column(String(32))
    #: 主任医师 / 副主任医师 / 主治医师 ...
    title: Mapped[str] = mapped_column(String(32))
    specialty: Mapped[str | None] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    department: Mapped[Department] = relationship(back_populates="doctors")


class Schedule(Base):
    """One doctor's half-day session; bookings take places from `capacity`."""

    __tablename__ = "schedules"
    __table_args__ = (
        UniqueConstraint("doctor_id", "date", "half_day"),
        # The last line of defence against overbooking, whatever code runs the UPDATE.
        CheckConstraint("booked_count <= capacity", name="booked_within_capacity"),
        CheckConstraint("booked_count >= 0", name="booked_not_negative"),
        CheckConstraint("half_day IN ('am', 'pm')", name="half_day_valid"),
        CheckConstraint("status IN ('open', 'closed')", name="status_valid"),
        Index("ix_schedules_date", "date", "half_day"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    doctor_id: Mapped[int] = mapped_column(ForeignKey("doctors.id"))
    date: Mapped[date] = mapped_column(Date)
    half_day: Mapped[HalfDay] = mapped_column(String(2))
    capacity: Mapped[int]
    booked_count: Mapped[int] = mapped_column(default=0)
    status: Mapped[ScheduleStatus] = mapped_column(String(16), default=ScheduleStatus.OPEN)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, onupdate=utcnow)

    doctor: Mapped[Doctor] = relationship()

    @property
    def available(self) -> int:
        return max(self.capacity - self.booked_count, 0)


class Appointment(Base):
    __tablename__ = "appointments"
    __table_args__ = (
        # A patient holds at most one live booking per session, enforced by the database.
        Index(
            "uq_appointments_booked_patient_schedule",
            "patient_id",
            "schedule_id",
            unique=True,
            sqlite_where=text("status = 'booked'"),
            postgresql_where=text("status = 'booked'"),
        ),
        CheckConstraint("status IN ('booked', 'cancelled', 'completed')", name="status_valid"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    schedule_id: Mapped[int] = mapped_column(ForeignKey("schedules.id"), index=True)
    #: The WeChat identity that booked (a parent booking for a child); None when staff booked.
    booked_by_identity_id: Mapped[int | None] = mapped_column(
        ForeignKey("wechat_identities.id", ondelete="SET NULL")
    )
    status: Mapped[AppointmentStatus] = mapped_column(String(16), default=AppointmentStatus.BOOKED)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    schedule: Mapped[Schedule] = relationship()


class ReminderStatus(enum.StrEnum):
    #: Taken by one worker, outcome not yet known (a crash leaves it here; see appointments.reminders).
    CLAIMED = "claimed"
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"


class ReminderChannel(enum.StrEnum):
    CUSTOM = "custom"  # customer-service message, inside WeChat's 48-hour window
    TEMPLATE = "template"  # template message, outside it


class AppointmentReminder(Base):
    """One reminder of one appointment. The row is inserted (claimed) before anything is sent, and
    the unique (appointment_id, kind) makes that claim atomic across workers: exactly one wins."""

    __tablename__ = "appointment_reminders"
    __table_args__ = (
        UniqueConstraint("appointment_id", "kind"),
        CheckConstraint("status IN ('claimed', 'sent', 'failed', 'skipped')", name="status_valid"),
        CheckConstraint("channel IN ('custom', 'template')", name="channel_valid"),
        Index("ix_appointment_reminders_status", "status", "claimed_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    appointment_id: Mapped[int] = mapped_column(ForeignKey("appointments.id", ondelete="CASCADE"))
    #: "day_before" for now; the unique key leaves room for other reminders of the same appointment.
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[ReminderStatus] = mapped_column(String(16), default=ReminderStatus.CLAIMED)
    channel: Mapped[ReminderChannel | None] = mapped_column(String(16))
    #: Who it went (or would have gone) to.
    identity_id: Mapped[int | None] = mapped_column(ForeignKey("wechat_identities.id", ondelete="SET NULL"))
    #: The message stored in the patient's conversation (the last one, after a template fallback).
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"))
    #: Why it was skipped or failed, or how it got through (e.g. a template after 45015).
    reason: Mapped[str | None] = mapped_column(String(255))
    errcode: Mapped[int | None]
    errmsg: Mapped[str | None] = mapped_column(String(255))
    #: How many times it was claimed: more than 1 means a worker died holding it.
    attempts: Mapped[int] = mapped_column(default=1)
    claimed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
