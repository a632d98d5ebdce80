"""Day-before reminders against the real fake WeChat API: claims, skips, sending hours, exactly one
dialogue per appointment with two workers racing, and the template outside the window, which the
worker's processing (in this process, at the test's clock) sends. What Rasa says inside the window
is tested end to end in tests/e2e/test_reminders.py."""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from channels.outbound.delivery import Outbox
from crm_backend.appointments.models import Appointment, AppointmentReminder, Doctor
from crm_backend.appointments.reminders import send_due_reminders
from crm_backend.appointments.service import HOSPITAL_TZ, book, cancel
from crm_backend.conversations.answers import Answered
from crm_backend.conversations.events import DialogueSettled
from crm_backend.conversations.models import (
    Conversation,
    DeliveryStatus,
    InboundMessage,
    Message,
)
from crm_backend.conversations.processing import InboundProcessor
from crm_backend.domains import subscribe_listeners
from crm_backend.patients.models import Patient, WeChatIdentity
from crm_backend.runtime import Runtime
from tests.appointments.conftest import REDIS_URL, make_department, make_patients, make_schedule
from tests.support.api import api_settings
from tests.support.postgres import alembic
from tests.support.refused import store_refused_answer
from tests.support.stack import FakeWeChat, start_fake_wechat

TEMPLATE_ID = "tmpl-visit-reminder-01"
#: Far from the dates other booking tests use, and a fresh "tomorrow" per test, so runs never meet.
_days = itertools.count()


def next_visit_day() -> date:
    return date(2031, 3, 3) + timedelta(days=2 * next(_days))


def local(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm), tzinfo=HOSPITAL_TZ)


@pytest.fixture(scope="session")
def fake_wechat() -> Iterator[FakeWeChat]:
    fake = start_fake_wechat()
    yield fake
    fake.process.stop()


@asynccontextmanager
async def worker_outbox(database_url: str, fake: FakeWeChat, **overrides: Any) -> AsyncIterator[Outbox]:
    """What one worker process has: its own runtime (database engine, Redis, HTTP client) and outbox."""
    values = {
        "WECHAT_API_BASE": fake.base,
        "REMINDER_TEMPLATE_ID": TEMPLATE_ID,
        "DELIVERY_BACKOFF_SECONDS": 0.01,
        **overrides,
    }
    settings = api_settings(database_url, REDIS_URL, **values)
    runtime = Runtime.create(settings)
    subscribe_listeners(runtime)
    try:
        yield Outbox(runtime)
    finally:
        await runtime.close()


@pytest.fixture
async def outbox(database_url: str, fake_wechat: FakeWeChat) -> AsyncIterator[Outbox]:
    async with worker_outbox(database_url, fake_wechat) as box:
        yield box


async def worker_turns(box: Outbox, identity: WeChatIdentity, now: datetime) -> None:
    """What the worker does with the patient's queue (the reminder's dialogue among it) at `now`."""
    processor = InboundProcessor(box.runtime, clock=lambda: now)

    async def deliver(answered: Answered) -> None:
        assert await box.deliver_answered(answered)

    await processor.process_patient(identity.app_id, identity.openid, deliver)


async def dialogues_of(runtime: Runtime, appointment_id: int) -> list[InboundMessage]:
    """The reminder dialogues queued for an appointment (conversations/turns.py)."""
    async with runtime.db.sessions() as session:
        turns = await session.scalars(sa.select(InboundMessage).where(InboundMessage.msg_type == "dialogue"))
        return [t for t in turns if t.payload["entities"].get("appointment_id") == appointment_id]


