"""The day-before reminder inside WeChat's window, end to end: the worker's reminder job queues a
dialogue, Rasa's action asks the CRM's bot API for the wording and says it, the patient reads it,
and the reminder records it sent. It never interrupts a booking the patient is in the middle of."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from channels.outbound.delivery import Outbox
from crm_backend.appointments.models import AppointmentReminder
from crm_backend.appointments.reminders import send_due_reminders
from crm_backend.appointments.service import book, hospital_today
from crm_backend.patients.models import Patient, WeChatIdentity
from crm_backend.runtime import Runtime
from tests.appointments.conftest import make_department, make_schedule
from tests.support.api import crm_runtime
from tests.support.stack import Stack


@pytest.fixture
async def reminders(stack: Stack) -> AsyncIterator[Outbox]:
    """The reminder job as a worker runs it, on the stack's database and Redis, sending all day."""
    async with crm_runtime(stack, REMINDER_SEND_FROM="00:00", REMINDER_SEND_UNTIL="23:59") as runtime:
        yield Outbox(runtime)


async def _book_tomorrow(runtime: Runtime, openid: str) -> tuple[int, str]:
    """An appointment tomorrow for the patient of `openid`, booked from that account: (id, name)."""
    department = await make_department(runtime, patient_name="皮肤科")
    schedule = await make_schedule(
        runtime,
        hospital_today(datetime.now(UTC)) + timedelta(days=1),
        "pm",
        department=department,
        doctor_name="刘思雨",
    )
    async with runtime.db.sessions() as session:
        identity = await session.scalar(select(WeChatIdentity).where(WeChatIdentity.openid == openid))
        assert identity is not None
        patient = await session.get(Patient, identity.patient_id)
        assert patient is not None
        patient.display_name = "陈晓"
        appointment = await book(session, identity.patient_id, schedule.id, identity.id)
        await session.commit()
        return appointment.id, patient.display_name


async def _reminder(
    runtime: Runtime, appointment_id: int, status: str, timeout: float = 30
) -> AppointmentReminder:
    for _ in range(300):
        async with runtime.db.sessions() as session:
            reminder = await session.scalar(
                select(AppointmentReminder).where(AppointmentReminder.appointment_id == appointment_id)
            )
        if reminder is not None and reminder.status == status:
            return reminder
        await asyncio.sleep(0.1)
    raise AssertionError(f"reminder of appointment {appointment_id} never became {status}")


async def test_the_bot_says_tomorrow_s_reminder_in_chat(stack: Stack, reminders: Outbox) -> None:
    openid = await stack.consented_patient()
    appointment_id, name = await _book_tomorrow(reminders.runtime, openid)
    before = len(stack.wechat.texts(openid))

    await send_due_reminders(reminders)

    [text] = (await stack.wait_answers(openid, before + 1))[before:]
    assert text.startswith("【就诊提醒】您预约的门诊就在明天")
    for part in (f"就诊人：{name}", "科室：皮肤科", "医生：刘思雨", "下午 13:30", "如需取消，回复“取消预约”"):
        assert part in text
    reminder = await _reminder(reminders.runtime, appointment_id, "sent")
    assert reminder.channel == "custom" and reminder.message_id is not None
    # Said once: a second run queues nothing, as the answer to the patient's next message (processed
    # after anything queued before it) shows.
    await send_due_reminders(reminders)
    assert await stack.converse(openid, "谢谢")
    assert sum("就诊提醒" in text for text in stack.wechat.texts(openid)) == 1


async def test_a_reminder_waits_for_the_booking_the_patient_is_making(
    stack: Stack, reminders: Outbox
) -> None:
    openid = await stack.consented_patient()
    appointment_id, _ = await _book_tomorrow(reminders.runtime, openid)
    await stack.converse(openid, "我想再挂个号")
    before = len(stack.wechat.texts(openid))

    await send_due_reminders(reminders)
    # The form's next question is answered first; the reminder only once the patient stops the form.
    in_form = await stack.converse(openid, "皮肤科")
    assert all("就诊提醒" not in text for text in in_form)
    await stack.say(openid, "算了不约了")
    reminder = await _reminder(reminders.runtime, appointment_id, "sent")
    texts = stack.wechat.texts(openid)[before:]
    assert "就诊提醒" in texts[-1] and reminder.channel == "custom"
