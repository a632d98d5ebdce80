"""Recording an ordinary bot turn in one statement (PostgreSQL): the same rows the general path
writes, and nothing at all once the turn is no longer an ordinary bot turn."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from crm_backend.consent.models import HEALTH_INFORMATION, ConsentRecord
from crm_backend.conversations.bot_turn import record_bot_turn
from crm_backend.conversations.models import (
    Conversation,
    ConversationStatus,
    DeliveryStatus,
    Direction,
    InboundMessage,
    Message,
    SenderType,
)
from crm_backend.conversations.route import RouteState
from crm_backend.database.core import Database
from crm_backend.escalations.models import Escalation
from crm_backend.patients.models import WeChatIdentity
from crm_backend.staff.models import Team
from tests.conversations.conftest import DB_NAME, new_push
from tests.support.postgres import alembic, drop_postgres, recreate_postgres

IDLE = timedelta(hours=24)


@pytest.fixture(scope="module")
async def database_url() -> AsyncIterator[str]:
    """PostgreSQL only: elsewhere the general path records every turn."""
    name = f"{DB_NAME}_bot_turn"
    url = await recreate_postgres(name)
    alembic(url, "upgrade", "head")
    yield url
    await drop_postgres(name)


async def _consented_push(db: Database, *, granted: bool = True) -> dict[str, Any]:
    inbound_id, conversation_id = await new_push(db, text="我想问一下复诊时间")
    async with db.sessions() as session:
        conversation = await session.get(Conversation, conversation_id)
        assert conversation is not None
        identity = await session.get(WeChatIdentity, conversation.identity_id)
        assert identity is not None
        session.add(
            ConsentRecord(
                identity_id=identity.id,
                patient_id=identity.patient_id,
                purpose=HEALTH_INFORMATION,
                granted=granted,
                notice_version="2026-11",
                decided_at=datetime.now(UTC) - timedelta(hours=1),
            )
        )
        await session.commit()
        return {
            "inbound_id": inbound_id,
            "identity_id": identity.id,
            "conversation_id": conversation_id,
            "msg_type": "text",
            "content": "我想问一下复诊时间",
            "extra": None,
            "wechat_msg_id": 4242,
            "unionid": "u-family-1",
            "seen_at": datetime.now(UTC).replace(microsecond=0),
            # What the pending read saw, and route.decide sent to the bot.
            "state": RouteState(
                identity_id=identity.id,
                consent_granted=True,
                conversation_id=conversation_id,
                conversation_status=ConversationStatus.BOT,
                rating_pending=False,
                last_message_at=conversation.last_message_at,
            ),
        }


async def _written(db: Database, turn: dict[str, Any]) -> tuple[list[Message], InboundMessage, Conversation]:
    async with db.sessions() as session:
        messages = list(
            await session.scalars(select(Message).where(Message.conversation_id == turn["conversation_id"]))
        )
        inbound = await session.get(InboundMessage, turn["inbound_id"])
        conversation = await session.get(Conversation, turn["conversation_id"])
        assert inbound is not None and conversation is not None
        return messages, inbound, conversation


async def test_an_ordinary_turn_is_recorded_like_the_general_path_does(db: Database) -> None:
    turn = await _consented_push(db)
    message_id = await record_bot_turn(db.hot_path, **turn)
    assert message_id is not None

    messages, inbound, conversation = await _written(db, turn)
    [message] = messages
    assert message.id == message_id
    assert (message.direction, message.sender_type, message.delivery_status) == (
        Direction.IN,
        SenderType.PATIENT,
        DeliveryStatus.RECEIVED,
    )
    assert (message.content, message.msg_type, message.extra) == ("我想问一下复诊时间", "text", None)
    assert (message.inbound_id, message.wechat_msg_id, message.created_at) == (
        turn["inbound_id"],
        4242,
        turn["seen_at"],
    )
    assert inbound.attempts == 1
    assert conversation.last_message_at == turn["seen_at"]
    async with db.sessions() as session:
        identity = await session.get(WeChatIdentity, turn["identity_id"])
        assert identity is not None
        assert identity.last_inbound_at == turn["seen_at"]
        assert identity.unionid == "u-family-1"

    # The same push again (a retry) is not an ordinary first turn: nothing more is written.
    assert await record_bot_turn(db.hot_path, **turn) is None
    assert len((await _written(db, turn))[0]) == 1


async def _escalate(session: Any, conversation: Conversation) -> None:
    conversation.status = ConversationStatus.ESCALATED


async def _ask_for_rating(session: Any, conversation: Conversation) -> None:
    team = Team(name=f"rating-{conversation.id}")
    session.add(team)
    await session.flush()
    escalation = Escalation(
        conversation_id=conversation.id,
        team_id=team.id,
        reason="patient_request",
        sla_due_at=datetime.now(UTC),
    )
    session.add(escalation)
    await session.flush()
    conversation.rating_escalation_id = escalation.id


async def _close(session: Any, conversation: Conversation) -> None:
    conversation.status = ConversationStatus.CLOSED


async def _newer_chat(session: Any, conversation: Conversation) -> None:
    session.add(
        Conversation(
            patient_id=conversation.patient_id,
            identity_id=conversation.identity_id,
            started_at=conversation.started_at,
            last_message_at=conversation.last_message_at,
        )
    )


async def _went_idle(session: Any, conversation: Conversation) -> None:
    conversation.last_message_at = datetime.now(UTC) - IDLE - timedelta(minutes=5)


@pytest.mark.parametrize(
    "change",
    [_escalate, _ask_for_rating, _close, _newer_chat, _went_idle],
    ids=["taken-over-by-people", "rating-asked", "closed", "newer-chat", "idle"],
)
async def test_nothing_is_written_once_the_chat_is_no_longer_the_bots(
    db: Database, change: Callable[[Any, Conversation], Any]
) -> None:
    turn = await _consented_push(db)
    async with db.sessions() as session:
        conversation = await session.get(Conversation, turn["conversation_id"])
        assert conversation is not None
        before = conversation.last_message_at
        await change(session, conversation)
        await session.commit()
    assert await record_bot_turn(db.hot_path, **turn) is None
    messages, inbound, conversation = await _written(db, turn)
    assert messages == [] and inbound.attempts == 0
    if change is not _went_idle:
        assert conversation.last_message_at == before


async def test_nothing_is_written_without_consent(db: Database) -> None:
    turn = await _consented_push(db, granted=False)
    assert await record_bot_turn(db.hot_path, **turn) is None
    messages, inbound, _ = await _written(db, turn)
    assert messages == [] and inbound.attempts == 0
