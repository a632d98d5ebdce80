"""The JSON shapes of the patient record staff read (docs/CONSOLE_API.md): search and the 360 view.
A patient's own summary is `patients.records.PatientSummaryRead`, shared with the conversation panel."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from crm_backend.patients.records import ManagedPatientRead, PatientSummaryRead


class HolderRead(BaseModel):
    id: int
    label: str | None = None


class IdentityRead(BaseModel):
    """A WeChat identity that is the patient's own or manages the patient."""

    id: int
    app_id: str
    openid_masked: str
    subscribed: bool
    relationship: str
    holder: HolderRead


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


class Patient360Read(BaseModel):
    patient: PatientSummaryRead
    identities: list[IdentityRead]
    managed_patients: list[ManagedPatientRead]
    conversations: list[ConversationLineRead]
    appointments: list[AppointmentRecordRead]
