"""Day-before appointment reminders, sent by the worker's scheduler exactly once per appointment.

Exactly once, with any number of workers and overlapping runs: a reminder is claimed by inserting its
`appointment_reminders` row (unique per appointment and kind) in its own committed transaction before
anything is sent; a worker whose insert hits the existing row leaves the reminder alone. Every later
write to the row is conditional on it still being claimed.

The reminder is a dialogue the bot starts (conversations/turns.py `start_dialogue`, key
`reminder:<id>`): it waits its turn behind the patient's own messages, never interrupts staff or an
open booking form, and Rasa says it (intent `EXTERNAL_appointment_reminder`, worded by the CRM's
bot API from the same `ReminderText`). Outside WeChat's 48-hour window the dialogue invites with the
template message (`REMINDER_TEMPLATE_ID`) instead, through the outbox. `settle_reminder` records
the outcome on the reminder row when the dialogue reports a step (DialogueSettled, listeners.py)
or when a stale claim is taken over: sent in chat, template sent, refused (45015/45047 in chat falls
back to sending the template directly), or dropped with the dialogue's reason.

A worker that dies holding a claim: the claim goes stale after `CLAIM_TIMEOUT` and the next run takes
it over (a conditional UPDATE, so again only one worker does). The dialogue's key is unique, so the
takeover settles the one dialogue instead of starting a second. A template reminder sent directly
after a refusal and interrupted between WeChat's answer and our commit is sent again: a rare
duplicate is better than a patient who misses the appointment. After `MAX_CLAIMS` takeovers, or once
the day before has passed, the reminder is marked failed for staff instead.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from channels.outbound.delivery import Outbox
from channels.outbound.wechat_api import WINDOW_ERRORS
from crm_backend.appointments.models import (
    Appointment,
    AppointmentReminder,
    AppointmentStatus,
    HalfDay,
    ReminderChannel,
    ReminderStatus,
    Schedule,
    ScheduleStatus,
)
from crm_backend.appointments.service import (
    HALF_DAY_NAMES,
    HOSPITAL_TZ,
    WITH_SESSION,
    day_label,
    hospital_today,
    session_start,
)
from crm_backend.config import Settings, parse_hhmm, within_local_hours
from crm_backend.conversations.models import (
    Conversation,
    DeliveryStatus,
    Direction,
    InboundMessage,
    InboundStatus,
    Message,
    SenderType,
)
from crm_backend.conversations.reply_window import REPLY_WINDOW
from crm_backend.conversations.service import current_conversation
from crm_backend.conversations.turns import DialogueRequest, TemplateInvite, start_dialogue
from crm_backend.database.core import Database
from crm_backend.database.hot_path import insert_for
from crm_backend.patients.models import Patient, PatientLink, WeChatIdentity

log = logging.getLogger(__name__)

DAY_BEFORE = "day_before"
#: The Rasa intent that says a reminder (bot/intents/booking.yml) and its dialogues' key prefix.
REMINDER_INTENT = "EXTERNAL_appointment_reminder"
REMINDER_DIALOGUE = "reminder:"
#: A claim older than this belongs to a worker that died (a send takes seconds, at most ~2 minutes
#: when the conversation's delivery lock is busy).
CLAIM_TIMEOUT = timedelta(minutes=10)
#: Claims per reminder before it is marked failed instead of tried again.
MAX_CLAIMS = 3


def in_send_window(settings: Settings, now: datetime) -> bool:
    """True when reminders may go out now (hospital time): REMINDER_SEND_FROM <= now < REMINDER_SEND_UNTIL."""
    return within_local_hours(now, settings.reminder_send_from, settings.reminder_send_until)


def in_reply_window(identity: WeChatIdentity, now: datetime) -> bool:
    """Whether a customer-service message may still reach this identity (its last message < 48 h ago)."""
    return identity.last_inbound_at is not None and now - identity.last_inbound_at < REPLY_WINDOW


# -- what the patient reads --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReminderText:
    """One appointment, worded for the person who booked it (a parent booking for a child)."""

    patient_name: str
    for_someone_else: bool
    department: str
    doctor: str
    day: date
    half_day: HalfDay
    cancel_cutoff_hours: float

    @property
    def when(self) -> str:
        """e.g. "12月1日（周二）上午 08:00"."""
        start = session_start(self.day, self.half_day)
        return f"{day_label(self.day)}{HALF_DAY_NAMES[self.half_day]} {start:%H:%M}"

    @property
    def first(self) -> str:
        whose = f"您为{self.patient_name}预约的" if self.for_someone_else else "您预约的"
        return f"{whose}门诊就在明天，请按时就诊。"

    @property
    def remark(self) -> str:
        return (
            "请携带就诊人的身份证或就诊卡（医保卡），提前 15 分钟到门诊自助机或服务台签到，再到科室候诊。"
            f"如需取消，回复“取消预约”（就诊前 {self.cancel_cutoff_hours:g} 小时内无法在线取消）。"
        )

    def lines(self) -> list[str]:
        return [
            f"就诊人：{self.patient_name}",
            f"科室：{self.department}",
            f"医生：{self.doctor}",
            f"时间：{self.when} 开诊",
        ]

    def text(self) -> str:
        """The customer-service message, and what staff see for a template message too."""
        return "\n".join([f"【就诊提醒】{self.first}", *self.lines(), self.remark])

    def template_data(self) -> dict[str, dict[str, str]]:
        """Keys of the template configured as REMINDER_TEMPLATE_ID (see README)."""
        values = {
            "first": self.first,
            "keyword1": self.patient_name,
            "keyword2": self.department,
            "keyword3": self.doctor,
            "keyword4": self.when,
            "remark": self.remark,
        }
        return {key: {"value": value} for key, value in values.items()}


# -- the job -------------------------------------------------------------------------------------------


async def send_due_reminders(outbox: Outbox, now: datetime | None = None) -> Counter[str]:
    """The scheduled job: remind every appointment of tomorrow not reminded yet, if the hour allows.

    Returns how many reminders ended in each status in this run (tests and logs).
    """
    now = now or datetime.now(UTC)
    runtime = outbox.runtime
    settings = runtime.settings
    outcomes: Counter[str] = Counter()
    if parse_hhmm(settings.reminder_send_from) >= parse_hhmm(settings.reminder_send_until):
        log.warning(
            "no reminders sent: REMINDER_SEND_FROM %s is not before REMINDER_SEND_UNTIL %s",
            settings.reminder_send_from,
            settings.reminder_send_until,
        )
        return outcomes
    if not in_send_window(settings, now):
        return outcomes
    tomorrow = hospital_today(now) + timedelta(days=1)
    stale_before = now - CLAIM_TIMEOUT
    async with runtime.db.sessions() as session:
        fresh = (
            await session.scalars(
                select(Appointment.id)
                .join(Schedule, Appointment.schedule_id == Schedule.id)
                .outerjoin(
                    AppointmentReminder,
                    and_(
                        AppointmentReminder.appointment_id == Appointment.id,
                        AppointmentReminder.kind == DAY_BEFORE,
                    ),
                )
                .where(
                    Schedule.date == tomorrow,
                    Appointment.status == AppointmentStatus.BOOKED,
                    AppointmentReminder.id.is_(None),
                )
                .order_by(Appointment.id)
            )
        ).all()
        stale = (
            await session.scalars(
                select(AppointmentReminder.id)
                .where(
                    AppointmentReminder.kind == DAY_BEFORE,
                    AppointmentReminder.status == ReminderStatus.CLAIMED,
                    AppointmentReminder.claimed_at < stale_before,
                )
                .order_by(AppointmentReminder.id)
            )
        ).all()
    for appointment_id in fresh:
        reminder_id = await _claim(runtime.db, appointment_id, now)
        if reminder_id is not None:
            outcomes[await _run_safely(outbox, reminder_id, tomorrow, now)] += 1
    for reminder_id in stale:
        if await _take_over(runtime.db, reminder_id, stale_before, now):
            log.warning("reminder %s: taking over a claim left by a worker that stopped", reminder_id)
            outcomes[await _run_safely(outbox, reminder_id, tomorrow, now)] += 1
    if outcomes:
        log.info("appointment reminders for %s: %s", tomorrow, dict(outcomes))
    return outcomes


async def _run_safely(outbox: Outbox, reminder_id: int, tomorrow: date, now: datetime) -> str:
    """One reminder's failure must not hold up the others; its claim goes stale and is taken over."""
    try:
        return ReminderStatus(await _run_one(outbox, reminder_id, tomorrow, now)).value
    except Exception:
        log.exception(
            "reminder %s failed unexpectedly; it will be taken over after %s", reminder_id, CLAIM_TIMEOUT
        )
        return "error"


