"""A patient's WeChat messages reach Rasa; the answers reach the patient; all of it is stored.

Runs twice: on SQLite and on PostgreSQL. Everything is real except the WeChat API (the sandbox).
"""

from __future__ import annotations

import asyncio

import httpx
from sqlalchemy import func, select

from crm_backend.config import SANDBOX_APPID
from crm_backend.consent.models import ConsentRecord
from crm_backend.conversations.bot_gateway import rasa_sender
from crm_backend.conversations.models import (
    Conversation,
    DeliveryStatus,
    Direction,
    InboundMessage,
    InboundStatus,
    Message,
    SenderType,
)
from crm_backend.database.core import Database
from crm_backend.patients.models import WeChatIdentity
from tests.support.settle import send_marker_and_wait, wait_patient_settled
from tests.support.stack import Stack, new_openid


async def _messages(db: Database, openid: str) -> list[Message]:
    async with db.sessions() as session:
        rows = await session.scalars(
            select(Message)
            .join(Conversation, Message.conversation_id == Conversation.id)
            .join(WeChatIdentity, Conversation.identity_id == WeChatIdentity.id)
            .where(WeChatIdentity.openid == openid)
            .order_by(Message.id)
        )
        return list(rows)


async def _wait_for(predicate, timeout: float = 15) -> None:  # type: ignore[no-untyped-def]
    for _ in range(int(timeout / 0.1)):
        if await predicate():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("condition not reached")


async def test_healthz_reports_every_component(stack: Stack) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{stack.url}/healthz")
    assert response.status_code == 200
    assert set(response.json()["components"]) == {"database", "redis", "rasa", "action_server", "worker"}
    assert all(c["status"] == "ok" for c in response.json()["components"].values())


async def test_follow_consent_and_chat_is_stored_against_the_patient(stack: Stack, db: Database) -> None:
    openid = new_openid()
    await stack.post(stack.build("subscribe", openid))
    welcome = await stack.wait_answers(openid, 2)
    assert "欢迎关注" in welcome[0] and "健康信息" in welcome[0]
    assert "同意" in welcome[1]

    # Before consent, a health question is stored but not processed by the bot ...
    answers = await stack.converse(openid, "我头疼挂什么科")
    assert any("同意" in text for text in answers)
    assert await _bot_heard(stack, openid) == []

    # ... and answered right after the patient agrees.
    before = len(stack.wechat.texts(openid))
    await stack.say(openid, "同意")
    answers = (await stack.wait_answers(openid, before + 2))[before:]
    assert "已记录您的同意" in answers[0] and "刚才的消息" in answers[0]
    assert await _bot_heard(stack, openid) == ["我头疼挂什么科"]

    answers = await stack.converse(openid, "你好")
    assert answers and all("同意" not in text for text in answers)

    async with db.sessions() as session:
        identity = await session.scalar(select(WeChatIdentity).where(WeChatIdentity.openid == openid))
        assert identity is not None and identity.subscribed
        consent = (
            await session.scalars(select(ConsentRecord).where(ConsentRecord.identity_id == identity.id))
        ).all()
    assert [(c.granted, c.notice_version) for c in consent] == [(True, "2026-11")]

    await _wait_for(lambda: _all_delivered(db, openid))
    stored = await _messages(db, openid)
    inbound = [(m.sender_type, m.content) for m in stored if m.direction == Direction.IN]
    assert inbound == [
        (SenderType.PATIENT, "subscribe"),
        (SenderType.PATIENT, "我头疼挂什么科"),
        (SenderType.PATIENT, "同意"),
        (SenderType.PATIENT, "你好"),
    ]
    outbound = [m for m in stored if m.direction == Direction.OUT]
    assert [m.content for m in outbound] == stack.wechat.texts(openid)
    assert {m.sender_type for m in outbound} == {SenderType.SYSTEM, SenderType.BOT}
    assert all(m.delivery_status == DeliveryStatus.SENT and m.sent_at for m in outbound)
    assert len({m.conversation_id for m in stored}) == 1


