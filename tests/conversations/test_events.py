"""Conversation events reach escalations through the bus alone, on both databases: what processing
will publish instead of calling escalations."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from crm_backend import domains
from crm_backend.conversations.events import EscalationRequested, PatientMessageForStaff, ServiceRated
from crm_backend.conversations.models import (
    Conversation,
    ConversationStatus,
    DeliveryStatus,
    Direction,
    Message,
    SenderType,
)
from crm_backend.escalations.models import Escalation, Priority
from crm_backend.realtime.events import ConsoleEvents
from crm_backend.runtime import Runtime
from tests.conversations.conftest import REDIS_URL, new_push
from tests.support.api import api_settings


@pytest.fixture(scope="module")
async def subscribed(database_url: str) -> AsyncIterator[Runtime]:
    # Nothing listens on port 9: pausing Rasa's tracker fails and is only logged, as escalate() allows.
    runtime = Runtime.create(api_settings(database_url, REDIS_URL, RASA_PORT=9))
    domains.subscribe_listeners(runtime)
    yield runtime
    await runtime.close()


async def test_a_requested_escalation_opens_rates_and_reaches_the_console(subscribed: Runtime) -> None:
    runtime = subscribed
    _, conversation_id = await new_push(runtime.db)
    await runtime.events.publish(
        EscalationRequested(conversation_id, reason="patient asked", priority="urgent", team="nursing")
    )
    async with runtime.db.sessions() as session:
        escalation = await session.scalar(
            select(Escalation).where(Escalation.conversation_id == conversation_id)
        )
        conversation = await session.get(Conversation, conversation_id)
        notices = (
            await session.scalars(
                select(Message).where(
                    Message.conversation_id == conversation_id, Message.sender_type == SenderType.SYSTEM
                )
            )
        ).all()
    assert escalation is not None and conversation is not None
    assert (escalation.reason, escalation.priority) == ("patient asked", Priority.URGENT)
    assert conversation.status == ConversationStatus.ESCALATED
    assert len(notices) == 1  # the waiting notice, pending for the outbox

    async with runtime.db.sessions() as session:
        message = Message(
            conversation_id=conversation_id,
            direction=Direction.IN,
            sender_type=SenderType.PATIENT,
            msg_type="text",
            content="还在吗",
            delivery_status=DeliveryStatus.RECEIVED,
        )
        session.add(message)
        await session.commit()
    console = ConsoleEvents(runtime.redis, runtime.settings)
    before = await console.last_id()
    await runtime.events.publish(PatientMessageForStaff(message.id, conversation_id))
    [event] = await console.since(before)
    assert (event["type"], event["team_id"], event["message"]["content"]) == (
        "message.created",
        escalation.team_id,
        "还在吗",
    )

    first = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    for score, at in ((4, first), (1, datetime.now(UTC))):  # only the first counts
        async with runtime.db.sessions() as session:
            await runtime.events.publish(ServiceRated(session, escalation.id, score, at))
            await session.commit()
    async with runtime.db.sessions() as session:
        rated = await session.get(Escalation, escalation.id)
    assert rated is not None and (rated.satisfaction, rated.satisfaction_at) == (4, first)


async def test_an_unknown_priority_counts_as_normal(subscribed: Runtime) -> None:
    _, conversation_id = await new_push(subscribed.db)
    await subscribed.events.publish(EscalationRequested(conversation_id, reason="bot", priority="asap"))
    async with subscribed.db.sessions() as session:
        escalation = await session.scalar(
            select(Escalation).where(Escalation.conversation_id == conversation_id)
        )
    assert escalation is not None and escalation.priority == Priority.NORMAL
