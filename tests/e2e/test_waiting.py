"""Waiting for staff, and what an escalation says happened, through the real stack (webhook, worker,
Rasa, action server; the WeChat API is the sandbox). Runs on SQLite and on PostgreSQL.

- A patient waiting for a person gets a short acknowledgement (at most one per WAITING_ACK_SECONDS)
  with their place in the queue, or outside staffed hours when staff reply; a repeated 转人工 is
  always acknowledged and never starts a second handoff.
- Escalations carry the reason of the dialogue that raised them, with a fitting priority; an
  emergency the red-flag screen finds makes them urgent and is marked on the message
  (tests/e2e/test_emergency.py has the rest of the emergency path).
- After 不同意 the patient is given the hospital's service phone number.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import func, select

from crm_backend.config import SANDBOX_APPID, Settings
from crm_backend.conversations.models import Conversation, Message
from crm_backend.database.core import Database
from crm_backend.escalations.models import Escalation
from crm_backend.patients.models import WeChatIdentity
from crm_backend.patients.service import rasa_sender
from tests.e2e.test_handoff import WAIT_NOTICE, _ask_for_a_person, _conversation_id, _item, _texts, _view
from tests.support.console import ConsoleClient
from tests.support.settle import send_marker_and_wait
from tests.support.stack import ADMIN_PASSWORD, ADMIN_USERNAME, Stack, new_openid

RECEIVED = "您的消息已收到"
REPEATED = "已经在为您转接人工服务"
SERVICE_PHONE = Settings.model_fields["hospital_service_phone"].default
RANK = {"urgent": 0, "high": 1, "normal": 2}


@pytest.fixture
async def admin(stack: Stack) -> AsyncIterator[ConsoleClient]:
    client = ConsoleClient(stack.url)
    await client.login(ADMIN_USERNAME, ADMIN_PASSWORD)
    yield client
    await client.aclose()


async def _ahead_of(client: ConsoleClient, item: dict[str, Any]) -> int:
    """Queued chats of the same team served before `item`, as the console's queue lists them."""
    items = await client.queue_items()
    return sum(
        1
        for other in items
        if other["team"]["id"] == item["team"]["id"]
        and other["status"] == "queued"
        and other["escalation_id"] != item["escalation_id"]
        and (RANK[other["priority"]], other["created_at"]) < (RANK[item["priority"]], item["created_at"])
    )


async def _escalations(db: Database, conversation_id: int) -> list[Escalation]:
    async with db.sessions() as session:
        rows = await session.scalars(
            select(Escalation).where(Escalation.conversation_id == conversation_id).order_by(Escalation.id)
        )
        return list(rows)


async def _bot_heard(stack: Stack, openid: str) -> list[str]:
    sender = quote(rasa_sender(SANDBOX_APPID, openid), safe=":")
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.get(f"http://127.0.0.1:{stack.rasa.rasa_port}/conversations/{sender}/tracker")
    response.raise_for_status()
    return [e.get("text") for e in response.json()["events"] if e["event"] == "user"]


async def _say_and_wait(stack: Stack, openid: str, text: str, answers: int = 1) -> list[str]:
    before = len(await _texts(stack, openid))
    await stack.say(openid, text)
    return (await stack.wait_answers(openid, before + answers))[before:]


# -- the patient is not left talking to a wall -------------------------------------------------------


