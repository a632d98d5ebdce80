"""Human handoff through the real stack: a patient asks for a person (or the bot fails twice), the chat
leaves the bot, staff work it in the console API, and resolving it gives it back to the bot.

Runs twice: on SQLite and on PostgreSQL. Everything is real except the WeChat API (the sandbox).
The stack is shared with other tests, so every check filters by this test's own patient or
conversation, and every staff member a test puts online goes offline again when it ends.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import func, select
from websockets.asyncio.client import ClientConnection, connect

from crm_backend.config import SANDBOX_APPID, Settings
from crm_backend.conversations.models import Conversation, Message, SenderType
from crm_backend.database.core import Database
from crm_backend.escalations.models import Escalation
from crm_backend.escalations.presence import mark_absent_staff
from crm_backend.patients.models import WeChatIdentity
from crm_backend.patients.service import rasa_sender
from crm_backend.runtime import Runtime
from tests.support.console import ConsoleClient
from tests.support.settle import MARKER_TEXT, send_marker_and_wait
from tests.support.stack import ADMIN_PASSWORD, ADMIN_USERNAME, Stack

SERVICE_TEAM = "客服中心"
NURSING_TEAM = "护理团队"
WAIT_NOTICE = "已为您转接人工服务"
HANDING_OVER = "这就为您转接人工服务"
RATING_QUESTION = "请为本次服务打分"
RATING_RANGE = "请回复 1 到 5 之间的数字"
RATING_THANKS = "感谢您的评价"
GIBBERISH = ("阿斯顿发个噶", "asdfghjkl")


# -- helpers -------------------------------------------------------------------------------------


async def _eventually(
    check: Callable[[], Awaitable[Any]], what: str, timeout: float = 15, interval: float = 0.2
) -> Any:
    """Poll `check` until it returns something truthy; return that."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(interval)


async def _texts(stack: Stack, openid: str) -> list[str]:
    return await asyncio.to_thread(stack.wechat.texts, openid)


async def _conversation_id(db: Database, openid: str) -> int:
    async with db.sessions() as session:
        conversation_id = await session.scalar(
            select(Conversation.id)
            .join(WeChatIdentity, Conversation.identity_id == WeChatIdentity.id)
            .where(WeChatIdentity.openid == openid)
            .order_by(Conversation.id.desc())
            .limit(1)
        )
    assert conversation_id is not None, f"no conversation for {openid}"
    return conversation_id


async def _ask_for_a_person(stack: Stack, openid: str, text: str = "转人工") -> list[str]:
    """The patient asks for a person; returns what the patient was sent in answer (the wait notice)."""
    before = len(await _texts(stack, openid))
    await stack.say(openid, text)
    answers = (await stack.wait_answers(openid, before + 1))[before:]
    assert any(WAIT_NOTICE in answer for answer in answers), answers
    return answers


async def _item(client: ConsoleClient, conversation_id: int, timeout: float = 15) -> dict[str, Any]:
    """The open queue item of a conversation, as `client` sees it in GET /api/console/queues."""

    async def find() -> dict[str, Any] | None:
        items = await client.queue_items()
        return next((i for i in items if i["conversation_id"] == conversation_id), None)

    return await _eventually(find, f"conversation {conversation_id} in the queue", timeout)


async def _view(client: ConsoleClient, conversation_id: int) -> dict[str, Any]:
    response = await client.get(f"/api/console/conversations/{conversation_id}")
    assert response.status_code == 200, response.text
    return response.json()


async def _rasa_tracker_paused(stack: Stack, openid: str) -> bool:
    # The tracker the REST channel keeps for this patient (Rasa does not decode the path: an
    # escaped ':' would read another one).
    sender = quote(rasa_sender(SANDBOX_APPID, openid), safe=":")
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.get(f"http://127.0.0.1:{stack.rasa.rasa_port}/conversations/{sender}/tracker")
    response.raise_for_status()
    tracker = response.json()
    # The patient's own tracker: it holds what they said to the bot before people took over.
    assert any(event["event"] == "user" for event in tracker["events"]), "not the patient's tracker"
    return bool(tracker["paused"])