async def _bot_heard(stack: Stack, openid: str) -> list[str]:
    """What the patient's Rasa tracker holds of what they said (the sender id as processing forms it)."""
    sender = rasa_sender(SANDBOX_APPID, openid)
    async with httpx.AsyncClient() as http:
        response = await http.get(f"http://127.0.0.1:{stack.rasa.rasa_port}/conversations/{sender}/tracker")
    response.raise_for_status()
    return [e.get("text") for e in response.json().get("events", []) if e.get("event") == "user"]


async def test_a_request_made_before_consent_is_answered_once_the_patient_agrees(stack: Stack) -> None:
    openid = new_openid()
    await stack.post(stack.build("subscribe", openid))
    await stack.wait_answers(openid, 2)
    answers = await stack.converse(openid, "帮我挂明天上午的皮肤科")
    assert any("同意" in text for text in answers)

    before = len(stack.wechat.texts(openid))
    await stack.say(openid, "同意")
    answers = (await stack.wait_answers(openid, before + 2))[before:]
    # The booking dialogue picks the request up (a new patient registers as 就诊人 first): the
    # patient does not repeat it.
    assert "已记录您的同意" in answers[0]
    assert "就诊人" in answers[1], answers
    assert await _bot_heard(stack, openid) == ["帮我挂明天上午的皮肤科"]


async def test_a_request_made_before_declining_never_reaches_the_bot(stack: Stack) -> None:
    openid = new_openid()
    await stack.post(stack.build("subscribe", openid))
    await stack.wait_answers(openid, 2)
    await stack.converse(openid, "我最近老是失眠")
    assert "已记录您的选择" in (await stack.converse(openid, "不同意"))[0]
    # Agreeing later starts afresh: the message held before declining stays with us.
    answers = await stack.converse(openid, "同意")
    assert "已记录您的同意" in answers[0] and "刚才的消息" not in answers[0]
    marker = await stack.converse(openid, "你好")  # answered only after everything before it
    assert marker and all("同意" not in text for text in marker)
    assert await _bot_heard(stack, openid) == ["你好"]


async def _all_delivered(db: Database, openid: str) -> bool:
    stored = await _messages(db, openid)
    return all(m.delivery_status == DeliveryStatus.SENT for m in stored if m.direction == Direction.OUT)


async def test_declined_consent_keeps_bot_away_until_patient_agrees(stack: Stack, db: Database) -> None:
    openid = new_openid()
    await stack.post(stack.build("subscribe", openid))
    await stack.wait_answers(openid, 2)
    assert "已记录您的选择" in (await stack.converse(openid, "不同意"))[0]
    assert "尚未同意" in (await stack.converse(openid, "你好"))[0]
    assert "已记录您的同意" in (await stack.converse(openid, "同意"))[0]
    assert "撤回" in (await stack.converse(openid, "撤回同意"))[0]
    async with db.sessions() as session:
        granted = (
            await session.scalars(
                select(ConsentRecord.granted)
                .join(WeChatIdentity, ConsentRecord.identity_id == WeChatIdentity.id)
                .where(WeChatIdentity.openid == openid)
                .order_by(ConsentRecord.id)
            )
        ).all()
    assert granted == [False, True, False]


async def test_smalltalk_through_rasa(stack: Stack) -> None:
    openid = await stack.consented_patient()
    greeting = await stack.converse(openid, "您好，请问有人在吗")
    assert any("挂号" in text for text in greeting)
    thanks = await stack.converse(openid, "太感谢你了")
    assert thanks and not any("同意" in t for t in thanks)
    assert thanks != greeting


async def test_safe_mode_round_trip(stack: Stack, db: Database) -> None:
    openid = new_openid()
    await stack.post(stack.build("subscribe", openid, mode="safe"))
    await stack.wait_answers(openid, 2)
    await stack.say(openid, "同意", mode="safe")
    await stack.wait_answers(openid, 3)
    await stack.say(openid, "你好", mode="compat")
    answers = await stack.wait_answers(openid, 4)
    assert "挂号" in answers[3]
    stored = await _messages(db, openid)
    assert [m.content for m in stored if m.direction == Direction.IN] == ["subscribe", "同意", "你好"]