async def _claim(db: Database, appointment_id: int, now: datetime) -> int | None:
    """Insert the reminder row; None if another worker already has it (no error, no exception)."""
    dialect_insert = insert_for(db.engine)
    statement = (
        dialect_insert(AppointmentReminder)
        .values(
            appointment_id=appointment_id,
            kind=DAY_BEFORE,
            status=ReminderStatus.CLAIMED,
            attempts=1,
            claimed_at=now,
        )
        .on_conflict_do_nothing(index_elements=["appointment_id", "kind"])
        .returning(AppointmentReminder.id)
    )
    async with db.sessions() as session:
        reminder_id = await session.scalar(statement)
        await session.commit()
    return reminder_id


async def _take_over(db: Database, reminder_id: int, stale_before: datetime, now: datetime) -> bool:
    """Claim a stale reminder again; the condition makes sure only one of several workers does."""
    async with db.sessions() as session:
        taken = await session.execute(
            update(AppointmentReminder)
            .where(
                AppointmentReminder.id == reminder_id,
                AppointmentReminder.status == ReminderStatus.CLAIMED,
                AppointmentReminder.claimed_at < stale_before,
            )
            .values(claimed_at=now, attempts=AppointmentReminder.attempts + 1)
        )
        await session.commit()
    return taken.rowcount == 1  # type: ignore[attr-defined]