async def booked(
    runtime: Runtime,
    day: date,
    *,
    half_day: str = "am",
    last_inbound_at: datetime | None = None,
    subscribed: bool = True,
    booked_by_self: bool = True,
) -> tuple[Appointment, WeChatIdentity]:
    """A patient with a WeChat identity and a booking on `day` in 心内科 with 张立新 主任医师."""
    department = await make_department(runtime, patient_name="心内科（心血管内科）")
    schedule = await make_schedule(runtime, day, half_day, department=department, doctor_name="张立新")
    [(patient_id, identity_id)] = await make_patients(runtime, 1)
    async with runtime.db.sessions() as session:
        await session.execute(
            sa.update(Doctor).where(Doctor.id == schedule.doctor_id).values(title="主任医师")
        )
        identity = await session.get(WeChatIdentity, identity_id)
        assert identity is not None
        identity.last_inbound_at = last_inbound_at
        identity.subscribed = subscribed
        appointment = await book(session, patient_id, schedule.id, identity_id if booked_by_self else None)
        await session.commit()
    return appointment, identity


async def reminder_of(runtime: Runtime, appointment_id: int) -> AppointmentReminder | None:
    async with runtime.db.sessions() as session:
        return await session.scalar(
            sa.select(AppointmentReminder).where(AppointmentReminder.appointment_id == appointment_id)
        )


async def messages_of(runtime: Runtime, identity_id: int) -> list[Message]:
    async with runtime.db.sessions() as session:
        return list(
            (
                await session.scalars(
                    sa.select(Message)
                    .join(Conversation, Message.conversation_id == Conversation.id)
                    .where(Conversation.identity_id == identity_id)
                    .order_by(Message.id)
                )
            ).all()
        )


async def test_inside_the_window_the_bot_is_asked_to_say_it(runtime: Runtime, outbox: Outbox, fake_wechat):
    day = next_visit_day()
    now = local(day - timedelta(days=1), 10)
    appointment, identity = await booked(runtime, day, last_inbound_at=now - timedelta(hours=3))

    await send_due_reminders(outbox, now)

    # Queued in the patient's own conversation order for Rasa to say (tests/e2e/test_reminders.py).
    [turn] = await dialogues_of(runtime, appointment.id)
    assert (turn.openid, turn.status, turn.event) == (
        identity.openid,
        "received",
        "EXTERNAL_appointment_reminder",
    )
    assert turn.payload["expires_at"] == local(day - timedelta(days=1), 20).astimezone(UTC).isoformat()
    assert turn.payload["template"]["template_id"] == TEMPLATE_ID
    reminder = await reminder_of(runtime, appointment.id)
    assert reminder is not None
    assert (reminder.status, reminder.channel, reminder.identity_id) == ("claimed", "custom", identity.id)
    # Later runs the same day start nothing more.
    await send_due_reminders(outbox, now + timedelta(minutes=5))
    await send_due_reminders(outbox, now + timedelta(hours=2))
    assert len(await dialogues_of(runtime, appointment.id)) == 1
    assert fake_wechat.sent(identity.openid) == []


async def test_outside_the_window_a_template_message(runtime: Runtime, outbox: Outbox, fake_wechat):
    day = next_visit_day()
    now = local(day - timedelta(days=1), 15, 30)
    # A parent with an appointment of their own also booked one for their child.
    _, identity = await booked(runtime, day, last_inbound_at=now - timedelta(hours=48, minutes=1))
    child_id = (await make_patients(runtime, 1))[0][0]
    schedule = await make_schedule(runtime, day, "pm", doctor_name="李娜")
    async with runtime.db.sessions() as session:
        child = await session.get(Patient, child_id)
        assert child is not None
        child.display_name = "王小明"
        appointment = await book(session, child_id, schedule.id, identity.id)
        await session.commit()

    await send_due_reminders(outbox, now)
    await worker_turns(outbox, identity, now)

    sent = fake_wechat.sent(identity.openid)
    assert len(sent) == 2 and {s["api"] for s in sent} == {"template_send"}
    [for_child] = [s for s in sent if s["data"]["keyword1"]["value"] == "王小明"]
    assert for_child["template_id"] == TEMPLATE_ID
    data = {key: value["value"] for key, value in for_child["data"].items()}
    assert data["first"] == "您为王小明预约的门诊就在明天，请按时就诊。"
    assert data["keyword3"] == "李娜 主治医师"
    assert data["keyword4"].endswith("下午 13:30") and f"{day.month}月{day.day}日" in data["keyword4"]
    assert "取消预约" in data["remark"]

    reminder = await reminder_of(runtime, appointment.id)
    assert reminder is not None and (reminder.status, reminder.channel) == ("sent", "template")
    messages = await messages_of(runtime, identity.id)
    assert len(messages) == 2 and len({m.conversation_id for m in messages}) == 1
    [message] = [m for m in messages if m.id == reminder.message_id]
    assert message.msg_type == "template" and message.delivery_status == DeliveryStatus.SENT
    assert message.wechat_msg_id == for_child["msgid"]
    assert message.content.startswith("【就诊提醒】您为王小明预约的门诊就在明天")
    assert message.extra is not None and message.extra["template"]["template_id"] == TEMPLATE_ID


