"""The worker's follow-up job: start every due check-in exactly once, remind, and close windows.

Exactly once, with any number of workers and overlapping runs: a due check-in is claimed in the
database by a conditional UPDATE (status scheduled → claimed) before anything is sent; of several
workers only one's update matches. A claim older than FOLLOWUP_CLAIM_TIMEOUT_SECONDS belongs to a
worker that died and is taken over by another conditional UPDATE (again by one worker only). Starting
is a dialogue the bot starts (conversations/turns.py `start_dialogue`) whose key is unique per check-in start
(`followup:checkin:<id>`, and `:<n>` for a start again after 稍后再说), so a takeover after a crash
never queues a second dialogue. The dialogue waits behind the patient's own messages, never
interrupts staff or a form, and outside WeChat's 48-hour window invites with the template message
(FOLLOWUP_TEMPLATE_ID) whose link opens the mobile questionnaire. An invitation needs no Rasa, so the
run takes that patient's turns itself at once (the same route and lock a worker uses) instead of
leaving them in the inbound stream behind chat starts that wait for Rasa.

Sends happen only between FOLLOWUP_SEND_FROM and FOLLOWUP_SEND_UNTIL hospital time. Closing windows
(missed check-ins, lost to follow-up, completed enrolments) sends nothing and runs at any hour.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import String, and_, cast, exists, literal, or_, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from channels.outbound.delivery import TEMPLATE_KEY, Outbox
from channels.outbound.wechat_api import WINDOW_ERRORS
from crm_backend.config import HOSPITAL_TZ, Settings, parse_hhmm, within_local_hours
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
from crm_backend.conversations.processing import InboundProcessor
from crm_backend.conversations.reply_window import reply_window
from crm_backend.conversations.service import current_conversation
from crm_backend.conversations.turns import DialogueRequest, TemplateInvite, start_dialogue
from crm_backend.followups.enrolment import CHECKIN_DIALOGUE, OPEN, cancel_dialogues, settle_enrolment
from crm_backend.followups.links import checkin_url
from crm_backend.followups.models import (
    CheckinStatus,
    EnrolmentStatus,
    FollowupCheckin,
    FollowupEnrolment,
    FollowupPlanVersion,
    FollowupSend,
)
from crm_backend.followups.pace import wait_for_start
from crm_backend.followups.plan_service import definition_of
from crm_backend.followups.plans import PlanDefinition
from crm_backend.followups.recipients import recipient_of
from crm_backend.patients.models import Patient, WeChatIdentity

log = logging.getLogger(__name__)

#: The Rasa intent that starts the check-in dialogue, and its form (bot/intents/followup.yml).
CHECKIN_INTENT = "EXTERNAL_followup_checkin"
CHECKIN_FORM = "followup_form"
#: The form's slot naming the check-in it asks about (bot/dialogs/followup.py CHECKIN).
CHECKIN_SLOT = "followup_checkin"
#: Claims of one start before the check-in goes to the phone list instead of being tried again.
MAX_CLAIMS = 3
#: Check-ins one run starts at once (each start is a few short statements and a queue entry; the
#: database pool has 10 connections, shared with the worker's consumers).
START_CONCURRENCY = 4
#: FollowupSend.kind
START_CHAT, TEMPLATE, REMINDER = "start_chat", "template", "reminder"
QUEUED, SENT, FAILED = "queued", "sent", "failed"


def claim_timeout(settings: Settings) -> timedelta:
    """How old a claim is before another worker takes it over (FOLLOWUP_CLAIM_TIMEOUT_SECONDS)."""
    return timedelta(seconds=settings.followup_claim_timeout_seconds)


def in_send_hours(settings: Settings, now: datetime) -> bool:
    """FOLLOWUP_SEND_FROM <= hospital time < FOLLOWUP_SEND_UNTIL: never at night."""
    return within_local_hours(now, settings.followup_send_from, settings.followup_send_until)


def checkin_key(checkin_id: int, again_at: datetime | None = None) -> str:
    """The dialogue key of a check-in's start; a start again after 稍后再说 has its own."""
    base = f"{CHECKIN_DIALOGUE}{checkin_id}"
    return base if again_at is None else f"{base}:{int(again_at.timestamp())}"


def reminder_key(checkin_id: int) -> str:
    """The dialogue key of a check-in's reminder (one per check-in: reminded_at is claimed)."""
    return f"{checkin_key(checkin_id)}:{REMINDER}"


