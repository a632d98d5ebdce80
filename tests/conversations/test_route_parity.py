"""Every storage path routes a turn the same way: the same sequence of pushes (an event, a request
held at the consent question, consent, voice, an image, a hand-over to staff, a message for them, a
rating, small talk, a negated red flag, an emergency) through SQLite, PostgreSQL's general path and
PostgreSQL's fast path, with the worker's real processing and a real Rasa, stores the same rows,
sends the same answers and lets the bot hear the same texts."""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import redis
from sqlalchemy import select

from crm_backend.consent.models import ConsentRecord
from crm_backend.conversations.answers import Answered
from crm_backend.conversations.bot_gateway import rasa_sender
from crm_backend.conversations.models import Conversation, InboundMessage, Message, SenderType
from crm_backend.conversations.processing import InboundProcessor
from crm_backend.domains import subscribe_listeners
from crm_backend.escalations.models import Escalation
from crm_backend.escalations.service import Escalations
from crm_backend.patients.models import WeChatIdentity
from crm_backend.runtime import Runtime
from crm_backend.staff.models import Staff, StaffRole
from tests.conversations.conftest import REDIS_URL
from tests.support.api import api_settings
from tests.support.stack import RasaServers, new_openid, start_rasa

APP_ID = "wx-parity"
RASA_REDIS = os.environ.get("TEST_REDIS_BASE", "redis://127.0.0.1:6379") + "/8"
RESOLVE = ("resolve", "", {})
#: (type, event or text, extra payload fields); RESOLVE is staff resolving the chat.
STEPS: list[tuple[str, str, dict[str, str]]] = [
    ("event", "subscribe", {}),
    ("text", "你好呀", {}),  # before consent: held, never sent to the bot until 同意
    ("text", "同意", {}),
    ("voice", "你好", {"MediaId": "voice-1", "Format": "amr"}),
    ("image", "", {"PicUrl": "http://example.invalid/1.jpg", "MediaId": "image-1"}),
    ("text", "转人工", {}),
    ("text", "请问大概什么时候有人回复", {}),  # staff hold the chat: to the console
    RESOLVE,
    ("text", "5", {}),  # the rating
    ("text", "谢谢", {}),
    ("text", "没有胸痛，就是咳嗽", {}),  # a negated red flag: the bot's, as any message
    ("text", "我爸胸口疼得厉害还出冷汗", {}),  # an emergency: 120 advice, urgent to nursing
    RESOLVE,  # so the next path's nursing queue is as empty as this one's was
]
_serial = itertools.count(1)


@pytest.fixture(scope="module")
def rasa() -> Iterator[RasaServers]:
    redis.Redis.from_url(RASA_REDIS).flushdb()
    servers = start_rasa(RASA_REDIS)
    yield servers
    servers.stop()


@dataclass(frozen=True)
class Transcript:
    messages: list[tuple[Any, ...]]
    turns: list[tuple[Any, ...]]
    consent: list[bool]
    escalations: list[tuple[Any, ...]]
    sent: list[str]
    bot_heard: list[str]


def _push(openid: str, kind: str, value: str, extra: dict[str, str], at: int) -> InboundMessage:
    n = next(_serial)
    payload: dict[str, str] = {"MsgType": kind, **extra}
    if kind == "text":
        payload["Content"] = value
    elif kind == "voice":
        payload["Recognition"] = value
    elif kind == "event":
        payload["Event"] = value
    return InboundMessage(
        dedupe_key=f"parity-{openid}-{n}",
        app_id=APP_ID,
        openid=openid,
        msg_type=kind,
        event=value if kind == "event" else None,
        wechat_msg_id=None if kind == "event" else 7_000_000 + n,
        create_time=at,
        payload=payload,
    )


def _shown(sender: SenderType, text: str) -> str:
    """Rasa picks among a response's variants at random: a bot text is compared as the bot's."""
    return "<bot>" if sender == SenderType.BOT else text


async def _run(runtime: Runtime, rasa: RasaServers) -> Transcript:
    processor = InboundProcessor(runtime)
    openid = new_openid()
    sent: list[str] = []

    async def deliver(answered: Answered) -> None:
        sent.extend(_shown(outgoing.sender, outgoing.text) for outgoing in answered.claimed)

    start = int(time.time()) - len(STEPS)
    for index, (kind, value, extra) in enumerate(STEPS):
        if (kind, value, extra) == RESOLVE:
            await _resolve(runtime, openid)
            continue
        async with runtime.db.sessions() as session:
            session.add(_push(openid, kind, value, extra, start + index))
            await session.commit()
        await processor.process_patient(APP_ID, openid, deliver)
    return await _transcript(runtime, rasa, openid, sent)


async def _resolve(runtime: Runtime, openid: str) -> None:
    async with runtime.db.sessions() as session:
        conversation_id = await session.scalar(
            select(Conversation.id)
            .join(WeChatIdentity, Conversation.identity_id == WeChatIdentity.id)
            .where(WeChatIdentity.openid == openid)
        )
        staff = Staff(
            username=f"parity-{openid}-{next(_serial)}",
            display_name="值班护士",
            password_hash="-",
            role=StaffRole.supervisor,
        )
        session.add(staff)
        await session.commit()
    assert conversation_id is not None
    await Escalations(runtime).resolve(conversation_id, _Supervisor(staff.id))


