"""A turn's answers go out to WeChat only once they and the push's new status have committed, so a
database cut during the store repeats the turn with nothing sent (never an answer twice). Real
database, Redis and the fake WeChat API; Rasa's side is covered end to end in tests/e2e."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import redis
from sqlalchemy import select

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
from crm_backend.conversations.processing import InboundProcessor
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


async def _stored(db: Database, inbound_id: int, conversation_id: int, openid: str) -> Answered:
    """What processing hands to delivery for an ordinary bot turn: answers already stored, claimed."""
    stored = await store_answers(
        db, inbound_id, conversation_id, [BotReply(text) for text in TEXTS], SenderType.BOT, claim=True
    )
    assert stored is not None
    return Answered(conversation_id, openid, claimed=stored)


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


async def test_stored_answers_are_sent_in_order_and_recorded_as_sent(
    outbox: Outbox, fake_wechat: FakeWeChat
) -> None:
    db = outbox.runtime.db
    inbound_id, conversation_id = await new_push(db)
    openid = await _openid(db, inbound_id)

    assert await outbox.deliver_answered(await _stored(db, inbound_id, conversation_id, openid)) is True

    assert fake_wechat.texts(openid) == TEXTS
    answers = await _answers(db, conversation_id)
    assert [a.content for a in answers] == TEXTS
    assert all(a.delivery_status == DeliveryStatus.SENT and a.sent_at is not None for a in answers)
    assert [a.attempts for a in answers] == [1, 1]
    assert await _inbound_status(db, inbound_id) == InboundStatus.PROCESSED


async def test_processing_hands_answers_to_delivery_only_once_they_are_committed(
    outbox: Outbox, fake_wechat: FakeWeChat
) -> None:
    """Seen from another connection at the moment delivery gets them: the push is processed and
    its answers are stored, claimed for sending. Nothing reaches WeChat before that."""
    db = outbox.runtime.db
    inbound_id, conversation_id = await new_push(db)
    openid = await _openid(db, inbound_id)
    processor = InboundProcessor(outbox.runtime)
    seen: list[tuple[str, list[DeliveryStatus], int]] = []
    observer = Database(str(db.engine.url.render_as_string(hide_password=False)))

    async def deliver(answered: Answered) -> None:
        answers = await _answers(observer, conversation_id)
        assert [o.message_id for o in answered.claimed] == [a.id for a in answers]
        seen.append(
            (
                await _inbound_status(observer, inbound_id),
                [a.delivery_status for a in answers],
                len(fake_wechat.texts(openid)),
            )
        )
        await outbox.deliver_answered(answered)

    try:
        await processor.process_patient("wx-test", openid, deliver)
    finally:
        await observer.dispose()

    [(status, statuses, sent_before)] = seen
    assert status == InboundStatus.PROCESSED
    assert statuses and set(statuses) == {DeliveryStatus.SENDING}
    assert sent_before == 0
    assert len(fake_wechat.texts(openid)) == len(statuses)