def reminder_open(stale_before: datetime) -> ColumnElement[bool]:
    """The check-in's reminder may be claimed: never claimed, or claimed before `stale_before` by a
    worker that died before anything came of it (no reminder send recorded as sent, failed or with
    its message, and no reminder dialogue queued), so that the reminder is not lost with it."""
    turn_key = literal(f"dialogue:{CHECKIN_DIALOGUE}") + cast(FollowupCheckin.id, String) + f":{REMINDER}"
    done = exists().where(
        FollowupSend.checkin_id == FollowupCheckin.id,
        FollowupSend.kind == REMINDER,
        or_(FollowupSend.message_id.is_not(None), FollowupSend.status != QUEUED),
    )
    queued = exists().where(InboundMessage.dedupe_key == turn_key)
    return or_(
        FollowupCheckin.reminded_at.is_(None),
        and_(FollowupCheckin.reminded_at < stale_before, ~done, ~queued),
    )


def checkin_id_of_key(dedupe_key: str | None) -> int | None:
    """The check-in a dialogue turn's dedupe key ("dialogue:followup:checkin:<id>[:<n>]") belongs to."""
    prefix = f"dialogue:{CHECKIN_DIALOGUE}"
    if not dedupe_key or not dedupe_key.startswith(prefix):
        return None
    head = dedupe_key[len(prefix) :].split(":", 1)[0]
    return int(head) if head.isdigit() else None


# -- what the patient reads --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CheckinInvite:
    """The template invitation to one check-in (keys of the FOLLOWUP_TEMPLATE_ID template, README)."""

    patient_name: str
    for_someone_else: bool
    plan_name: str
    anchor: str
    day: int
    due_local: datetime

    @property
    def when(self) -> str:
        event = "手术" if self.anchor == "surgery" else "出院"
        return f"{event}当天" if self.day == 0 else f"{event}后第{self.day}天"

    @property
    def first(self) -> str:
        if self.for_someone_else:
            return f"您好，您的家人{self.patient_name}{self.when}的随访到了，请您协助回答几个简单的问题。"
        return f"您好，{self.patient_name}，您{self.when}的随访到了，请回答几个简单的问题。"

    @property
    def remark(self) -> str:
        return (
            "点击填写问卷，约需 2 分钟；也可以直接在对话框回复，我们会逐题询问。"
            "如出现胸痛、突然呼吸困难、大量出血等情况，请立即拨打 120 或到急诊就诊。"
        )

    @property
    def first_reminder(self) -> str:
        whose = f"您的家人{self.patient_name}" if self.for_someone_else else f"{self.patient_name}，您"
        return f"您好，{whose}{self.when}的随访还没有完成，请抽空回答几个简单的问题。"

    def template_data(self, *, reminder: bool = False) -> dict[str, dict[str, str]]:
        values = {
            "first": self.first_reminder if reminder else self.first,
            "keyword1": self.patient_name,
            "keyword2": self.plan_name,
            "keyword3": f"{self.due_local.month}月{self.due_local.day}日",
            "remark": self.remark,
        }
        return {key: {"value": value} for key, value in values.items()}

    def text(self) -> str:
        """What staff read for the invitation in the conversation."""
        return f"【术后随访】{self.first}\n随访计划：{self.plan_name}\n{self.remark}"

    def reminder_text(self) -> str:
        """What staff read for the reminder's template invitation in the conversation."""
        return f"【随访提醒】{self.first_reminder}\n随访计划：{self.plan_name}\n{self.remark}"

    def reminder(self) -> str:
        who = f"{self.patient_name}的" if self.for_someone_else else "您的"
        return f"【随访提醒】{who}{self.when}随访还没有完成，请直接回复继续；如暂时不方便，可回复“稍后再说”。"


# -- the job -------------------------------------------------------------------------------------------


