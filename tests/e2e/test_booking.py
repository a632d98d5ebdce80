"""Booking in chat, through the real webhook, worker, Rasa, action server, bot API and database.

Runs on SQLite and on PostgreSQL; the fake WeChat API is the only stand-in. Each test seeds its own
department (names the demo data does not use) with sessions relative to today, Asia/Shanghai.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from crm_backend.appointments.models import Appointment, AppointmentStatus, Department, Doctor, Schedule
from crm_backend.appointments.service import hospital_today
from crm_backend.config import SANDBOX_APPID, SANDBOX_INTERNAL_TOKEN
from crm_backend.conversations.models import Conversation, InboundMessage, Message
from crm_backend.database.core import Database, utcnow
from crm_backend.patients.models import Patient, PatientLink, WeChatIdentity
from crm_backend.patients.validation import id_checksum_char
from tests.support.stack import Stack

_serial = itertools.count(100)


def resident_id(birth: str) -> str:
    """A valid resident ID number (GB 11643 check character) for a birth date like "19900307"."""
    first17 = f"440305{birth}{next(_serial):03d}"
    return first17 + id_checksum_char(first17)


@dataclass
class Clinic:
    department_id: int
    #: schedule id per (day offset from today, "am"/"pm")
    sessions: dict[tuple[int, str], int]


async def seed_clinic(
    db: Database, name: str, aliases: list[str], *, days: int = 6, full: set[tuple[int, str]] = frozenset()
) -> Clinic:
    """A department with one doctor per half-day, sessions from tomorrow for `days` days."""
    today = hospital_today(utcnow())
    async with db.sessions() as session:
        department = Department(code=f"T{next(_serial)}", name=name, patient_name=name, aliases=aliases)
        session.add(department)
        await session.flush()
        doctors = {}
        for half_day, (doctor_name, title) in {
            "am": ("欧阳晨", "主任医师"),
            "pm": ("司马岚", "主治医师"),
        }.items():
            doctor = Doctor(department_id=department.id, name=doctor_name, title=title)
            session.add(doctor)
            await session.flush()
            doctors[half_day] = doctor.id
        sessions = {}
        for offset in range(1, days + 1):
            for half_day, doctor_id in doctors.items():
                is_full = (offset, half_day) in full
                schedule = Schedule(
                    doctor_id=doctor_id,
                    date=today + timedelta(days=offset),
                    half_day=half_day,
                    capacity=1 if is_full else 10,
                    booked_count=1 if is_full else 0,
                )
                session.add(schedule)
                await session.flush()
                sessions[(offset, half_day)] = schedule.id
        await session.commit()
        return Clinic(department.id, sessions)


async def bot_api(stack: Stack, method: str, path: str, openid: str, **kwargs: Any) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as client:
        return await client.request(
            method,
            f"{stack.url}/internal/bot{path}",
            params={"sender": f"{SANDBOX_APPID}:{openid}"},
            headers={"Authorization": f"Bearer {SANDBOX_INTERNAL_TOKEN}"},
            **kwargs,
        )


async def patient_with_self(stack: Stack, name: str = "陈静") -> tuple[str, int]:
    """A consented patient who registered themselves as 就诊人 (through the bot API)."""
    openid = await stack.consented_patient()
    details = {
        "relationship": "self",
        "name": name,
        "id_number": resident_id("19880512"),
        "phone": "13912345678",
    }
    response = await bot_api(stack, "POST", "/patients", openid, json=details)
    assert response.status_code == 201, response.text
    return openid, response.json()["patient"]["id"]


async def appointments_of(db: Database, openid: str) -> list[Appointment]:
    async with db.sessions() as session:
        rows = await session.scalars(
            select(Appointment)
            .join(WeChatIdentity, WeChatIdentity.id == Appointment.booked_by_identity_id)
            .where(WeChatIdentity.openid == openid)
            .order_by(Appointment.id)
        )
        return list(rows)


def option_number(listing: str, *needles: str) -> str:
    """The number in front of the first listed option that contains every needle."""
    for line in listing.splitlines():
        head, _, rest = line.partition(". ")
        if head.isdigit() and all(needle in rest for needle in needles):
            return head
    raise AssertionError(f"no option with {needles} in:\n{listing}")


def day_words(offset: int) -> str:
    day: date = hospital_today(utcnow()) + timedelta(days=offset)
    return f"{day.month}月{day.day}日"


async def test_booking_for_myself_registers_me_first_and_explains_a_wrong_id(
    stack: Stack, db: Database
) -> None:
    clinic = await seed_clinic(db, "呼吸内科", ["呼吸科", "呼吸内科门诊"])
    openid = await stack.consented_patient()

    answers = await stack.converse(openid, "我想挂个号")
    assert "登记就诊人" in answers[-1] and "同意" in answers[-1]
    assert "什么人" in (await stack.converse(openid, "1"))[-1]
    assert "姓名" in (await stack.converse(openid, "1"))[-1]
    assert "身份证" in (await stack.converse(openid, "张伟"))[-1]

    good = resident_id("19900307")
    wrong_check = good[:-1] + ("1" if good[-1] != "1" else "2")
    answers = await stack.converse(openid, wrong_check)
    assert any("校验不通过" in text for text in answers)
    assert "身份证" in answers[-1]
    assert "手机" in (await stack.converse(openid, good))[-1]
    answers = await stack.converse(openid, "13800138000")
    assert any("已为您登记就诊人：张伟（本人）" in text for text in answers)
    assert "科室" in answers[-1]

    assert "哪一天" in (await stack.converse(openid, "呼吸科"))[-1]
    listing = (await stack.converse(openid, "明天上午"))[-1]
    assert day_words(1) in listing and "欧阳晨" in listing and "司马岚" not in listing
    confirm = (await stack.converse(openid, option_number(listing, "欧阳晨")))[-1]
    assert "请确认预约信息" in confirm and "张伟（本人）" in confirm and "呼吸内科" in confirm
    done = (await stack.converse(openid, option_number(confirm, "确认预约")))[-1]
    assert "预约成功" in done and day_words(1) in done

    [appointment] = await appointments_of(db, openid)
    assert appointment.schedule_id == clinic.sessions[(1, "am")]
    assert appointment.status == AppointmentStatus.BOOKED
    async with db.sessions() as session:
        patient = await session.get(Patient, appointment.patient_id)
        assert patient is not None and patient.display_name == "张伟"
        assert patient.id_number_cipher and good not in patient.id_number_cipher
        schedule = await session.get(Schedule, appointment.schedule_id)
        assert schedule is not None and schedule.booked_count == 1
        # The ID number reached the bot whole but is stored masked, in the chat and in the push.
        typed = await session.scalar(
            select(Message)
            .where(Message.inbound_id.is_not(None), Message.content == f"{good[:4]}**********{good[-4:]}")
            .join(Conversation, Conversation.id == Message.conversation_id)
            .join(WeChatIdentity, WeChatIdentity.id == Conversation.identity_id)
            .where(WeChatIdentity.openid == openid)
        )
        assert typed is not None and typed.extra and typed.extra["sealed_id_numbers"]
        push = await session.get(InboundMessage, typed.inbound_id)
        assert push is not None and good not in str(push.payload)
        leaked = await session.scalar(select(Message.id).where(Message.content.contains(good)))
        assert leaked is None


async def test_booking_for_mother_in_one_sentence_with_a_correction(stack: Stack, db: Database) -> None:
    clinic = await seed_clinic(db, "神经内科", ["神经科", "神内"])
    openid, own_id = await patient_with_self(stack)

    answers = await stack.converse(openid, "帮我妈约明天上午的神经内科")
    assert "登记就诊人" in answers[-1]
    # The relationship was in the sentence: the bot does not ask for it again.
    assert "姓名" in (await stack.converse(openid, "同意"))[-1]
    assert "身份证" in (await stack.converse(openid, "李秀英"))[-1]
    assert "手机" in (await stack.converse(openid, resident_id("19580214")))[-1]
    answers = await stack.converse(openid, "13700001111")
    assert any("李秀英（父母）" in text for text in answers)
    listing = answers[-1]
    assert day_words(1) in listing and "上午" in listing

    # She changes her mind about the day before choosing: the options follow.
    listing = (await stack.converse(openid, "还是改成后天下午吧"))[-1]
    assert day_words(2) in listing and "司马岚" in listing and day_words(1) not in listing
    confirm = (await stack.converse(openid, option_number(listing, "司马岚")))[-1]
    assert "李秀英（父母）" in confirm and day_words(2) in confirm
    assert "预约成功" in (await stack.converse(openid, "确认"))[-1]

    [appointment] = await appointments_of(db, openid)
    assert appointment.schedule_id == clinic.sessions[(2, "pm")]
    async with db.sessions() as session:
        mother = await session.get(Patient, appointment.patient_id)
        assert mother is not None and mother.display_name == "李秀英" and mother.id != own_id
        link = await session.get(PatientLink, (appointment.booked_by_identity_id, mother.id))
        assert link is not None and link.relationship == "parent"


async def test_a_full_day_offers_the_nearest_alternatives(stack: Stack, db: Database) -> None:
    clinic = await seed_clinic(db, "内分泌科", ["糖尿病科", "内分泌"], full={(3, "am"), (3, "pm")})
    openid, _ = await patient_with_self(stack)

    answers = await stack.converse(openid, f"我想约{day_words(3)}的内分泌科")
    text = "\n".join(answers)
    assert "没有可预约的号" in text and "最近" in text
    listing = answers[-1]
    assert day_words(3) not in listing.split("\n", 1)[1]
    confirm = (await stack.converse(openid, option_number(listing, day_words(4), "上午")))[-1]
    assert "请确认预约信息" in confirm
    assert "预约成功" in (await stack.converse(openid, "1"))[-1]
    [appointment] = await appointments_of(db, openid)
    assert appointment.schedule_id == clinic.sessions[(4, "am")]


async def test_cancel_and_list_in_chat(stack: Stack, db: Database) -> None:
    clinic = await seed_clinic(db, "中医科", ["中医", "中医内科"])
    openid, patient_id = await patient_with_self(stack, "刘洋")
    booked = await bot_api(
        stack,
        "POST",
        "/appointments",
        openid,
        json={"patient_id": patient_id, "schedule_id": clinic.sessions[(2, "am")]},
    )
    assert booked.status_code == 201

    listed = (await stack.converse(openid, "我约了哪些号"))[-1]
    assert "刘洋" in listed and day_words(2) in listed and "中医科" in listed

    confirm = (await stack.converse(openid, "帮我取消预约"))[-1]
    assert "确认取消" in confirm and day_words(2) in confirm
    assert "已为您取消预约" in (await stack.converse(openid, option_number(confirm, "确认取消")))[-1]
    [appointment] = await appointments_of(db, openid)
    assert appointment.status == AppointmentStatus.CANCELLED
    async with db.sessions() as session:
        schedule = await session.get(Schedule, clinic.sessions[(2, "am")])
        assert schedule is not None and schedule.booked_count == 0
    assert "没有待就诊的预约" in (await stack.converse(openid, "查一下我的预约"))[-1]


async def test_reschedule_in_chat(stack: Stack, db: Database) -> None:
    clinic = await seed_clinic(db, "风湿免疫科", ["风湿科", "免疫科"])
    openid, patient_id = await patient_with_self(stack, "黄磊")
    old = clinic.sessions[(1, "am")]
    response = await bot_api(
        stack, "POST", "/appointments", openid, json={"patient_id": patient_id, "schedule_id": old}
    )
    assert response.status_code == 201

    assert "哪一天" in (await stack.converse(openid, "我想改约"))[-1]
    listing = (await stack.converse(openid, "改到后天下午"))[-1]
    assert day_words(2) in listing and "司马岚" in listing
    confirm = (await stack.converse(openid, option_number(listing, "司马岚")))[-1]
    assert "确认改约" in confirm and day_words(1) in confirm and day_words(2) in confirm
    assert "改约成功" in (await stack.converse(openid, "1"))[-1]

    appointments = await appointments_of(db, openid)
    assert [(a.schedule_id, a.status) for a in appointments] == [
        (old, AppointmentStatus.CANCELLED),
        (clinic.sessions[(2, "pm")], AppointmentStatus.BOOKED),
    ]


async def test_the_form_survives_small_talk_and_stops_when_asked(stack: Stack, db: Database) -> None:
    await seed_clinic(db, "血液科", ["血液内科"])
    openid, _ = await patient_with_self(stack, "孙丽")

    assert "科室" in (await stack.converse(openid, "我要挂号"))[-1]
    answers = await stack.converse(openid, "你好")
    assert any("接着" in text for text in answers) and "科室" in answers[-1]
    answers = await stack.converse(openid, "血液科")
    assert "哪一天" in answers[-1]
    answers = await stack.converse(openid, "算了不约了")
    assert any("先不办" in text for text in answers)
    # The form is over: a greeting is just a greeting again.
    assert all("哪一天" not in text for text in await stack.converse(openid, "你好"))
    assert await appointments_of(db, openid) == []


@pytest.mark.parametrize("number", ["9", "0"])
async def test_an_out_of_range_number_is_explained(stack: Stack, db: Database, number: str) -> None:
    await seed_clinic(db, f"眼底病科{number}", [f"眼底科{number}"])
    openid, _ = await patient_with_self(stack, "周杰")
    await stack.converse(openid, "我要挂号")
    await stack.converse(openid, f"眼底科{number}")
    listing = (await stack.converse(openid, "明天"))[-1]
    assert "1. " in listing
    answers = await stack.converse(openid, number)
    assert "之间的数字" in answers[-1]
    assert await appointments_of(db, openid) == []