class Staffing:
    """Creates staff through the admin API and logs them in; puts them offline when the test ends."""

    def __init__(self, stack: Stack, admin: ConsoleClient) -> None:
        self.stack = stack
        self.admin = admin
        self.clients: list[ConsoleClient] = []

    async def team(self, name: str) -> int:
        teams = (await self.admin.get("/api/console/admin/teams")).json()
        found = next((t["id"] for t in teams if t["name"] == name), None)
        if found is not None:
            return int(found)
        response = await self.admin.post("/api/console/admin/teams", {"name": name})
        if response.status_code == 409:  # created a moment ago by an escalation
            return await self.team(name)
        assert response.status_code == 200, response.text
        return int(response.json()["id"])

    async def member(
        self, *team_names: str, role: str = "agent", capacity: int = 3, online: bool = False
    ) -> ConsoleClient:
        team_ids = [await self.team(name) for name in team_names]
        username = f"{role}-{uuid.uuid4().hex[:10]}"
        password = f"pw-{uuid.uuid4().hex}"
        response = await self.admin.post(
            "/api/console/admin/staff",
            {
                "username": username,
                "display_name": f"测试{role}{username[-4:]}",
                "password": password,
                "role": role,
                "capacity": capacity,
                "team_ids": team_ids,
            },
        )
        assert response.status_code == 200, response.text
        client = ConsoleClient(self.stack.url)
        self.clients.append(client)
        await client.login(username, password)
        if online:
            await self.presence(client, "online")
        return client

    async def presence(self, client: ConsoleClient, presence: str) -> None:
        response = await client.put("/api/console/me/presence", {"presence": presence})
        assert response.status_code == 200, response.text
        assert response.json()["presence"] == presence

    async def close(self) -> None:
        for client in self.clients:
            try:
                await client.put("/api/console/me/presence", {"presence": "offline"})
            finally:
                await client.aclose()


@pytest.fixture
async def admin(stack: Stack) -> AsyncIterator[ConsoleClient]:
    client = ConsoleClient(stack.url)
    await client.login(ADMIN_USERNAME, ADMIN_PASSWORD)
    yield client
    await client.aclose()


@pytest.fixture
async def staffing(stack: Stack, admin: ConsoleClient) -> AsyncIterator[Staffing]:
    staffing = Staffing(stack, admin)
    yield staffing
    await staffing.close()


# -- escalation triggers -------------------------------------------------------------------------


async def test_asking_for_a_person_queues_the_chat_and_silences_the_bot(
    stack: Stack, db: Database, admin: ConsoleClient
) -> None:
    openid = await stack.consented_patient()
    greeting = await stack.converse(openid, "你好")
    assert greeting

    notice = await _ask_for_a_person(stack, openid, "转人工")
    assert any("预计等待" in text for text in notice), notice

    conversation_id = await _conversation_id(db, openid)
    item = await _item(admin, conversation_id)
    assert item["reason"] == "patient_request"
    assert item["team"]["name"] == SERVICE_TEAM
    assert item["status"] in ("queued", "assigned")
    assert item["waiting_seconds"] >= 0 and item["sla_due_at"]
    assert await _rasa_tracker_paused(stack, openid)

    # People have the chat now: the bot stays silent, the message goes to the console.
    before = len(await _texts(stack, openid))
    question = "我胸口有点闷，想问一下要不要紧"
    await stack.say(openid, question)

    async def shown_in_console() -> bool:
        view = await _view(admin, conversation_id)
        return any(m["content"] == question for m in view["messages"])

    await _eventually(shown_in_console, "the patient's message in the conversation view")
    # The patient's next message is processed after this one: once it is, an answer from the bot
    # to either would have been sent. The system acknowledged the first (nobody has answered yet;
    # tests/e2e/test_waiting.py), and only once.
    marked = await send_marker_and_wait(stack, openid, db=db)
    assert marked.answers == [] and len(marked.others[before:]) == 1
    assert marked.others[before].startswith("您的消息已收到")

    view = await _view(admin, conversation_id)
    senders = [(m["direction"], m["sender_type"]) for m in view["messages"]]
    assert ("out", "bot") in senders, "the bot's earlier turns are part of the history"
    assert ("in", "patient") in senders
    assert any(m["sender_type"] == "system" and WAIT_NOTICE in m["content"] for m in view["messages"])
    last_three = [(m["content"], m["sender_type"]) for m in view["messages"][-3:]]
    assert last_three == [(question, "patient"), (marked.others[before], "system"), (MARKER_TEXT, "patient")]
    assert view["escalation"]["reason"] == "patient_request"
    assert view["conversation"]["status"] == "escalated"


async def test_asking_for_a_nurse_goes_to_the_nursing_team(
    stack: Stack, db: Database, admin: ConsoleClient
) -> None:
    openid = await stack.consented_patient()
    await _ask_for_a_person(stack, openid, "找护士")
    item = await _item(admin, await _conversation_id(db, openid))
    assert item["team"]["name"] == NURSING_TEAM
    assert item["reason"] == "nursing_request"