async def test_a_waiting_patient_is_acknowledged_at_most_once_per_interval_and_a_repeated_request_always(
    stack: Stack, db: Database, admin: ConsoleClient
) -> None:
    openid = await stack.consented_patient()
    await _ask_for_a_person(stack, openid, "转人工")
    conversation_id = await _conversation_id(db, openid)
    item = await _item(admin, conversation_id)
    assert item["status"] == "queued", "nobody in the team is online: the chat waits"
    ahead = await _ahead_of(admin, item)

    # The first message while waiting is acknowledged with the place in the queue ...
    [ack] = await _say_and_wait(stack, openid, "还要等多久？")
    assert ack == f"{RECEIVED}，工作人员会看到。您前面还有 {ahead} 位，请稍候。"

    # ... the next one, within WAITING_ACK_SECONDS, is not: the marker (a repeated 转人工, which is
    # always acknowledged) is processed after it, so an acknowledgement would be out by then.
    seen = len(await _texts(stack, openid))
    await stack.say(openid, "好的，我先去缴费")
    marked = await send_marker_and_wait(stack, openid, text="转人工", db=db)
    assert marked.others[seen:] == []
    [repeated] = marked.answers
    assert repeated.startswith(REPEATED) and f"前面还有 {ahead} 位" in repeated

    # A repeated request is not a second handoff: one escalation, one wait notice, the bot never
    # heard it; and nothing the patient sent is lost: every message is in the console.
    escalations = await _escalations(db, conversation_id)
    assert [e.id for e in escalations] == [item["escalation_id"]]
    assert sum(WAIT_NOTICE in text for text in await _texts(stack, openid)) == 1
    assert await _bot_heard(stack, openid) == ["转人工"]
    view = await _view(admin, conversation_id)
    said = [(m["sender_type"], m["content"]) for m in view["messages"]][-5:]
    assert said == [
        ("patient", "还要等多久？"),
        ("system", ack),
        ("patient", "好的，我先去缴费"),
        ("patient", "转人工"),
        ("system", repeated),
    ]


async def test_once_an_agent_answers_the_system_stays_out_of_the_chat(
    stack: Stack, db: Database, admin: ConsoleClient
) -> None:
    openid = await stack.consented_patient()
    await _ask_for_a_person(stack, openid)
    conversation_id = await _conversation_id(db, openid)
    before = len(await _texts(stack, openid))
    reply = "您好，我是客服小王，请讲。"
    sent = await admin.post(f"/api/console/conversations/{conversation_id}/messages", {"text": reply})
    assert sent.status_code == 201, sent.text
    assert (await stack.wait_answers(openid, before + 1))[before:] == [reply]
    # The agent is talking with the patient: even a repeated 转人工 is left to them.
    marked = await send_marker_and_wait(stack, openid, text="转人工", db=db)
    assert marked.answers == [] and marked.others[before:] == [reply]


@contextmanager
def _staff_off_duty(stack: Stack) -> Iterator[str]:
    """The stack's worker replaced by one whose staff work only on a day two days from now, then
    the real one again. Yields the staffed hours that worker tells patients."""
    assert stack.worker is not None
    day = (datetime.now(ZoneInfo("Asia/Shanghai")) + timedelta(days=2)).isoweekday()
    stack.worker.stop()
    stack.start_worker(STAFFED_HOURS="08:00-20:00", STAFFED_DAYS=str(day))
    try:
        yield "08:00-20:00"
    finally:
        stack.worker.stop()
        stack.start_worker()


async def test_outside_staffed_hours_the_acknowledgement_says_when_staff_reply(
    stack: Stack, db: Database
) -> None:
    openid = await stack.consented_patient()
    with _staff_off_duty(stack) as hours:
        notice = await _say_and_wait(stack, openid, "转人工", answers=1)
        assert any("非工作时间" in text for text in notice), notice
        [ack] = await _say_and_wait(stack, openid, "有人吗")
    assert ack.startswith(RECEIVED) and f"非工作时间（人工服务时间 {hours}）" in ack
    assert re.search(r"工作人员将在(后天|周.) 08:00上班后尽快回复您", ack), ack
    assert "前面还有" not in ack


# -- reasons and priorities ------------------------------------------------------------------------


async def test_a_person_asked_for_a_complaint_is_the_complaints_office_with_high_priority(
    stack: Stack, db: Database, admin: ConsoleClient
) -> None:
    """我要投诉 alone is taken down by the bot (tests/e2e/test_complaint_intake.py); asking for a
    person about one still hands over, to the complaints office."""
    openid = await stack.consented_patient()
    await _ask_for_a_person(stack, openid, "帮我转人工，我要投诉")
    item = await _item(admin, await _conversation_id(db, openid))
    assert (item["reason"], item["priority"], item["team"]["name"]) == ("complaint", "high", "投诉办公室")


