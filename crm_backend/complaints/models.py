"""Complaint and praise cases, their timeline, and which staff answer for which department.

A case is one row with its number, what the patient said, its state and its deadline; everything
that happens to it (a change of state, a note, a message to or from the patient, an attachment, a
deadline flag) is a row of `complaint_timeline`, never an edit of history. Department liaisons are a
table of their own: a liaison may be any staff member (a head nurse, a department's secretary),
whatever their role or teams.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from crm_backend.database.core import Base, UTCDateTime, utcnow


class CaseKind(enum.StrEnum):
    complaint = "complaint"
    praise = "praise"


class CaseStatus(enum.StrEnum):
    registered = "registered"
    assigned = "assigned"
    investigating = "investigating"
    answered = "answered"
    closed = "closed"
    #: The patient did not accept the answer within COMPLAINT_REOPEN_DAYS: worked on again.
    reopened = "reopened"
    #: Left the hospital's own handling: mediation, medical appraisal or a lawsuit.
    referred = "referred"


class Referral(enum.StrEnum):
    #: 医疗纠纷人民调解
    mediation = "mediation"
    #: 医疗损害鉴定 / 医疗事故技术鉴定
    appraisal = "appraisal"
    #: 诉讼
    lawsuit = "lawsuit"


class Category(enum.StrEnum):
    """What the complaints office files the case under (the report's categories)."""

    attitude = "attitude"
    care_quality = "care_quality"
    waiting = "waiting"
    cost = "cost"
    communication = "communication"
    environment = "environment"
    safety = "safety"
    other = "other"


class TimelineKind(enum.StrEnum):
    registered = "registered"
    status = "status"
    assignment = "assignment"
    note = "note"
    #: Staff wrote to the patient (an interim message or the answer).
    message = "message"
    answer = "answer"
    #: The patient added text or media to the case.
    patient_added = "patient_added"
    #: The patient's reply to the answer: accepts or not, satisfaction.
    patient_reply = "patient_reply"
    flag = "flag"
    escalated = "escalated"
    category = "category"


#: The longest intake key the bot may send.
INTAKE_KEY_CHARS = 160


class Complaint(Base):
    __tablename__ = "complaints"
    __table_args__ = (
        Index("ix_complaints_status_due", "status", "due_at"),
        Index("ix_complaints_department_status", "department_id", "status"),
        Index("uq_complaints_intake_key", "intake_key", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: TS-20261205-0007 (投诉) or BY-20261205-0002 (表扬): the day is the hospital-local day of receipt.
    case_number: Mapped[str] = mapped_column(String(24), unique=True)
    kind: Mapped[CaseKind] = mapped_column(String(16))
    status: Mapped[CaseStatus] = mapped_column(String(16), default=CaseStatus.registered)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    #: The chat the case came from (None: registered by staff from a call or a visit).
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id"))
    #: Who complained: the WeChat identity the answer goes back to (may be a family member).
    identity_id: Mapped[int | None] = mapped_column(ForeignKey("wechat_identities.id"), index=True)
    #: The chat intake that registered it (the bot's key: Rasa sender and the intake's first
    #: message): a registration retried after a timeout finds this case instead of a second one.
    intake_key: Mapped[str | None] = mapped_column(String(INTAKE_KEY_CHARS))

    # -- what the patient said (read back to them and confirmed before it was registered) --
    what: Mapped[str] = mapped_column(Text)
    when_text: Mapped[str] = mapped_column(String(200), default="")
    when_date: Mapped[date | None] = mapped_column(Date)
    where_department: Mapped[str | None] = mapped_column(String(64))
    where_ward: Mapped[str | None] = mapped_column(String(64))
    who: Mapped[str | None] = mapped_column(String(100))
    wish: Mapped[str | None] = mapped_column(Text)
    safety_risk: Mapped[bool] = mapped_column(default=False)
    #: When the urgent escalation for a safety risk was raised (None while it is still owed).
    safety_escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    # -- handling --
    category: Mapped[Category | None] = mapped_column(String(24))
    several_departments: Mapped[bool] = mapped_column(default=False)
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"))
    liaison_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    #: "bot" or the username of the staff member who registered it.
    registered_by: Mapped[str] = mapped_column(String(64))
    registered_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), index=True)
    registered_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    # -- the deadline (deadlines.py) --
    due_on: Mapped[date] = mapped_column(Date)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    nearing_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: False: a year the holiday calendar did not cover was counted as Monday to Friday.
    official_calendar: Mapped[bool] = mapped_column(default=True)
    #: Set once each by the deadline job's guarded update: flagged and escalated exactly once.
    nearing_flagged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    overdue_flagged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    # -- the answer and the patient's reply --
    first_response_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    answer: Mapped[str | None] = mapped_column(Text)
    #: The latest answer (a reopened case is answered again).
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: The first answer, and whether it came by the deadline then in force (the on-time rate; a
    #: reopening sets a new deadline for the next answer).
    first_answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    answered_on_time: Mapped[bool | None]
    accepted: Mapped[bool | None]
    satisfaction: Mapped[int | None]
    replied_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reopen_count: Mapped[int] = mapped_column(default=0)
    referral: Mapped[Referral | None] = mapped_column(String(16))
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ComplaintTimelineEntry(Base):
    """One thing that happened to a case, in order (append-only by convention)."""

    __tablename__ = "complaint_timeline"

    id: Mapped[int] = mapped_column(primary_key=True)
    complaint_id: Mapped[int] = mapped_column(ForeignKey("complaints.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    kind: Mapped[TimelineKind] = mapped_column(String(24))
    #: "bot", "patient", "system" or a staff username.
    actor: Mapped[str] = mapped_column(String(64))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str | None] = mapped_column(String(16))
    text: Mapped[str | None] = mapped_column(Text)
    #: Kind-specific facts: an attachment's media, the department assigned, a message's id.
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class DepartmentLiaison(Base):
    """A staff member who answers for a department's complaints (科室投诉联络员)."""

    __tablename__ = "complaint_liaisons"

    department_id: Mapped[int] = mapped_column(
        ForeignKey("departments.id", ondelete="CASCADE"), primary_key=True
    )
    staff_id: Mapped[int] = mapped_column(
        ForeignKey("staff.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
