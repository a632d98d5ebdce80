"""A bot turn's answers go out to WeChat while they are being stored; how each send ended is
recorded against the stored row once the store has committed. Real database, Redis and the fake
WeChat API; processing's side (Rasa) is covered end to end in tests/e2e."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
import redis
from asyncpg import ForeignKeyViolationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from channels.outbound.delivery import Outbox
from crm_backend.conversations.answers import Answered, store_answers
from crm_backend.conversations.bot_gateway import BotReply
from crm_backend.conversations.models import (
    DeliveryStatus,
    Direction,
    InboundMessage,
    InboundStatus,
    Message,
    SenderType,
)
from crm_backend.database.core import Database
from crm_backend.runtime import Runtime
from tests.conversations.conftest import REDIS_URL, new_push
from tests.support.api import api_settings
from tests.support.stack import FakeWeChat, start_fake_wechat

TEXTS = ["您好，请问有什么可以帮您？", "您可以说“挂号”或“咨询科室”。"]


@pytest.fixture(scope="module")
def fake_wechat() -> Iterator[FakeWeChat]:
    fake = start_fake_wechat()
    yield fake
    fake.process.stop()


@pytest.fixture(scope="module")
async def outbox(database_url: str, fake_wechat: FakeWeChat) -> AsyncIterator[Outbox]:
    redis.Redis.from_url(REDIS_URL).flushdb()
    runtime = Runtime.create(api_settings(database_url, REDIS_URL, WECHAT_API_BASE=fake_wechat.base))
    yield Outbox(runtime)
    await runtime.close()


async def _openid(db: Database, inbound_id: int) -> str:
    async with db.sessions() as session:
        openid = await session.scalar(select(InboundMessage.openid).where(InboundMessage.id == inbound_id))
    assert openid is not None
    return openid


def _sending(
    db: Database, inbound_id: int, conversation_id: int, openid: str, *, store_in: int | None = None
) -> Answered:
    """What processing hands to delivery for an ordinary bot turn: the texts now, the ids later."""
    storing = asyncio.ensure_future(
        store_answers(
            db,
            inbound_id,
            conversation_id if store_in is None else store_in,
            [BotReply(text) for text in TEXTS],
            SenderType.BOT,
            claim=True,
        )
    )
    return Answered.while_storing(conversation_id, openid, SenderType.BOT, TEXTS, storing)


async def _answers(db: Database, conversation_id: int) -> list[Message]:
    async with db.sessions() as session:
        rows = await session.scalars(
            select(Message)
            .where(Message.conversation_id == conversation_id, Message.direction == Direction.OUT)
            .order_by(Message.id)
        )
        return list(rows)


async def _inbound_status(db: Database, inbound_id: int) -> str:
    async with db.sessions() as session:
        status = await session.scalar(select(InboundMessage.status).where(InboundMessage.id == inbound_id))
    assert status is not None
    return status


async def test_answers_sent_while_stored_are_recorded_as_sent_in_order(
    outbox: Outbox, fake_wechat: FakeWeChat
) -> None:
    db = outbox.runtime.db
    inbound_id, conversation_id = await new_push(db)
    openid = await _openid(db, inbound_id)

    assert await outbox.deliver_answered(_sending(db, inbound_id, conversation_id, openid)) is True

    assert fake_wechat.texts(openid) == TEXTS
    answers = await _answers(db, conversation_id)
    assert [a.content for a in answers] == TEXTS
    assert all(a.delivery_status == DeliveryStatus.SENT and a.sent_at is not None for a in answers)
    assert [a.attempts for a in answers] == [1, 1]
    assert await _inbound_status(db, inbound_id) == InboundStatus.PROCESSED


async def test_when_the_push_was_already_answered_no_further_answer_goes_out(
    outbox: Outbox, fake_wechat: FakeWeChat
) -> None:
    """Another worker finished the push first (a lock that expired): the first answer was already
    on its way, the rest are not sent and nothing is stored twice."""
    db = outbox.runtime.db
    inbound_id, conversation_id = await new_push(db)
    openid = await _openid(db, inbound_id)
    first = await store_answers(
        db, inbound_id, conversation_id, [BotReply("已回复")], SenderType.BOT, claim=True
    )
    assert first is not None

    assert await outbox.deliver_answered(_sending(db, inbound_id, conversation_id, openid)) is True

    assert fake_wechat.texts(openid) == TEXTS[:1]
    assert [a.content for a in await _answers(db, conversation_id)] == ["已回复"]


async def test_a_store_that_fails_after_the_send_leaves_the_push_to_be_processed_again(
    outbox: Outbox, fake_wechat: FakeWeChat
) -> None:
    """The patient already has the first answer; the push stays received, so it is processed again
    (at least once, as when a worker dies while Rasa answers) rather than lost."""
    db = outbox.runtime.db
    inbound_id, conversation_id = await new_push(db)
    openid = await _openid(db, inbound_id)
    # Answers stored against a conversation that does not exist: the database refuses them.
    answered = _sending(db, inbound_id, conversation_id, openid, store_in=conversation_id + 10_000)

    with pytest.raises((IntegrityError, ForeignKeyViolationError)):  # SQLAlchemy's, or asyncpg's
        await outbox.deliver_answered(answered)

    assert fake_wechat.texts(openid) == TEXTS[:1]
    assert await _answers(db, conversation_id) == []
    assert await _inbound_status(db, inbound_id) == InboundStatus.RECEIVED
