"""The rating dialogue: after staff resolve a chat the patient is asked for a 1-5 score.

It runs where route.decide says RATING (a rating is still asked for). A digit 1-5 rates the
escalation (stored by the escalations domain, in this transaction, through ServiceRated); another
number is asked again; anything else means the patient moved on, and the turn goes to the bot.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from crm_backend.conversations.choices import parse_number
from crm_backend.conversations.events import ServiceRated
from crm_backend.conversations.models import Conversation, Message
from crm_backend.events import EventBus

RATING_QUESTION = (
    "本次人工服务已结束，感谢您的耐心。请为本次服务打分：回复 1 到 5 的数字（5 分表示非常满意）。"
)
RATING_THANKS = "感谢您的评价！如还有其他问题，随时发消息给我。"
RATING_OUT_OF_RANGE = "请回复 1 到 5 之间的数字为本次人工服务打分。"


async def answer(
    session: AsyncSession, events: EventBus, conversation: Conversation, message: Message, text: str
) -> list[str] | None:
    """The replies, or None when the message is not a rating (the bot answers it)."""
    escalation_id = conversation.rating_escalation_id
    number = parse_number(text)
    if escalation_id is None or number is None:
        conversation.rating_escalation_id = None
        return None
    if not 1 <= number <= 5:
        return [RATING_OUT_OF_RANGE]
    await events.publish(ServiceRated(session, escalation_id, number, message.created_at))
    conversation.rating_escalation_id = None
    return [RATING_THANKS]
