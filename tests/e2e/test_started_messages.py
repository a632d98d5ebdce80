"""A message staff start in a chat that was never escalated, through the real stack: it reaches the
patient through the outbox, and the patient's answer is a turn routed to staff (the bot stays
silent), because starting it gave the chat to the sender. Runs on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from crm_backend.conversations.models import Conversation
from crm_backend.database.core import Database
from crm_backend.patients.models import WeChatIdentity
from tests.support.console import ConsoleClient
from tests.support.settle import send_marker_and_wait
from tests.support.stack import ADMIN_PASSWORD, ADMIN_USERNAME, Stack


@pytest.fixture
async def admin(stack: Stack) -> AsyncIterator[ConsoleClient]:
    client = ConsoleClient(stack.url)
    await client.login(ADMIN_USERNAME, ADMIN_PASSWORD)
    yield client
    await client.aclose()


async def _latest_conversation(db: Database, openid: str) -> int:
    async with db.sessions() as session:
        found = await session.scalar(
            select(Conversation.id)
            .join(WeChatIdentity, Conversation.identity_id == WeChatIdentity.id)
            .where(WeChatIdentity.openid == openid)
            .order_by(Conversation.id.desc())
            .limit(1)
        )
    assert found is not None
    return found


async def test_a_started_message_reaches_the_patient_and_the_answer_comes_to_staff(
    stack: Stack, db: Database, admin: ConsoleClient
) -> None:
    openid = await stack.consented_patient()
    assert await stack.converse(openid, "你好")  # a chat with the bot only
    conversation_id = await _latest_conversation(db, openid)
    view = (await admin.get(f"/api/console/conversations/{conversation_id}")).json()
    assert view["escalation"] is None
    window = (await admin.get(f"/api/console/conversations/{conversation_id}/window")).json()
    assert window["state"] == "open" and 0 < window["remaining"] < 5  # the bot's answers count

    before = len(await stack.wait_answers(openid, 0))
    text = "您好，我是护士小王，想了解一下您术后恢复得怎么样。"
    started = await admin.post(f"/api/console/conversations/{conversation_id}/start-message", {"text": text})
    assert started.status_code == 201, started.text
    assert started.json()["conversation_id"] == conversation_id
    received = await stack.wait_answers(openid, before + 1)
    assert received[before:] == [text]

    # The patient answers: it is stored for staff and the bot says nothing.
    answer = "恢复得不错，伤口不疼了"
    marked = await send_marker_and_wait(stack, openid, text=answer, db=db)
    assert marked.answers == [] and marked.others == received
    view = (await admin.get(f"/api/console/conversations/{conversation_id}")).json()
    assert [m["content"] for m in view["messages"]][-2:] == [text, answer]
    assert view["escalation"]["status"] == "assigned" and view["escalation"]["reason"] == "staff_message"
    assert view["escalation"]["assigned_to"]["id"] == admin.me["id"]