async def test_two_unclear_messages_in_a_row_hand_the_chat_to_people(
    stack: Stack, db: Database, admin: ConsoleClient
) -> None:
    openid = await stack.consented_patient()
    first = await stack.converse(openid, GIBBERISH[0])
    assert first and all(WAIT_NOTICE not in text for text in first), "one unclear message is not enough"

    before = len(await _texts(stack, openid))
    await stack.say(openid, GIBBERISH[1])
    answers = (await stack.wait_answers(openid, before + 2))[before:]
    assert any(HANDING_OVER in text for text in answers), answers
    assert any(WAIT_NOTICE in text for text in answers), answers

    item = await _item(admin, await _conversation_id(db, openid))
    assert item["reason"] == "bot_fallback"
    assert item["team"]["name"] == SERVICE_TEAM
    assert await _rasa_tracker_paused(stack, openid)


# -- working the chat ----------------------------------------------------------------------------


async def test_agent_reply_reaches_the_patient_once_and_notes_never_do(
    stack: Stack, db: Database, admin: ConsoleClient
) -> None:
    openid = await stack.consented_patient()
    await _ask_for_a_person(stack, openid)
    conversation_id = await _conversation_id(db, openid)
    item = await _item(admin, conversation_id)

    claimed = await admin.post(f"/api/console/escalations/{item['escalation_id']}/claim")
    assert claimed.status_code == 200, claimed.text
    assert claimed.json()["status"] == "assigned"
    assert claimed.json()["assigned_to"]["id"] == admin.me["id"]

    note = "内部备注：患者情绪焦虑，先安抚再问症状"
    noted = await admin.post(f"/api/console/conversations/{conversation_id}/notes", {"text": note})
    assert noted.status_code == 201, noted.text
    assert noted.json()["author"]["id"] == admin.me["id"]

    before = len(await _texts(stack, openid))
    reply = "您好，我是客服小李，请问哪里不舒服？"
    sent = await admin.post(f"/api/console/conversations/{conversation_id}/messages", {"text": reply})
    assert sent.status_code == 201, sent.text
    assert sent.json()["sender_type"] == "agent" and sent.json()["content"] == reply

    await stack.wait_answers(openid, before + 1)
    # Once the patient's next message is processed and nothing to them is pending or being sent,
    # a second delivery of the reply (or the note) would have arrived.
    marked = await send_marker_and_wait(stack, openid, db=db)
    assert marked.answers == [] and marked.others[before:] == [reply]
    assert all(note not in text for text in marked.others)

    view = await _view(admin, conversation_id)
    assert [n["text"] for n in view["notes"]] == [note]
    assert all(note not in m["content"] for m in view["messages"])
    mine = [m for m in view["messages"] if m["sender_type"] == "agent"]
    assert [m["content"] for m in mine] == [reply]
    assert mine[0]["agent"]["id"] == admin.me["id"]
    assert mine[0]["delivery_status"] == "sent"
    assert view["escalation"]["first_response_at"] is not None


async def test_resolving_asks_for_a_rating_and_gives_the_chat_back_to_the_bot(
    stack: Stack, db: Database, admin: ConsoleClient
) -> None:
    openid = await stack.consented_patient()
    await _ask_for_a_person(stack, openid)
    conversation_id = await _conversation_id(db, openid)
    item = await _item(admin, conversation_id)
    assert (await admin.post(f"/api/console/escalations/{item['escalation_id']}/claim")).status_code == 200
    before = len(await _texts(stack, openid))
    answer = "已为您登记，明天护士会电话联系您。"
    reply = await admin.post(f"/api/console/conversations/{conversation_id}/messages", {"text": answer})
    assert reply.status_code == 201
    assert (await stack.wait_answers(openid, before + 1))[before:] == [answer]

    before = len(await _texts(stack, openid))
    resolved = await admin.post(f"/api/console/conversations/{conversation_id}/resolve")
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["status"] == "resolved"
    question = (await stack.wait_answers(openid, before + 1))[before:]
    assert any(RATING_QUESTION in text and "1 到 5" in text for text in question), question
    assert not await _rasa_tracker_paused(stack, openid)
    items = await admin.queue_items()
    assert all(i["conversation_id"] != conversation_id for i in items), "a resolved chat leaves the queue"

    assert await stack.converse(openid, "9") == [f"{RATING_RANGE}为本次人工服务打分。"]
    thanks = await stack.converse(openid, "5")
    assert len(thanks) == 1 and RATING_THANKS in thanks[0]

    async with db.sessions() as session:
        escalation = await session.get(Escalation, item["escalation_id"])
        assert escalation is not None
        assert escalation.satisfaction == 5
    assert (await _view(admin, conversation_id))["escalation"]["satisfaction"] == 5

    # The bot has the chat again.
    hello = await stack.converse(openid, "你好")
    assert hello and all(RATING_THANKS not in t and RATING_RANGE not in t for t in hello)
    async with db.sessions() as session:
        last = await session.scalar(
            select(Message).where(Message.conversation_id == conversation_id).order_by(Message.id.desc())
        )
    assert last is not None and last.sender_type == SenderType.BOT and last.content == hello[-1]


