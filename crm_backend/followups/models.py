"""Follow-up tables: plans and their versions, enrolments, check-ins, answers, sends and calls.

A plan's definition is JSON (plans.PlanDefinition) on each version row; an enrolment points at the
version it started with, so a changed plan never changes what an enrolled patient is asked. Each
check-in is a row materialised at enrolment with its due time (UTC) and answer window; the worker
claims due rows in the database (dispatch.py), so each starts exactly once.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from crm_backend.database.core import Base, UTCDateTime, utcnow


class FollowupPlan(Base):
    __tablename__ = "followup_plans"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(80))
    #: An inactive plan takes no new enrolments; enrolled patients carry on.
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class FollowupPlanVersion(Base):
    __tablename__ = "followup_plan_versions"
    __table_args__ = (UniqueConstraint("plan_id", "version", name="uq_followup_plan_version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("followup_plans.id"), index=True)
    #: 1, 2, …: each change is a new version.
    version: Mapped[int]
    #: plans.PlanDefinition as JSON.
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: None: shipped with CareBridge (shipped_plans.yml) or imported by a command.
    created_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class EnrolmentStatus(enum.StrEnum):
    active = "active"
    paused = "paused"
    #: Stopped by staff or the patient (stop_reason says why): nothing more is sent.
    stopped = "stopped"
    #: Every check-in answered, missed or skipped.
    completed = "completed"


class StopReason(enum.StrEnum):
    readmitted = "readmitted"
    deceased = "deceased"
    opted_out = "opted_out"
    other = "other"


class EnrolmentSource(enum.StrEnum):
    console = "console"
    csv = "csv"
    his = "his"


class FollowupEnrolment(Base):
    __tablename__ = "followup_enrolments"
    __table_args__ = (Index("ix_followup_enrolments_discharged", "discharged_on"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    plan_version_id: Mapped[int] = mapped_column(ForeignKey("followup_plan_versions.id"), index=True)
    #: The day the plan's time points count from (discharge or surgery, per the plan), hospital-local.
    anchor_date: Mapped[date] = mapped_column(Date)
    #: The discharge day (hospital-local), which the coverage report (出院患者随访比例) counts by.
    discharged_on: Mapped[date] = mapped_column(Date)
    #: The responsible team: its nurses get the flags and the phone list.
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id"), index=True)
    attending_doctor: Mapped[str] = mapped_column(String(64), default="")
    procedure: Mapped[str] = mapped_column(String(200), default="")
    source: Mapped[EnrolmentSource] = mapped_column(String(16))
    #: The HIS's Encounter identifier ("system|value"): a HIS retry finds the enrolment it made.
    encounter_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    status: Mapped[EnrolmentStatus] = mapped_column(String(16), default=EnrolmentStatus.active, index=True)
    stop_reason: Mapped[StopReason | None] = mapped_column(String(16))
    stop_note: Mapped[str] = mapped_column(String(300), default="")
    #: Counted as lost to follow-up (失访) after FOLLOWUP_LOST_AFTER_MISSED missed check-ins.
    lost_to_followup: Mapped[bool] = mapped_column(default=False)
    created_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    status_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class CheckinStatus(enum.StrEnum):
    #: Waiting for its due time.
    scheduled = "scheduled"
    #: A worker has claimed it and is starting it (claimed_at; a stale claim is taken over).
    claimed = "claimed"
    #: Started: the chat dialogue is queued, or the template invitation was sent.
    started = "started"
    answered = "answered"
    #: The answer window closed unanswered: on the team's phone list.
    missed = "missed"
    #: Not sent (the enrolment stopped, no one to address, …); `reason` says why.
    skipped = "skipped"


class CheckinChannel(enum.StrEnum):
    chat = "chat"
    page = "page"
    phone = "phone"


class FollowupCheckin(Base):
    __tablename__ = "followup_checkins"
    __table_args__ = (
        UniqueConstraint("enrolment_id", "time_point", name="uq_followup_checkin_time_point"),
        Index("ix_followup_checkins_due", "status", "due_at"),
        # An enrolment's open check-ins (is it finished?), probed per enrolment on every dispatch run.
        Index("ix_followup_checkins_enrolment_status", "enrolment_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    enrolment_id: Mapped[int] = mapped_column(ForeignKey("followup_enrolments.id"))
    #: Index into the plan version's time_points.
    time_point: Mapped[int]
    #: Days after the anchor date (copied from the time point, for lists and reports).
    day: Mapped[int]
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: After this the check-in is missed if unanswered.
    window_ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[CheckinStatus] = mapped_column(String(16), default=CheckinStatus.scheduled)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claims: Mapped[int] = mapped_column(default=0)
    #: Whom it was sent to (the patient's own account or a family member's).
    identity_id: Mapped[int | None] = mapped_column(ForeignKey("wechat_identities.id"))
    #: chat | template: how it was started; the answer's channel is `channel`.
    started_via: Mapped[str | None] = mapped_column(String(16))
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: "稍后再说": started again at this time (same day).
    postponed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    channel: Mapped[CheckinChannel | None] = mapped_column(String(16))
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: The worst flag of its answers (plans.Flag), once answered.
    worst_flag: Mapped[str | None] = mapped_column(String(16), index=True)
    #: When a nurse first contacted the patient about an amber/red/emergency flag (report).
    first_contact_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reason: Mapped[str] = mapped_column(String(255), default="")


class FollowupAnswer(Base):
    """One answer to one question of a check-in; a corrected answer replaces the earlier one."""

    __tablename__ = "followup_answers"
    __table_args__ = (UniqueConstraint("checkin_id", "question", name="uq_followup_answer_question"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    checkin_id: Mapped[int] = mapped_column(ForeignKey("followup_checkins.id"), index=True)
    question: Mapped[str] = mapped_column(String(40))
    #: int | float | bool | str | list[str], as the question's type says.
    value: Mapped[Any] = mapped_column(JSON)
    #: What the patient wrote (or the nurse noted), kept beside the understood value.
    text: Mapped[str] = mapped_column(String(1000), default="")
    flag: Mapped[str] = mapped_column(String(16))
    channel: Mapped[CheckinChannel] = mapped_column(String(16))
    answered_by_identity_id: Mapped[int | None] = mapped_column(ForeignKey("wechat_identities.id"))
    answered_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class FollowupSend(Base):
    """Every send of a check-in (start in chat, template invitation, reminder) and how it ended."""

    __tablename__ = "followup_sends"

    id: Mapped[int] = mapped_column(primary_key=True)
    checkin_id: Mapped[int] = mapped_column(ForeignKey("followup_checkins.id"), index=True)
    #: start_chat | template | reminder
    kind: Mapped[str] = mapped_column(String(16))
    identity_id: Mapped[int | None] = mapped_column(ForeignKey("wechat_identities.id"))
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))
    #: queued | sent | failed
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class FollowupCall(Base):
    """A nurse's phone call for a missed (or flagged) check-in."""

    __tablename__ = "followup_calls"

    id: Mapped[int] = mapped_column(primary_key=True)
    checkin_id: Mapped[int] = mapped_column(ForeignKey("followup_checkins.id"), index=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    reached: Mapped[bool]
    note: Mapped[str] = mapped_column(String(1000), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