async def test_outside_the_window_without_a_template_nothing_is_sent(
    runtime: Runtime, database_url: str, fake_wechat: FakeWeChat, caplog: pytest.LogCaptureFixture
):
    day = next_visit_day()
    now = local(day - timedelta(days=1), 11)
    appointment, identity = await booked(runtime, day, last_inbound_at=None)
    async with worker_outbox(database_url, fake_wechat, REMINDER_TEMPLATE_ID="") as box:
        await send_due_reminders(box, now)
    assert fake_wechat.sent(identity.openid) == []
    reminder = await reminder_of(runtime, appointment.id)
    assert reminder is not None
    assert (reminder.status, reminder.reason, reminder.message_id) == (
        "skipped",
        "no template configured",
        None,
    )
    assert "REMINDER_TEMPLATE_ID is empty" in caplog.text


async def test_cancelled_and_unsubscribed_get_nothing(runtime: Runtime, outbox: Outbox, fake_wechat):
    day = next_visit_day()
    now = local(day - timedelta(days=1), 12)
    inside = now - timedelta(hours=1)
    cancelled, cancelled_identity = await booked(runtime, day, last_inbound_at=inside)
    unfollowed, unfollowed_identity = await booked(runtime, day, last_inbound_at=inside, subscribed=False)
    # Cancelled after a worker claimed it and died: the takeover sees the cancellation.
    raced, raced_identity = await booked(runtime, day, last_inbound_at=inside)
    async with runtime.db.sessions() as session:
        session.add(
            AppointmentReminder(
                appointment_id=raced.id,
                kind="day_before",
                status="claimed",
                claimed_at=now - timedelta(hours=1),
            )
        )
        for appointment_id in (cancelled.id, raced.id):
            appointment = await session.get(Appointment, appointment_id)
            assert appointment is not None
            await cancel(session, appointment, now, timedelta(hours=2))
        await session.commit()

    await send_due_reminders(outbox, now)

    for identity in (cancelled_identity, unfollowed_identity, raced_identity):
        assert fake_wechat.sent(identity.openid) == []
        assert await messages_of(runtime, identity.id) == []
    assert await reminder_of(runtime, cancelled.id) is None
    skipped = await reminder_of(runtime, unfollowed.id)
    assert skipped is not None and (skipped.status, skipped.reason) == ("skipped", "unsubscribed")
    taken_over = await reminder_of(runtime, raced.id)
    assert taken_over is not None
    assert (taken_over.status, taken_over.reason, taken_over.attempts) == (
        "skipped",
        "appointment cancelled",
        2,
    )


async def test_only_inside_the_local_sending_hours(runtime: Runtime, outbox: Outbox, fake_wechat):
    day = next_visit_day()
    eve = day - timedelta(days=1)
    appointment, identity = await booked(runtime, day, last_inbound_at=local(eve, 8))
    for too_early_or_late in (local(eve, 0, 30), local(eve, 8, 59), local(eve, 20, 0), local(eve, 23)):
        await send_due_reminders(outbox, too_early_or_late)
    assert fake_wechat.sent(identity.openid) == []
    assert await reminder_of(runtime, appointment.id) is None

    # Booked after the window closed the evening before: on the day itself it is no longer "tomorrow".
    await send_due_reminders(outbox, local(day, 9))
    assert fake_wechat.sent(identity.openid) == []

    # The same appointment, seen at 09:00 the day before, is reminded.
    await send_due_reminders(outbox, local(eve, 9))
    assert len(await dialogues_of(runtime, appointment.id)) == 1


