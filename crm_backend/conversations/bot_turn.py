"""Record an ordinary bot turn in one statement, on PostgreSQL, while Rasa is thinking.

Most messages are a consented patient writing in an open chat the bot has. For those the worker
asks Rasa at once (see pending.py) and records the message meanwhile. The general recording
(processing.InboundProcessor._record) is an ORM transaction of about nine round trips, and beside
Rasa on the same cores it slowed Rasa's own turn; this is the same recording for that one case as a
single statement (figures in docs/PERFORMANCE.md):

    WITH attempt AS (UPDATE inbound SET attempts = 1 WHERE <still received, first try>
                     AND route.state_unchanged(<the state the pending read saw>) RETURNING id),
         identity AS (UPDATE wechat_identities SET last_inbound_at … WHERE EXISTS attempt),
         touched AS (UPDATE conversations SET last_message_at … WHERE EXISTS attempt)
    INSERT INTO messages … SELECT … WHERE EXISTS attempt RETURNING id

It decides nothing itself: route.decide chose the bot for the state the pending read saw, and the
statement re-reads that state through the same expressions (route.py). When any of it moved (a
colleague took the chat a moment ago), it writes nothing and the caller falls back to the general
path, which decides again.
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, exists, func, insert, select, update

from crm_backend.conversations import route
from crm_backend.conversations.models import (
    Conversation,
    ConversationStatus,
    DeliveryStatus,
    Direction,
    InboundMessage,
    InboundStatus,
    Message,
    SenderType,
)
from crm_backend.database.hot_path import HotPath
from crm_backend.patients.models import WeChatIdentity

_WHEN = Message.__table__.c.created_at.type


@functools.cache
def _statement() -> Any:
    # Parameters are prefixed: one named like a column would be taken as a SET value by the UPDATEs.
    unchanged = route.state_unchanged(
        bindparam("p_identity_id"),
        bindparam("p_conversation_id"),
        status=ConversationStatus.BOT,
        rating_pending=False,
        consent_granted=True,
        last_message_at=bindparam("p_last_message_at", type_=_WHEN),
    )
    attempt = (
        update(InboundMessage)
        .where(
            InboundMessage.id == bindparam("p_inbound_id"),
            InboundMessage.status == InboundStatus.RECEIVED,
            InboundMessage.attempts == 0,
            unchanged,
        )
        .values(attempts=InboundMessage.attempts + 1)
        .returning(InboundMessage.id)
        .cte("attempt")
    )
    recorded = exists(select(attempt.c.id))
    identity = (
        update(WeChatIdentity)
        .where(WeChatIdentity.id == bindparam("p_identity_id"), recorded)
        .values(
            last_inbound_at=bindparam("p_seen_at", type_=_WHEN),
            unionid=func.coalesce(
                WeChatIdentity.unionid, bindparam("p_unionid", type_=WeChatIdentity.unionid.type)
            ),
        )
        .cte("identity")
    )
    touched = (
        update(Conversation)
        .where(Conversation.id == bindparam("p_conversation_id"), recorded)
        .values(
            last_message_at=func.greatest(Conversation.last_message_at, bindparam("p_seen_at", type_=_WHEN))
        )
        .cte("touched")
    )
    table = Message.__table__.c
    columns = (
        "conversation_id",
        "direction",
        "sender_type",
        "msg_type",
        "content",
        "extra",
        "wechat_msg_id",
        "inbound_id",
        "delivery_status",
        "attempts",
        "created_at",
    )
    source = select(*(bindparam(f"p_message_{name}", type_=table[name].type) for name in columns)).where(
        recorded
    )
    return (
        insert(Message).from_select(columns, source).returning(Message.id).add_cte(attempt, identity, touched)
    )


async def record_bot_turn(
    hot_path: HotPath,
    *,
    inbound_id: int,
    identity_id: int,
    conversation_id: int,
    msg_type: str,
    content: str,
    extra: dict[str, Any] | None,
    wechat_msg_id: int | None,
    unionid: str | None,
    seen_at: datetime,
    state: route.RouteState,
) -> int | None:
    """The patient's message id, or None when the turn is no longer an ordinary bot turn (nothing
    was written; the general path must record it). `state` is what route.decide saw: the bot's
    open chat, consent granted, no rating asked for."""
    assert state.last_message_at is not None and state.consent_granted is True
    assert state.conversation_status == ConversationStatus.BOT and not state.rating_pending
    rows = await hot_path.fetch(
        _statement(),
        {
            "p_inbound_id": inbound_id,
            "p_identity_id": identity_id,
            "p_conversation_id": conversation_id,
            "p_last_message_at": state.last_message_at,
            "p_seen_at": seen_at,
            "p_unionid": unionid,
            "p_message_conversation_id": conversation_id,
            "p_message_direction": Direction.IN,
            "p_message_sender_type": SenderType.PATIENT,
            "p_message_msg_type": msg_type,
            "p_message_content": content,
            "p_message_extra": extra,
            "p_message_wechat_msg_id": wechat_msg_id,
            "p_message_inbound_id": inbound_id,
            "p_message_delivery_status": DeliveryStatus.RECEIVED,
            "p_message_attempts": 0,
            "p_message_created_at": seen_at,
        },
    )
    return rows[0][0] if rows else None