async def run_followups(outbox: Outbox, now: datetime | None = None) -> Counter[str]:
    """The scheduled job. Returns how many check-ins ended a step in each state (tests and logs)."""
    now = now or datetime.now(UTC)
    runtime = outbox.runtime
    settings = runtime.settings
    outcomes: Counter[str] = Counter()
    outcomes["missed"] += await close_windows(runtime.db.sessions, settings, now)
    if parse_hhmm(settings.followup_send_from) >= parse_hhmm(settings.followup_send_until):
        log.warning(
            "no check-ins started: FOLLOWUP_SEND_FROM %s is not before FOLLOWUP_SEND_UNTIL %s",
            settings.followup_send_from,
            settings.followup_send_until,
        )
        return +outcomes
    if not in_send_hours(settings, now):
        return +outcomes
    stale_before = now - claim_timeout(settings)
    active = FollowupEnrolment.status == EnrolmentStatus.active
    joined = select(FollowupCheckin.id).join(
        FollowupEnrolment, FollowupEnrolment.id == FollowupCheckin.enrolment_id
    )
    async with runtime.db.sessions() as session:
        due = (
            await session.scalars(
                joined.where(
                    active,
                    FollowupCheckin.status == CheckinStatus.scheduled,
                    FollowupCheckin.due_at <= now,
                    FollowupCheckin.window_ends_at > now,
                ).order_by(FollowupCheckin.due_at, FollowupCheckin.id)
            )
        ).all()
        again = (
            await session.scalars(
                joined.where(
                    active,
                    FollowupCheckin.status == CheckinStatus.started,
                    FollowupCheckin.postponed_until <= now,
                    FollowupCheckin.window_ends_at > now,
                ).order_by(FollowupCheckin.id)
            )
        ).all()
        stale = (
            await session.scalars(
                joined.where(
                    FollowupCheckin.status == CheckinStatus.claimed,
                    FollowupCheckin.claimed_at < stale_before,
                ).order_by(FollowupCheckin.id)
            )
        ).all()
        to_remind = (
            await session.scalars(
                joined.where(
                    active,
                    FollowupCheckin.status == CheckinStatus.started,
                    reminder_open(stale_before),
                    FollowupCheckin.postponed_until.is_(None),
                    FollowupCheckin.started_at
                    <= now - timedelta(hours=settings.followup_reminder_after_hours),
                    FollowupCheckin.window_ends_at > now,
                ).order_by(FollowupCheckin.id)
            )
        ).all()
    claimed = CheckinStatus.claimed
    gate = asyncio.Semaphore(START_CONCURRENCY)
    began = time.monotonic()

    def clock() -> datetime:
        """The run's time, moving on: a paced run lasts minutes, and a claim stamped with the run's
        start would look stale to the next run, which would take over a start still under way."""
        return now + timedelta(seconds=time.monotonic() - began)

    async def claim_and_start(checkin_id: int, conditions: tuple[Any, ...], *, again: bool = False) -> None:
        """`again`: a start after 稍后再说, which is not counted as a retry."""
        async with gate:
            if await _claim(outbox, checkin_id, conditions, clock(), counted=not again):
                # After the claim: a place in the pace goes to a start, not to a lost race.
                await wait_for_start(runtime)
                outcomes[await _start_safely(outbox, checkin_id, clock())] += 1

    scheduled = FollowupCheckin.status == CheckinStatus.scheduled
    postponed = FollowupCheckin.status == CheckinStatus.started
    taken_over = FollowupCheckin.status == claimed
    await asyncio.gather(
        *(claim_and_start(checkin_id, (scheduled,)) for checkin_id in due),
        *(
            claim_and_start(checkin_id, (postponed, FollowupCheckin.postponed_until <= now), again=True)
            for checkin_id in again
        ),
        *(
            claim_and_start(checkin_id, (taken_over, FollowupCheckin.claimed_at < stale_before))
            for checkin_id in stale
        ),
    )
    for checkin_id in to_remind:
        await wait_for_start(runtime)
        if await _remind(outbox, checkin_id, clock()):
            outcomes["reminded"] += 1
    outcomes = +outcomes  # "missed: 0" is nothing to log every second
    if outcomes:
        log.info("follow-up run at %s: %s", now.isoformat(), dict(outcomes))
    return outcomes


async def _claim(
    outbox: Outbox, checkin_id: int, conditions: tuple[Any, ...], now: datetime, *, counted: bool = True
) -> bool:
    """Claim the check-in if it is still as the caller saw it; only one worker's update matches.
    `claims` counts the first claim and takeovers (a start again after 稍后再说 is not a retry)."""
    values: dict[str, Any] = {"status": CheckinStatus.claimed, "claimed_at": now}
    if counted:
        values["claims"] = FollowupCheckin.claims + 1
    async with outbox.runtime.db.sessions() as session:
        result = await session.execute(
            update(FollowupCheckin).where(FollowupCheckin.id == checkin_id, *conditions).values(**values)
        )
        await session.commit()
    return result.rowcount == 1  # type: ignore[attr-defined]


async def _start_safely(outbox: Outbox, checkin_id: int, now: datetime) -> str:
    """One check-in's failure must not hold up the others; its claim goes stale and is taken over."""
    try:
        return await _start(outbox, checkin_id, now)
    except Exception:
        log.exception(
            "check-in %s failed to start; it will be taken over after %s",
            checkin_id,
            claim_timeout(outbox.runtime.settings),
        )
        return "error"


@dataclass
class _Loaded:
    checkin: FollowupCheckin
    enrolment: FollowupEnrolment
    definition: PlanDefinition
    patient: Patient


