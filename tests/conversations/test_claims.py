"""Answers stored already claimed (SENDING) belong to the worker sending them; if it died, the
sweeper hands them back as PENDING after the lease, so they still go out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from crm_backend.conversations.answers import release_claims, store_answers
from crm_backend.conversations.bot_gateway import BotReply
from crm_backend.conversations.models import DeliveryStatus, Message, SenderType
from crm_backend.conversations.sweeper import CLAIM_LEASE, requeue_stale_work
from crm_backend.runtime import Runtime
from tests.conversations.conftest import new_push


async def _claimed_answer(runtime: Runtime, *, age: timedelta) -> tuple[int, int]:
    inbound_id, conversation_id = await new_push(runtime.db)
    stored = await store_answers(
        runtime.db, inbound_id, conversation_id, [BotReply("您好")], SenderType.BOT, claim=True
    )
    assert stored is not None
    [answer] = stored
    async with runtime.db.sessions() as session:
        await session.execute(
            update(Message).where(Message.id == answer.message_id).values(created_at=datetime.now(UTC) - age)
        )
        await session.commit()
    return answer.message_id, conversation_id


async def _status(runtime: Runtime, message_id: int) -> DeliveryStatus:
    async with runtime.db.sessions() as session:
        status = await session.scalar(select(Message.delivery_status).where(Message.id == message_id))
        assert status is not None
        return DeliveryStatus(status)


async def _queued_conversations(runtime: Runtime) -> list[str]:
    entries = await runtime.redis.xrange(runtime.outbound.stream)
    return [fields["conversation_id"] for _id, fields in entries]


async def test_an_abandoned_claim_goes_back_to_pending_and_is_queued(runtime: Runtime) -> None:
    abandoned, abandoned_conversation = await _claimed_answer(runtime, age=CLAIM_LEASE + timedelta(minutes=1))
    fresh, fresh_conversation = await _claimed_answer(runtime, age=timedelta(seconds=5))

    await requeue_stale_work(runtime)

    assert await _status(runtime, abandoned) == DeliveryStatus.PENDING
    assert await _status(runtime, fresh) == DeliveryStatus.SENDING  # its sender may still be at it
    queued = await _queued_conversations(runtime)
    assert str(abandoned_conversation) in queued
    assert str(fresh_conversation) not in queued


async def test_claims_released_by_a_failed_sender_are_pending_again(runtime: Runtime) -> None:
    first, _ = await _claimed_answer(runtime, age=timedelta(seconds=1))
    sent, _ = await _claimed_answer(runtime, age=timedelta(seconds=1))
    async with runtime.db.sessions() as session:
        await session.execute(
            update(Message).where(Message.id == sent).values(delivery_status=DeliveryStatus.SENT)
        )
        await session.commit()

    assert await release_claims(runtime.db, [first, sent]) == 1
    assert await _status(runtime, first) == DeliveryStatus.PENDING
    assert await _status(runtime, sent) == DeliveryStatus.SENT  # what went out stays sent
