"""WeChat's customer-service window: the one place that says whether we may still write to a patient.

WeChat accepts customer-service messages only within 48 hours of the patient's last message and at
most five of them in that time (errors 45015 and 45047 otherwise). Dialogues the bot starts
(turns.py), staff replies and messages staff start (escalations) all ask `reply_window`, so the
console's indicator, the refusal and the bot's choice of a template agree.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_backend.conversations.models import Conversation, DeliveryStatus, Direction, Message
from crm_backend.patients.models import WeChatIdentity

#: WeChat's customer-service window, minus a margin for the time the send itself takes.
REPLY_WINDOW = timedelta(hours=48) - timedelta(minutes=10)
#: Customer-service messages WeChat accepts after one message of the patient.
WINDOW_MESSAGES = 5
#: Sends that count against the window's messages (refused ones do not).
COUNTED = (DeliveryStatus.SENT, DeliveryStatus.SENDING, DeliveryStatus.PENDING)


class WindowState(enum.StrEnum):
    OPEN = "open"
    #: The patient never wrote (a follow alone does not open it).
    NEVER_OPENED = "never_opened"
    #: 48 hours (less the margin) have passed since the patient's last message.
    EXPIRED = "expired"
    #: Five messages went out since the patient's last message.
    USED_UP = "used_up"
    #: The patient unfollowed the account: nothing reaches them.
    UNSUBSCRIBED = "unsubscribed"


@dataclass(frozen=True, slots=True)
class ReplyWindow:
    state: WindowState
    #: The patient's last message (None: never wrote).
    opened_at: datetime | None
    #: When we stop sending (None: never opened).
    closes_at: datetime | None
    #: Our messages counted since the patient's last message.
    sent: int
    limit: int = WINDOW_MESSAGES

    @property
    def is_open(self) -> bool:
        return self.state is WindowState.OPEN

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.sent) if self.is_open else 0


async def reply_window(session: AsyncSession, identity: WeChatIdentity, now: datetime) -> ReplyWindow:
    """The identity's window at `now`; messages are counted by id after the patient's last one
    (a patient's message time has WeChat's whole seconds only)."""
    last = identity.last_inbound_at
    closes_at = last + REPLY_WINDOW if last is not None else None
    last_id = await session.scalar(
        select(func.max(Message.id))
        .join(Conversation, Message.conversation_id == Conversation.id)
        .where(
            Conversation.identity_id == identity.id,
            Message.direction == Direction.IN,
            Message.msg_type != "event",
        )
    )
    sent = (
        await session.scalar(
            select(func.count())
            .select_from(Message)
            .join(Conversation, Message.conversation_id == Conversation.id)
            .where(
                Conversation.identity_id == identity.id,
                Message.direction == Direction.OUT,
                Message.msg_type != "template",
                Message.id > (last_id or 0),
                Message.delivery_status.in_(COUNTED),
            )
        )
        or 0
    )
    if not identity.subscribed:
        state = WindowState.UNSUBSCRIBED
    elif last is None or closes_at is None:
        state = WindowState.NEVER_OPENED
    elif now >= closes_at:
        state = WindowState.EXPIRED
    elif sent >= WINDOW_MESSAGES:
        state = WindowState.USED_UP
    else:
        state = WindowState.OPEN
    return ReplyWindow(state, last, closes_at, sent)
