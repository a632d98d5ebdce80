"""The JSON shapes of the patient record staff read (docs/CONSOLE_API.md): search and the 360 view.
A patient's own summary is `patients.records.PatientSummaryRead`, shared with the conversation panel."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from crm_backend.patient_record.followups import FollowupEnrolmentRecordRead
from crm_backend.patients.records import ManagedPatientRead, PatientSummaryRead


class HolderRead(BaseModel):
    id: int
    label: str | None = None


class ConsentRead(BaseModel):
    """The identity's latest decision on health information (PIPL): granted, declined (or
    withdrawn), or unanswered."""

    status: Literal["granted", "declined", "unanswered"]
    decided_at: datetime | None
    notice_version: str | None


class IdentityRead(BaseModel):
    """A WeChat identity that is the patient's own or manages the patient."""

    id: int
    app_id: str
    openid_masked: str
    subscribed: bool
    relationship: str
    holder: HolderRead
    consent: ConsentRead


class ConversationLineRead(BaseModel):
    id: int
    started_at: datetime
    status: str
    last_message_at: datetime


class ReminderStateRead(BaseModel):
    status: str
    channel: str | None


class AppointmentRecordRead(BaseModel):
    id: int
    status: str
    date: str
    half_day: str
    department: str
    doctor: str
    title: str
    booked_by_identity_id: int | None
    created_at: str
    cancelled_at: str | None
    reminder: ReminderStateRead | None


class RevealIn(BaseModel):
    field: Literal["phone", "id_number", "card_number"]


class RevealedRead(BaseModel):
    """One protected value in full (null when the patient has none)."""

    field: str
    value: str | None


class Patient360Read(BaseModel):
    patient: PatientSummaryRead
    identities: list[IdentityRead]
    managed_patients: list[ManagedPatientRead]
    conversations: list[ConversationLineRead]
    appointments: list[AppointmentRecordRead]
    #: Post-operative follow-up: enrolments newest first, with check-ins and answers over time.
    #: None for a reader whose role does not see clinical answers (staff.models.CARE_ROLES).
    followups: list[FollowupEnrolmentRecordRead] | None
