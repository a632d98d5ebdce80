"""JSON shapes of docs/CONSOLE_API.md, shared by the HTTP API and the console events.

Each shape is a pydantic model, so the console reads exactly these field names and the API schema
says what they are; the console events carry the same models dumped as JSON.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_backend.appointments.service import family_appointments
from crm_backend.conversations.models import (
    Conversation,
    ConversationStatus,
    DeliveryStatus,
    Direction,
    Message,
    SenderType,
)
from crm_backend.conversations.red_flag_screen import flags_of
from crm_backend.escalations.labels import LabelRead, labels_of
from crm_backend.escalations.models import ConversationNote, Escalation, EscalationStatus, Priority
from crm_backend.escalations.sla import sla_breached
from crm_backend.patients.models import Patient, WeChatIdentity
from crm_backend.patients.records import ManagedPatientRead, managed_by, mask_openid
from crm_backend.protection import FieldProtector
from crm_backend.staff.models import Staff, Team


class StaffRef(BaseModel):
    id: int
    display_name: str


class TeamRef(BaseModel):
    id: int
    name: str


class PatientRef(BaseModel):
    id: int
    label: str


class QueueItemRead(BaseModel):
    """One escalation as the queue shows it; also the `escalation` of escalation events."""

    escalation_id: int
    conversation_id: int
    patient: PatientRef
    reason: str
    #: What the patient said that raised it (a safety risk in a complaint), when the bot passed it on.
    summary: str | None = None
    priority: Priority
    team: TeamRef
    status: EscalationStatus
    assigned_to: StaffRef | None
    created_at: datetime
    waiting_seconds: int
    first_response_at: datetime | None
    sla_due_at: datetime
    sla_breached: bool
    satisfaction: int | None
    labels: list[LabelRead]


class QueueRead(BaseModel):
    team: TeamRef
    items: list[QueueItemRead]


class MessageRead(BaseModel):
    """One message of a conversation; also the `message` of message events."""

    id: int
    direction: Direction
    sender_type: SenderType
    msg_type: str
    content: str
    created_at: datetime
    delivery_status: DeliveryStatus
    delivery_error: str | None
    agent: StaffRef | None
    #: The red flags the screen found in a patient's message (their names), for the console to mark.
    red_flags: list[str]


class NoteRead(BaseModel):
    """An internal note (never sent to the patient); also the `note` of note events."""

    id: int
    text: str
    author: StaffRef
    created_at: datetime


class IdentityRead(BaseModel):
    app_id: str
    openid_masked: str
    subscribed: bool


class PanelConversationRead(BaseModel):
    id: int
    started_at: datetime
    status: ConversationStatus
    last_message_at: datetime


class AppointmentLineRead(BaseModel):
    """One appointment in words, e.g. "李秀英 · 12月2日（周三）上午 心内科 郑国栋", status 已预约."""

    label: str
    status: str


class PatientRecordsRead(BaseModel):
    appointments: list[AppointmentLineRead]


class PatientPanelRead(BaseModel):
    id: int
    label: str
    identities: list[IdentityRead]
    dependants: list[ManagedPatientRead]
    conversations: list[PanelConversationRead]
    records: PatientRecordsRead


class ConversationRead(BaseModel):
    id: int
    status: ConversationStatus
    started_at: datetime


class ConversationViewRead(BaseModel):
    conversation: ConversationRead
    escalation: QueueItemRead | None
    messages: list[MessageRead]
    notes: list[NoteRead]
    patient: PatientPanelRead
    labels: list[LabelRead]


class CannedReplyRead(BaseModel):
    id: int
    title: str
    text: str


async def patient_label(session: AsyncSession, patient_id: int) -> str:
    patient = await session.get(Patient, patient_id)
    if patient is not None and patient.display_name:
        return patient.display_name
    openid = await session.scalar(
        select(WeChatIdentity.openid).where(WeChatIdentity.patient_id == patient_id).limit(1)
    )
    return f"微信用户 {openid[-4:]}" if openid else f"患者 {patient_id}"


async def _staff_ref(session: AsyncSession, staff_id: int | None) -> StaffRef | None:
    if staff_id is None:
        return None
    staff = await session.get(Staff, staff_id)
    return StaffRef(id=staff_id, display_name=staff.display_name if staff else "?")


async def queue_item(
    session: AsyncSession, escalation: Escalation, now: datetime | None = None
) -> QueueItemRead:
    conversation = await session.get(Conversation, escalation.conversation_id)
    team = await session.get(Team, escalation.team_id)
    assert conversation is not None
    now = now or datetime.now(UTC)
    end = escalation.first_response_at or escalation.resolved_at or now
    return QueueItemRead(
        escalation_id=escalation.id,
        conversation_id=escalation.conversation_id,
        patient=PatientRef(
            id=conversation.patient_id, label=await patient_label(session, conversation.patient_id)
        ),
        reason=escalation.reason,
        summary=escalation.summary,
        priority=escalation.priority,
        team=TeamRef(id=escalation.team_id, name=team.name if team else "?"),
        status=escalation.status,
        assigned_to=await _staff_ref(session, escalation.assigned_to_id),
        created_at=escalation.created_at,
        waiting_seconds=int((end - escalation.created_at).total_seconds()),
        first_response_at=escalation.first_response_at,
        sla_due_at=escalation.sla_due_at,
        sla_breached=sla_breached(escalation, now),
        satisfaction=escalation.satisfaction,
        labels=(await labels_of(session, [escalation.conversation_id]))[escalation.conversation_id],
    )


async def message_view(session: AsyncSession, message: Message) -> MessageRead:
    return MessageRead(
        id=message.id,
        direction=message.direction,
        sender_type=message.sender_type,
        msg_type=message.msg_type,
        content=message.content,
        created_at=message.created_at,
        delivery_status=message.delivery_status,
        delivery_error=message.delivery_error,
        agent=await _staff_ref(session, message.agent_id),
        red_flags=flags_of(message.extra),
    )


async def note_view(session: AsyncSession, note: ConversationNote) -> NoteRead:
    author = await _staff_ref(session, note.author_id)
    assert author is not None  # author_id is NOT NULL
    return NoteRead(id=note.id, text=note.text, author=author, created_at=note.created_at)


async def patient_panel(
    session: AsyncSession, patient_id: int, protector: FieldProtector | None = None
) -> PatientPanelRead:
    identities = (
        await session.scalars(select(WeChatIdentity).where(WeChatIdentity.patient_id == patient_id))
    ).all()
    conversations = (
        await session.scalars(
            select(Conversation)
            .where(Conversation.patient_id == patient_id)
            .order_by(Conversation.id.desc())
            .limit(20)
        )
    ).all()
    # 就诊人 this patient's WeChat identities manage, always masked (the 360 view has more);
    # without a protector (no runtime at hand) they cannot be decrypted, so none are listed.
    dependants = await managed_by(session, protector, patient_id) if protector else []
    appointments = await family_appointments(session, patient_id, [i.id for i in identities])
    return PatientPanelRead(
        id=patient_id,
        label=await patient_label(session, patient_id),
        identities=[
            IdentityRead(app_id=i.app_id, openid_masked=mask_openid(i.openid), subscribed=i.subscribed)
            for i in identities
        ],
        dependants=[ManagedPatientRead.model_validate(d) for d in dependants],
        conversations=[
            PanelConversationRead(
                id=c.id, started_at=c.started_at, status=c.status, last_message_at=c.last_message_at
            )
            for c in conversations
        ],
        records=PatientRecordsRead(
            appointments=[AppointmentLineRead.model_validate(a) for a in appointments]
        ),
    )


async def conversation_view(
    session: AsyncSession, conversation: Conversation, protector: FieldProtector | None = None
) -> ConversationViewRead:
    messages = (
        await session.scalars(
            select(Message).where(Message.conversation_id == conversation.id).order_by(Message.id)
        )
    ).all()
    notes = (
        await session.scalars(
            select(ConversationNote)
            .where(ConversationNote.conversation_id == conversation.id)
            .order_by(ConversationNote.id)
        )
    ).all()
    escalation = await session.scalar(
        select(Escalation)
        .where(Escalation.conversation_id == conversation.id)
        .order_by(Escalation.id.desc())
        .limit(1)
    )
    return ConversationViewRead(
        conversation=ConversationRead(
            id=conversation.id, status=conversation.status, started_at=conversation.started_at
        ),
        escalation=await queue_item(session, escalation) if escalation else None,
        messages=[await message_view(session, m) for m in messages],
        notes=[await note_view(session, n) for n in notes],
        patient=await patient_panel(session, conversation.patient_id, protector),
        labels=(await labels_of(session, [conversation.id]))[conversation.id],
    )