async def _load(session: AsyncSession, checkin_id: int) -> _Loaded:
    """The check-in with its enrolment, plan version and patient, in one statement."""
    checkin, enrolment, version, patient = (
        await session.execute(
            select(FollowupCheckin, FollowupEnrolment, FollowupPlanVersion, Patient)
            .join(FollowupEnrolment, FollowupEnrolment.id == FollowupCheckin.enrolment_id)
            .join(FollowupPlanVersion, FollowupPlanVersion.id == FollowupEnrolment.plan_version_id)
            .join(Patient, Patient.id == FollowupEnrolment.patient_id)
            .where(FollowupCheckin.id == checkin_id)
        )
    ).one()
    return _Loaded(checkin, enrolment, definition_of(version), patient)


async def _leave(outbox: Outbox, checkin_id: int, status: CheckinStatus, reason: str) -> str:
    """End this claim without a start: back to waiting, or final with a reason for staff."""
    async with outbox.runtime.db.sessions() as session:
        values: dict[str, Any] = {"status": status, "reason": reason[:255]}
        if status == CheckinStatus.scheduled:  # not a real claim: the next run looks again
            values["claims"] = FollowupCheckin.claims - 1
        await session.execute(
            update(FollowupCheckin)
            .where(FollowupCheckin.id == checkin_id, FollowupCheckin.status == CheckinStatus.claimed)
            .values(**values)
        )
        if status in (CheckinStatus.missed, CheckinStatus.skipped):
            loaded = await _load(session, checkin_id)
            await settle_enrolment(session, loaded.enrolment, outbox.runtime.settings)
        await session.commit()
    log.info("check-in %s: %s (%s)", checkin_id, status, reason)
    return "waiting" if status == CheckinStatus.scheduled else status.value


async def _start(outbox: Outbox, checkin_id: int, now: datetime) -> str:
    """Start one claimed check-in: queue its dialogue with the template invitation beside it."""
    runtime = outbox.runtime
    settings = runtime.settings
    async with runtime.db.sessions() as session:
        loaded = await _load(session, checkin_id)
        checkin, enrolment = loaded.checkin, loaded.enrolment
        if checkin.status != CheckinStatus.claimed:
            return CheckinStatus(checkin.status).value
        if checkin.claims > 1 and checkin.started_at is None:
            log.warning("check-in %s: taking over a claim left by a worker that stopped", checkin_id)
        again_at = checkin.postponed_until
        resting = CheckinStatus.started if again_at is not None else CheckinStatus.scheduled
        if enrolment.status == EnrolmentStatus.paused:
            return await _leave(outbox, checkin_id, resting, "")
        if enrolment.status != EnrolmentStatus.active:
            return await _leave(outbox, checkin_id, CheckinStatus.skipped, f"enrolment {enrolment.status}")
        if now >= checkin.window_ends_at:
            return await _leave(
                outbox, checkin_id, CheckinStatus.missed, "its answer window closed before it could start"
            )
        if checkin.claims > MAX_CLAIMS:
            return await _leave(
                outbox, checkin_id, CheckinStatus.missed, f"could not be started ({MAX_CLAIMS} tries): phone"
            )
        if checkin.identity_id is not None:  # a start again, or a takeover: the same person
            identity = await session.get(WeChatIdentity, checkin.identity_id)
            for_someone_else = identity is not None and identity.patient_id != enrolment.patient_id
        else:
            recipient = await recipient_of(session, enrolment.patient_id)
            identity = recipient.identity if recipient else None
            for_someone_else = bool(recipient and recipient.for_someone_else)
        if identity is None or not identity.subscribed:
            why = "no WeChat account follows us for this patient: phone follow-up"
            return await _leave(outbox, checkin_id, CheckinStatus.missed, why)
        window_open = (await reply_window(session, identity, now)).is_open
        invite = _invite(loaded, for_someone_else)
        template_id = settings.followup_template_id.strip()
        if not window_open and not template_id:
            # No way to invite: the check-in waits until the patient writes (then the next run
            # starts it in chat), and is missed when its window closes first.
            why = "waiting for the patient to write: outside WeChat's 48-hour window, no "
            return await _leave(outbox, checkin_id, resting, why + "FOLLOWUP_TEMPLATE_ID")
        # Before the dialogue is queued: a takeover addresses the same person, and the worker that
        # takes the dialogue finds the send to record its outcome on. A takeover of a start whose
        # send was stored before the crash keeps that one.
        await session.execute(
            update(FollowupCheckin).where(FollowupCheckin.id == checkin_id).values(identity_id=identity.id)
        )
        earlier = select(FollowupSend.id).where(
            FollowupSend.checkin_id == checkin_id, FollowupSend.kind.in_((START_CHAT, TEMPLATE))
        )
        if again_at is not None:
            earlier = earlier.where(FollowupSend.created_at >= again_at)
        first_try = checkin.claims == 1 and again_at is None  # nothing stored before it
        if first_try or await session.scalar(earlier.limit(1)) is None:
            session.add(
                FollowupSend(
                    checkin_id=checkin_id,
                    kind=START_CHAT if window_open else TEMPLATE,
                    identity_id=identity.id,
                    status=QUEUED,
                    created_at=now,
                )
            )
        await session.commit()
    template = (
        TemplateInvite(
            template_id,
            invite.template_data(),
            invite.text(),
            url=checkin_url(settings, checkin_id),
        )
        if template_id
        else None
    )
    key = checkin_key(checkin_id, again_at)
    request = DialogueRequest(
        key=key,
        identity_id=identity.id,
        patient_id=enrolment.patient_id,
        intent=CHECKIN_INTENT,
        reason="followup_checkin",
        expires_at=checkin.window_ends_at,
        entities={"checkin_id": checkin_id},
        template=template,
        needs_consent=True,
        send_hours=(settings.followup_send_from, settings.followup_send_until),
    )
    # An invitation needs no Rasa: this run takes the patient's turns itself (below) instead of
    # queuing them in the inbound stream behind chat starts that wait for Rasa.
    turn_id = await start_dialogue(runtime, request, queue=window_open)
    via = "chat" if window_open else "template"
    async with runtime.db.sessions() as session:
        started = await session.execute(
            update(FollowupCheckin)
            .where(FollowupCheckin.id == checkin_id, FollowupCheckin.status == CheckinStatus.claimed)
            .values(
                status=CheckinStatus.started,
                started_via=via,
                started_at=now,
                postponed_until=None,
                reason="",
            )
        )
        if started.rowcount != 1:  # type: ignore[attr-defined]
            await session.rollback()
            # Settled while its dialogue was being queued: a stop (or the page, or a call) came in
            # between, and found no turn to cancel yet. Cancel it now, or the patient (perhaps
            # deceased, perhaps opted out) still gets the invitation.
            status = await session.scalar(
                select(FollowupCheckin.status).where(FollowupCheckin.id == checkin_id)
            )
            if status is not None and status not in OPEN:
                why = f"check-in {status} before it started"
                await cancel_dialogues(session, [checkin_id], why)
                await session.execute(
                    update(FollowupSend)
                    .where(FollowupSend.checkin_id == checkin_id, FollowupSend.status == QUEUED)
                    .values(status=FAILED, error=why)
                )
                await session.commit()
            log.warning("check-in %s was settled meanwhile (%s)", checkin_id, status)
            return "lost race"
        await session.commit()
    if not window_open:
        # Through the one turn route all the same: under the patient's lock, in order with what
        # the patient sent, route.decide and turns.plan_dialogue deciding INVITED.
        await _take_turns_now(outbox, identity.app_id, identity.openid, now)
    if turn_id is None:  # taken over: the dialogue exists; record how far it got
        await settle_checkin_send(outbox, key, now)
    log.info("check-in %s started via %s for identity %s (%s)", checkin_id, via, identity.id, key)
    return CheckinStatus.started.value