async def test_two_workers_start_each_reminder_once(runtime: Runtime, database_url: str, fake_wechat):
    day = next_visit_day()
    now = local(day - timedelta(days=1), 9, 5)
    patients = [
        await booked(
            runtime,
            day,
            half_day="am" if n % 2 else "pm",
            last_inbound_at=now - timedelta(hours=1 if n % 3 else 72),
            booked_by_self=n % 4 != 0,  # some booked by staff: the patient's own account is reminded
        )
        for n in range(8)
    ]
    async with (
        worker_outbox(database_url, fake_wechat) as first,
        worker_outbox(database_url, fake_wechat) as second,
    ):
        await asyncio.gather(
            send_due_reminders(first, now),
            send_due_reminders(second, now),
            send_due_reminders(first, now + timedelta(seconds=1)),
        )
        for appointment, identity in patients:
            assert len(await dialogues_of(runtime, appointment.id)) == 1
            reminder = await reminder_of(runtime, appointment.id)
            assert reminder is not None and reminder.attempts == 1 and reminder.identity_id == identity.id
        # Outside the window the dialogue invites by template, once, whichever worker takes the queue.
        outside = [(a, i) for a, i in patients if now - (i.last_inbound_at or now) > timedelta(hours=48)]
        assert outside
        for appointment, identity in outside:
            await asyncio.gather(worker_turns(first, identity, now), worker_turns(second, identity, now))
            [sent] = fake_wechat.sent(identity.openid)
            assert sent["api"] == "template_send"
            reminder = await reminder_of(runtime, appointment.id)
            assert reminder is not None and (reminder.status, reminder.channel) == ("sent", "template")


async def test_a_refused_chat_reminder_falls_back_to_the_template(
    runtime: Runtime, outbox: Outbox, fake_wechat
):
    """WeChat refused the bot's reminder (45015: the window closed meanwhile): the template goes out."""
    day = next_visit_day()
    now = local(day - timedelta(days=1), 18)
    appointment, identity = await booked(runtime, day, last_inbound_at=now - timedelta(hours=47))
    await send_due_reminders(outbox, now)
    [turn] = await dialogues_of(runtime, appointment.id)
    # What the worker stored when WeChat refused Rasa's answer to that turn.
    async with runtime.db.sessions() as session:
        conversation = Conversation(
            patient_id=identity.patient_id, identity_id=identity.id, started_at=now, last_message_at=now
        )
        session.add(conversation)
        await session.flush()
        await store_refused_answer(
            session,
            conversation.id,
            turn,
            "【就诊提醒】您预约的门诊就在明天，请按时就诊。",
            "45015 response out of time limit",
        )
        await session.commit()
    await outbox.runtime.events.publish(DialogueSettled(turn.id, turn.dedupe_key))

    [sent] = fake_wechat.sent(identity.openid)
    assert sent["api"] == "template_send" and sent["template_id"] == TEMPLATE_ID
    reminder = await reminder_of(runtime, appointment.id)
    assert reminder is not None
    assert (reminder.status, reminder.channel, reminder.reason) == (
        "sent",
        "template",
        "custom message refused (45015)",
    )
    refused, template = await messages_of(runtime, identity.id)
    assert refused.delivery_status == DeliveryStatus.UNDELIVERABLE
    assert template.msg_type == "template" and template.delivery_status == DeliveryStatus.SENT
    assert template.id == reminder.message_id and template.content.startswith(
        "【就诊提醒】您预约的门诊就在明天"
    )


