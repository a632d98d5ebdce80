"""Store one push's answers and mark the push processed, atomically: the step between Rasa and the patient.

The guarded "received → processed" update is the idempotency key: a retry racing a finished run
stores nothing. Answers the worker sends straight away are stored already claimed (SENDING), so
sending them needs no lock and no lookup (see channels/outbound/delivery.py).

It runs on every turn while the patient waits, so on PostgreSQL it is one statement (the update,
the conversation's timestamp and the inserts as data-modifying CTEs) on an autocommit connection:
one round trip instead of five. Elsewhere (SQLite) it is a short transaction.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Integer,
    String,
    Text,
    bindparam,
    exists,
    insert,
    literal_column,
    select,
    union_all,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from crm_backend.conversations.bot_gateway import BotReply
from crm_backend.conversations.choices import render
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
from crm_backend.database.hot_path import HotPath


@dataclass(frozen=True)
class Outgoing:
    """An answer stored already claimed for sending (status SENDING): its sender needs no lock."""

    message_id: int
    conversation_id: int
    sender: SenderType
    text: str


@dataclass(frozen=True)
class Answered:
    """What processing one push left to deliver, in the order it must go out."""

    conversation_id: int
    openid: str
    #: The answers to send now, claimed when they were stored (committed before any send).
    claimed: list[Outgoing]
    #: The conversation also has unclaimed (PENDING) messages from this push, e.g. an escalation's
    #: notice: deliver the conversation the ordinary way after the claimed ones.
    pending: bool = False


Deliver = Callable[[Answered], Awaitable[None]]


def answer_row(
    conversation_id: int,
    inbound_id: int,
    sender: SenderType,
    reply: BotReply,
    now: datetime,
    status: DeliveryStatus = DeliveryStatus.PENDING,
) -> dict[str, Any]:
    """One answer as an outbound message (columns of `messages`)."""
    return {
        "conversation_id": conversation_id,
        "direction": Direction.OUT,
        "sender_type": sender,
        "msg_type": "text",
        "content": render(reply),
        "extra": {"buttons": [[b.title, b.payload] for b in reply.buttons]} if reply.buttons else None,
        "reply_to_inbound_id": inbound_id,
        "delivery_status": status,
        "attempts": 0,
        "created_at": now,
    }


async def store_answers(
    db: Database,
    inbound_id: int,
    conversation_id: int,
    replies: list[BotReply],
    sender: SenderType,
    *,
    claim: bool,
    processed: bool | None = None,
) -> list[Outgoing] | None:
    """Answers and the push's new status commit together. With `claim` the answers are SENDING and
    the push is marked processed; without, they are PENDING (for deliver_conversation, in order
    behind what the conversation has pending) and the caller marks it later, unless `processed`
    says to mark it here.

    Returns the stored answers, or None when the push was already processed by someone else.
    """
    now = datetime.now(UTC)
    status = DeliveryStatus.SENDING if claim else DeliveryStatus.PENDING
    done = claim if processed is None else processed
    rows = [answer_row(conversation_id, inbound_id, sender, reply, now, status) for reply in replies]
    params: dict[str, Any] = {
        "inbound_id": inbound_id,
        "new_status": InboundStatus.PROCESSED if done else InboundStatus.RECEIVED,
        "processed_at_value": now if done else None,
        "touched_conversation_id": conversation_id,
        "now_value": now,
    }
    if db.hot_path.on_asyncpg and rows:
        stored = await _store_in_one_statement(db.hot_path, params, rows)
    else:
        async with db.engine.connect() as connection:
            stored = await _store_in_transaction(connection, params, rows)
    if stored is None:
        return None
    return [Outgoing(message_id, conversation_id, sender, content) for message_id, content in stored]


async def release_claims(db: Database, message_ids: list[int]) -> int:
    """Claimed answers not sent yet go back to PENDING, for deliver_conversation to send; returns
    how many were still claimed."""
    async with db.single_statements.connect() as connection:
        result = await connection.execute(
            update(Message)
            .where(Message.id.in_(message_ids), Message.delivery_status == DeliveryStatus.SENDING)
            .values(delivery_status=DeliveryStatus.PENDING)
        )
    return result.rowcount


_WHEN = Message.__table__.c.created_at.type

#: received → processed (or left received, when the caller marks it later), only if still received.
_CLAIM = (
    update(InboundMessage)
    .where(InboundMessage.id == bindparam("inbound_id"), InboundMessage.status == InboundStatus.RECEIVED)
    .values(
        status=bindparam("new_status", type_=String),
        processed_at=bindparam("processed_at_value", type_=_WHEN),
    )
)
_TOUCH = (
    update(Conversation)
    .where(
        Conversation.id == bindparam("touched_conversation_id"),
        Conversation.last_message_at < bindparam("now_value", type_=_WHEN),
    )
    .values(last_message_at=bindparam("now_value"))
)


async def _store_in_transaction(
    connection: AsyncConnection, params: dict[str, Any], rows: list[dict[str, Any]]
) -> list[tuple[int, str]] | None:
    if (await connection.execute(_CLAIM, params)).rowcount != 1:
        await connection.rollback()
        return None
    stored: list[tuple[int, str]] = []
    if rows:
        result = await connection.execute(
            insert(Message).returning(Message.id, sort_by_parameter_order=True), rows
        )
        ids = result.scalars()
        stored = [(message_id, row["content"]) for message_id, row in zip(ids, rows, strict=True)]
        await connection.execute(_TOUCH, params)
    await connection.commit()
    return stored


async def _store_in_one_statement(
    hot_path: HotPath, params: dict[str, Any], rows: list[dict[str, Any]]
) -> list[tuple[int, str]] | None:
    first = rows[0]
    values = {**params, **{f"answer_{name}": first[name] for name in _SHARED}}
    for i, row in enumerate(rows):
        values[f"content_{i}"] = row["content"]
        values[f"extra_{i}"] = row["extra"]
    result = await hot_path.fetch(_one_statement(len(rows)), values)
    if not result:
        return None
    return sorted((message_id, content) for message_id, content in result)


#: Columns every answer of one push shares.
_SHARED = (
    "conversation_id",
    "direction",
    "sender_type",
    "msg_type",
    "reply_to_inbound_id",
    "delivery_status",
    "attempts",
    "created_at",
)


@functools.cache
def _one_statement(count: int) -> Any:
    """WITH claimed AS (UPDATE inbound … RETURNING id), touched AS (UPDATE conversations …)
    INSERT INTO messages SELECT … FROM (the answers) WHERE EXISTS (claimed) RETURNING id, content.

    Every part sees the same snapshot and commits as one; when the push was already processed,
    `claimed` is empty and nothing is written. Built once per number of answers with bound
    parameters, so SQLAlchemy's compiled cache and asyncpg's prepared statements are reused."""
    table = Message.__table__.c
    claimed = _CLAIM.returning(InboundMessage.id).cte("claimed")
    was_claimed = exists(select(claimed.c.id))
    touched = _TOUCH.where(was_claimed).cte("touched")
    # UNION ALL of bound rows rather than VALUES: SQLAlchemy cannot cache a statement with VALUES data.
    answers = union_all(
        *(
            select(
                literal_column(str(i), Integer).label("position"),
                bindparam(f"content_{i}", type_=Text).label("content"),
                bindparam(f"extra_{i}", type_=table.extra.type).label("extra"),
            )
            for i in range(count)
        )
    ).subquery("answers")
    # Prefixed names: a parameter named like a column would be taken as a SET value by the UPDATEs.
    shared = [bindparam(f"answer_{name}", type_=table[name].type) for name in _SHARED]
    source = (
        select(*shared, answers.c.content, answers.c.extra).where(was_claimed).order_by(answers.c.position)
    )
    return (
        insert(Message)
        .from_select([*_SHARED, "content", "extra"], source)
        .returning(Message.id, Message.content)
        .add_cte(claimed, touched)
    )
