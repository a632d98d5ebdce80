"""Finding words in conversations, within what the staff member may read.

The team rule is the one of `Escalations.visible_conversation`: a conversation that is, or was,
escalated to one of the staff member's teams; supervisors and admins read every conversation.

Matching is a case-insensitive LIKE over `messages.content`, with `%`, `_` and `\\` in the query
taken literally. It reads every message on each search: fine for one hospital's chats for a while;
at scale it is replaced by a full-text index (PostgreSQL `pg_trgm` GIN index for substring search in
Chinese, or a search engine fed from the messages), behind this same function.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_backend.conversations.models import Conversation, Message, SenderType
from crm_backend.escalations.models import Escalation
from crm_backend.escalations.service import Actor
from crm_backend.escalations.views_model import PatientRef, patient_label

#: Characters of context shown before and after the match.
BEFORE, AFTER = 20, 40
ESCAPE = "\\"


class SearchHitRead(BaseModel):
    """One message that contains the words; `match_start`/`match_length` locate them in `snippet`."""

    conversation_id: int
    message_id: int
    patient: PatientRef
    sender_type: SenderType
    snippet: str
    match_start: int
    match_length: int
    created_at: datetime


def like_pattern(words: str) -> str:
    """`%words%` with LIKE's own characters escaped, so "50%" finds "50%" and not "500"."""
    escaped = words.replace(ESCAPE, ESCAPE * 2).replace("%", ESCAPE + "%").replace("_", ESCAPE + "_")
    return f"%{escaped}%"


def snippet(content: str, words: str) -> tuple[str, int, int]:
    """The text around the first match, with where the match sits in it."""
    flat = " ".join(content.split())
    at = flat.lower().find(words.lower())
    if at < 0:  # matched by the database's case rules but not Python's: show the beginning
        return flat[: BEFORE + AFTER], 0, 0
    start, end = max(0, at - BEFORE), min(len(flat), at + len(words) + AFTER)
    prefix = "…" if start > 0 else ""
    suffix = "…" if end < len(flat) else ""
    return prefix + flat[start:end] + suffix, len(prefix) + at - start, len(words)


async def search_messages(session: AsyncSession, actor: Actor, words: str, limit: int) -> list[SearchHitRead]:
    """Newest first, at most `limit` messages of conversations `actor` may read."""
    query = (
        select(Message.id, Message.conversation_id, Message.sender_type, Message.content, Message.created_at)
        .add_columns(Conversation.patient_id)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(Message.content.ilike(like_pattern(words), escape=ESCAPE))
        .order_by(Message.id.desc())
        .limit(limit)
    )
    if not actor.sees_all_teams:
        readable = select(Escalation.conversation_id).where(Escalation.team_id.in_(actor.team_ids))
        query = query.where(Message.conversation_id.in_(readable))
    labels: dict[int, str] = {}
    hits = []
    for message_id, conversation_id, sender_type, content, created_at, patient_id in await session.execute(
        query
    ):
        if patient_id not in labels:
            labels[patient_id] = await patient_label(session, patient_id)
        text, match_start, match_length = snippet(content, words)
        hits.append(
            SearchHitRead(
                conversation_id=conversation_id,
                message_id=message_id,
                patient=PatientRef(id=patient_id, label=labels[patient_id]),
                sender_type=sender_type,
                snippet=text,
                match_start=match_start,
                match_length=match_length,
                created_at=created_at,
            )
        )
    return hits