async def test_voice_image_and_unsubscribe(stack: Stack, db: Database) -> None:
    openid = await stack.consented_patient()
    before = len(stack.wechat.texts(openid))

    await stack.post(stack.build("voice", openid, recognition="你好"))
    await stack.post(stack.build("voice", openid))
    await stack.post(stack.build("image", openid, pic_url="http://mmbiz.example/pic.jpg"))
    answers = (await stack.wait_answers(openid, before + 3))[before:]
    assert "挂号" in answers[0]
    assert "语音" in answers[1]
    assert "图片" in answers[2]

    await stack.post(stack.build("unsubscribe", openid))

    async def unsubscribed() -> bool:
        async with db.sessions() as session:
            identity = await session.scalar(select(WeChatIdentity).where(WeChatIdentity.openid == openid))
            return identity is not None and not identity.subscribed and identity.unsubscribed_at is not None

    await _wait_for(unsubscribed)
    # The unsubscribe event is processed, and whatever it led to has been sent or given up.
    await wait_patient_settled(stack, openid, db=db)
    stored = await _messages(db, openid)
    image = next(m for m in stored if m.msg_type == "image")
    assert image.extra and image.extra["pic_url"] == "http://mmbiz.example/pic.jpg"
    assert stored[-1].content == "unsubscribe"  # the record is kept, nothing answered
    assert len([m for m in stored if m.direction == Direction.OUT]) == before + 3
    assert len(stack.wechat.texts(openid)) == before + 3


async def test_messages_are_answered_in_the_order_sent(stack: Stack) -> None:
    openid = await stack.consented_patient()
    before = len(stack.wechat.texts(openid))
    for text in ("你好", "谢谢你", "再见"):
        await stack.say(openid, text)
    answers = (await stack.wait_answers(openid, before + 3))[before:]
    assert "挂号" in answers[0]
    assert "再见" not in answers[0] and "不客气" not in answers[0]
    assert any(word in answers[2] for word in ("再见", "拜拜", "祝您", "保重"))


async def test_concurrent_retries_of_one_push_answer_once(stack: Stack, db: Database) -> None:
    openid = await stack.consented_patient()
    before = len(stack.wechat.texts(openid))
    push = stack.build("text", openid, content="你好")
    async with httpx.AsyncClient(timeout=10) as client:
        responses = await asyncio.gather(*(stack.post(push, client) for _ in range(8)))
    assert all(r.status_code == 200 and r.text == "success" for r in responses)
    await stack.wait_answers(openid, before + 1)
    marked = await send_marker_and_wait(stack, openid, db=db)
    assert len(marked.others) == before + 1
    async with db.sessions() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(InboundMessage)
            .where(InboundMessage.wechat_msg_id == push.msg_id)
        )
    assert count == 1


async def test_two_stage_fallback_with_numbered_choices(stack: Stack) -> None:
    openid = await stack.consented_patient()
    answers = await stack.converse(openid, "阿斯顿发个噶")
    question = answers[-1]
    assert "1. " in question and "2. " in question and "回复数字" in question

    out_of_range = await stack.converse(openid, "9")
    assert out_of_range == ["请回复 1 到 2 之间的数字。"]

    # "都不是" (the last option) asks the patient to rephrase.
    rephrase = await stack.converse(openid, "2")
    assert rephrase and all("1. " not in text for text in rephrase)


async def test_nothing_sent_is_marked_received_forever(stack: Stack, db: Database) -> None:
    """Every push stored by the tests above ends processed: nothing a patient sent is left behind."""
    await stack.consented_patient()

    async def all_processed() -> bool:
        async with db.sessions() as session:
            left = await session.scalar(
                select(func.count())
                .select_from(InboundMessage)
                .where(InboundMessage.status != InboundStatus.PROCESSED)
            )
        return left == 0

    await _wait_for(all_processed, timeout=30)
