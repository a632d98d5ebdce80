"""Process stored pushes, one patient at a time and in order: store, decide the answer, queue it.

Three short steps so no database transaction is open while Rasa thinks:
  1. record the patient's message against the patient and conversation (and any consent answer);
  2. ask Rasa when the message is for the bot;
  3. store the answers as pending outbound messages and mark the push processed.
Every step is idempotent, so a push reclaimed after a crash is finished, not duplicated.

Steps 1 and 2 overlap for an ordinary bot turn: the query that finds the pending pushes also reads
what decides their route (see pending.py), so Rasa is asked while step 1 records. Step 1's plan
still decides; an early answer it disagrees with is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_backend.consent import service as consent
from crm_backend.conversations import consent_dialogue, rating_dialogue, red_flag_screen, route, turns
from crm_backend.conversations.answers import Answered, Deliver, Outgoing, answer_row, store_answers
from crm_backend.conversations.bot_gateway import BotGateway, BotReply, BotUnavailable, rasa_sender
from crm_backend.conversations.bot_turn import record_bot_turn
from crm_backend.conversations.choices import ChoiceMemory, parse_number
from crm_backend.conversations.events import DialogueSettled, EscalationRequested, PatientMessageForStaff
from crm_backend.conversations.models import (
    Conversation,
    ConversationStatus,
    DeliveryStatus,
    Direction,
    InboundMessage,
    InboundStatus,
    Message,
    SenderType,
)
from crm_backend.conversations.outgoing import add_outbound
from crm_backend.conversations.patient_lock import PatientLocks
from crm_backend.conversations.pending import PendingPush, pending_pushes
from crm_backend.conversations.redaction import SEALED_KEY, seal_id_numbers, unsealed_text
from crm_backend.conversations.route import Route, RouteState, Turn
from crm_backend.conversations.service import current_conversation
from crm_backend.patients.models import WeChatIdentity
from crm_backend.patients.service import get_or_create_identity
from crm_backend.protection import FieldProtector
from crm_backend.runtime import Runtime
from crm_backend.triage.decisions import CHAT, decided_on, record_decision
from crm_backend.triage.service import assess

log = logging.getLogger(__name__)

VOICE_NOT_SUPPORTED = "抱歉，暂时还听不懂语音消息，请用文字告诉我您的问题。"
IMAGE_RECEIVED = "已收到您发来的图片并为您保存。如需咨询，请用文字描述一下您的情况。"
UNSUPPORTED_TYPE = "已收到并为您保存。目前我只能处理文字消息，请用文字告诉我您的问题。"
GIVE_UP = "抱歉，系统暂时繁忙，您的消息已经记录，工作人员会尽快跟进。"
DELAYED = (
    "抱歉，智能助手暂时有点忙，您的消息已经收到，恢复后会尽快回复您，请稍候。"
    "如病情紧急，请立即拨打 120 或前往最近的急诊。"
)


@dataclass
class Plan:
    """What step 1 decided: fixed answers, or a text for the bot."""

    conversation_id: int
    system_replies: list[str] = field(default_factory=list)
    #: What the bot is asked, in order (one text; several after 同意 releases held requests).
    bot_texts: list[str] = field(default_factory=list)
    sender_id: str = ""
    #: Step 1 already stored the final answer (the push was given up on).
    finished: bool = False
    #: People have this conversation: the patient's message goes to their console.
    for_staff: bool = False
    patient_message_id: int | None = None
    #: Hand the conversation to people for this reason (the consent dialogue, an emergency).
    escalate: str | None = None
    escalate_priority: str = "normal"
    escalate_team: str = "service"
    #: The route step 1 decided (None before it did).
    route: Route | None = None
    #: Step 1 runs again for this push (an earlier attempt may have stored its message).
    retried: bool = False


@dataclass(frozen=True)
class Question:
    """What the bot is asked: by whom (Rasa's sender id) and with which text."""

    sender_id: str
    text: str


@dataclass(frozen=True)
class Choice:
    """A message read against the numbered options offered last: the text for the bot, or, for a
    number outside the options, how many there were."""

    text: str | None
    options: int = 0


class InboundProcessor:
    def __init__(self, runtime: Runtime, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.runtime = runtime
        #: What time it is for dialogues the bot starts (their window and expiry).
        self.clock = clock
        settings = runtime.settings
        self.bot = BotGateway(
            settings.rasa_urls, runtime.http, settings.rasa_timeout_seconds, settings.action_server_urls
        )
        self.choices = ChoiceMemory(runtime.redis, settings.redis_prefix)
        self.locks = PatientLocks(runtime.redis, settings)

    async def process_patient(self, app_id: str, openid: str, deliver: Deliver) -> None:
        """Drain every stored turn of one patient, oldest first, under that patient's lock; each
        turn's answers are handed to `deliver` before the next is processed, so they go out in
        order. When another consumer holds the lock this returns at once: the holder drains again
        before it lets go (patient_lock.py)."""
        lock = self.locks.of(app_id, openid)
        if not await lock.claim():
            return
        while True:
            try:
                async with lock.renewed():
                    await self._drain(app_id, openid, deliver)
            except BaseException:
                # The stream entry stays pending and is tried again; the patient is not locked out.
                with contextlib.suppress(Exception):
                    await lock.release()
                raise
            if not await lock.release() or not await lock.claim():
                return

    async def _drain(self, app_id: str, openid: str, deliver: Deliver) -> None:
        pending = await pending_pushes(self.runtime.db.hot_path, app_id, openid)
        # An emergency is answered first: an earlier message may wait for a bot that is down.
        pending.sort(key=lambda push: not _emergency(push))
        waiting = []
        for index, push in enumerate(pending):
            if push.msg_type == route.DIALOGUE:
                if not await self._take_dialogue(push.inbound_id, app_id, openid, deliver):
                    waiting.append(push.inbound_id)
                continue
            # The context read with the list is current only for the first push; the rest
            # are a backlog and go the plain way.
            early = await self._early_question(push, rasa_sender(app_id, openid)) if index == 0 else None
            answered = await self.process_one(push.inbound_id, openid, early, push if early else None)
            if answered is not None:
                await deliver(answered)
        if waiting and len(waiting) < len(pending):
            # The patient wrote meanwhile: a dialogue waiting for that (an invitation answered,
            # a form finished) may start now, after the answers to what the patient said.
            for turn_id in waiting:
                await self._take_dialogue(turn_id, app_id, openid, deliver)

    async def _take_dialogue(self, turn_id: int, app_id: str, openid: str, deliver: Deliver) -> bool:
        """Run a dialogue turn (turns.py) if it may start now; False while it waits."""
        plan = await turns.plan_dialogue(self.runtime, turn_id, self.clock())
        if plan.step is turns.Step.WAIT:
            return False
        if plan.step is turns.Step.INVITED:
            assert plan.conversation_id is not None
            await deliver(Answered(plan.conversation_id, openid, claimed=[], pending=True))
        elif plan.step is turns.Step.TRIGGER:
            assert plan.conversation_id is not None
            sender = rasa_sender(app_id, openid)
            form = await self.bot.active_form(sender)
            if form is not None and not plan.may_start_over(form):
                return False  # a form (a booking) is open: never interrupt it
            await turns.count_attempt(self.runtime, turn_id)
            replies = await self.bot.trigger(sender, plan.intent, plan.entities)
            # In order behind what the domain stored for the patient before starting the dialogue
            # (a complaint's answer, then the question about it): nobody waits for these answers.
            answered = await self._answer(
                turn_id, plan.conversation_id, openid, replies, SenderType.BOT, in_order=True
            )
            if answered is not None:
                await deliver(answered)
        await self.runtime.events.publish(DialogueSettled(turn_id, plan.key))
        return plan.step is not turns.Step.INVITED

    async def process_one(
        self,
        inbound_id: int,
        openid: str,
        early: Question | None = None,
        pending: PendingPush | None = None,
    ) -> Answered | None:
        """What this push left to deliver, if anything.

        With `early`, Rasa is asked that question while the patient's message is recorded; with
        `pending` too (what the question was formed from), an ordinary bot turn is recorded in one
        statement where the database allows (bot_turn.py).
        """
        asked = asyncio.create_task(self.bot.ask(early.sender_id, early.text)) if early else None
        if asked is not None:
            # Let the question reach Rasa before step 1 is prepared: Rasa's answer is what the
            # patient waits for, and the recording has all of Rasa's time to finish.
            await asyncio.sleep(0)
        try:
            plan = await self._record_bot_turn(pending, early) if early and pending else None
            if plan is None:
                plan = await self._record(inbound_id)
        except BaseException:
            await _drop(asked)
            raise
        if (
            early is None
            or plan is None
            or plan.finished
            or (plan.sender_id, plan.bot_texts)
            != (
                early.sender_id,
                [early.text],
            )
        ):
            await _drop(asked)
            asked = None
        if plan is None:
            return None
        if plan.finished:
            # "工作人员会尽快跟进": the patient's message becomes an item in the staff's queue.
            await self.runtime.events.publish(
                EscalationRequested(plan.conversation_id, reason="bot_unavailable", priority="high")
            )
            return Answered(plan.conversation_id, openid, claimed=[], pending=True)
        if plan.for_staff and plan.patient_message_id is not None:
            await self.runtime.events.publish(
                PatientMessageForStaff(
                    plan.patient_message_id, plan.conversation_id, route=plan.route or Route.STAFF
                )
            )
        replies = [BotReply(text) for text in plan.system_replies]
        if plan.escalate is not None:
            # The same instruction the bot gives: _answer opens the escalation before the push
            # counts as processed.
            request = {
                "reason": plan.escalate,
                "priority": plan.escalate_priority,
                "team": plan.escalate_team,
            }
            replies.append(BotReply("", custom={"escalate": request}))
        sender = SenderType.SYSTEM
        if plan.bot_texts:
            try:
                if asked is not None:
                    replies += await asked
                else:
                    for text in plan.bot_texts:
                        replies += await self.bot.ask(plan.sender_id, text)
            except BotUnavailable:
                await self._tell_delayed(plan.conversation_id)
                raise  # the push stays received and is tried again (route.Limits bounds it)
            sender = SenderType.BOT
        answered = await self._answer(inbound_id, plan.conversation_id, openid, replies, sender)
        if plan.route is Route.EMERGENCY and plan.sender_id:
            await self._end_form(plan.sender_id)
        if plan.for_staff:
            # Escalations may have acknowledged a patient still waiting for a person
            # (route.acknowledge_waiting): it is pending in the conversation, delivered now.
            if answered is None:
                return Answered(plan.conversation_id, openid, claimed=[], pending=True)
            return replace(answered, pending=True)
        return answered

    async def _answer(
        self,
        inbound_id: int,
        conversation_id: int,
        openid: str,
        replies: list[BotReply],
        sender: SenderType,
        *,
        in_order: bool = False,
    ) -> Answered | None:
        """Step 3 for any turn: store the answers with the turn marked processed, and say what to send.

        `in_order` (a dialogue the bot starts): stored pending instead of claimed, so they go out
        through deliver_conversation, under the conversation's lock and behind anything pending
        there (an outbox message stored before them is never overtaken)."""
        shown = [reply for reply in replies if reply.text or reply.buttons]
        requests = [
            r.custom["escalate"] for r in replies if r.custom and isinstance(r.custom.get("escalate"), dict)
        ]
        offered = replies if sender == SenderType.BOT else None
        # Nothing goes out before the answers and the push's new status have committed: a
        # database cut during the store repeats the turn with nothing sent yet, never twice.
        # A push that asked for people is marked processed only once the escalation exists, so a
        # crash in between repeats the (idempotent) escalation instead of losing it. Its answers
        # are not claimed: they go out with the escalation's notice, in order, the ordinary way.
        stored = await self._store(
            inbound_id,
            conversation_id,
            shown,
            sender,
            offered,
            claim=not (requests or in_order),
            processed=not requests,
        )
        if stored is None:
            return None
        if requests:
            for request in requests:
                await self.runtime.events.publish(
                    EscalationRequested(
                        conversation_id,
                        reason=str(request.get("reason") or "bot"),
                        priority=str(request.get("priority") or "normal"),
                        team=str(request.get("team") or "service"),
                        summary=str(request.get("summary") or "") or None,
                    )
                )
            await self._mark_processed(inbound_id)
            return Answered(conversation_id, openid, claimed=[], pending=True)
        if in_order:
            return Answered(conversation_id, openid, claimed=[], pending=True) if stored else None
        return Answered(conversation_id, openid, claimed=stored) if stored else None

    async def _end_form(self, sender_id: str) -> None:
        """After an emergency a form (a booking) is not carried on: when staff hand the chat back,
        the patient's next message starts afresh. The advice and the escalation are out already."""
        try:
            await self.bot.end_form(sender_id)
        except BotUnavailable as exc:
            log.warning("open form of %s not ended after an emergency: %s", sender_id, exc)

    async def _tell_delayed(self, conversation_id: int) -> None:
        """Tell the patient once per outage that the answer is late (the push is kept and retried)."""
        settings = self.runtime.settings
        key = settings.key("delayed", conversation_id)
        if not await self.runtime.redis.set(key, "1", nx=True, ex=max(1, int(settings.bot_retry_seconds))):
            return
        async with self.runtime.db.sessions() as session:
            conversation = await session.get(Conversation, conversation_id)
            if conversation is None:
                return
            add_outbound(session, conversation, SenderType.SYSTEM, DELAYED)
            await session.commit()
        await self.runtime.outbound.add({"conversation_id": str(conversation_id)})
        log.warning("bot unavailable: conversation %s told its answer is delayed", conversation_id)

    async def _store(
        self,
        inbound_id: int,
        conversation_id: int,
        shown: list[BotReply],
        sender: SenderType,
        offered: list[BotReply] | None,
        *,
        claim: bool,
        processed: bool | None = None,
    ) -> list[Outgoing] | None:
        """Step 3, with the options the bot offered remembered beside it."""
        stored, remembered = await asyncio.gather(
            store_answers(
                self.runtime.db, inbound_id, conversation_id, shown, sender, claim=claim, processed=processed
            ),
            self._remember_choices(conversation_id, offered),
            return_exceptions=True,
        )
        if isinstance(stored, BaseException):
            raise stored
        if isinstance(remembered, BaseException):
            # The answers are stored and go out; only a later numbered reply loses its options.
            log.error("options offered in conversation %s not kept: %r", conversation_id, remembered)
        return stored

    async def _remember_choices(self, conversation_id: int, replies: list[BotReply] | None) -> None:
        """The options the bot just offered (none clears the last ones); system replies keep them."""
        if replies is not None:
            offered = [button for reply in replies for button in reply.buttons]
            await self.choices.remember(conversation_id, offered)

    async def _early_question(self, push: PendingPush, rasa_sender: str) -> Question | None:
        """The question step 1 will plan for this push, when the pending read already tells."""
        text = push.typed_text()
        conversation_id = push.state.conversation_id
        if text is None or conversation_id is None:
            return None
        if not push.goes_to_bot(route.Limits.of(self.runtime.settings)):
            return None
        choice = await self._read_choice(conversation_id, text)
        return Question(rasa_sender, choice.text) if choice.text is not None else None

    async def _read_choice(self, conversation_id: int, text: str) -> Choice:
        number = parse_number(text)
        if number is None:
            return Choice(text)
        offered = await self.choices.offered(conversation_id)
        if not offered:
            return Choice(text)
        if not 1 <= number <= len(offered):
            return Choice(None, len(offered))
        return Choice(offered[number - 1].payload)

    # -- step 1 --------------------------------------------------------------------------------

    async def _record_bot_turn(self, push: PendingPush, early: Question) -> Plan | None:
        """Step 1 for an ordinary bot turn in one statement; None leaves it to `_record`: other
        databases, a message with ID numbers to seal (the stored push is masked too), or a chat
        that stopped being an ordinary bot turn since the pending read."""
        hot_path = self.runtime.db.hot_path
        identity_id, conversation_id = push.state.identity_id, push.state.conversation_id
        if not hot_path.on_asyncpg or identity_id is None or conversation_id is None:
            return None
        content, extra = _content_of(push.msg_type, None, push.payload)
        if seal_id_numbers(content, self.runtime.protector)[1]:
            return None
        message_id = await record_bot_turn(
            hot_path,
            inbound_id=push.inbound_id,
            identity_id=identity_id,
            conversation_id=conversation_id,
            msg_type=push.msg_type,
            content=content,
            extra=extra,
            wechat_msg_id=push.wechat_msg_id,
            unionid=push.payload.get("UnionId") or None,
            seen_at=push.seen_at,
            state=push.state,
        )
        if message_id is None:
            return None
        return Plan(conversation_id=conversation_id, bot_texts=[early.text], sender_id=early.sender_id)

    async def _record(self, inbound_id: int) -> Plan | None:
        settings = self.runtime.settings
        async with self.runtime.db.sessions() as session:
            inbound = await session.get(InboundMessage, inbound_id)
            if inbound is None or inbound.status != InboundStatus.RECEIVED:
                return None
            inbound.attempts += 1
            seen_at = datetime.fromtimestamp(inbound.create_time, UTC)
            fields = inbound.payload
            identity = await get_or_create_identity(
                session, inbound.app_id, inbound.openid, unionid=fields.get("UnionId"), seen_at=seen_at
            )
            conversation = await current_conversation(session, identity, seen_at)
            message = await _store_patient_message(
                session, inbound, conversation, seen_at, self.runtime.protector
            )
            plan = Plan(conversation_id=conversation.id, patient_message_id=message.id)
            plan.retried = inbound.attempts > 1
            text = _typed_text(inbound.msg_type, message, self.runtime.protector)
            consent_granted = await session.scalar(select(route.latest_consent(identity.id)))
            state = RouteState(
                identity_id=identity.id,
                consent_granted=None if consent_granted is None else bool(consent_granted),
                conversation_id=conversation.id,
                conversation_status=conversation.status,
                rating_pending=conversation.rating_escalation_id is not None,
                last_message_at=conversation.last_message_at,
            )
            decided = route.decide(
                Turn(
                    inbound.msg_type, text, inbound.attempts, waited=datetime.now(UTC) - inbound.received_at
                ),
                state,
                route.Limits.of(settings),
            )
            plan.route = decided
            if decided is Route.GIVE_UP:
                inbound.status = InboundStatus.FAILED
                inbound.last_error = "gave up after repeated failures"
                _add_answer(session, conversation, inbound.id, SenderType.SYSTEM, GIVE_UP)
                await session.commit()
                log.error("inbound %s failed after %s attempts", inbound_id, inbound.attempts - 1)
                plan.finished = True
                return plan
            if decided is Route.EVENT:
                plan.system_replies = await self._on_event(session, identity, inbound.event or "", seen_at)
            else:
                identity.last_inbound_at = seen_at
                plan.for_staff = conversation.status == ConversationStatus.ESCALATED
                await self._plan(session, plan, decided, identity, conversation, message, text)
            await session.commit()
            return plan

    async def _on_event(
        self, session: AsyncSession, identity: WeChatIdentity, event: str, seen_at: datetime
    ) -> list[str]:
        if event == "subscribe":
            identity.subscribed = True
            identity.subscribed_at = seen_at
            identity.unsubscribed_at = None
            if await consent.current_decision(session, identity.id):
                return [consent.WELCOME]
            notice = consent.PRIVACY_NOTICE.format(version=self.runtime.settings.privacy_notice_version)
            return [f"{consent.WELCOME}\n\n{notice}", consent.CONSENT_QUESTION]
        if event == "unsubscribe":
            # Medical records stay: only the channel is marked closed.
            identity.subscribed = False
            identity.unsubscribed_at = seen_at
        return []

    async def _plan(
        self,
        session: AsyncSession,
        plan: Plan,
        decided: Route,
        identity: WeChatIdentity,
        conversation: Conversation,
        message: Message,
        text: str | None,
    ) -> None:
        """Step 1's answer for a patient's message on its route."""
        if decided is Route.EMERGENCY and text is not None:
            await self._plan_emergency(session, plan, identity, conversation, message, text)
            return
        if decided is Route.MEDIA:
            plan.system_replies = [_media_reply(message)]
            return
        if decided is Route.STAFF or text is None:
            return
        if decided is Route.CONSENT:
            reply = await consent_dialogue.answer(
                session,
                identity,
                conversation,
                message,
                text,
                notice_version=self.runtime.settings.privacy_notice_version,
                protector=self.runtime.protector,
                service_phone=self.runtime.settings.hospital_service_phone,
            )
            plan.system_replies = reply.replies
            plan.bot_texts = reply.for_bot
            plan.escalate = reply.escalate
            plan.sender_id = rasa_sender(identity.app_id, identity.openid)
            return
        if decided is Route.RATING:
            rated = await rating_dialogue.answer(session, self.runtime.events, conversation, message, text)
            if rated is not None:
                plan.system_replies = rated
                return
        choice = await self._read_choice(conversation.id, text)
        if choice.text is None:
            plan.system_replies = [f"请回复 1 到 {choice.options} 之间的数字。"]
            return
        plan.bot_texts = [choice.text]
        plan.sender_id = rasa_sender(identity.app_id, identity.openid)

    async def _plan_emergency(
        self,
        session: AsyncSession,
        plan: Plan,
        identity: WeChatIdentity,
        conversation: Conversation,
        message: Message,
        text: str,
    ) -> None:
        """Call 120 / go to the emergency department now and what to do meanwhile, first and alone
        (never an appointment); the conversation goes to nursing, urgent; the decision is kept
        with the patient's message (no extra round trip: it commits with step 1; a retried turn,
        whose message was stored before, checks for it first)."""
        assessment = assess(text)
        if not (plan.retried and await decided_on(session, message.id)):
            record_decision(
                session,
                assessment,
                conversation_id=conversation.id,
                message_id=message.id,
                patient_id=identity.patient_id,
                source=CHAT,
            )
        plan.system_replies = [assessment.answer.answer]
        plan.escalate, plan.escalate_priority, plan.escalate_team = "emergency", "urgent", "nursing"
        plan.sender_id = rasa_sender(identity.app_id, identity.openid)

    # -- step 3 --------------------------------------------------------------------------------

    async def _mark_processed(self, inbound_id: int) -> None:
        async with self.runtime.db.sessions() as session:
            await session.execute(
                update(InboundMessage)
                .where(InboundMessage.id == inbound_id, InboundMessage.status == InboundStatus.RECEIVED)
                .values(status=InboundStatus.PROCESSED, processed_at=datetime.now(UTC))
            )
            await session.commit()


async def _store_patient_message(
    session: AsyncSession,
    inbound: InboundMessage,
    conversation: Conversation,
    seen_at: datetime,
    protector: FieldProtector,
) -> Message:
    if inbound.attempts > 1:  # a retry may find the message a crashed attempt already stored
        existing = await session.scalar(select(Message).where(Message.inbound_id == inbound.id))
        if existing is not None:
            return existing
    fields = inbound.payload
    content, extra = _content_of(inbound.msg_type, inbound.event, fields)
    content, sealed = seal_id_numbers(content, protector)
    if sealed:
        # The stored push is masked too, in the same transaction as the message that keeps the original.
        extra = {**(extra or {}), SEALED_KEY: sealed}
        typed = "Recognition" if inbound.msg_type == "voice" else "Content"
        inbound.payload = {**fields, typed: seal_id_numbers(fields.get(typed) or "", protector)[0]}
    message = Message(
        conversation_id=conversation.id,
        direction=Direction.IN,
        sender_type=SenderType.PATIENT,
        msg_type=inbound.msg_type,
        content=content,
        extra=extra,
        wechat_msg_id=inbound.wechat_msg_id,
        inbound_id=inbound.id,
        delivery_status=DeliveryStatus.RECEIVED,
        created_at=seen_at,
    )
    session.add(message)
    conversation.last_message_at = max(conversation.last_message_at, seen_at)
    await session.flush()
    return message


def _typed_text(msg_type: str, message: Message, protector: FieldProtector) -> str | None:
    """What the patient typed or said, as route.typed_text reads a push, from the stored message
    (whose ID numbers may be sealed)."""
    if msg_type not in ("text", "voice") or (msg_type == "voice" and not message.content):
        return None
    return unsealed_text(message.content, message.extra, protector)


def _media_reply(message: Message) -> str:
    if message.msg_type == "image":
        return IMAGE_RECEIVED
    if message.msg_type == "voice":
        return VOICE_NOT_SUPPORTED
    return UNSUPPORTED_TYPE


def _content_of(
    msg_type: str, event: str | None, fields: dict[str, str]
) -> tuple[str, dict[str, Any] | None]:
    """The stored message's content and extra; a text or recognised voice in which the red-flag
    screen finds an emergency carries what it found (red_flag_screen.py)."""
    content, extra = _plain_content_of(msg_type, event, fields)
    mark = red_flag_screen.mark(content) if msg_type in ("text", "voice") and content else None
    if mark is not None:
        extra = {**(extra or {}), red_flag_screen.MARK_KEY: mark}
    return content, extra


def _plain_content_of(
    msg_type: str, event: str | None, fields: dict[str, str]
) -> tuple[str, dict[str, Any] | None]:
    if msg_type == "text":
        return fields.get("Content", ""), None
    if msg_type == "voice":
        extra = {"media_id": fields.get("MediaId"), "format": fields.get("Format")}
        return (fields.get("Recognition") or "").strip(), extra
    if msg_type == "image":
        return "", {"pic_url": fields.get("PicUrl"), "media_id": fields.get("MediaId")}
    if msg_type == "event":
        return event or "", {"event_key": fields.get("EventKey")} if fields.get("EventKey") else None
    return "", {"fields": fields}


async def _drop(asked: asyncio.Task[list[BotReply]] | None) -> None:
    """Let go of an early question step 1 did not plan (Rasa may still have taken the turn)."""
    if asked is None:
        return
    log.warning("early question to the bot dropped: step 1 planned differently")
    asked.cancel()
    with contextlib.suppress(BaseException):
        await asked


def _add_answer(
    session: AsyncSession,
    conversation: Conversation,
    inbound_id: int,
    sender: SenderType,
    text: str,
) -> None:
    now = datetime.now(UTC)
    session.add(Message(**answer_row(conversation.id, inbound_id, sender, BotReply(text), now)))
    conversation.last_message_at = max(conversation.last_message_at, now)


def _emergency(push: PendingPush) -> bool:
    """The route's own test (route.decide screens the same text), applied to order a backlog."""
    return push.msg_type != route.DIALOGUE and red_flag_screen.is_emergency(push.typed_text())
