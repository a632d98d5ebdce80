"""The JSON shapes of the patient record staff read (docs/CONSOLE_API.md): search and the 360 view."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class MaskedRead(BaseModel):
    """Which protected values of a patient are masked in this answer."""

    phone: bool
    id_number: bool
    card_number: bool


class PatientSummaryRead(BaseModel):
    id: int
    label: str
    name: str | None
    sex: str | None
    birth_date: str | None
    phone: str | None
    id_number: str | None
    card_number: str | None
    masked: MaskedRead


class ManagedPatientRead(PatientSummaryRead):
    """A 就诊人 one of the patient's WeChat identities manages."""

    relationship: str
    identity_id: int


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