async def _take_turns_now(outbox: Outbox, app_id: str, openid: str, now: datetime) -> None:
    """Process the patient's stored turns here, as a worker's inbound consumer does (when another
    consumer holds the patient's lock, it returns at once: the holder drains them)."""
    processor = InboundProcessor(outbox.runtime, clock=lambda: now)
    async with outbox.delivering_to(openid) as deliver:
        await processor.process_patient(app_id, openid, deliver)


def _invite(loaded: _Loaded, for_someone_else: bool) -> CheckinInvite:
    return CheckinInvite(
        patient_name=loaded.patient.display_name or "就诊人",
        for_someone_else=for_someone_else,
        plan_name=loaded.definition.name,
        anchor=loaded.definition.anchor,
        day=loaded.checkin.day,
        due_local=loaded.checkin.due_at.astimezone(HOSPITAL_TZ),
    )


# -- outcomes ------------------------------------------------------------------------------------------


async def settle_checkin_send(outbox: Outbox, dedupe_key: str, now: datetime | None = None) -> None:
    """Record on the check-in's latest queued start what its dialogue did: said in chat, template sent,
    refused (WeChat's error) or dropped (the dialogue's reason). Still under way: left queued. A chat
    start WeChat refused because its window had closed (45015/45047) is followed by the template."""
    now = now or datetime.now(UTC)
    turn_key = dedupe_key if dedupe_key.startswith("dialogue:") else f"dialogue:{dedupe_key}"
    checkin_id = checkin_id_of_key(turn_key)
    if checkin_id is None:
        return
    reminding = turn_key == f"dialogue:{reminder_key(checkin_id)}"
    async with outbox.runtime.db.sessions() as session:
        turn = await session.scalar(select(InboundMessage).where(InboundMessage.dedupe_key == turn_key))
        send = await session.scalar(
            select(FollowupSend)
            .where(
                FollowupSend.checkin_id == checkin_id,
                FollowupSend.kind.in_((REMINDER,) if reminding else (START_CHAT, TEMPLATE)),
                FollowupSend.message_id.is_(None) if reminding else true(),
                FollowupSend.status == QUEUED,
            )
            .order_by(FollowupSend.id.desc())
            .limit(1)
        )
        if turn is None or send is None:
            return
        first = await session.scalar(
            select(Message)
            .where(Message.reply_to_inbound_id == turn.id, Message.direction == Direction.OUT)
            .order_by(Message.id)
            .limit(1)
        )
        values: dict[str, Any]
        via = None
        if turn.status == InboundStatus.FAILED:
            values = {"status": FAILED, "error": (turn.last_error or "dialogue dropped")[:255]}
        elif first is None:
            if turn.status != InboundStatus.PROCESSED:
                return
            values = {"status": FAILED, "error": "the bot said nothing"}
        elif first.delivery_status in (DeliveryStatus.PENDING, DeliveryStatus.SENDING):
            return
        else:
            via = "template" if first.msg_type == "template" else "chat"
            values = {"message_id": first.id}
            if not reminding:
                values["kind"] = TEMPLATE if via == "template" else START_CHAT
            if first.delivery_status == DeliveryStatus.SENT:
                values["status"] = SENT
            else:
                values["status"] = FAILED
                values["error"] = (first.delivery_error or first.delivery_status)[:255]
        # Conditional: of two settles of the same step (the listener and a takeover) one records it.
        recorded = await session.execute(
            update(FollowupSend)
            .where(FollowupSend.id == send.id, FollowupSend.status == QUEUED)
            .values(**values)
        )
        if recorded.rowcount != 1:  # type: ignore[attr-defined]
            return
        if via is not None and not reminding:
            await session.execute(
                update(FollowupCheckin).where(FollowupCheckin.id == checkin_id).values(started_via=via)
            )
        await session.commit()
    if values["status"] != FAILED:
        return
    log.warning("check-in %s: start failed: %s", checkin_id, values["error"])
    refused = _errcode(values["error"])
    has_template = bool(outbox.runtime.settings.followup_template_id.strip())
    if via == "chat" and refused in WINDOW_ERRORS and has_template:
        log.info("check-in %s: chat refused (%s), inviting by template", checkin_id, refused)
        await _invite_by_template(outbox, checkin_id, now, reminder=reminding)


