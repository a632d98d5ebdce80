"""Turns the bot starts: any domain opens a dialogue with a patient (a check-in, a reminder, a
complaint call-back) through `start_dialogue`.

The request is stored as a turn in the patient's own queue (an `inbound_messages` row of type
`dialogue`, unique per key) and processed by the worker like a push: under the same per-patient
lock, in order with the patient's messages, and routed by route.decide. So it never interrupts:
while staff hold the chat, consent is missing or a form (a booking) is open, it waits and is tried
again after the patient's next message or the sweeper's next pass. The one form it may start over
is the one it takes up again itself (`resumes`: a check-in's reminder restarts its own form, and
not one open for another check-in: `resumes_with`).
When it runs, Rasa is asked with `trigger_intent` and the answers are stored with the turn marked
processed, pending rather than claimed: they go out through the outbox's in-order delivery (under
the conversation's lock, by message id), so what the domain stored for the patient before
starting the dialogue (a complaint's answer, then the question about it) always reaches them
first.

Outside WeChat's customer-service window (48 hours after the patient's last message, at most
five messages in it) a customer-service message would be refused (45015/45047): the domain's
template message invites the patient instead, through the ordinary outbox, and the dialogue
starts once the patient writes again. Past `expires_at` a dialogue that never started is dropped.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_backend.config import within_local_hours
from crm_backend.conversations import route
from crm_backend.conversations.bot_gateway import OpenForm
from crm_backend.conversations.models import (
    Conversation,
    DeliveryStatus,
    Direction,
    InboundMessage,
    InboundStatus,
    Message,
    SenderType,
)
from crm_backend.conversations.reply_window import reply_window
from crm_backend.conversations.service import current_conversation
from crm_backend.database.hot_path import insert_for
from crm_backend.patients.models import WeChatIdentity
from crm_backend.runtime import Runtime

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TemplateInvite:
    """The template message (模板消息) that invites the patient outside the window."""

    template_id: str
    #: The template's keys, {"first": {"value": "..."}, ...}.
    data: dict[str, dict[str, str]]
    #: What staff read for it in the conversation.
    text: str
    url: str | None = None


@dataclass(frozen=True)
class DialogueRequest:
    #: One dialogue per key, however often it is asked for ("followup:checkin:42").
    key: str
    identity_id: int
    #: Whom the dialogue is about (a parent may answer for a child).
    patient_id: int
    intent: str
    reason: str
    expires_at: datetime
    entities: dict[str, Any] = field(default_factory=dict)
    template: TemplateInvite | None = None
    #: False for a notice that asks nothing about health (a reminder): it does not wait for consent.
    needs_consent: bool = True
    #: Hospital-local "HH:MM" hours the dialogue may start in; outside them it waits, however late
    #: it was freed (a chat staff held until 22:30 does not get its check-in then).
    send_hours: tuple[str, str] | None = None
    #: The Rasa form this dialogue takes up again (a check-in's reminder): it may start while that
    #: form is open, where any other dialogue waits for the form to end.
    resumes: str | None = None
    #: Slot values that make the open form this dialogue's own (the check-in it asks about): a
    #: form open for something else (another check-in of the same account) is waited for.
    resumes_with: dict[str, Any] = field(default_factory=dict)


async def start_dialogue(runtime: Runtime, request: DialogueRequest, *, queue: bool = True) -> int | None:
    """Queue the dialogue; its turn id, or None when a dialogue with that key exists already.

    `queue=False`: the caller takes the patient's turns itself at once (`process_patient`); the turn
    is stored all the same, so if the caller dies first the sweeper queues it as any stored turn."""
    now = datetime.now(UTC)
    async with runtime.db.sessions() as session:
        identity = await session.get(WeChatIdentity, request.identity_id)
        if identity is None:
            raise LookupError(f"no WeChat identity {request.identity_id}")
        payload = {
            "intent": request.intent,
            "entities": request.entities,
            "reason": request.reason,
            "patient_id": request.patient_id,
            "expires_at": request.expires_at.astimezone(UTC).isoformat(),
            "template": asdict(request.template) if request.template else None,
            "needs_consent": request.needs_consent,
            "send_hours": list(request.send_hours) if request.send_hours else None,
            "resumes": request.resumes,
            "resumes_with": request.resumes_with,
        }
        turn_id = await session.scalar(
            insert_for(runtime.db.engine)(InboundMessage)
            .values(
                dedupe_key=f"dialogue:{request.key}"[:255],
                app_id=identity.app_id,
                openid=identity.openid,
                msg_type=route.DIALOGUE,
                event=request.intent[:64],
                create_time=int(now.timestamp()),
                payload=payload,
                status=InboundStatus.RECEIVED,
                attempts=0,
                received_at=now,
            )
            .on_conflict_do_nothing(index_elements=["dedupe_key"])
            .returning(InboundMessage.id)
        )
        await session.commit()
    if turn_id is None or not queue:
        return turn_id
    await runtime.inbound.add(
        {"app_id": identity.app_id, "openid": identity.openid, "inbound_id": str(turn_id)}
    )
    log.info("dialogue %s (%s) queued for identity %s", request.key, request.intent, request.identity_id)
    return turn_id


class Step(enum.Enum):
    #: Nothing to do (already processed, or dropped now).
    DONE = "done"
    #: Not now: tried again after the patient's next message or the sweeper's next pass.
    WAIT = "wait"
    #: A template invitation was stored for the outbox; the dialogue waits for the patient.
    INVITED = "invited"
    #: Ask Rasa now.
    TRIGGER = "trigger"


@dataclass(frozen=True)
class DialoguePlan:
    step: Step
    #: The turn's dedupe key ("dialogue:<the domain's key>"), for DialogueSettled.
    key: str = ""
    conversation_id: int | None = None
    intent: str = ""
    entities: dict[str, Any] = field(default_factory=dict)
    #: DialogueRequest.resumes and resumes_with.
    resumes: str | None = None
    resumes_with: dict[str, Any] = field(default_factory=dict)

    def may_start_over(self, form: OpenForm) -> bool:
        """Whether the dialogue may start while `form` is open: only over its own."""
        return form.name == self.resumes and all(form.slots.get(k) == v for k, v in self.resumes_with.items())


async def plan_dialogue(runtime: Runtime, turn_id: int, now: datetime) -> DialoguePlan:
    """What a dialogue turn does now (its first step; processing asks Rasa for TRIGGER)."""
    settings = runtime.settings
    async with runtime.db.sessions() as session:
        turn = await session.get(InboundMessage, turn_id)
        if turn is None:
            return DialoguePlan(Step.DONE)
        if turn.status != InboundStatus.RECEIVED:
            return DialoguePlan(Step.DONE, turn.dedupe_key or "")
        payload = dict(turn.payload)
        key = turn.dedupe_key or ""
        identity = await session.scalar(
            select(WeChatIdentity).where(
                WeChatIdentity.app_id == turn.app_id, WeChatIdentity.openid == turn.openid
            )
        )
        if now >= datetime.fromisoformat(payload["expires_at"]):
            return await _drop(session, turn, "expired before it could start")
        if identity is None or not identity.subscribed:
            return await _drop(session, turn, "the patient no longer follows the account")
        conversation = await current_conversation(session, identity, now)
        consent = await session.scalar(select(route.latest_consent(identity.id)))
        state = route.RouteState(
            identity_id=identity.id,
            consent_granted=None if consent is None else bool(consent),
            conversation_id=conversation.id,
            conversation_status=conversation.status,
            rating_pending=conversation.rating_escalation_id is not None,
            last_message_at=conversation.last_message_at,
        )
        decided = route.decide(
            route.Turn(
                route.DIALOGUE,
                None,
                turn.attempts + 1,
                bool(payload.get("needs_consent", True)),
                waited=now - turn.received_at,
                quiet_hours=_quiet(payload, now),
            ),
            state,
            route.Limits.of(settings),
        )
        if decided is route.Route.GIVE_UP:
            return await _drop(session, turn, "gave up after repeated failures")
        if decided is route.Route.WAIT:
            await session.commit()
            return DialoguePlan(Step.WAIT, key, conversation.id)
        if not await _in_window(session, identity, now):
            if payload.get("invited_at"):
                await session.commit()
                return DialoguePlan(Step.WAIT, key, conversation.id)
            template = payload.get("template")
            if not template:
                return await _drop(session, turn, "outside the customer-service window, no template")
            _add_invitation(session, conversation, turn.id, template, now)
            turn.payload = {**payload, "invited_at": now.isoformat()}
            await session.commit()
            log.info("dialogue %s: outside the window, template invitation stored", turn.dedupe_key)
            return DialoguePlan(Step.INVITED, key, conversation.id)
        await session.commit()
        return DialoguePlan(
            Step.TRIGGER,
            key,
            conversation.id,
            payload["intent"],
            payload.get("entities") or {},
            payload.get("resumes"),
            payload.get("resumes_with") or {},
        )


def _quiet(payload: dict[str, Any], now: datetime) -> bool:
    hours = payload.get("send_hours")
    return bool(hours) and not within_local_hours(now, hours[0], hours[1])


async def count_attempt(runtime: Runtime, turn_id: int) -> None:
    """Rasa is about to be asked: a turn that keeps failing there is given up on (route.GIVE_UP)."""
    async with runtime.db.sessions() as session:
        await session.execute(
            update(InboundMessage)
            .where(InboundMessage.id == turn_id)
            .values(attempts=InboundMessage.attempts + 1)
        )
        await session.commit()


async def _in_window(session: AsyncSession, identity: WeChatIdentity, now: datetime) -> bool:
    """Whether a customer-service message may still reach the identity (reply_window.py)."""
    window = await reply_window(session, identity, now)
    if not window.is_open:
        log.info("identity %s: window %s (last message %s)", identity.id, window.state, window.opened_at)
    return window.is_open


def _add_invitation(
    session: AsyncSession, conversation: Conversation, turn_id: int, template: dict[str, Any], now: datetime
) -> None:
    wechat = {"template_id": template["template_id"], "data": template["data"]}
    if template.get("url"):
        wechat["url"] = template["url"]
    session.add(
        Message(
            conversation_id=conversation.id,
            direction=Direction.OUT,
            sender_type=SenderType.SYSTEM,
            msg_type="template",
            content=template["text"],
            extra={"template": wechat},
            reply_to_inbound_id=turn_id,
            delivery_status=DeliveryStatus.PENDING,
            created_at=now,
        )
    )
    conversation.last_message_at = max(conversation.last_message_at, now)


async def _drop(session: AsyncSession, turn: InboundMessage, why: str) -> DialoguePlan:
    turn.status = InboundStatus.FAILED
    turn.last_error = why
    await session.commit()
    log.info("dialogue %s dropped: %s", turn.dedupe_key, why)
    return DialoguePlan(Step.DONE, turn.dedupe_key or "")