async def _finish(
    session: AsyncSession, reminder_id: int, status: ReminderStatus, now: datetime, **fields: Any
) -> bool:
    """Record the outcome, in the caller's transaction, unless someone else already finished it."""
    done = await session.execute(
        update(AppointmentReminder)
        .where(AppointmentReminder.id == reminder_id, AppointmentReminder.status == ReminderStatus.CLAIMED)
        .values(status=status, finished_at=now, **fields)
    )
    if done.rowcount != 1:  # type: ignore[attr-defined]
        log.warning("reminder %s was finished by another worker; keeping that outcome", reminder_id)
        return False
    return True


async def _finish_alone(
    outbox: Outbox, reminder_id: int, status: ReminderStatus, now: datetime, **fields: Any
) -> str:
    async with outbox.runtime.db.sessions() as session:
        await _finish(session, reminder_id, status, now, **fields)
        await session.commit()
    if status == ReminderStatus.SKIPPED:
        log.info("reminder %s skipped: %s", reminder_id, fields.get("reason"))
    return status


@dataclass
class _Loaded:
    reminder: AppointmentReminder
    appointment: Appointment
    patient: Patient
    message: Message | None


async def _load(session: AsyncSession, reminder_id: int) -> _Loaded:
    reminder = await session.get(AppointmentReminder, reminder_id)
    assert reminder is not None
    appointment = await session.scalar(
        select(Appointment).where(Appointment.id == reminder.appointment_id).options(WITH_SESSION)
    )
    assert appointment is not None
    patient = await session.get(Patient, appointment.patient_id)
    assert patient is not None
    message = await session.get(Message, reminder.message_id) if reminder.message_id else None
    return _Loaded(reminder, appointment, patient, message)