def _errcode(error: str) -> int | None:
    """The outbox stores WeChat refusals as "<errcode> <errmsg>"."""
    head = error.partition(" ")[0]
    return int(head) if head.isdigit() else None


async def _invite_by_template(outbox: Outbox, checkin_id: int, now: datetime, *, reminder: bool) -> None:
    """The template invitation (or reminder) sent directly: its chat start was refused. Recorded as
    a send of its own."""
    async with outbox.runtime.db.sessions() as session:
        loaded = await _load(session, checkin_id)
        identity = await session.get(WeChatIdentity, loaded.checkin.identity_id or 0)
        if identity is None or loaded.enrolment.status != EnrolmentStatus.active:
            return
        conversation = await current_conversation(session, identity, now)
        invite = _invite(loaded, identity.patient_id != loaded.enrolment.patient_id)
        message = _template_message(session, outbox, conversation, checkin_id, invite, now, reminder=reminder)
        await session.flush()
        send = FollowupSend(
            checkin_id=checkin_id,
            kind=REMINDER if reminder else TEMPLATE,
            identity_id=identity.id,
            message_id=message.id,
            status=QUEUED,
            created_at=now,
        )
        session.add(send)
        if not reminder:
            await session.execute(
                update(FollowupCheckin).where(FollowupCheckin.id == checkin_id).values(started_via="template")
            )
        await session.commit()
        conversation_id, message_id, send_id = conversation.id, message.id, send.id
    await _deliver_and_record(outbox, conversation_id, message_id, send_id)


