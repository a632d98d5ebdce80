"""Triage, hospital information and unhelpful answers in chat, through the real webhook, worker, Rasa,
action server, bot API and database (the fake WeChat API is the only stand-in).

The demo hospital (its departments with their triage fields, doctors and sessions) is loaded into the
stack's database for this module, as `make run` loads it, and removed afterwards.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from sqlalchemy import select

from crm_backend.appointments.demo_data import load_demo_data
from crm_backend.appointments.models import Appointment, AppointmentReminder, Department, Doctor, Schedule
from crm_backend.appointments.service import hospital_today
from crm_backend.conversations.models import Conversation
from crm_backend.database.core import Database, utcnow
from crm_backend.patients.models import WeChatIdentity
from crm_backend.triage.store import seed_departments
from tests.e2e.test_booking import appointments_of, patient_with_self
from tests.support.stack import Stack

NOT_A_DIAGNOSIS = "不是诊断"
OFFER = "需要帮您预约"
HANDED_OVER = "已为您转接人工服务"


@pytest.fixture(scope="module")
async def hospital(stack: Stack) -> AsyncIterator[None]:
    """The demo hospital for this module, removed afterwards: the booking tests seed departments of
    the same names and expect only theirs."""
    database = Database(stack.database_url)
    async with database.sessions() as session:
        before = set(await session.scalars(select(Department.id)))
        await load_demo_data(session, hospital_today(utcnow()))
        await seed_departments(session)
        await session.commit()
    try:
        yield
    finally:
        async with database.sessions() as session:
            ours = select(Department.id).where(Department.id.not_in(before) if before else sa.true())
            doctors = select(Doctor.id).where(Doctor.department_id.in_(ours))
            schedules = select(Schedule.id).where(Schedule.doctor_id.in_(doctors))
            appointments = select(Appointment.id).where(Appointment.schedule_id.in_(schedules))
            await session.execute(
                sa.delete(AppointmentReminder).where(AppointmentReminder.appointment_id.in_(appointments))
            )
            await session.execute(sa.delete(Appointment).where(Appointment.id.in_(appointments)))
            await session.execute(sa.delete(Schedule).where(Schedule.id.in_(schedules)))
            await session.execute(sa.delete(Doctor).where(Doctor.id.in_(doctors)))
            await session.execute(sa.delete(Department).where(Department.id.in_(ours)))
            await session.commit()
        await database.dispose()


async def test_a_childs_fever_goes_to_paediatrics_with_a_reason_and_a_booking_offer(
    stack: Stack, hospital: None
) -> None:
    openid = await stack.consented_patient()
    answers = await stack.converse(openid, "孩子发烧咳嗽三天了该看哪个科")
    recommendation = "\n".join(answers)
    assert "发烧" in recommendation and "建议看儿科" in recommendation
    assert NOT_A_DIAGNOSIS in recommendation
    assert OFFER in answers[-1] and "儿科" in answers[-1]
    # No thanks: nothing is booked, and the offer is gone (a later yes does not book).
    declined = await stack.converse(openid, "不用了")
    assert "挂号" in declined[-1] and OFFER not in declined[-1]


async def test_abdominal_pain_gets_one_question_then_books_the_suggested_department(
    stack: Stack, db: Database, hospital: None
) -> None:
    openid, _ = await patient_with_self(stack)
    question = await stack.converse(openid, "我肚子疼，肚脐周围疼")
    assert len(question) == 1 and "右下腹" in question[0]
    assert OFFER not in question[0] and NOT_A_DIAGNOSIS not in question[0]

    answers = await stack.converse(openid, "对，右下腹按着更疼，走路也疼")
    recommendation = "\n".join(answers)
    assert "建议看普通外科" in recommendation and NOT_A_DIAGNOSIS in recommendation
    assert OFFER in answers[-1] and "普通外科" in answers[-1]

    # Yes: the booking form starts with the department filled in, so it asks for the day.
    asked = await stack.converse(openid, "好的")
    assert "哪一天" in asked[-1] and "哪个科室" not in "\n".join(asked)
    listing = (await stack.converse(openid, "最近哪天都行，明天吧"))[-1]
    assert "1." in listing
    confirm = (await stack.converse(openid, "1"))[-1]
    assert "普通外科" in confirm
    done = (await stack.converse(openid, "确认"))[-1]
    assert "预约成功" in done
    booked = await appointments_of(db, openid)
    assert len(booked) == 1
    async with db.sessions() as session:
        schedule = await session.get(Schedule, booked[0].schedule_id)
        assert schedule is not None
        doctor = await session.get(Doctor, schedule.doctor_id)
        assert doctor is not None
        department = await session.get(Department, doctor.department_id)
    assert department is not None and department.code == "GSUR"


async def test_an_emergency_for_a_father_is_never_offered_a_booking(stack: Stack, hospital: None) -> None:
    openid = await stack.consented_patient()
    answers = await stack.converse(openid, "我爸胸口疼得厉害还出冷汗，挂什么科")
    assert any("120" in answer for answer in answers)
    assert not any(OFFER in answer for answer in answers)


@pytest.mark.parametrize(
    ("question", "expected"),
    [("医院几点开门", "8:00"), ("停车场在哪", "地下停车场"), ("心内科在几楼", "2楼")],
)
async def test_hospital_information_is_answered_from_the_hospitals_data(
    stack: Stack, question: str, expected: str
) -> None:
    openid = await stack.consented_patient()
    answers = await stack.converse(openid, question)
    assert expected in answers[-1], answers


async def test_two_out_of_scope_answers_in_a_row_hand_the_chat_to_a_person(
    stack: Stack, db: Database
) -> None:
    openid = await stack.consented_patient()
    first = await stack.converse(openid, "今天天气怎么样")
    assert "帮不上忙" in first[-1] or "超出了我能回答的范围" in first[-1]
    second = await stack.converse(openid, "给我讲个笑话")
    assert any(HANDED_OVER in answer for answer in second), second
    async with db.sessions() as session:
        status = await session.scalar(
            select(Conversation.status)
            .join(WeChatIdentity, WeChatIdentity.id == Conversation.identity_id)
            .where(WeChatIdentity.openid == openid)
        )
    assert status == "escalated"


async def test_one_out_of_scope_answer_after_a_helpful_one_does_not_hand_over(stack: Stack) -> None:
    openid = await stack.consented_patient()
    await stack.converse(openid, "今天天气怎么样")
    await stack.converse(openid, "医院几点开门")
    answers = await stack.converse(openid, "给我讲个笑话")
    assert not any(HANDED_OVER in answer for answer in answers), answers


async def test_in_the_middle_of_booking_hospital_questions_and_symptoms_are_answered(
    stack: Stack, hospital: None
) -> None:
    openid, _ = await patient_with_self(stack)
    assert "哪个科室" in (await stack.converse(openid, "我想挂个号"))[-1]
    parking = await stack.converse(openid, "停车场在哪")
    assert "地下停车场" in parking[0] and "哪个科室" in parking[-1]
    answers = await stack.converse(openid, "我肚子疼拉肚子，不知道挂哪个科")
    assert "消化内科" in "\n".join(answers) and OFFER in answers[-1]
    asked = await stack.converse(openid, "好的")
    assert "哪一天" in asked[-1]


async def test_an_unclear_message_after_an_out_of_scope_answer_hands_over(stack: Stack) -> None:
    openid = await stack.consented_patient()
    await stack.converse(openid, "今天天气怎么样")
    answers = await stack.converse(openid, "阿斯顿发个噶")
    assert any(HANDED_OVER in answer for answer in answers), answers
    assert not any("请问您是想" in answer for answer in answers), answers


async def test_an_urgent_answer_says_today_and_offers_no_appointment(stack: Stack, hospital: None) -> None:
    openid = await stack.consented_patient()
    answers = await stack.converse(openid, "头突然疼得厉害，看哪个科")
    text = "\n".join(answers)
    assert "神经内科" in text and "今天" in text and NOT_A_DIAGNOSIS in text
    assert OFFER not in text
    # A later yes books nothing: it is a stray yes.
    assert OFFER not in "\n".join(await stack.converse(openid, "好的"))
