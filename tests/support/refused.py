"""What the worker stores when WeChat refuses the first answer of a dialogue turn (the 48-hour
window closed meanwhile), for tests of what follows such a refusal."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from crm_backend.conversations.models import DeliveryStatus, Direction, InboundMessage, Message, SenderType


async def store_refused_answer(
    session: AsyncSession, conversation_id: int, turn: InboundMessage, content: str, error: str
) -> None:
    """The turn's answer undeliverable with WeChat's error, and the turn processed (not committed)."""
    session.add(
        Message(
            conversation_id=conversation_id,
            direction=Direction.OUT,
            sender_type=SenderType.BOT,
            content=content,
            reply_to_inbound_id=turn.id,
            delivery_status=DeliveryStatus.UNDELIVERABLE,
            delivery_error=error,
        )
    )
    await session.execute(
        sa.update(InboundMessage).where(InboundMessage.id == turn.id).values(status="processed")
    )
