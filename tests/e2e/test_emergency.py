"""Emergencies through the real stack (webhook, worker, Rasa, action server; the WeChat API is the
sandbox): the red-flag screen sees every patient message in every state, the 120 advice goes out at
once and first, the chat goes to nursing as urgent, and the decision is kept for review. A
hypothetical and a negation are not emergencies: the bot answers them as before."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import select

from crm_backend.config import SANDBOX_APPID
from crm_backend.database.core import Database
from crm_backend.patients.service import rasa_sender
from crm_backend.triage.models import TriageDecision
from tests.e2e.test_handoff import WAIT_NOTICE, _ask_for_a_person, _conversation_id, _item, _texts, _view
from tests.support.console import ConsoleClient
from tests.support.settle import send_marker_and_wait
from tests.support.stack import ADMIN_PASSWORD, ADMIN_USERNAME, Stack, new_openid

CALL_120 = "这可能是急症，请立即拨打120"
FATHER = "我爸胸口疼得厉害还出冷汗"
INFANT = "孩子三个月发烧38度5"
#: An offer to book ("不要等待预约" in the advice says the opposite).
BOOKING_WORDS = ("挂号", "登记就诊人", "帮您预约")


@pytest.fixture
async def admin(stack: Stack) -> AsyncIterator[ConsoleClient]:
    client = ConsoleClient(stack.url)
    await client.login(ADMIN_USERNAME, ADMIN_PASSWORD)
    yield client
    await client.aclose()


async def _tracker(stack: Stack, openid: str) -> dict[str, Any]:
    sender = quote(rasa_sender(SANDBOX_APPID, openid), safe=":")
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.get(f"http://127.0.0.1:{stack.rasa.rasa_port}/conversations/{sender}/tracker")
    response.raise_for_status()
    return response.json()


async def _decisions(admin: ConsoleClient, conversation_id: int) -> list[dict[str, Any]]:
    response = await admin.get("/api/console/triage-decisions", conversation_id=conversation_id)
    assert response.status_code == 200, response.text
    return response.json()


async def test_an_emergency_for_a_father_is_answered_at_once_and_goes_to_nursing_urgent(
    stack: Stack, db: Database, admin: ConsoleClient
) -> None:
    openid = await stack.consented_patient()
    answers = await stack.converse(openid, FATHER)
    # The advice first, with what to do meanwhile, and never an appointment.
    assert answers[0].startswith(CALL_120), answers
    assert "不要自己开车" in answers[0]
    assert not any(word in text for text in answers for word in BOOKING_WORDS), answers

    conversation_id = await _conversation_id(db, openid)
    item = await _item(admin, conversation_id)
    assert (item["reason"], item["priority"], item["team"]["name"]) == ("emergency", "urgent", "护理团队")
    assert (await _tracker(stack, openid))["paused"], "the bot is silent while nursing has the chat"

    [decision] = await _decisions(admin, conversation_id)
    assert (decision["level"], decision["red_flags"], decision["source"]) == (
        "emergency",
        ["cardiac_chest_pain"],
        "chat",
    )
    assert decision["rule_version"] and decision["screen"]["patient"]
    view = await _view(admin, conversation_id)
    [said] = [m for m in view["messages"] if m["content"] == FATHER]
    assert decision["message_id"] == said["id"] and said["red_flags"]


async def test_an_emergency_in_the_middle_of_a_booking_form_interrupts_it(
    stack: Stack, db: Database, admin: ConsoleClient
) -> None:
    openid = await stack.consented_patient()
    asked = await stack.converse(openid, "我想挂个号")
    assert "登记就诊人" in asked[-1], asked
    assert (await _tracker(stack, openid))["active_loop"].get("name"), "a booking form is open"

    answers = await stack.converse(openid, INFANT)
    assert answers[0].startswith(CALL_120) and "儿科急诊" in answers[0], answers
    item = await _item(admin, await _conversation_id(db, openid))
    assert (item["reason"], item["priority"]) == ("emergency", "urgent")
    # The form is closed: when staff hand the chat back, booking does not carry on blindly.
    tracker = await _tracker(stack, openid)
    assert tracker["paused"] and not (tracker["active_loop"] or {}).get("name"), tracker["active_loop"]


async def test_an_emergency_while_an_agent_holds_the_chat_is_advised_and_marked_urgent(
    stack: Stack, db: Database, admin: ConsoleClient
) -> None:
    openid = await stack.consented_patient()
    await _ask_for_a_person(stack, openid)
    conversation_id = await _conversation_id(db, openid)
    item = await _item(admin, conversation_id)
    assert item["priority"] == "normal"
    claimed = await admin.post(f"/api/console/escalations/{item['escalation_id']}/claim")
    assert claimed.status_code == 200, claimed.text

    before = len(await _texts(stack, openid))
    reply = "您好，我是护士小王，请问哪里不舒服？"
    sent = await admin.post(f"/api/console/conversations/{conversation_id}/messages", {"text": reply})
    assert sent.status_code == 201, sent.text
    await stack.wait_answers(openid, before + 1)

    text = "我妈突然一边脸歪了，说话也含糊不清"
    before += 1
    await stack.say(openid, text)
    await stack.wait_answers(openid, before + 1)
    # Nothing else answers the message: no waiting notice, no bot (the marker's turn comes after).
    marked = await send_marker_and_wait(stack, openid, db=db)
    assert len(marked.others[before:]) == 1 and marked.others[before].startswith(CALL_120), marked

    item = await _item(admin, conversation_id)
    assert (item["priority"], item["reason"], item["status"]) == ("urgent", "patient_request", "assigned")
    view = await _view(admin, conversation_id)
    [said] = [m for m in view["messages"] if m["content"] == text]
    assert said["red_flags"], "the console marks the message with the red flags found"
    assert any(m["sender_type"] == "system" and m["content"].startswith(CALL_120) for m in view["messages"])
    assert [d["level"] for d in await _decisions(admin, conversation_id)] == ["emergency"]


async def test_an_emergency_before_consent_is_answered_and_goes_to_nursing(
    stack: Stack, db: Database, admin: ConsoleClient
) -> None:
    """In the consent dialogue: the advice is not held back for a consent answer (vital interest)."""
    openid = new_openid()
    await stack.post(stack.build("subscribe", openid))
    await stack.wait_answers(openid, 2)  # the welcome and the consent question
    answers = await stack.converse(openid, FATHER)
    assert answers[0].startswith(CALL_120), answers
    assert not any("同意" in text for text in answers), "the consent question is not asked again first"
    item = await _item(admin, await _conversation_id(db, openid))
    assert (item["reason"], item["priority"], item["team"]["name"]) == ("emergency", "urgent", "护理团队")
    tracker = await _tracker(stack, openid)
    assert not any(event["event"] == "user" for event in tracker["events"]), "the bot heard nothing"


@pytest.mark.parametrize("text", ["如果发烧怎么办", "没有胸痛"])
async def test_a_hypothetical_or_a_negation_is_answered_by_the_bot_not_as_an_emergency(
    stack: Stack, db: Database, admin: ConsoleClient, text: str
) -> None:
    openid = await stack.consented_patient()
    answers = await stack.converse(openid, text)
    assert answers and not any("120" in answer or WAIT_NOTICE in answer for answer in answers), answers
    conversation_id = await _conversation_id(db, openid)
    view = await _view(admin, conversation_id)
    assert view["conversation"]["status"] == "bot"
    [said] = [m for m in view["messages"] if m["content"] == text]
    assert said["red_flags"] == []
    assert all(m["sender_type"] in ("patient", "bot") for m in view["messages"] if m["id"] >= said["id"])
    async with db.sessions() as session:
        stored = await session.execute(
            select(TriageDecision.source, TriageDecision.level).where(
                TriageDecision.conversation_id == conversation_id
            )
        )
        # The route screened nothing; the bot may have asked triage about the words (bot_api), which
        # then is no emergency either (which intent NLU gives "没有胸痛" varies with the training data).
        assert [
            (source, level) for source, level in stored.all() if source != "bot_api" or level == "emergency"
        ] == []