async def _run_one(outbox: Outbox, reminder_id: int, tomorrow: date, now: datetime) -> str:
    """Decide and send one claimed reminder; returns its status afterwards."""
    async with outbox.runtime.db.sessions() as session:
        loaded = await _load(session, reminder_id)
        appointment, reminder = loaded.appointment, loaded.reminder
        if reminder.identity_id is not None:  # taken over: keep the recipient chosen the first time
            identity = await session.get(WeChatIdentity, reminder.identity_id)
        else:
            identity = await _recipient(session, appointment)
    schedule = appointment.schedule

    if reminder.channel is not None:
        # Its dialogue was started (by this claim or one taken over): record how it went, never
        # start a second one.
        return await settle_reminder(outbox, reminder_id, now)
    if appointment.status != AppointmentStatus.BOOKED:
        return await _finish_alone(
            outbox, reminder_id, ReminderStatus.SKIPPED, now, reason=f"appointment {appointment.status}"
        )
    if schedule.date != tomorrow:
        return await _finish_alone(
            outbox,
            reminder_id,
            ReminderStatus.FAILED,
            now,
            reason="interrupted and the day before has passed",
        )
    if reminder.attempts > MAX_CLAIMS:
        return await _finish_alone(
            outbox,
            reminder_id,
            ReminderStatus.FAILED,
            now,
            reason=f"interrupted {MAX_CLAIMS} times, given up",
        )
    if schedule.status != ScheduleStatus.OPEN:
        return await _finish_alone(outbox, reminder_id, ReminderStatus.SKIPPED, now, reason="session closed")
    if identity is None:
        return await _finish_alone(
            outbox, reminder_id, ReminderStatus.SKIPPED, now, reason="no WeChat identity"
        )
    if not identity.subscribed:
        return await _finish_alone(
            outbox, reminder_id, ReminderStatus.SKIPPED, now, reason="unsubscribed", identity_id=identity.id
        )
    settings = outbox.runtime.settings
    template_id = settings.reminder_template_id.strip()
    if not in_reply_window(identity, now) and not template_id:
        return await _no_template(outbox, reminder_id, identity, now)
    wording = _wording(outbox, loaded, identity)
    template = TemplateInvite(template_id, wording.template_data(), wording.text()) if template_id else None
    request = DialogueRequest(
        key=reminder_key(reminder_id),
        identity_id=identity.id,
        patient_id=appointment.patient_id,
        intent=REMINDER_INTENT,
        reason="appointment_reminder",
        # A reminder that could not start today (staff held the chat all day) is not sent at night.
        expires_at=datetime.combine(
            hospital_today(now), parse_hhmm(settings.reminder_send_until), tzinfo=HOSPITAL_TZ
        ),
        entities={"appointment_id": appointment.id},
        template=template,
        needs_consent=False,
    )
    # Recorded before the dialogue is queued: a takeover after a crash settles it, never starts another.
    await _record_channel(outbox, reminder_id, ReminderChannel.CUSTOM, identity)
    await start_dialogue(outbox.runtime, request)
    return ReminderStatus.CLAIMED


async def _record_channel(
    outbox: Outbox, reminder_id: int, channel: ReminderChannel, identity: WeChatIdentity
) -> None:
    """Which way the reminder goes, and to whom: recorded before it goes, for a takeover."""
    async with outbox.runtime.db.sessions() as session:
        await session.execute(
            update(AppointmentReminder)
            .where(AppointmentReminder.id == reminder_id)
            .values(channel=channel, identity_id=identity.id)
        )
        await session.commit()


async def _no_template(
    outbox: Outbox,
    reminder_id: int,
    identity: WeChatIdentity,
    now: datetime,
    error: tuple[int | None, str | None] = (None, None),
) -> str:
    log.warning(
        "reminder %s not sent: %s is outside the 48-hour window and REMINDER_TEMPLATE_ID is empty",
        reminder_id,
        identity.openid,
    )
    return await _finish_alone(
        outbox,
        reminder_id,
        ReminderStatus.SKIPPED,
        now,
        reason="no template configured",
        identity_id=identity.id,
        errcode=error[0],
        errmsg=error[1],
    )


def reminder_key(reminder_id: int) -> str:
    """The key of a reminder's dialogue (conversations/turns.py): one dialogue per reminder."""
    return f"{REMINDER_DIALOGUE}{reminder_id}"


