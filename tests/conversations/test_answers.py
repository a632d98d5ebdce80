"""Storing a turn's answers: atomic with the push's "processed" mark, once only, in order.

Runs on both databases: PostgreSQL takes the one-statement path, SQLite the transaction.
"""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from crm_backend.conversations.answers import store_answers
from crm_backend.conversations.bot_gateway import BotReply, Button
from crm_backend.conversations.models import (
    Conversation,
    DeliveryStatus,
    InboundMessage,
    InboundStatus,
    Message,
    SenderType,
)
from crm_backend.database.core import Database
from tests.conversations.conftest import new_push


async def _answers(db: Database, inbound_id: int) -> list[Message]:
    async with db.sessions() as session:
        return list(
            await session.scalars(
                select(Message).where(Message.reply_to_inbound_id == inbound_id).order_by(Message.id)
            )
        )


async def _inbound(db: Database, inbound_id: int) -> InboundMessage:
    async with db.sessions() as session:
        inbound = await session.get(InboundMessage, inbound_id)
        assert inbound is not None
        return inbound


REPLIES = [
    BotReply("您好！请问需要什么帮助？"),
    BotReply("请选择科室", [Button("儿科", '/inform{"department":"儿科"}'), Button("眼科", "/x")]),
]


async def test_claimed_answers_are_stored_in_order_and_the_push_is_processed(db: Database) -> None:
    inbound_id, conversation_id = await new_push(db)
    stored = await store_answers(db, inbound_id, conversation_id, REPLIES, SenderType.BOT, claim=True)

    assert stored is not None
    assert [o.text for o in stored] == [
        "您好！请问需要什么帮助？",
        "请选择科室\n1. 儿科\n2. 眼科\n（请回复数字选择）",
    ]
    assert [o.message_id for o in stored] == sorted(o.message_id for o in stored)
    messages = await _answers(db, inbound_id)
    assert [m.id for m in messages] == [o.message_id for o in stored]
    assert all(m.delivery_status == DeliveryStatus.SENDING for m in messages)
    assert all(m.conversation_id == conversation_id and m.sender_type == SenderType.BOT for m in messages)
    assert messages[0].extra is None
    assert messages[1].extra == {"buttons": [["儿科", '/inform{"department":"儿科"}'], ["眼科", "/x"]]}
    inbound = await _inbound(db, inbound_id)
    assert inbound.status == InboundStatus.PROCESSED and inbound.processed_at is not None
    # Nothing else about the stored push changes.
    assert (inbound.msg_type, inbound.attempts, inbound.payload) == ("text", 0, {"Content": "你好"})
    async with db.sessions() as session:
        conversation = await session.get(Conversation, conversation_id)
        assert conversation is not None
        assert conversation.last_message_at == messages[0].created_at


async def test_a_second_run_for_the_same_push_stores_nothing(db: Database) -> None:
    inbound_id, conversation_id = await new_push(db)
    assert await store_answers(db, inbound_id, conversation_id, REPLIES, SenderType.BOT, claim=True)
    again = await store_answers(db, inbound_id, conversation_id, REPLIES, SenderType.BOT, claim=True)
    assert again is None
    assert len(await _answers(db, inbound_id)) == 2


async def test_racing_runs_store_the_answers_once(db: Database) -> None:
    inbound_id, conversation_id = await new_push(db)
    results = await asyncio.gather(
        *(
            store_answers(db, inbound_id, conversation_id, REPLIES, SenderType.BOT, claim=True)
            for _ in range(6)
        ),
        return_exceptions=True,
    )
    winners = [r for r in results if isinstance(r, list)]
    assert len(winners) == 1, results
    assert len(await _answers(db, inbound_id)) == 2


async def test_unclaimed_answers_wait_as_pending_and_the_push_stays_received(db: Database) -> None:
    inbound_id, conversation_id = await new_push(db)
    stored = await store_answers(db, inbound_id, conversation_id, REPLIES[:1], SenderType.SYSTEM, claim=False)
    assert stored is not None and len(stored) == 1
    messages = await _answers(db, inbound_id)
    assert [m.delivery_status for m in messages] == [DeliveryStatus.PENDING]
    assert (await _inbound(db, inbound_id)).status == InboundStatus.RECEIVED


async def test_a_push_without_answers_is_only_marked_processed(db: Database) -> None:
    inbound_id, conversation_id = await new_push(db)
    assert await store_answers(db, inbound_id, conversation_id, [], SenderType.BOT, claim=True) == []
    assert await _answers(db, inbound_id) == []
    assert (await _inbound(db, inbound_id)).status == InboundStatus.PROCESSED