async def test_withdrawing_consent_while_staff_have_the_chat_is_recorded(
    stack: Stack, db: Database, admin: ConsoleClient
) -> None:
    from crm_backend.consent.models import ConsentRecord

    openid = await stack.consented_patient()
    await _ask_for_a_person(stack, openid)
    conversation_id = await _conversation_id(db, openid)
    answers = await stack.converse(openid, "撤回同意")
    assert len(answers) == 1 and "撤回" in answers[0]
    async with db.sessions() as session:
        granted = (
            await session.scalars(
                select(ConsentRecord.granted)
                .join(WeChatIdentity, ConsentRecord.identity_id == WeChatIdentity.id)
                .where(WeChatIdentity.openid == openid)
                .order_by(ConsentRecord.id)
            )
        ).all()
    assert granted == [True, False]
    # The staff see the withdrawal in the chat as well.
    view = await _view(admin, conversation_id)
    assert any(m["content"] == "撤回同意" and m["sender_type"] == "patient" for m in view["messages"])


async def test_two_agents_claiming_at_once_exactly_one_wins(
    stack: Stack, db: Database, admin: ConsoleClient, staffing: Staffing
) -> None:
    # Offline, so auto-assignment leaves the chat in the queue for them to race for.
    first = await staffing.member(SERVICE_TEAM)
    second = await staffing.member(SERVICE_TEAM)
    openid = await stack.consented_patient()
    await _ask_for_a_person(stack, openid)
    conversation_id = await _conversation_id(db, openid)
    item = await _item(first, conversation_id)
    assert item["status"] == "queued"

    path = f"/api/console/escalations/{item['escalation_id']}/claim"
    responses = await asyncio.gather(first.post(path), second.post(path))
    assert sorted(r.status_code for r in responses) == [200, 409], [r.text for r in responses]
    winner = first if responses[0].status_code == 200 else second
    loser = second if winner is first else first

    after = await _item(admin, conversation_id)
    assert after["status"] == "assigned"
    assert after["assigned_to"]["id"] == winner.me["id"]
    # The loser cannot answer the winner's chat either.
    refused = await loser.post(f"/api/console/conversations/{conversation_id}/messages", {"text": "您好"})
    assert refused.status_code == 409


async def test_online_agents_get_new_chats_round_robin(
    stack: Stack, db: Database, admin: ConsoleClient, staffing: Staffing
) -> None:
    patients = [await stack.consented_patient() for _ in range(3)]
    agents = [await staffing.member(SERVICE_TEAM, capacity=20, online=True) for _ in range(2)]
    ids = {agent.me["id"] for agent in agents}

    async def service_queue_drained() -> bool:
        items = await admin.queue_items()
        return not any(i["team"]["name"] == SERVICE_TEAM and i["status"] == "queued" for i in items)

    # Chats other tests left waiting are handed out first (oldest first); let that finish.
    await _eventually(service_queue_drained, "the waiting chats to be handed out", timeout=20)

    owners: list[int] = []
    for openid in patients:
        await _ask_for_a_person(stack, openid)
        conversation_id = await _conversation_id(db, openid)

        async def assigned(conversation_id: int = conversation_id) -> dict[str, Any] | None:
            item = await _item(admin, conversation_id)
            return item if item["status"] == "assigned" else None

        item = await _eventually(assigned, "the chat to be assigned", timeout=10)
        assert item["assigned_to"]["id"] in ids
        owners.append(item["assigned_to"]["id"])
        # The agent sees it as theirs.
        owner = next(a for a in agents if a.me["id"] == item["assigned_to"]["id"])
        assert (await _item(owner, conversation_id))["assigned_to"]["id"] == owner.me["id"]

    assert owners[0] != owners[1] and owners[2] == owners[0], owners