@dataclass(frozen=True)
class _Supervisor:
    id: int
    display_name: str = "值班护士"
    team_ids: frozenset[int] = frozenset()
    sees_all_teams: bool = True
    role: StaffRole = StaffRole.supervisor


def _held(message: Message) -> str | None:
    return (message.extra or {}).get("consent_hold")


async def _transcript(runtime: Runtime, rasa: RasaServers, openid: str, sent: list[str]) -> Transcript:
    async with runtime.db.sessions() as session:
        identity = await session.scalar(select(WeChatIdentity).where(WeChatIdentity.openid == openid))
        assert identity is not None
        messages = (
            await session.scalars(
                select(Message)
                .join(Conversation)
                .where(Conversation.identity_id == identity.id)
                .order_by(Message.id)
            )
        ).all()
        turns = (
            await session.scalars(
                select(InboundMessage).where(InboundMessage.openid == openid).order_by(InboundMessage.id)
            )
        ).all()
        consent = (
            await session.scalars(
                select(ConsentRecord.granted)
                .where(ConsentRecord.identity_id == identity.id)
                .order_by(ConsentRecord.id)
            )
        ).all()
        escalations = (
            await session.execute(
                select(Escalation.reason, Escalation.status, Escalation.satisfaction)
                .join(Conversation, Escalation.conversation_id == Conversation.id)
                .where(Conversation.identity_id == identity.id)
            )
        ).all()
    async with httpx.AsyncClient() as http:
        tracker = (
            await http.get(
                f"http://127.0.0.1:{rasa.rasa_port}/conversations/{rasa_sender(APP_ID, openid)}/tracker"
            )
        ).json()
    return Transcript(
        messages=[
            (
                m.direction,
                m.sender_type,
                m.msg_type,
                _shown(m.sender_type, m.content),
                (m.extra or {}).get("consent_hold"),
            )
            for m in messages
        ],
        turns=[(t.msg_type, t.status, t.attempts) for t in turns],
        consent=list(consent),
        escalations=[tuple(row) for row in escalations],
        sent=sent,
        bot_heard=[e.get("text") for e in tracker.get("events", []) if e.get("event") == "user"],
    )


@pytest.fixture(scope="module")
async def transcripts(database_url: str, rasa: RasaServers) -> AsyncIterator[list[Transcript]]:
    """One run per storage path this database has: SQLite has one, PostgreSQL a fast and a general."""
    redis.Redis.from_url(REDIS_URL).flushdb()
    runs = [True, False] if database_url.startswith("postgresql") else [True]
    results = []
    for fast in runs:
        settings = api_settings(
            database_url,
            REDIS_URL,
            RASA_PORT=str(rasa.rasa_port),
            DATABASE_FAST_PATH=fast,
            STAFFED_HOURS="00:00-23:59:59",
        )
        runtime = Runtime.create(settings)
        subscribe_listeners(runtime)
        assert runtime.db.hot_path.on_asyncpg == (fast and database_url.startswith("postgresql"))
        try:
            results.append(await _run(runtime, rasa))
        finally:
            await runtime.close()
    yield results


#: What every path must produce, checked on each; `transcripts` also compares the paths with each other.
EXPECTED_BOT_HEARD = ["你好呀", "你好", "转人工", "谢谢", "没有胸痛，就是咳嗽"]


async def test_every_path_stores_and_answers_the_same(
    transcripts: list[Transcript], database_url: str
) -> None:
    first = transcripts[0]
    for other in transcripts[1:]:
        assert other == first
    assert first.bot_heard == EXPECTED_BOT_HEARD
    assert first.consent == [True]
    assert [(reason, status, score) for reason, status, score in first.escalations] == [
        ("patient_request", "resolved", 5),
        ("emergency", "resolved", None),
    ]
    assert all(status == "processed" for _, status, _ in first.turns)
    held = [m for m in first.messages if m[4] is not None]
    assert [(m[3], m[4]) for m in held] == [("你好呀", "answered")]
    # The message for staff got no answer of the bot's: the system acknowledged it (nobody had
    # answered yet), and the rating question is the next thing said.
    staff_index = next(i for i, m in enumerate(first.messages) if m[3] == "请问大概什么时候有人回复")
    ack = first.messages[staff_index + 1]
    assert (ack[1], ack[3]) == ("system", "您的消息已收到，工作人员会看到。您前面还有 0 位，请稍候。")
    assert first.messages[staff_index + 2][3].startswith("本次人工服务已结束")
    # The emergency: the advice is its only answer, then the escalation's notice.
    emergency = next(i for i, m in enumerate(first.messages) if m[3] == "我爸胸口疼得厉害还出冷汗")
    advice, notice = first.messages[emergency + 1 : emergency + 3]
    assert advice[1] == "system" and advice[3].startswith("这可能是急症，请立即拨打120")
    assert notice[1] == "system" and "转接人工服务" in notice[3]
