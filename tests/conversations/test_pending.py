"""Which pushes the worker may hand to Rasa before recording them (the early question), and the
one query that lists a patient's pending pushes with that context."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from crm_backend.consent.models import ConsentRecord
from crm_backend.conversations.models import Conversation, ConversationStatus, InboundMessage
from crm_backend.conversations.pending import PendingPush, pending_pushes
from crm_backend.conversations.route import Limits, RouteState
from crm_backend.database.core import Database
from crm_backend.patients.models import WeChatIdentity
from tests.conversations.conftest import new_push

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
LIMITS = Limits(max_attempts=5, retry_for=timedelta(minutes=10))
PLAIN = PendingPush(
    inbound_id=1,
    msg_type="text",
    payload={"Content": "我想挂个号"},
    attempts=0,
    create_time=int(NOW.timestamp()),
    state=RouteState(
        identity_id=7,
        consent_granted=True,
        conversation_id=3,
        conversation_status=ConversationStatus.BOT,
        rating_pending=False,
        last_message_at=NOW - timedelta(minutes=5),
    ),
)


def _changed(push: PendingPush, **change: object) -> PendingPush:
    """`push` with some of its own or its state's fields changed."""
    state_fields = {k: v for k, v in change.items() if hasattr(push.state, k)}
    own = {k: v for k, v in change.items() if k not in state_fields}
    return replace(push, state=replace(push.state, **state_fields), **own)


def test_an_ordinary_text_of_a_consented_patient_goes_to_the_bot() -> None:
    assert PLAIN.goes_to_bot(LIMITS)
    assert PLAIN.typed_text() == "我想挂个号"


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"consent_granted": None}, "never answered the consent question"),
        ({"consent_granted": False}, "declined or withdrew consent"),
        ({"payload": {"Content": "撤回同意"}}, "withdraws consent now"),
        ({"conversation_status": ConversationStatus.ESCALATED}, "people have the chat"),
        ({"conversation_id": None, "conversation_status": None}, "no open conversation yet"),
        ({"rating_pending": True}, "a rating of the last escalation is asked for"),
        ({"last_message_at": NOW - timedelta(hours=25)}, "the conversation went idle: a new one starts"),
        ({"attempts": 1}, "a retry after a failure"),
        ({"identity_id": None}, "first contact"),
        ({"msg_type": "image", "payload": {"PicUrl": "http://x"}}, "not text"),
        ({"msg_type": "voice", "payload": {"MediaId": "m"}}, "voice without recognition"),
    ],
)
def test_anything_else_is_recorded_before_anyone_is_asked(change: dict[str, object], why: str) -> None:
    assert not _changed(PLAIN, **change).goes_to_bot(LIMITS), why


def test_recognised_voice_goes_to_the_bot_as_its_text() -> None:
    voice = replace(PLAIN, msg_type="voice", payload={"Recognition": " 明天上午儿科 "})
    assert voice.goes_to_bot(LIMITS)
    assert voice.typed_text() == "明天上午儿科"


async def test_pending_pushes_come_oldest_first_with_the_patient_context(db: Database) -> None:
    inbound_id, conversation_id = await new_push(db)
    async with db.sessions() as session:
        first = await session.get(InboundMessage, inbound_id)
        assert first is not None
        later = InboundMessage(
            dedupe_key=f"{first.dedupe_key}-later",
            app_id=first.app_id,
            openid=first.openid,
            msg_type="text",
            create_time=first.create_time + 5,
            payload={"Content": "明天"},
        )
        session.add(later)
        await session.commit()
        app_id, openid, later_id = first.app_id, first.openid, later.id

    pushes = await pending_pushes(db.hot_path, app_id, openid)
    assert [p.inbound_id for p in pushes] == [inbound_id, later_id]
    assert pushes[0].state.conversation_id == conversation_id
    assert pushes[0].state.conversation_status == ConversationStatus.BOT
    assert pushes[0].state.consent_granted is None  # never asked

    async with db.sessions() as session:
        identity = await session.scalar(select(WeChatIdentity).where(WeChatIdentity.openid == openid))
        assert identity is not None
        for granted, minutes in ((True, 3), (False, 2), (True, 1)):  # the latest decision counts
            session.add(
                ConsentRecord(
                    identity_id=identity.id,
                    patient_id=identity.patient_id,
                    granted=granted,
                    notice_version="test",
                    decided_at=datetime.now(UTC) - timedelta(minutes=minutes),
                )
            )
        await session.execute(
            update(Conversation)
            .where(Conversation.id == conversation_id)
            .values(status=ConversationStatus.ESCALATED)
        )
        await session.commit()
    pushes = await pending_pushes(db.hot_path, app_id, openid)
    assert pushes[0].state.consent_granted is True
    assert pushes[0].state.conversation_status == ConversationStatus.ESCALATED
    assert not pushes[0].goes_to_bot(LIMITS)


async def test_a_closed_conversation_is_not_the_open_one_and_strangers_have_no_identity(db: Database) -> None:
    inbound_id, conversation_id = await new_push(db)
    async with db.sessions() as session:
        await session.execute(
            update(Conversation)
            .where(Conversation.id == conversation_id)
            .values(status=ConversationStatus.CLOSED)
        )
        first = await session.get(InboundMessage, inbound_id)
        assert first is not None
        stranger = InboundMessage(
            dedupe_key=f"{first.dedupe_key}-stranger",
            app_id=first.app_id,
            openid=f"{first.openid}-stranger",
            msg_type="text",
            create_time=first.create_time,
            payload={"Content": "你好"},
        )
        session.add(stranger)
        await session.commit()
        app_id, openid = first.app_id, first.openid
    [push] = await pending_pushes(db.hot_path, app_id, openid)
    [unknown] = await pending_pushes(db.hot_path, app_id, f"{openid}-stranger")
    assert push.state.conversation_id is None
    assert unknown.state.identity_id is None and unknown.state.conversation_id is None
