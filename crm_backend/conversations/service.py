"""Conversations: the patient's open conversation, shared by every turn and by reminders."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_backend.conversations import route
from crm_backend.conversations.models import Conversation, ConversationStatus
from crm_backend.patients.models import WeChatIdentity


async def current_conversation(
    session: AsyncSession, identity: WeChatIdentity, seen_at: datetime
) -> Conversation:
    """The identity's open conversation, or a new one after it went idle (every turn and reminders)."""
    conversation = await session.scalar(
        select(Conversation).where(Conversation.id == route.open_conversation_id(identity.id))
    )
    if conversation is not None and route.is_idle(conversation.last_message_at, seen_at):
        conversation.status = ConversationStatus.CLOSED
        conversation = None
    if conversation is None:
        conversation = Conversation(
            patient_id=identity.patient_id,
            identity_id=identity.id,
            started_at=seen_at,
            last_message_at=seen_at,
        )
        session.add(conversation)
        await session.flush()
    return conversation
