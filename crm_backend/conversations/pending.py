"""A patient's stored, unprocessed turns, read in one query together with what decides their route.

Rasa's turn is most of a patient's wait. Whether a push goes to Rasa, and with which text, is
`route.decide` over the push and the patient's state; reading that state (route.state_columns) in
the same query that lists the pending turns lets the worker ask Rasa straight away and record the
patient's message while Rasa thinks. Recording still decides: when the state moved meanwhile (a
colleague took the chat over a moment ago), the early answer is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, bindparam, select

from crm_backend.conversations import route
from crm_backend.conversations.models import Conversation, InboundMessage, InboundStatus
from crm_backend.database.hot_path import HotPath
from crm_backend.patients.models import WeChatIdentity


@dataclass(frozen=True)
class PendingPush:
    inbound_id: int
    msg_type: str
    payload: dict[str, Any]
    attempts: int
    create_time: int
    state: route.RouteState
    wechat_msg_id: int | None = None

    @property
    def seen_at(self) -> datetime:
        return datetime.fromtimestamp(self.create_time, UTC)

    def typed_text(self) -> str | None:
        return route.typed_text(self.msg_type, self.payload)

    def goes_to_bot(self, limits: route.Limits) -> bool:
        """True when recording this push will (barring a race) hand its text to the bot: a first
        attempt whose route is the bot's in an open conversation."""
        state = self.state.at(self.seen_at)
        turn = route.Turn(self.msg_type, self.typed_text(), self.attempts + 1)
        return (
            self.attempts == 0
            and self.msg_type != route.DIALOGUE
            and state.identity_id is not None
            and state.conversation_id is not None
            and route.decide(turn, state, limits) is route.Route.BOT
        )


def _pending_statement() -> Any:
    """Built once: the statement runs for every message, and building it costs as much as running it."""
    return (
        select(
            InboundMessage.id,
            InboundMessage.msg_type,
            InboundMessage.payload,
            InboundMessage.attempts,
            InboundMessage.create_time,
            InboundMessage.wechat_msg_id,
            *route.state_columns(WeChatIdentity),
        )
        .select_from(InboundMessage)
        .outerjoin(
            WeChatIdentity,
            and_(
                WeChatIdentity.app_id == InboundMessage.app_id,
                WeChatIdentity.openid == InboundMessage.openid,
            ),
        )
        .outerjoin(Conversation, route.open_conversation_join(WeChatIdentity))
        .where(
            InboundMessage.app_id == bindparam("app_id"),
            InboundMessage.openid == bindparam("openid"),
            InboundMessage.status == InboundStatus.RECEIVED,
        )
        .order_by(InboundMessage.create_time, InboundMessage.id)
    )


_PENDING = _pending_statement()


async def pending_pushes(hot_path: HotPath, app_id: str, openid: str) -> list[PendingPush]:
    """The patient's unprocessed turns, oldest first, each with the patient's current state."""
    rows = await hot_path.fetch(_PENDING, {"app_id": app_id, "openid": openid})
    return [
        PendingPush(
            inbound_id=row[0],
            msg_type=row[1],
            payload=row[2] or {},
            attempts=row[3],
            create_time=row[4],
            wechat_msg_id=row[5],
            state=route.RouteState.of_row(row[6:]),
        )
        for row in rows
    ]
