"""Dialogues the bot starts (conversations/turns.py) through the real worker, Rasa and fake WeChat:
they start at once when the chat is free, wait while staff hold it or a form is open, and outside
WeChat's 48-hour window invite with a template message and start when the patient writes again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from crm_backend.conversations.models import (
    Conversation,
    ConversationStatus,
    InboundMessage,
    InboundStatus,
    Message,
)
from crm_backend.conversations.turns import DialogueRequest, TemplateInvite, start_dialogue
from crm_backend.domains import subscribe_listeners
from crm_backend.escalations.service import Escalations
from crm_backend.patients.models import WeChatIdentity
from crm_backend.runtime import Runtime
from crm_backend.staff.models import Staff, StaffRole
from tests.support.api import api_settings
from tests.support.stack import ADMIN_USERNAME, Stack

GREETING = "您好"  # every variant of the answer to `greet` says it
TEMPLATE_ID = "tmpl-dialogue-invite-01"


@pytest.fixture
async def runtime(stack: Stack) -> AsyncIterator[Runtime]:
    """What a domain's job has in the worker: a runtime on the stack's database, Redis and Rasa."""
    settings = api_settings(
        stack.database_url,
        stack.redis_url,
        RASA_PORT=str(stack.rasa.rasa_port),
        STAFFED_HOURS=stack.env()["STAFFED_HOURS"],
    )
    runtime = Runtime.create(settings)
    subscribe_listeners(runtime)
    yield runtime
    await runtime.close()


async def _identity(runtime: Runtime, openid: str) -> WeChatIdentity:
    async with runtime.db.sessions() as session:
        identity = await session.scalar(select(WeChatIdentity).where(WeChatIdentity.openid == openid))
    assert identity is not None
    return identity


async def _start(runtime: Runtime, identity: WeChatIdentity, key: str, **extra: object) -> int:
    request = DialogueRequest(
        key=key,
        identity_id=identity.id,
        patient_id=identity.patient_id,
        intent="greet",
        reason="test",
        expires_at=datetime.now(UTC) + timedelta(hours=2),
        **extra,  # type: ignore[arg-type]
    )
    turn_id = await start_dialogue(runtime, request)
    assert turn_id is not None
    return turn_id


async def _status(runtime: Runtime, turn_id: int) -> str:
    async with runtime.db.sessions() as session:
        turn = await session.get(InboundMessage, turn_id)
    assert turn is not None
    return turn.status


async def _processed(runtime: Runtime, turn_id: int, timeout: float = 30) -> None:
    for _ in range(int(timeout / 0.1)):
        if await _status(runtime, turn_id) == InboundStatus.PROCESSED:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"turn {turn_id} was not processed")


async def test_a_dialogue_starts_at_once_when_the_chat_is_free_and_only_once(
    stack: Stack, runtime: Runtime
) -> None:
    openid = await stack.consented_patient()
    identity = await _identity(runtime, openid)
    before = len(stack.wechat.texts(openid))
    turn_id = await _start(runtime, identity, f"free-{openid}")
    answers = (await stack.wait_answers(openid, before + 1))[before:]
    assert GREETING in answers[0]
    # The same key again starts nothing: proved by the patient's next message, answered in order.
    assert (
        await start_dialogue(
            runtime,
            DialogueRequest(
                f"free-{openid}", identity.id, identity.patient_id, "greet", "test", datetime.now(UTC)
            ),
        )
        is None
    )
    marker = await stack.converse(openid, "谢谢")
    assert len(stack.wechat.texts(openid)) == before + 1 + len(marker)
    async with runtime.db.sessions() as session:
        answer = await session.scalar(select(Message).where(Message.reply_to_inbound_id == turn_id))
    assert answer is not None and answer.sender_type == "bot"


@dataclass(frozen=True)
class _Admin:
    id: int
    display_name: str = "admin"
    team_ids: frozenset[int] = frozenset()
    sees_all_teams: bool = True
    role: StaffRole = StaffRole.admin


async def test_a_dialogue_waits_while_staff_hold_the_chat(stack: Stack, runtime: Runtime) -> None:
    openid = await stack.consented_patient()
    identity = await _identity(runtime, openid)
    async with runtime.db.sessions() as session:
        conversation_id = await session.scalar(
            select(Conversation.id).where(Conversation.identity_id == identity.id)
        )
        admin_id = await session.scalar(select(Staff.id).where(Staff.username == ADMIN_USERNAME))
    assert conversation_id is not None and admin_id is not None
    escalations = Escalations(runtime)
    answered = len(stack.wechat.texts(openid))
    await escalations.escalate(conversation_id, reason="test")
    before = len(await stack.wait_answers(openid, answered + 1))  # the notice of the wait

    turn_id = await _start(runtime, identity, f"held-{openid}")
    # The patient writes to staff; once that later push is processed, the dialogue was seen first.
    await stack.say(openid, "护士您好，我想问下复查的事")
    async with runtime.db.sessions() as session:
        later = await session.scalar(
            select(InboundMessage.id)
            .where(InboundMessage.openid == openid)
            .order_by(InboundMessage.id.desc())
        )
    assert later is not None
    await _processed(runtime, later)
    assert await _status(runtime, turn_id) == InboundStatus.RECEIVED
    # The bot said nothing in the staff's chat: the one answer is the system's acknowledgement of a
    # patient still waiting for a person (route.acknowledge_waiting).
    [ack] = (await stack.wait_answers(openid, before + 1))[before:]
    assert ack.startswith("您的消息已收到") and GREETING not in ack
    before += 1

    await escalations.resolve(conversation_id, _Admin(admin_id))
    await _processed(runtime, turn_id)
    answers = (await stack.wait_answers(openid, before + 2))[before:]
    assert any(GREETING in text for text in answers), answers


async def test_a_dialogue_never_interrupts_an_open_booking_form(stack: Stack, runtime: Runtime) -> None:
    openid = await stack.consented_patient()
    identity = await _identity(runtime, openid)
    await stack.converse(openid, "我想挂个号")
    turn_id = await _start(runtime, identity, f"form-{openid}")
    # Another message inside the form: the dialogue (queued before it) is looked at first and waits.
    await stack.converse(openid, "皮肤科")
    assert await _status(runtime, turn_id) == InboundStatus.RECEIVED
    before = len(stack.wechat.texts(openid))
    await stack.say(openid, "算了不约了")
    await _processed(runtime, turn_id)
    answers = (await stack.wait_answers(openid, before + 2))[before:]
    assert GREETING not in answers[0] and any(GREETING in text for text in answers[1:]), answers


async def test_outside_the_window_a_template_invites_and_the_patient_s_reply_starts_it(
    stack: Stack, runtime: Runtime
) -> None:
    openid = await stack.consented_patient()
    identity = await _identity(runtime, openid)
    async with runtime.db.sessions() as session:
        await session.execute(
            update(WeChatIdentity)
            .where(WeChatIdentity.id == identity.id)
            .values(last_inbound_at=datetime.now(UTC) - timedelta(days=3))
        )
        await session.commit()
    before = len(stack.wechat.sent(openid))
    invite = TemplateInvite(
        template_id=TEMPLATE_ID,
        data={"first": {"value": "您有一条随访消息"}, "remark": {"value": "回复任意消息开始"}},
        text="【随访邀请】您有一条随访消息，回复任意消息开始。",
    )
    turn_id = await _start(runtime, identity, f"window-{openid}", template=invite)
    for _ in range(300):
        sent = stack.wechat.sent(openid)[before:]
        if sent:
            break
        await asyncio.sleep(0.1)
    assert [(s["msgtype"], s["template_id"]) for s in sent] == [("template", TEMPLATE_ID)]
    assert await _status(runtime, turn_id) == InboundStatus.RECEIVED

    texts_before = len(stack.wechat.texts(openid))
    await stack.say(openid, "你好")
    await _processed(runtime, turn_id)
    answers = (await stack.wait_answers(openid, texts_before + 2))[texts_before:]
    # The patient's message is answered first, then the dialogue starts.
    assert GREETING in answers[-1]
    async with runtime.db.sessions() as session:
        stored = await session.scalar(
            select(Message).where(Message.reply_to_inbound_id == turn_id, Message.msg_type == "template")
        )
        status = await session.scalar(
            select(Conversation.status).where(Conversation.identity_id == identity.id)
        )
    assert stored is not None and stored.delivery_status == "sent"
    assert status == ConversationStatus.BOT
