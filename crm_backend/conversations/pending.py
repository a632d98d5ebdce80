"""A patient's stored, unprocessed pushes, read in one query together with what decides their route.

Rasa's turn is most of a patient's wait. Whether a push goes to Rasa, and with which text, depends
on the patient's consent, the state of the open conversation and the push itself; reading all of
that in the same query that lists the pending pushes lets the worker ask Rasa straight away and
record the patient's message while Rasa thinks. Recording still decides: when it plans a different
route (a colleague took the chat over a moment ago), the early answer is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, func, select

from crm_backend.consent import service as consent
from crm_backend.consent.models import HEALTH_INFORMATION, ConsentRecord
from crm_backend.conversations.models import (
    Conversation,
    ConversationStatus,
    InboundMessage,
    InboundStatus,
)
from crm_backend.database.hot_path import HotPath
from crm_backend.patients.models import WeChatIdentity


@dataclass(frozen=True)
class PendingPush:
    inbound_id: int
    msg_type: str
    payload: dict[str, Any]
    attempts: int
    create_time: int
    identity_id: int | None
    #: The identity's latest consent decision (None: never answered).
    consent_granted: bool | None
    conversation_id: int | None
    conversation_status: str | None
    rating_pending: bool
    last_message_at: datetime | None
    wechat_msg_id: int | None = None

    @property
    def seen_at(self) -> datetime:
        return datetime.fromtimestamp(self.create_time, UTC)

    def typed_text(self) -> str | None:
        """What the patient typed or said, if this is a text or recognised voice message."""
        if self.msg_type == "text":
            return str(self.payload.get("Content") or "")
        if self.msg_type == "voice":
            return str(self.payload.get("Recognition") or "").strip() or None
        return None

    def goes_to_bot(self, idle_after: timedelta) -> bool:
        """True when recording this push will (barring a race) hand its text to the bot unchanged:
        first attempt, consent granted, an open conversation the bot has, no rating asked for."""
        text = self.typed_text()
        return (
            text is not None
            and self.attempts == 0
            and self.identity_id is not None
            and self.consent_granted is True
            and self.conversation_id is not None
            and self.conversation_status == ConversationStatus.BOT
            and not self.rating_pending
            and self.last_message_at is not None
            and self.seen_at - self.last_message_at <= idle_after
            and consent.read_answer(text) is not consent.ConsentAnswer.WITHDRAW
        )


def _pending_statement() -> Any:
    """Built once: the statement runs for every message, and building it costs as much as running it."""
    latest_consent = (
        select(ConsentRecord.granted)
        .where(ConsentRecord.identity_id == WeChatIdentity.id, ConsentRecord.purpose == HEALTH_INFORMATION)
        .order_by(ConsentRecord.decided_at.desc(), ConsentRecord.id.desc())
        .limit(1)
        .correlate(WeChatIdentity)
        .scalar_subquery()
    )
    # The same conversation processing.current_conversation picks: the newest one not closed.
    open_conversation = (
        select(func.max(Conversation.id))
        .where(
            Conversation.identity_id == WeChatIdentity.id,
            Conversation.status != ConversationStatus.CLOSED,
        )
        .correlate(WeChatIdentity)
        .scalar_subquery()
    )
    return (
        select(
            InboundMessage.id,
            InboundMessage.msg_type,
            InboundMessage.payload,
            InboundMessage.attempts,
            InboundMessage.create_time,
            WeChatIdentity.id,
            latest_consent,
            Conversation.id,
            Conversation.status,
            Conversation.rating_escalation_id,
            Conversation.last_message_at,
            InboundMessage.wechat_msg_id,
        )
        .select_from(InboundMessage)
        .outerjoin(
            WeChatIdentity,
            and_(
                WeChatIdentity.app_id == InboundMessage.app_id,
                WeChatIdentity.openid == InboundMessage.openid,
            ),
        )
        .outerjoin(Conversation, Conversation.id == open_conversation)
        .where(
            InboundMessage.app_id == bindparam("app_id"),
            InboundMessage.openid == bindparam("openid"),
            InboundMessage.status == InboundStatus.RECEIVED,
        )
        .order_by(InboundMessage.create_time, InboundMessage.id)
    )


_PENDING = _pending_statement()


async def pending_pushes(hot_path: HotPath, app_id: str, openid: str) -> list[PendingPush]:
    """The patient's unprocessed pushes, oldest first, each with the patient's current context."""
    rows = await hot_path.fetch(_PENDING, {"app_id": app_id, "openid": openid})
    return [
        PendingPush(
            inbound_id=row[0],
            msg_type=row[1],
            payload=row[2] or {},
            attempts=row[3],
            create_time=row[4],
            identity_id=row[5],
            consent_granted=None if row[6] is None else bool(row[6]),
            conversation_id=row[7],
            conversation_status=row[8],
            rating_pending=row[9] is not None,
            last_message_at=row[10],
            wechat_msg_id=row[11],
        )
        for row in rows
    ]