async def test_asking_for_a_person_in_the_middle_of_booking_says_booking_went_wrong(
    stack: Stack, db: Database, admin: ConsoleClient
) -> None:
    openid = await stack.consented_patient()
    answers = await stack.converse(openid, "我想挂个号")
    assert "登记就诊人" in answers[-1], answers
    await _ask_for_a_person(stack, openid, "转人工")
    item = await _item(admin, await _conversation_id(db, openid))
    assert (item["reason"], item["priority"]) == ("booking_help", "normal")


async def test_an_emergency_while_waiting_is_advised_and_makes_the_escalation_urgent_and_marked(
    stack: Stack, db: Database, admin: ConsoleClient
) -> None:
    openid = await stack.consented_patient()
    await _ask_for_a_person(stack, openid)
    conversation_id = await _conversation_id(db, openid)
    assert (await _item(admin, conversation_id))["priority"] == "normal"

    await stack.say(openid, "我爸突然胸痛，喘不上气")
    marked = await send_marker_and_wait(stack, openid, db=db)
    assert marked.others[-1].startswith("这可能是急症，请立即拨打120"), marked.others
    item = await _item(admin, conversation_id)
    assert item["priority"] == "urgent"
    created = datetime.fromisoformat(item["created_at"])
    assert datetime.fromisoformat(item["sla_due_at"]) <= created + timedelta(seconds=120)
    view = await _view(admin, conversation_id)
    marks = {m["content"]: m["red_flags"] for m in view["messages"] if m["sender_type"] == "patient"}
    assert marks["我爸突然胸痛，喘不上气"] == ["胸痛伴出汗、气短或放射到手臂/下巴", "严重呼吸困难"]
    assert marks["转人工"] == []


async def test_a_negated_red_flag_leaves_the_escalation_as_it_was(
    stack: Stack, db: Database, admin: ConsoleClient
) -> None:
    openid = await stack.consented_patient()
    await _ask_for_a_person(stack, openid)
    conversation_id = await _conversation_id(db, openid)
    await stack.say(openid, "没有胸痛，就是咳嗽")
    marked = await send_marker_and_wait(stack, openid, db=db)
    assert not any("120" in text for text in marked.others[-2:]), marked.others
    assert (await _item(admin, conversation_id))["priority"] == "normal"
    view = await _view(admin, conversation_id)
    assert all(m["red_flags"] == [] for m in view["messages"])


# -- consent refused ------------------------------------------------------------------------------


async def test_after_declining_the_patient_is_given_the_service_phone_and_can_still_reach_people(
    stack: Stack, db: Database, admin: ConsoleClient
) -> None:
    openid = new_openid()
    await stack.post(stack.build("subscribe", openid))
    await stack.wait_answers(openid, 2)
    [declined] = await stack.converse(openid, "不同意")
    assert f"请拨打医院服务电话 {SERVICE_PHONE}" in declined and "演示" in SERVICE_PHONE
    [still] = await stack.converse(openid, "你好")
    assert SERVICE_PHONE in still

    # Asking for a person reaches people, who talk with the patient as they are; the bot never
    # hears a word.
    await _ask_for_a_person(stack, openid, "人工")
    item = await _item(admin, await _conversation_id(db, openid))
    assert (item["reason"], item["priority"]) == ("consent_declined", "normal")
    async with db.sessions() as session:
        stored = await session.scalar(
            select(func.count())
            .select_from(Message)
            .join(Conversation, Message.conversation_id == Conversation.id)
            .join(WeChatIdentity, Conversation.identity_id == WeChatIdentity.id)
            .where(WeChatIdentity.openid == openid, Message.content == "人工")
        )
    assert stored == 1
    assert await _bot_heard(stack, openid) == []
