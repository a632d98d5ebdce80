"""Messages to the patient are stored first, pending, and the outbox sends them in order.

Every sender that is not a bot turn (agents, escalation notices, reminders) stores them this way,
so what reaches the patient is always in the conversation's record first.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from crm_backend.conversations.models import Conversation, DeliveryStatus, Direction, Message, SenderType


def add_outbound(
    session: AsyncSession,
    conversation: Conversation,
    sender: SenderType,
    text: str,
    *,
    agent_id: int | None = None,
    reply_to_inbound_id: int | None = None,
    extra: dict[str, Any] | None = None,
) -> Message:
    now = datetime.now(UTC)
    message = Message(
        conversation_id=conversation.id,
        direction=Direction.OUT,
        sender_type=sender,
        msg_type="text",
        content=text,
        agent_id=agent_id,
        reply_to_inbound_id=reply_to_inbound_id,
        extra=extra,
        delivery_status=DeliveryStatus.PENDING,
        created_at=now,
    )
    session.add(message)
    conversation.last_message_at = max(conversation.last_message_at, now)
    return message