async def test_an_agent_works_only_with_their_own_teams(
    stack: Stack, db: Database, admin: ConsoleClient, staffing: Staffing
) -> None:
    agent = await staffing.member(SERVICE_TEAM)
    nurse_patient = await stack.consented_patient()
    own_patient = await stack.consented_patient()
    await _ask_for_a_person(stack, nurse_patient, "找护士")
    await _ask_for_a_person(stack, own_patient, "转人工")
    nursing_conversation = await _conversation_id(db, nurse_patient)
    own_conversation = await _conversation_id(db, own_patient)
    nursing_item = await _item(admin, nursing_conversation)
    assert nursing_item["team"]["name"] == NURSING_TEAM

    # The agent sees their own team's chat, and nothing of the nursing team.
    await _item(agent, own_conversation)
    queues = (await agent.get("/api/console/queues")).json()
    assert [q["team"]["name"] for q in queues] == [SERVICE_TEAM]
    assert all(i["conversation_id"] != nursing_conversation for q in queues for i in q["items"])

    conversation = await agent.get(f"/api/console/conversations/{nursing_conversation}")
    assert conversation.status_code == 403
    patient = await agent.get(f"/api/console/patients/{nursing_item['patient']['id']}")
    assert patient.status_code == 403
    claim = await agent.post(f"/api/console/escalations/{nursing_item['escalation_id']}/claim")
    assert claim.status_code == 403
    reply = await agent.post(f"/api/console/conversations/{nursing_conversation}/messages", {"text": "hi"})
    assert reply.status_code == 403

    for path in ("/api/console/admin/staff", "/api/console/admin/teams", "/api/console/audit"):
        assert (await agent.get(path)).status_code == 403, path
    created = await agent.post(
        "/api/console/admin/staff",
        {"username": "sneaky", "display_name": "x", "password": "p" * 12, "role": "admin"},
    )
    assert created.status_code == 403
    canned = await agent.post("/api/console/canned-replies", {"title": "t", "text": "x"})
    assert canned.status_code == 403


async def test_staff_views_are_audited_and_only_supervisors_read_the_log(
    stack: Stack, db: Database, admin: ConsoleClient, staffing: Staffing
) -> None:
    openid = await stack.consented_patient()
    await _ask_for_a_person(stack, openid)
    conversation_id = await _conversation_id(db, openid)
    item = await _item(admin, conversation_id)
    patient_id = item["patient"]["id"]

    await _view(admin, conversation_id)
    assert (await admin.get(f"/api/console/patients/{patient_id}")).status_code == 200

    supervisor = await staffing.member(role="supervisor")
    log = await supervisor.get("/api/console/audit", patient_id=patient_id)
    assert log.status_code == 200, log.text
    entries = log.json()
    by_action = {(e["action"], e["object_id"]): e for e in entries if e["staff_id"] == admin.me["id"]}
    for key in (("conversation.view", str(conversation_id)), ("patient.view", str(patient_id))):
        assert key in by_action, entries
        entry = by_action[key]
        assert entry["staff_username"] == ADMIN_USERNAME
        assert entry["ip"] == "127.0.0.1"
        assert entry["patient_id"] == patient_id
        assert entry["at"]
    # Newest first.
    assert [e["id"] for e in entries] == sorted((e["id"] for e in entries), reverse=True)

    # Nobody can change or delete an entry: there is no such endpoint.
    entry_id = entries[0]["id"]
    for method in ("DELETE", "PATCH", "PUT"):
        response = await admin.http.request(
            method, f"/api/console/audit/{entry_id}", headers={"X-CSRF-Token": admin.csrf}, json={}
        )
        assert response.status_code in (404, 405), (method, response.status_code)
    response = await admin.http.request("DELETE", "/api/console/audit", headers={"X-CSRF-Token": admin.csrf})
    assert response.status_code == 405


async def test_a_reply_wechat_refuses_is_shown_as_undeliverable(
    stack: Stack, db: Database, admin: ConsoleClient
) -> None:
    openid = await stack.consented_patient()
    await _ask_for_a_person(stack, openid)
    conversation_id = await _conversation_id(db, openid)
    item = await _item(admin, conversation_id)
    assert (await admin.post(f"/api/console/escalations/{item['escalation_id']}/claim")).status_code == 200

    before = len(await _texts(stack, openid))
    stack.wechat.fault(api="custom_send", errcode=45015, times=1)
    reply = "您好，这条消息会超出 48 小时回复窗口"
    sent = await admin.post(f"/api/console/conversations/{conversation_id}/messages", {"text": reply})
    assert sent.status_code == 201

    async def settled() -> dict[str, Any] | None:
        view = await _view(admin, conversation_id)
        mine = next(m for m in view["messages"] if m["content"] == reply)
        return mine if mine["delivery_status"] != "pending" else None

    message = await _eventually(settled, "the delivery attempt")
    assert message["delivery_status"] == "undeliverable"
    assert "45015" in (message["delivery_error"] or "")
    # Kept as undeliverable, never retried: nothing reaches the patient, the bot stays silent too.
    marked = await send_marker_and_wait(stack, openid, db=db)
    assert marked.answers == [] and marked.others[before:] == []