def _template_message(
    session: AsyncSession,
    outbox: Outbox,
    conversation: Conversation,
    checkin_id: int,
    invite: CheckinInvite,
    now: datetime,
    *,
    reminder: bool = False,
) -> Message:
    """The check-in's template invitation (or reminder), stored pending in the conversation for the
    outbox."""
    settings = outbox.runtime.settings
    wechat = {
        "template_id": settings.followup_template_id.strip(),
        "data": invite.template_data(reminder=reminder),
        "url": checkin_url(settings, checkin_id),
    }
    message = Message(
        conversation_id=conversation.id,
        direction=Direction.OUT,
        sender_type=SenderType.SYSTEM,
        msg_type="template",
        content=invite.reminder_text() if reminder else invite.text(),
        extra={TEMPLATE_KEY: wechat, "followup_checkin": checkin_id},
        delivery_status=DeliveryStatus.PENDING,
        created_at=now,
    )
    session.add(message)
    conversation.last_message_at = max(conversation.last_message_at, now)
    return message


async def _deliver_and_record(outbox: Outbox, conversation_id: int, message_id: int, send_id: int) -> None:
    """Send what the conversation has pending (this message among it) and record how it ended."""
    await outbox.deliver_conversation(conversation_id)
    async with outbox.runtime.db.sessions() as session:
        delivered = await session.get(Message, message_id)
        stored = await session.get(FollowupSend, send_id)
        assert delivered is not None and stored is not None
        if delivered.delivery_status == DeliveryStatus.SENT:
            stored.status = SENT
        elif delivered.delivery_status not in (DeliveryStatus.PENDING, DeliveryStatus.SENDING):
            stored.status = FAILED
            stored.error = (delivered.delivery_error or delivered.delivery_status)[:255]
        await session.commit()


# -- reminders -----------------------------------------------------------------------------------------


async def _remind(outbox: Outbox, checkin_id: int, now: datetime) -> bool:
    """One reminder per started, unanswered check-in: claimed by setting reminded_at conditionally
    (taken over after the claim timeout when nothing came of a claim: `reminder_open`).

    Once the check-in's dialogue has run, the reminder starts it again (its own dialogue key, taking
    up its own form if Rasa still has it open): the greeting says the check-in is still waiting and
    the first question not answered yet follows, so a reply always reaches the check-in, also after
    a handover, a lost tracker or 稍后再说 late in the day. Outside WeChat's window it invites with the
    template as a start does. While the start itself still waits for the patient (invited, or a
    busy conversation), a reply starts it anyway: the reminder is one message."""
    runtime = outbox.runtime
    settings = runtime.settings
    async with runtime.db.sessions() as session:
        claimed = await session.execute(
            update(FollowupCheckin)
            .where(
                FollowupCheckin.id == checkin_id,
                FollowupCheckin.status == CheckinStatus.started,
                reminder_open(now - claim_timeout(settings)),
                # Paused or stopped since the run listed it: no reminder.
                FollowupCheckin.enrolment_id.in_(
                    select(FollowupEnrolment.id).where(FollowupEnrolment.status == EnrolmentStatus.active)
                ),
            )
            .values(reminded_at=now)
        )
        await session.commit()
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        return False
    template_id = settings.followup_template_id.strip()
    async with runtime.db.sessions() as session:
        loaded = await _load(session, checkin_id)
        identity = (
            await session.get(WeChatIdentity, loaded.checkin.identity_id)
            if loaded.checkin.identity_id
            else None
        )
        if identity is None or not identity.subscribed:
            return await _reminder_failed(session, checkin_id, identity, "no following WeChat account", now)
        invite = _invite(loaded, identity.patient_id != loaded.enrolment.patient_id)
        conversation = await current_conversation(session, identity, now)
        if conversation.status == ConversationStatus.ESCALATED:
            # Staff hold the chat: no reminder in the middle of it; a later run tries again.
            await session.rollback()
            await session.execute(
                update(FollowupCheckin).where(FollowupCheckin.id == checkin_id).values(reminded_at=None)
            )
            await session.commit()
            return False
        window_open = (await reply_window(session, identity, now)).is_open
        if not window_open and not template_id:
            why = "outside WeChat's 48-hour window and no FOLLOWUP_TEMPLATE_ID"
            return await _reminder_failed(session, checkin_id, identity, why, now)
        if await _start_waiting(session, checkin_id):
            if window_open:
                message = add_outbound(
                    session,
                    conversation,
                    SenderType.SYSTEM,
                    invite.reminder(),
                    extra={"followup_checkin": checkin_id},
                )
            else:
                message = _template_message(
                    session, outbox, conversation, checkin_id, invite, now, reminder=True
                )
            await session.flush()
            send = _reminder_send(checkin_id, identity, now, message.id)
            session.add(send)
            await session.commit()
            conversation_id, message_id, send_id = conversation.id, message.id, send.id
        else:
            # A claim taken over finds the send its worker recorded before dying, if it did.
            recorded = await session.scalar(
                select(FollowupSend.id).where(
                    FollowupSend.checkin_id == checkin_id,
                    FollowupSend.kind == REMINDER,
                    FollowupSend.message_id.is_(None),
                    FollowupSend.status == QUEUED,
                )
            )
            if recorded is None:
                session.add(_reminder_send(checkin_id, identity, now, None))
            await session.commit()
            conversation_id = None
    if conversation_id is not None:
        await _deliver_and_record(outbox, conversation_id, message_id, send_id)
        return True
    template = (
        TemplateInvite(
            template_id,
            invite.template_data(reminder=True),
            invite.reminder_text(),
            url=checkin_url(settings, checkin_id),
        )
        if template_id
        else None
    )
    request = DialogueRequest(
        key=reminder_key(checkin_id),
        identity_id=identity.id,
        patient_id=loaded.enrolment.patient_id,
        intent=CHECKIN_INTENT,
        reason="followup_reminder",
        expires_at=loaded.checkin.window_ends_at,
        entities={"checkin_id": checkin_id},
        template=template,
        needs_consent=True,
        send_hours=(settings.followup_send_from, settings.followup_send_until),
        resumes=CHECKIN_FORM,
        resumes_with={CHECKIN_SLOT: checkin_id},
    )
    await start_dialogue(runtime, request, queue=window_open)
    if not window_open:
        await _take_turns_now(outbox, identity.app_id, identity.openid, now)
    log.info("check-in %s: reminder dialogue started for identity %s", checkin_id, identity.id)
    return True