async def test_a_crashed_worker_s_reminder_is_taken_over_without_a_second_dialogue(
    runtime: Runtime, outbox: Outbox, fake_wechat
):
    day = next_visit_day()
    now = local(day - timedelta(days=1), 13)
    appointment, identity = await booked(runtime, day, last_inbound_at=now - timedelta(hours=50))
    # A worker claimed it, queued its dialogue and died before recording anything more.
    await send_due_reminders(outbox, now)
    [turn] = await dialogues_of(runtime, appointment.id)

    await send_due_reminders(outbox, now + timedelta(minutes=3))  # a live worker's claim: left alone
    await send_due_reminders(outbox, now + timedelta(minutes=11))  # stale: taken over
    assert [t.id for t in await dialogues_of(runtime, appointment.id)] == [turn.id]
    reminder = await reminder_of(runtime, appointment.id)
    assert reminder is not None and (reminder.status, reminder.attempts) == ("claimed", 2)

    # The dialogue, once the worker runs it, is what the reminder records.
    await worker_turns(outbox, identity, now + timedelta(minutes=12))
    [sent] = fake_wechat.sent(identity.openid)
    assert sent["api"] == "template_send"
    reminder = await reminder_of(runtime, appointment.id)
    assert reminder is not None and reminder.status == "sent"


async def test_reminders_on_sqlite_are_claimed_once(tmp_path: Path, fake_wechat: FakeWeChat):
    url = f"sqlite+aiosqlite:///{tmp_path / 'carebridge.db'}"
    alembic(url, "upgrade", "head")
    day = next_visit_day()
    now = local(day - timedelta(days=1), 10)
    async with worker_outbox(url, fake_wechat) as first, worker_outbox(url, fake_wechat) as second:
        appointment, _ = await booked(first.runtime, day, last_inbound_at=now - timedelta(hours=5))
        await asyncio.gather(send_due_reminders(first, now), send_due_reminders(second, now))
        reminder = await reminder_of(first.runtime, appointment.id)
        assert len(await dialogues_of(first.runtime, appointment.id)) == 1
    assert reminder is not None and reminder.status == "claimed" and reminder.attempts == 1


def test_migration_0006_up_and_down_on_sqlite(tmp_path: Path):
    path = tmp_path / "carebridge.db"
    url = f"sqlite+aiosqlite:///{path}"
    alembic(url, "upgrade", "0006")
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA foreign_keys=ON")
        db.execute("INSERT INTO patients (id, display_name, created_at) VALUES (1, 'a', '2026-01-01')")
        db.execute("INSERT INTO departments VALUES (1, 'X', 'x', 'x', '[]', '2026-01-01')")
        db.execute("INSERT INTO doctors VALUES (1, 1, 'd', 't', NULL, 1, '2026-01-01')")
        db.execute(
            "INSERT INTO schedules VALUES (1, 1, '2027-01-01', 'am', 1, 1, 'open', '2026-01-01', NULL)"
        )
        db.execute("INSERT INTO appointments VALUES (1, 1, 1, NULL, 'booked', '2026-01-01', NULL)")
        claim = (
            "INSERT INTO appointment_reminders (appointment_id, kind, status, attempts, claimed_at,"
            " created_at) VALUES (1, 'day_before', '{status}', 1, '2026-01-01', '2026-01-01')"
        )
        db.execute(claim.format(status="claimed"))
        for refused in (
            claim.format(status="claimed"),
            claim.format(status="lost").replace("day_before", "x"),
        ):
            with pytest.raises(sqlite3.IntegrityError):  # a second claim; an unknown status
                db.execute(refused)
    alembic(url, "downgrade", "0005")
    with sqlite3.connect(path) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert "appointment_reminders" not in tables and "appointments" in tables
        assert db.execute("SELECT count(*) FROM appointments").fetchone() == (1,)
    alembic(url, "upgrade", "head")


def test_sending_hours_are_validated():
    with pytest.raises(ValueError):
        api_settings("sqlite+aiosqlite://", REDIS_URL, REMINDER_SEND_FROM="9am")
    settings = api_settings("sqlite+aiosqlite://", REDIS_URL)
    assert (settings.reminder_send_from, settings.reminder_send_until) == ("09:00", "20:00")
    assert settings.reminder_template_id == "" and settings.reminder_interval_seconds == 300