async def settle_reminder(outbox: Outbox, reminder_id: int, now: datetime) -> str:
    """Record what the reminder's dialogue did: said in chat, a template sent, refused, or dropped.
    Still under way, the reminder stays claimed and a later call records it."""
    async with outbox.runtime.db.sessions() as session:
        turn = await session.scalar(
            select(InboundMessage).where(InboundMessage.dedupe_key == f"dialogue:{reminder_key(reminder_id)}")
        )
        first = (
            await session.scalar(
                select(Message).where(Message.reply_to_inbound_id == turn.id).order_by(Message.id).limit(1)
            )
            if turn is not None
            else None
        )
    if turn is None:
        return ReminderStatus.CLAIMED  # not queued yet (a crash in between): a takeover queues it
    if turn.status == InboundStatus.FAILED:
        return await _finish_alone(outbox, reminder_id, ReminderStatus.SKIPPED, now, reason=turn.last_error)
    if first is None:
        if turn.status == InboundStatus.PROCESSED:
            return await _finish_alone(
                outbox, reminder_id, ReminderStatus.FAILED, now, reason="the bot had no reminder to say"
            )
        return ReminderStatus.CLAIMED
    channel = ReminderChannel.TEMPLATE if first.msg_type == "template" else ReminderChannel.CUSTOM
    if first.delivery_status in (DeliveryStatus.PENDING, DeliveryStatus.SENDING):
        return ReminderStatus.CLAIMED
    if first.delivery_status == DeliveryStatus.SENT:
        return await _finish_alone(
            outbox, reminder_id, ReminderStatus.SENT, now, channel=channel, message_id=first.id
        )
    errcode, errmsg = _split_error(first.delivery_error)
    if channel == ReminderChannel.CUSTOM and errcode in WINDOW_ERRORS:
        async with outbox.runtime.db.sessions() as session:
            loaded = await _load(session, reminder_id)
            identity = await session.get(WeChatIdentity, loaded.reminder.identity_id)
        if identity is not None and outbox.runtime.settings.reminder_template_id.strip():
            log.info(
                "reminder %s: customer-service window closed (%s), trying a template", reminder_id, errcode
            )
            return await _send_template(
                outbox,
                reminder_id,
                loaded,
                identity,
                now,
                reason=f"custom message refused ({errcode})",
                error=(errcode, errmsg),
            )
    return await _finish_alone(
        outbox,
        reminder_id,
        ReminderStatus.FAILED,
        now,
        channel=channel,
        message_id=first.id,
        errcode=errcode,
        errmsg=errmsg,
    )


def _wording(outbox: Outbox, loaded: _Loaded, identity: WeChatIdentity | None) -> ReminderText:
    return reminder_wording(loaded.appointment, loaded.patient, identity, outbox.runtime.settings)


def reminder_wording(
    appointment: Appointment, patient: Patient, identity: WeChatIdentity | None, settings: Settings
) -> ReminderText:
    """The reminder of `appointment` (loaded WITH_SESSION) as `identity` reads it."""
    doctor = appointment.schedule.doctor
    return ReminderText(
        patient_name=patient.display_name or "就诊人",
        for_someone_else=identity is not None and identity.patient_id != appointment.patient_id,
        department=doctor.department.patient_name,
        doctor=f"{doctor.name} {doctor.title}",
        day=appointment.schedule.date,
        half_day=HalfDay(appointment.schedule.half_day),
        cancel_cutoff_hours=settings.booking_cancel_cutoff_hours,
    )


async def _recipient(session: AsyncSession, appointment: Appointment) -> WeChatIdentity | None:
    """Whoever booked; when staff booked, the patient's own account, else a family account managing them."""
    if appointment.booked_by_identity_id is not None:
        identity = await session.get(WeChatIdentity, appointment.booked_by_identity_id)
        if identity is not None:
            return identity
    preference = (
        WeChatIdentity.subscribed.desc(),
        WeChatIdentity.last_inbound_at.desc().nulls_last(),
        WeChatIdentity.id.desc(),
    )
    own = await session.scalar(
        select(WeChatIdentity)
        .where(WeChatIdentity.patient_id == appointment.patient_id)
        .order_by(*preference)
        .limit(1)
    )
    if own is not None:
        return own
    return await session.scalar(
        select(WeChatIdentity)
        .join(PatientLink, PatientLink.identity_id == WeChatIdentity.id)
        .where(PatientLink.patient_id == appointment.patient_id)
        .order_by(*preference)
        .limit(1)
    )


