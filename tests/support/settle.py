"""Waiting until a patient's pushes are handled, from what the stack records, never for a fixed time.

A test that proves something did *not* happen (no second answer, no send while staff hold the
chat) needs a moment after which it would have happened. A patient's pushes are processed in
order, each with its answers sent before the next one starts, so a marker push sent afterwards is
that moment: once it is processed and its answers are out, everything sent before it is done.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy import select

from crm_backend.conversations.models import (
    Conversation,
    DeliveryStatus,
    Direction,
    InboundMessage,
    InboundStatus,
    Message,
)
from crm_backend.database.core import Database
from crm_backend.patients.models import WeChatIdentity
from tests.support.stack import Stack

#: Outbound messages still on their way: a patient is settled once none is left.
UNSETTLED = (DeliveryStatus.PENDING, DeliveryStatus.SENDING)
MARKER_TEXT = "你好"


@dataclass
class Marked:
    """What the patient had received once the marker was answered."""

    others: list[str]  # every text sent to the patient except the marker's own answers, oldest first
    answers: list[str]  # the marker's answers (none while staff hold the chat)


@asynccontextmanager
async def _database(stack: Stack, db: Database | None) -> AsyncIterator[Database]:
    if db is not None:
        yield db
        return
    own = Database(stack.database_url)
    try:
        yield own
    finally:
        await own.dispose()


async def _inbound(db: Database, openid: str, msg_id: int) -> InboundMessage | None:
    async with db.sessions() as session:
        return await session.scalar(
            select(InboundMessage).where(
                InboundMessage.openid == openid, InboundMessage.wechat_msg_id == msg_id
            )
        )


async def _unsettled(db: Database, openid: str) -> list[Message]:
    async with db.sessions() as session:
        rows = await session.scalars(
            select(Message)
            .join(Conversation, Message.conversation_id == Conversation.id)
            .join(WeChatIdentity, Conversation.identity_id == WeChatIdentity.id)
            .where(
                WeChatIdentity.openid == openid,
                Message.direction == Direction.OUT,
                Message.delivery_status.in_(UNSETTLED),
            )
        )
        return list(rows)


async def _replies(db: Database, inbound_id: int) -> list[Message]:
    async with db.sessions() as session:
        rows = await session.scalars(
            select(Message).where(Message.reply_to_inbound_id == inbound_id).order_by(Message.id)
        )
        return list(rows)


async def wait_turn_settled(
    stack: Stack, openid: str, msg_id: int, *, db: Database | None = None, timeout: float = 40
) -> InboundMessage:
    """Wait until the push `msg_id` is processed (or failed for good) and nothing sent to the
    patient is still pending or being sent; return the stored push."""
    deadline = time.monotonic() + timeout
    async with _database(stack, db) as database:
        while True:
            inbound = await _inbound(database, openid, msg_id)
            if inbound is not None and inbound.status != InboundStatus.RECEIVED:
                if not await _unsettled(database, openid):
                    return inbound
            if time.monotonic() > deadline:
                state = inbound.status if inbound is not None else "not stored"
                worker_log = stack.worker.tail() if stack.worker else ""
                raise AssertionError(f"push {msg_id} of {openid} did not settle ({state})\n{worker_log}")
            await asyncio.sleep(0.1)


async def wait_patient_settled(
    stack: Stack, openid: str, *, db: Database | None = None, timeout: float = 40
) -> None:
    """Wait until every push stored from `openid` is processed (or failed for good) and nothing
    sent to the patient is still pending or being sent. For pushes without a message id (events),
    and for patients who can no longer be sent a marker."""
    deadline = time.monotonic() + timeout
    async with _database(stack, db) as database:
        while True:
            async with database.sessions() as session:
                waiting = await session.scalar(
                    select(InboundMessage.id).where(
                        InboundMessage.openid == openid, InboundMessage.status == InboundStatus.RECEIVED
                    )
                )
            if waiting is None and not await _unsettled(database, openid):
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"the pushes of {openid} did not settle")
            await asyncio.sleep(0.1)


async def send_marker_and_wait(
    stack: Stack, openid: str, *, text: str = MARKER_TEXT, db: Database | None = None, timeout: float = 40
) -> Marked:
    """Send `text` from `openid`, wait until it is processed and its answers are out, and split
    what the patient received into the marker's answers and everything else.

    The marker's answers must be the last texts received: anything after them is something that
    arrived late, which is exactly what a test proving absence looks for, so it fails here."""
    push = stack.build("text", openid, content=text)
    response = await stack.post(push)
    assert response.status_code == 200 and response.text == "success", response.text
    assert push.msg_id is not None
    async with _database(stack, db) as database:
        inbound = await wait_turn_settled(stack, openid, push.msg_id, db=database, timeout=timeout)
        replies = await _replies(database, inbound.id)
    answers = [m.content for m in replies if m.delivery_status == DeliveryStatus.SENT]
    texts = await asyncio.to_thread(stack.wechat.texts, openid)
    cut = len(texts) - len(answers)
    assert cut >= 0 and texts[cut:] == answers, f"the marker's answers {answers} are not the last: {texts}"
    return Marked(others=texts[:cut], answers=answers)