def _reminder_send(
    checkin_id: int, identity: WeChatIdentity, now: datetime, message_id: int | None
) -> FollowupSend:
    return FollowupSend(
        checkin_id=checkin_id,
        kind=REMINDER,
        identity_id=identity.id,
        message_id=message_id,
        status=QUEUED,
        created_at=now,
    )


async def _reminder_failed(
    session: AsyncSession, checkin_id: int, identity: WeChatIdentity | None, why: str, now: datetime
) -> bool:
    session.add(
        FollowupSend(
            checkin_id=checkin_id,
            kind=REMINDER,
            identity_id=identity.id if identity else None,
            status=FAILED,
            error=why,
            created_at=now,
        )
    )
    await session.commit()
    return False


async def _start_waiting(session: AsyncSession, checkin_id: int) -> bool:
    """The check-in's latest start is a dialogue turn that has not run yet."""
    base = f"dialogue:{checkin_key(checkin_id)}"
    status = await session.scalar(
        select(InboundMessage.status)
        .where(
            (InboundMessage.dedupe_key == base) | InboundMessage.dedupe_key.like(f"{base}:%"),
            InboundMessage.dedupe_key != f"dialogue:{reminder_key(checkin_id)}",
        )
        .order_by(InboundMessage.id.desc())
        .limit(1)
    )
    return status == InboundStatus.RECEIVED


# -- closing windows -------------------------------------------------------------------------------------


async def close_windows(sessions: Any, settings: Settings, now: datetime) -> int:
    """Check-ins of active enrolments past their window unanswered → missed (the team's phone list);
    then lost to follow-up and completed enrolments. Returns how many were marked missed."""
    async with sessions() as session:
        rows = (
            await session.execute(
                select(FollowupCheckin.id, FollowupCheckin.status, FollowupCheckin.enrolment_id)
                .join(FollowupEnrolment, FollowupEnrolment.id == FollowupCheckin.enrolment_id)
                .where(
                    FollowupEnrolment.status == EnrolmentStatus.active,
                    FollowupCheckin.status.in_(OPEN),
                    FollowupCheckin.window_ends_at <= now,
                )
            )
        ).all()
        touched: set[int] = set()
        missed = 0
        for checkin_id, status, enrolment_id in rows:
            reason = (
                "unanswered when its window closed"
                if status == CheckinStatus.started
                else ("never started before its window closed")
            )
            done = await session.execute(
                update(FollowupCheckin)
                .where(FollowupCheckin.id == checkin_id, FollowupCheckin.status == status)
                .values(status=CheckinStatus.missed, reason=reason)
            )
            if done.rowcount == 1:  # type: ignore[attr-defined]
                touched.add(enrolment_id)
                missed += 1
        finished = (
            await session.scalars(
                select(FollowupEnrolment.id).where(
                    FollowupEnrolment.status == EnrolmentStatus.active,
                    ~exists().where(
                        and_(
                            FollowupCheckin.enrolment_id == FollowupEnrolment.id,
                            FollowupCheckin.status.in_(OPEN),
                        )
                    ),
                )
            )
        ).all()
        for enrolment_id in touched | set(finished):
            enrolment = await session.get(FollowupEnrolment, enrolment_id)
            assert enrolment is not None
            await settle_enrolment(session, enrolment, settings)
        await session.commit()
    return missed
