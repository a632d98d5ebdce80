"""JSON shapes of docs/CONSOLE_API.md, shared by the HTTP API and the console events."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_backend.appointments.service import family_appointments
from crm_backend.conversations.models import Conversation, Message
from crm_backend.escalations.models import ConversationNote, Escalation
from crm_backend.patients.models import Patient, WeChatIdentity
from crm_backend.patients.records import managed_by, mask_openid
from crm_backend.protection import FieldProtector
from crm_backend.staff.models import Staff, Team


async def patient_label(session: AsyncSession, patient_id: int) -> str:
    patient = await session.get(Patient, patient_id)
    if patient is not None and patient.display_name:
        return patient.display_name
    openid = await session.scalar(
        select(WeChatIdentity.openid).where(WeChatIdentity.patient_id == patient_id).limit(1)
    )
    return f"微信用户 {openid[-4:]}" if openid else f"患者 {patient_id}"


async def _staff_ref(session: AsyncSession, staff_id: int | None) -> dict[str, Any] | None:
    if staff_id is None:
        return None
    staff = await session.get(Staff, staff_id)
    return {"id": staff_id, "display_name": staff.display_name if staff else "?"}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


async def queue_item(session: AsyncSession, escalation: Escalation) -> dict[str, Any]:
    conversation = await session.get(Conversation, escalation.conversation_id)
    team = await session.get(Team, escalation.team_id)
    assert conversation is not None
    now = datetime.now(UTC)
    end = escalation.first_response_at or escalation.resolved_at or now
    return {
        "escalation_id": escalation.id,
        "conversation_id": escalation.conversation_id,
        "patient": {
            "id": conversation.patient_id,
            "label": await patient_label(session, conversation.patient_id),
        },
        "reason": escalation.reason,
        "priority": escalation.priority,
        "team": {"id": escalation.team_id, "name": team.name if team else "?"},
        "status": escalation.status,
        "assigned_to": await _staff_ref(session, escalation.assigned_to_id),
        "created_at": _iso(escalation.created_at),
        "waiting_seconds": int((end - escalation.created_at).total_seconds()),
        "first_response_at": _iso(escalation.first_response_at),
        "sla_due_at": _iso(escalation.sla_due_at),
        # The SLA is time to first response: it stops at the first answer (or at resolution).
        "sla_breached": end > escalation.sla_due_at,
        "satisfaction": escalation.satisfaction,
    }


async def message_view(session: AsyncSession, message: Message) -> dict[str, Any]:
    return {
        "id": message.id,
        "direction": message.direction,
        "sender_type": message.sender_type,
        "msg_type": message.msg_type,
        "content": message.content,
        "created_at": _iso(message.created_at),
        "delivery_status": message.delivery_status,
        "delivery_error": message.delivery_error,
        "agent": await _staff_ref(session, message.agent_id),
    }


async def note_view(session: AsyncSession, note: ConversationNote) -> dict[str, Any]:
    return {
        "id": note.id,
        "text": note.text,
        "author": await _staff_ref(session, note.author_id),
        "created_at": _iso(note.created_at),
    }


async def patient_panel(
    session: AsyncSession, patient_id: int, protector: FieldProtector | None = None
) -> dict[str, Any]:
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
    return {
        "id": patient_id,
        "label": await patient_label(session, patient_id),
        "identities": [
            {"app_id": i.app_id, "openid_masked": mask_openid(i.openid), "subscribed": i.subscribed}
            for i in identities
        ],
        # 就诊人 this patient's WeChat identities manage, always masked (the 360 view has more);
        # without a protector (no runtime at hand) they cannot be decrypted, so none are listed.
        "dependants": await managed_by(session, protector, patient_id) if protector else [],
        "conversations": [
            {
                "id": c.id,
                "started_at": _iso(c.started_at),
                "status": c.status,
                "last_message_at": _iso(c.last_message_at),
            }
            for c in conversations
        ],
        "records": {
            "appointments": await family_appointments(session, patient_id, [i.id for i in identities]),
        },
    }


async def conversation_view(
    session: AsyncSession, conversation: Conversation, protector: FieldProtector | None = None
) -> dict[str, Any]:
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
    return {
        "conversation": {
            "id": conversation.id,
            "status": conversation.status,
            "started_at": _iso(conversation.started_at),
        },
        "escalation": await queue_item(session, escalation) if escalation else None,
        "messages": [await message_view(session, m) for m in messages],
        "notes": [await note_view(session, n) for n in notes],
        "patient": await patient_panel(session, conversation.patient_id, protector),
    }