async def test_transfer_to_a_team_and_to_a_colleague_with_a_note(
    stack: Stack, db: Database, admin: ConsoleClient, staffing: Staffing
) -> None:
    agent = await staffing.member(SERVICE_TEAM)
    nurse = await staffing.member(NURSING_TEAM)
    openid = await stack.consented_patient()
    await _ask_for_a_person(stack, openid, "转人工")
    conversation_id = await _conversation_id(db, openid)
    item = await _item(agent, conversation_id)
    assert (await agent.post(f"/api/console/escalations/{item['escalation_id']}/claim")).status_code == 200

    # To a team: the chat waits in the nursing queue, with the reason written down for them.
    before = len(await _texts(stack, openid))
    note = "伤口换药的问题，请护理团队跟进"
    nursing_id = await staffing.team(NURSING_TEAM)
    moved = await agent.post(
        f"/api/console/conversations/{conversation_id}/transfer", {"team_id": nursing_id, "note": note}
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["team"]["name"] == NURSING_TEAM
    assert moved.json()["status"] == "queued" and moved.json()["assigned_to"] is None
    in_nursing = await _item(nurse, conversation_id)
    assert in_nursing["team"]["id"] == nursing_id
    assert any(note in n["text"] for n in (await _view(nurse, conversation_id))["notes"])

    # To a colleague: a named nurse has it and can answer it.
    handed = await admin.post(
        f"/api/console/conversations/{conversation_id}/transfer", {"staff_id": nurse.me["id"]}
    )
    assert handed.status_code == 200, handed.text
    assert handed.json()["assigned_to"]["id"] == nurse.me["id"]
    answer = "您好，我是护理团队的护士，请问伤口现在什么情况？"
    sent = await nurse.post(f"/api/console/conversations/{conversation_id}/messages", {"text": answer})
    assert sent.status_code == 201, sent.text
    received = (await stack.wait_answers(openid, before + 1))[before:]
    assert received == [answer], "the transfer note never reaches the patient"


async def test_a_colleague_in_another_team_can_work_a_chat_transferred_to_them(
    stack: Stack, db: Database, staffing: Staffing
) -> None:
    agent = await staffing.member(SERVICE_TEAM)
    nurse = await staffing.member(NURSING_TEAM)
    openid = await stack.consented_patient()
    await _ask_for_a_person(stack, openid, "转人工")
    conversation_id = await _conversation_id(db, openid)
    item = await _item(agent, conversation_id)
    assert (await agent.post(f"/api/console/escalations/{item['escalation_id']}/claim")).status_code == 200

    service_id = await staffing.team(SERVICE_TEAM)
    mismatch = await agent.post(
        f"/api/console/conversations/{conversation_id}/transfer",
        {"staff_id": nurse.me["id"], "team_id": service_id},
    )
    assert mismatch.status_code == 400, "a named colleague outside the named team could not see the chat"
    handed = await agent.post(
        f"/api/console/conversations/{conversation_id}/transfer",
        {"staff_id": nurse.me["id"], "note": "请护士看一下"},
    )
    assert handed.status_code == 200, handed.text
    assert handed.json()["assigned_to"]["id"] == nurse.me["id"]
    # The nurse finds it in their queues and may open and answer it.
    assert (await _item(nurse, conversation_id))["assigned_to"]["id"] == nurse.me["id"]
    await _view(nurse, conversation_id)
    sent = await nurse.post(f"/api/console/conversations/{conversation_id}/messages", {"text": "您好"})
    assert sent.status_code == 201, sent.text


async def test_supervisors_keep_canned_replies_that_agents_use(stack: Stack, staffing: Staffing) -> None:
    supervisor = await staffing.member(role="supervisor")
    agent = await staffing.member(SERVICE_TEAM)
    title = f"门诊时间-{uuid.uuid4().hex[:6]}"
    text = "门诊时间为周一至周五 8:00-17:00，周末上午 8:00-12:00。"
    created = await supervisor.post("/api/console/canned-replies", {"title": title, "text": text})
    assert created.status_code == 201, created.text
    reply_id = created.json()["id"]
    listed = (await agent.get("/api/console/canned-replies")).json()
    assert {"id": reply_id, "title": title, "text": text} in listed
    assert (
        await agent.http.delete(
            f"/api/console/canned-replies/{reply_id}", headers={"X-CSRF-Token": agent.csrf}
        )
    ).status_code == 403
    deleted = await supervisor.http.delete(
        f"/api/console/canned-replies/{reply_id}", headers={"X-CSRF-Token": supervisor.csrf}
    )
    assert deleted.status_code == 204
    assert all(r["id"] != reply_id for r in (await agent.get("/api/console/canned-replies")).json())


# -- real time -----------------------------------------------------------------------------------


async def _socket(stack: Stack, client: ConsoleClient, since: str | None = None) -> ClientConnection:
    cookie = client.http.cookies.get("cb_session")
    assert cookie, "logged in"
    url = stack.url.replace("http://", "ws://") + "/api/console/ws"
    if since:
        url += f"?since={quote(since)}"
    return await connect(url, additional_headers={"Cookie": f"cb_session={cookie}"}, open_timeout=10)


async def _events_until(
    socket: ClientConnection, done: Callable[[dict[str, Any]], bool], timeout: float = 20
) -> list[dict[str, Any]]:
    """Every event received up to and including the first one `done` accepts."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"timed out; received {[e.get('type') for e in seen]}")
        try:
            event = json.loads(await asyncio.wait_for(socket.recv(), remaining))
        except TimeoutError:
            raise AssertionError(f"timed out; received {[e.get('type') for e in seen]}") from None
        seen.append(event)
        if done(event):
            return seen


async def test_console_events_arrive_live_and_are_caught_up_after_a_reconnect(
    stack: Stack, db: Database, admin: ConsoleClient
) -> None:
    openid = await stack.consented_patient()
    socket = await _socket(stack, admin)
    try:
        await _events_until(socket, lambda e: e["type"] == "ready")
        await _ask_for_a_person(stack, openid)
        conversation_id = await _conversation_id(db, openid)
        events = await _events_until(
            socket,
            lambda e: e["type"] == "escalation.created" and e.get("conversation_id") == conversation_id,
        )
    finally:
        await socket.close()
    created = events[-1]
    assert created["escalation"]["reason"] == "patient_request"
    assert created["escalation"]["status"] == "queued"
    assert created["id"]

    # While the page is away: the patient writes and someone claims the chat.
    question = "请问还要等多久？"
    await stack.say(openid, question)

    async def stored() -> bool:
        view = await _view(admin, conversation_id)
        return any(m["content"] == question for m in view["messages"])

    await _eventually(stored, "the patient's message")
    item = await _item(admin, conversation_id)
    assert (await admin.post(f"/api/console/escalations/{item['escalation_id']}/claim")).status_code == 200

    socket = await _socket(stack, admin, since=created["id"])
    try:
        missed = await _events_until(socket, lambda e: e["type"] == "ready")
    finally:
        await socket.close()
    mine = [e for e in missed if e.get("conversation_id") == conversation_id]
    assert all(e["id"] != created["id"] for e in missed), "catch-up starts after the given id"
    kinds = [e["type"] for e in mine]
    assert any(e["type"] == "message.created" and e["message"]["content"] == question for e in mine), kinds
    claims = [e["escalation"] for e in mine if e["type"] == "escalation.updated"]
    assert any(c["status"] == "assigned" and c["assigned_to"]["id"] == admin.me["id"] for c in claims), kinds
    ids = [e["id"] for e in missed if e["type"] != "ready"]
    assert ids == sorted(ids, key=lambda i: tuple(int(p) for p in i.split("-"))), "oldest first"


async def test_console_events_of_other_teams_are_not_sent_to_an_agent(
    stack: Stack, db: Database, staffing: Staffing
) -> None:
    nurse = await staffing.member(NURSING_TEAM)
    openid = await stack.consented_patient()
    other = await stack.consented_patient()
    socket = await _socket(stack, nurse)
    try:
        await _events_until(socket, lambda e: e["type"] == "ready")
        await _ask_for_a_person(stack, openid, "转人工")  # the service team's
        await _ask_for_a_person(stack, other, "找护士")  # the nurse's own team
        nursing_conversation = await _conversation_id(db, other)
        events = await _events_until(
            socket,
            lambda e: e["type"] == "escalation.created" and e.get("conversation_id") == nursing_conversation,
        )
    finally:
        await socket.close()
    service_conversation = await _conversation_id(db, openid)
    assert all(e.get("conversation_id") != service_conversation for e in events)
    own_teams = {t["id"] for t in nurse.me["teams"]}
    assert all(e["team_id"] in own_teams for e in events if e.get("team_id") is not None)


async def test_an_agent_who_closes_the_console_without_logging_out_becomes_away(
    stack: Stack, staffing: Staffing
) -> None:
    agent = await staffing.member(SERVICE_TEAM, online=True)
    socket = await _socket(stack, agent)
    try:
        await _events_until(socket, lambda e: e["type"] == "ready")
        opened = time.time()
        # An open page keeps refreshing its mark: wait until it has done so a whole gone window
        # (CONSOLE_GONE_AFTER_SECONDS) after it opened; the worker's job would mark a page
        # without heartbeats away by then.
        settings = Settings(
            DATABASE_URL=stack.database_url,
            REDIS_URL=stack.redis_url,
            CONSOLE_GONE_AFTER_SECONDS=stack.env()["CONSOLE_GONE_AFTER_SECONDS"],
        )
        gone_after = settings.console_gone_after_seconds
        runtime = Runtime.create(settings)
        try:

            async def refreshed_after_a_window() -> bool:
                seen = await runtime.redis.zscore(settings.key("console", "open"), str(agent.me["id"]))
                return seen is not None and seen >= opened + gone_after

            await _eventually(refreshed_after_a_window, "the open page's heartbeat", timeout=20)
            # The presence job itself, run now, leaves the agent online.
            assert agent.me["id"] not in await mark_absent_staff(runtime)
        finally:
            await runtime.close()
        assert (await agent.get("/api/console/me")).json()["presence"] == "online"
    finally:
        await socket.close()

    async def away() -> bool:
        return (await agent.get("/api/console/me")).json()["presence"] == "away"

    await _eventually(away, "the agent to be marked away", timeout=20)


async def test_two_web_processes_behind_a_load_balancer_both_deliver_console_events(
    stack: Stack, db: Database
) -> None:
    """The patient's push goes through one web process; a console open on the other sees it."""
    from tests.support.stack import Process, free_port, wait_until

    port = free_port()
    assert stack.web is not None
    argv = [*stack.web.argv]
    argv[argv.index("--port") + 1] = str(port)
    second = Process(f"web-second-{stack.name}", argv, stack.env(PORT=str(port))).start()
    try:
        url = f"http://127.0.0.1:{port}"
        await asyncio.to_thread(
            wait_until, lambda: httpx.get(f"{url}/healthz").status_code == 200, 60, "web 2"
        )
        other = ConsoleClient(url)
        await other.login(ADMIN_USERNAME, ADMIN_PASSWORD)
        socket = await connect(
            url.replace("http://", "ws://") + "/api/console/ws",
            additional_headers={"Cookie": f"cb_session={other.http.cookies.get('cb_session')}"},
            open_timeout=10,
        )
        try:
            await _events_until(socket, lambda e: e["type"] == "ready")
            openid = await stack.consented_patient()
            await _ask_for_a_person(stack, openid)  # through the first web process
            conversation_id = await _conversation_id(db, openid)
            await _events_until(
                socket,
                lambda e: e["type"] == "escalation.created" and e.get("conversation_id") == conversation_id,
            )
        finally:
            await socket.close()
            await other.aclose()
    finally:
        second.stop()


HUGE_ID = "99999999999999999999"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", f"/api/console/conversations/{HUGE_ID}", None),
        ("POST", f"/api/console/conversations/{HUGE_ID}/messages", {"text": "您好"}),
        ("POST", f"/api/console/conversations/{HUGE_ID}/transfer", {"team_id": 1}),
        ("POST", "/api/console/conversations/1/transfer", {"team_id": int(HUGE_ID)}),
        ("POST", f"/api/console/escalations/{HUGE_ID}/claim", None),
        ("GET", f"/api/console/patients/{HUGE_ID}/360", None),
        ("GET", "/api/console/patients/-1", None),
    ],
    ids=["view", "reply", "transfer", "transfer-to-huge-team", "claim", "patient-360", "negative-patient"],
)
async def test_ids_out_of_the_database_s_range_are_refused_clearly(
    stack: Stack, db: Database, admin: ConsoleClient, method: str, path: str, body: dict[str, object] | None
) -> None:
    async with db.sessions() as session:
        messages_before = await session.scalar(select(func.count()).select_from(Message))
    response = await admin.http.request(method, path, json=body, headers={"X-CSRF-Token": admin.csrf})
    assert response.status_code == 400, response.text
    assert response.json()["errors"], response.text  # which field, and why
    async with db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Message)) == messages_before