async def _conversation(session: AsyncSession, identity: WeChatIdentity, now: datetime) -> Conversation:
    """The identity's open conversation (the same rule as for a patient's message), or a new one."""
    fresh = await session.get(WeChatIdentity, identity.id)
    assert fresh is not None
    return await current_conversation(session, fresh, now)


def _split_error(error: str | None) -> tuple[int | None, str | None]:
    """The outbox stores WeChat refusals as "<errcode> <errmsg>"; anything else has no errcode."""
    if not error:
        return None, None
    head, _, rest = error.partition(" ")
    try:
        return int(head), rest[:255]
    except ValueError:
        return None, error[:255]


async def _send_template(
    outbox: Outbox,
    reminder_id: int,
    loaded: _Loaded,
    identity: WeChatIdentity,
    now: datetime,
    *,
    reason: str | None,
    error: tuple[int | None, str | None],
) -> str:
    settings = outbox.runtime.settings
    template_id = settings.reminder_template_id.strip()
    if not template_id:
        return await _no_template(outbox, reminder_id, identity, now, error)
    wording = _wording(outbox, loaded, identity)
    payload = {"touser": identity.openid, "template_id": template_id, "data": wording.template_data()}
    # Recorded before sending, so a takeover knows a template may already have gone out.
    await _record_channel(outbox, reminder_id, ReminderChannel.TEMPLATE, identity)
    attempts, msgid, errcode, errmsg = await _post_template(outbox, payload)
    sent = errcode is None and errmsg is None
    async with outbox.runtime.db.sessions() as session:
        conversation = await _conversation(session, identity, now)
        message = Message(
            conversation_id=conversation.id,
            direction=Direction.OUT,
            sender_type=SenderType.SYSTEM,
            msg_type="template",
            content=wording.text(),
            extra={
                "appointment_id": loaded.appointment.id,
                "reminder": DAY_BEFORE,
                "template_id": template_id,
            },
            wechat_msg_id=msgid,
            delivery_status=DeliveryStatus.SENT if sent else DeliveryStatus.FAILED,
            delivery_error=None if sent else f"{errcode} {errmsg}" if errcode is not None else errmsg,
            attempts=attempts,
            created_at=datetime.now(UTC),
            sent_at=datetime.now(UTC) if sent else None,
        )
        session.add(message)
        conversation.last_message_at = max(conversation.last_message_at, message.created_at)
        await session.flush()
        status = ReminderStatus.SENT if sent else ReminderStatus.FAILED
        await _finish(
            session,
            reminder_id,
            status,
            now,
            message_id=message.id,
            reason=reason,
            errcode=errcode,
            errmsg=errmsg,
        )
        await session.commit()
    if not sent:
        log.warning(
            "reminder %s: template message to %s failed: %s %s", reminder_id, identity.openid, errcode, errmsg
        )
    await outbox.announce_delivery(message.id, message.conversation_id)
    return status


async def _post_template(
    outbox: Outbox, payload: dict[str, Any]
) -> tuple[int, int | None, int | None, str | None]:
    """POST template/send through the outbox's token and retry handling.
    Returns (attempts, msgid, errcode, errmsg)."""
    call = await outbox.call_with_token(lambda token: outbox.api.send_template_message(token, payload))
    if call.answer is not None:
        msgid = call.answer.get("msgid")
        return call.attempts, int(msgid) if msgid else None, None, None
    if call.refused is not None:
        return call.attempts, None, call.refused.errcode, call.refused.errmsg[:255]
    return call.attempts, None, None, (call.unreachable or call.uncertain or "")[:255]
