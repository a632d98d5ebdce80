"""The check-in bot API (/internal/bot/followups/...): who may answer, the questions one at a time,
free answers understood and re-asked, the outcome by the worst flag, postponing and opting out."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from aiohttp import web
from fastapi import FastAPI
from sqlalchemy import select, update

from crm_backend.audit.models import AuditEntry
from crm_backend.config import HOSPITAL_TZ, SANDBOX_INTERNAL_TOKEN
from crm_backend.conversations.events import EscalationRequested
from crm_backend.conversations.models import Conversation
from crm_backend.followups import emergencies
from crm_backend.followups.answers import CheckinClosed, complete_checkin, load_checkin, record_answer
from crm_backend.followups.bot_views import postpone_until
from crm_backend.followups.bot_views import router as followup_bot_router
from crm_backend.followups.emergencies import end_checkins_on_emergency
from crm_backend.followups.enrolment import pause_enrolment, stop_enrolment
from crm_backend.followups.models import (
    CheckinChannel,
    FollowupAnswer,
    FollowupCheckin,
    FollowupEnrolment,
    StopReason,
)
from crm_backend.followups.page import lock_checkin
from crm_backend.patients.models import Patient, PatientLink, PatientRelation, WeChatIdentity
from crm_backend.runtime import Runtime
from tests.support.api import build_api_app
from tests.support.followup_rows import Enrolled, enrol
from tests.support.stack import free_port

_openids = itertools.count(1)
BOT_DIR = Path(__file__).resolve().parents[2] / "bot"
#: Answers to the day-1 questions of the shipped laparoscopic cholecystectomy plan that raise nothing.
GREEN_DAY_1 = ["2分", "三十六度八", "没有", "没有", "1", "没有", "没有"]


@pytest.fixture(scope="module")
async def bot_app(runtime: Runtime) -> FastAPI:
    return await build_api_app(runtime, followup_bot_router)


@pytest.fixture
async def bot(bot_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=bot_app)
    headers = {"Authorization": f"Bearer {SANDBOX_INTERNAL_TOKEN}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver", headers=headers) as c:
        yield c


@dataclass(frozen=True)
class Family:
    patient_id: int
    #: The patient's own account.
    own: str
    #: A son who manages the patient (就诊人 "父母").
    son: str
    #: Someone unrelated.
    stranger: str
    enrolled: Enrolled


async def _identity(session: Any, patient: Patient) -> WeChatIdentity:
    identity = WeChatIdentity(app_id="wx-test", openid=f"o-followup-{next(_openids)}", patient=patient)
    session.add(identity)
    await session.flush()
    return identity


@pytest.fixture
async def family(runtime: Runtime) -> Family:
    async with runtime.db.sessions() as session:
        patient = Patient(display_name="张三")
        son_record, stranger_record = Patient(display_name="张小明"), Patient(display_name="王五")
        session.add_all([patient, son_record, stranger_record])
        await session.flush()
        own = await _identity(session, patient)
        son = await _identity(session, son_record)
        stranger = await _identity(session, stranger_record)
        session.add(
            PatientLink(identity_id=son.id, patient_id=patient.id, relationship=PatientRelation.PARENT)
        )
        enrolled = await enrol(session, patient.id, identity_id=own.id)
        await session.commit()
        return Family(
            patient.id,
            f"{own.app_id}:{own.openid}",
            f"{son.app_id}:{son.openid}",
            f"{stranger.app_id}:{stranger.openid}",
            enrolled,
        )


async def _post(bot: httpx.AsyncClient, sender: str, path: str, body: dict[str, Any] | None = None) -> Any:
    response = await bot.post(f"/internal/bot/followups/checkins{path}", params={"sender": sender}, json=body)
    assert response.status_code == 200, response.text
    return response.json()


async def _answer(bot: httpx.AsyncClient, sender: str, checkin_id: int, text: str) -> Any:
    return await _post(bot, sender, f"/{checkin_id}/answer", {"text": text})


async def _stored(runtime: Runtime, checkin_id: int) -> tuple[FollowupCheckin, dict[str, Any]]:
    async with runtime.db.sessions() as session:
        checkin = await session.get(FollowupCheckin, checkin_id)
        rows = await session.scalars(select(FollowupAnswer).where(FollowupAnswer.checkin_id == checkin_id))
        assert checkin is not None
        return checkin, {row.question: (row.value, row.flag, row.text) for row in rows}


async def test_the_patient_is_greeted_and_asked_the_first_question(
    bot: httpx.AsyncClient, family: Family
) -> None:
    turn = await _post(bot, family.own, f"/{family.enrolled.checkin_ids[0]}/start")
    assert turn["step"] == "ask"
    assert "随访服务" in turn["messages"][0] and "您术后的恢复情况" in turn["messages"][0]
    assert "张三" not in turn["messages"][0] and "请根据今天的情况回答" in turn["messages"][0]
    assert turn["question"]["code"] == "pain"


async def test_a_family_member_is_asked_about_the_patient_by_name(
    bot: httpx.AsyncClient, family: Family
) -> None:
    turn = await _post(bot, family.son, f"/{family.enrolled.checkin_ids[0]}/start")
    assert "想了解一下您的家人张三术后的恢复情况" in turn["messages"][0]
    assert "请您根据张三今天的情况回答" in turn["messages"][0]


async def test_someone_elses_check_in_is_not_found(bot: httpx.AsyncClient, family: Family) -> None:
    checkin_id = family.enrolled.checkin_ids[0]
    for path, body in (("start", None), ("answer", {"text": "3分"}), ("opt-out", {"confirmed": True})):
        response = await bot.post(
            f"/internal/bot/followups/checkins/{checkin_id}/{path}",
            params={"sender": family.stranger},
            json=body,
        )
        assert response.status_code == 404
    missing = await bot.post(
        "/internal/bot/followups/checkins/999999/start", params={"sender": family.own}, json=None
    )
    assert missing.status_code == 404


async def test_without_the_bot_token_nothing_is_answered(bot_app: FastAPI, family: Family) -> None:
    transport = httpx.ASGITransport(app=bot_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as anonymous:
        response = await anonymous.post(
            f"/internal/bot/followups/checkins/{family.enrolled.checkin_ids[0]}/start",
            params={"sender": family.own},
        )
    assert response.status_code == 401


async def test_free_answers_all_green_end_with_encouragement_and_the_next_date(
    bot: httpx.AsyncClient, runtime: Runtime, family: Family
) -> None:
    checkin_id = family.enrolled.checkin_ids[0]
    asked = []
    turn: dict[str, Any] = {}
    for text in GREEN_DAY_1:
        turn = await _answer(bot, family.own, checkin_id, text)
        asked.append(turn["question"]["code"] if turn["question"] else None)
    assert asked == ["temperature", "wound", "nausea", "bowel", "danger_signs", "concerns", None]
    assert turn["step"] == "finished" and turn["flag"] == "green" and turn["escalate"] is None
    assert "疼得厉害吗：2分" in turn["messages"][0] and "最高体温是多少度：36.8°C" in turn["messages"][0]
    assert "恢复情况良好" in turn["messages"][1] and "下次随访时间" in turn["messages"][1]
    checkin, answers = await _stored(runtime, checkin_id)
    assert (checkin.status, checkin.worst_flag, checkin.channel) == ("answered", "green", "chat")
    assert answers["pain"] == (2, "green", "2分")
    assert answers["temperature"][0] == 36.8
    assert answers["wound"][0] == [] and "wound_discharge" not in answers


async def test_choices_are_numbered_and_an_answer_in_words_is_understood(
    bot: httpx.AsyncClient, runtime: Runtime, family: Family
) -> None:
    checkin_id = family.enrolled.checkin_ids[0]
    await _answer(bot, family.own, checkin_id, "有点疼，大概5分")
    turn = await _answer(bot, family.own, checkin_id, "三十八度二")
    assert turn["question"]["code"] == "wound"
    assert "1. 伤口周围发红" in turn["question"]["text"] and "3. 伤口裂开" in turn["question"]["text"]
    turn = await _answer(bot, family.own, checkin_id, "伤口有点红但不流水")
    assert turn["question"]["code"] == "wound_discharge"  # asked only because the wound is red
    _, answers = await _stored(runtime, checkin_id)
    assert answers["pain"][:2] == (5, "amber")
    assert answers["temperature"][:2] == (38.2, "amber")
    assert answers["wound"][:2] == (["red"], "amber")


async def test_unclear_and_out_of_range_answers_are_asked_again_and_not_stored(
    bot: httpx.AsyncClient, runtime: Runtime, family: Family
) -> None:
    checkin_id = family.enrolled.checkin_ids[0]
    turn = await _answer(bot, family.own, checkin_id, "12分")
    assert turn["step"] == "ask" and turn["question"]["code"] == "pain"
    assert "0 到 10" in turn["messages"][0]
    turn = await _answer(bot, family.own, checkin_id, "疼得厉害")
    assert turn["question"]["code"] == "pain" and "打个分" in turn["messages"][0]
    _, answers = await _stored(runtime, checkin_id)
    assert answers == {}


async def test_a_red_answer_escalates_urgently_to_the_enrolments_team_with_the_answers(
    bot: httpx.AsyncClient, runtime: Runtime, family: Family
) -> None:
    """At once: the escalation hands the chat to the team's nurse, who asks the rest, instead of
    waiting for the remaining questions (which a patient may never answer)."""
    checkin_id = family.enrolled.checkin_ids[0]
    assert (await _answer(bot, family.own, checkin_id, "3"))["step"] == "ask"
    turn = await _answer(bot, family.own, checkin_id, "38度6")
    assert turn["step"] == "finished" and turn["flag"] == "red"
    assert turn["escalate"]["priority"] == "urgent"
    assert turn["escalate"]["team"] == family.enrolled.team_name
    assert "体温" in turn["escalate"]["reason"] and "38.6" in turn["escalate"]["reason"]
    assert "38.5" in turn["messages"][-1] and "护士" in turn["messages"][-1]
    checkin, answers = await _stored(runtime, checkin_id)
    assert (checkin.status, checkin.worst_flag) == ("answered", "red")
    assert set(answers) == {"pain", "temperature"}


async def test_an_emergency_answer_ends_the_check_in_with_120_at_once(
    bot: httpx.AsyncClient, runtime: Runtime, family: Family
) -> None:
    checkin_id = family.enrolled.checkin_ids[0]
    for text in ["3", "36.5", "没有", "没有", "1"]:
        await _answer(bot, family.own, checkin_id, text)
    turn = await _answer(bot, family.own, checkin_id, "1")  # 突然气短、喘不上气
    assert turn["step"] == "finished" and turn["flag"] == "emergency"
    assert "120" in turn["messages"][0]
    assert turn["escalate"]["priority"] == "urgent" and "急症" in turn["escalate"]["reason"]
    checkin, answers = await _stored(runtime, checkin_id)
    assert checkin.status == "answered" and "concerns" not in answers
    again = await _answer(bot, family.own, checkin_id, "没有")
    assert again["step"] == "closed" and "已经结束" in again["messages"][0]


async def test_the_same_message_sent_again_gets_the_same_turn(
    bot: httpx.AsyncClient, runtime: Runtime, family: Family
) -> None:
    """The bot asks again when the answer to its call was lost (a timeout): the message is not read
    as the next answer, and a check-in it completed repeats its advice and escalation, not
    `closed`; another message to the completed check-in is `closed`."""
    checkin_id = family.enrolled.checkin_ids[0]
    path = f"/{checkin_id}/answer"
    first = await _post(bot, family.own, path, {"text": "3", "message": "msg-pain"})
    assert first["question"]["code"] == "temperature"
    assert await _post(bot, family.own, path, {"text": "3", "message": "msg-pain"}) == first
    for number, text in enumerate(["36.5", "没有", "没有", "1"]):
        await _post(bot, family.own, path, {"text": text, "message": f"msg-{number}"})
    emergency = await _post(bot, family.own, path, {"text": "1", "message": "msg-danger"})
    assert emergency["step"] == "finished" and "120" in emergency["messages"][0]
    assert emergency["escalate"]["priority"] == "urgent"

    repeated = await _post(bot, family.own, path, {"text": "1", "message": "msg-danger"})

    assert repeated == emergency
    _, answers = await _stored(runtime, checkin_id)
    assert answers["pain"][0] == 3 and answers["temperature"][0] == 36.5
    other = await _post(bot, family.own, path, {"text": "1", "message": "msg-later"})
    assert other["step"] == "closed"


async def test_a_question_mid_form_is_answered_and_the_same_question_asked_again(
    bot: httpx.AsyncClient, family: Family
) -> None:
    checkin_id = family.enrolled.checkin_ids[0]
    turn = await _answer(bot, family.own, checkin_id, "能洗澡吗")
    assert turn["question"]["code"] == "pain"
    assert "淋浴" in turn["messages"][0] and turn["noted"] is None
    turn = await _answer(bot, family.own, checkin_id, "出院以后可以养猫吗")
    assert turn["question"]["code"] == "pain" and turn["noted"] == "出院以后可以养猫吗"
    assert "护士" in turn["messages"][0]


async def test_a_noted_question_reaches_the_nurse_when_the_check_in_ends(
    bot: httpx.AsyncClient, runtime: Runtime, family: Family
) -> None:
    checkin_id = family.enrolled.checkin_ids[0]
    turn: dict[str, Any] = {}
    for text in GREEN_DAY_1:
        turn = await _post(bot, family.own, f"/{checkin_id}/answer", {"text": text, "noted": ["可以养猫吗"]})
    assert turn["flag"] == "amber"
    assert turn["escalate"]["priority"] == "normal" and "可以养猫吗" in turn["escalate"]["reason"]
    assert "转给护士" in turn["messages"][-1]
    checkin, _ = await _stored(runtime, checkin_id)
    assert checkin.worst_flag == "amber"


async def test_postponing_asks_again_later_the_same_day(
    bot: httpx.AsyncClient, runtime: Runtime, family: Family
) -> None:
    checkin_id = family.enrolled.checkin_ids[0]
    morning = datetime(2026, 12, 5, 10, 0, tzinfo=HOSPITAL_TZ)
    runtime.clock = lambda: morning.astimezone(UTC)
    try:
        turn = await _answer(bot, family.own, checkin_id, "现在在忙，稍后再说")
    finally:
        runtime.clock = lambda: datetime.now(UTC)
    assert turn["step"] == "postponed" and "今天 12:00" in turn["messages"][0]
    checkin, _ = await _stored(runtime, checkin_id)
    assert checkin.postponed_until is not None
    assert checkin.postponed_until.astimezone(HOSPITAL_TZ) == morning.replace(hour=12)
    assert checkin.status == "started"


def test_a_postponement_stays_inside_the_send_window() -> None:
    evening = datetime(2026, 12, 5, 18, 50, tzinfo=HOSPITAL_TZ)
    assert postpone_until(evening, "09:00", "20:00") == evening.replace(hour=19, minute=30)
    next_morning = datetime(2026, 12, 6, 10, 0, tzinfo=HOSPITAL_TZ)
    assert postpone_until(evening.replace(hour=19, minute=25), "09:00", "20:00") == next_morning
    assert postpone_until(evening.replace(hour=23, minute=40), "09:00", "20:00") == next_morning
    early = datetime(2026, 12, 6, 6, 0, tzinfo=HOSPITAL_TZ)
    assert postpone_until(early, "09:00", "20:00") == next_morning


async def test_opting_out_is_confirmed_then_stops_the_enrolment_and_is_audited(
    bot: httpx.AsyncClient, runtime: Runtime, family: Family
) -> None:
    checkin_id = family.enrolled.checkin_ids[0]
    turn = await _answer(bot, family.son, checkin_id, "我们不想再收到随访了")
    assert turn["step"] == "confirm_opt_out" and "张三" in turn["messages"][0]
    kept = await _post(bot, family.son, f"/{checkin_id}/opt-out", {"confirmed": False})
    assert kept["step"] == "ask" and kept["question"]["code"] == "pain"
    async with runtime.db.sessions() as session:
        enrolment = await session.get(FollowupEnrolment, family.enrolled.enrolment_id)
        assert enrolment is not None and enrolment.status == "active"
    stopped = await _post(bot, family.son, f"/{checkin_id}/opt-out", {"confirmed": True})
    assert stopped["step"] == "stopped" and "不会再发送随访消息" in stopped["messages"][0]
    async with runtime.db.sessions() as session:
        enrolment = await session.get(FollowupEnrolment, family.enrolled.enrolment_id)
        assert enrolment is not None
        assert (enrolment.status, enrolment.stop_reason) == ("stopped", "opted_out")
        statuses = await session.scalars(
            select(FollowupCheckin.status).where(FollowupCheckin.enrolment_id == enrolment.id)
        )
        assert set(statuses) == {"skipped"}
        audited = await session.scalar(
            select(AuditEntry).where(
                AuditEntry.action == "followup.opted_out", AuditEntry.object_id == str(enrolment.id)
            )
        )
        assert audited is not None and audited.patient_id == family.patient_id
    closed = await _post(bot, family.own, f"/{family.enrolled.checkin_ids[1]}/start")
    assert closed["step"] == "closed" and closed["messages"] == []  # nothing said after the stop


async def test_bad_input_is_refused(bot: httpx.AsyncClient, family: Family) -> None:
    path = f"/internal/bot/followups/checkins/{family.enrolled.checkin_ids[0]}/answer"
    for body in ({"text": ""}, {"text": "x" * 1001}, {"text": "3", "extra": 1}, {}):
        response = await bot.post(path, params={"sender": family.own}, json=body)
        assert response.status_code in (400, 422), body


async def _own_conversation(runtime: Runtime, family: Family) -> int:
    """A conversation of the patient's own account, as the route's emergency names it."""
    async with runtime.db.sessions() as session:
        own = await session.scalar(
            select(WeChatIdentity).where(WeChatIdentity.patient_id == family.patient_id)
        )
        assert own is not None
        conversation = Conversation(patient_id=family.patient_id, identity_id=own.id)
        session.add(conversation)
        await session.commit()
        return conversation.id


async def test_an_emergency_the_route_screened_ends_the_open_check_in(
    runtime: Runtime, family: Family
) -> None:
    conversation_id = await _own_conversation(runtime, family)
    other = EscalationRequested(conversation_id, reason="patient_request")
    assert await end_checkins_on_emergency(runtime, other) == []
    emergency = EscalationRequested(conversation_id, reason="emergency", priority="urgent", team="nursing")
    assert await end_checkins_on_emergency(runtime, emergency) == [family.enrolled.checkin_ids[0]]
    checkin, _ = await _stored(runtime, family.enrolled.checkin_ids[0])
    assert (checkin.status, checkin.worst_flag, checkin.channel) == ("answered", "emergency", "chat")
    later, _ = await _stored(runtime, family.enrolled.checkin_ids[1])
    assert later.status == "scheduled"  # only the check-in under way ends


# -- 不想再收到随访 with no check-in open -----------------------------------------------------------


async def _opt_out(bot: httpx.AsyncClient, sender: str, body: dict[str, Any] | None = None) -> Any:
    path = "/internal/bot/followups/opt-out" + ("/confirm" if body is not None else "")
    response = await bot.post(path, params={"sender": sender}, json=body)
    assert response.status_code == 200, response.text
    return response.json()


async def _enrolment(runtime: Runtime, enrolment_id: int) -> tuple[str, str | None, set[str]]:
    """The enrolment's status, stop reason and the statuses of its check-ins."""
    async with runtime.db.sessions() as session:
        enrolment = await session.get(FollowupEnrolment, enrolment_id)
        assert enrolment is not None
        statuses = await session.scalars(
            select(FollowupCheckin.status).where(FollowupCheckin.enrolment_id == enrolment_id)
        )
        return enrolment.status, enrolment.stop_reason, set(statuses)


async def _opted_out_audits(runtime: Runtime, enrolment_id: int) -> list[AuditEntry]:
    async with runtime.db.sessions() as session:
        rows = await session.scalars(
            select(AuditEntry).where(
                AuditEntry.action == "followup.opted_out", AuditEntry.object_id == str(enrolment_id)
            )
        )
        return list(rows)


@pytest.fixture
async def second_patient(runtime: Runtime, family: Family) -> Enrolled:
    """Another patient the son manages (his mother, 李秀英), enrolled too."""
    async with runtime.db.sessions() as session:
        mother = Patient(display_name="李秀英")
        session.add(mother)
        await session.flush()
        son = await session.scalar(
            select(WeChatIdentity).where(WeChatIdentity.openid == family.son.split(":", 1)[1])
        )
        assert son is not None
        session.add(
            PatientLink(identity_id=son.id, patient_id=mother.id, relationship=PatientRelation.PARENT)
        )
        enrolled = await enrol(session, mother.id, plan_code="appendectomy", identity_id=son.id)
        await session.commit()
        return enrolled


async def test_opting_out_with_nothing_running_says_so(bot: httpx.AsyncClient, family: Family) -> None:
    turn = await _opt_out(bot, family.stranger)
    assert turn["step"] == "none" and turn["enrolments"] == []
    assert "目前没有正在进行的术后随访" in turn["messages"][0]


async def test_opting_out_of_ones_own_follow_up_is_confirmed_then_stopped_and_audited(
    bot: httpx.AsyncClient, runtime: Runtime, family: Family
) -> None:
    enrolment_id = family.enrolled.enrolment_id
    turn = await _opt_out(bot, family.own)
    assert turn["step"] == "confirm" and turn["enrolments"] == [enrolment_id]
    assert "您要停止您的腹腔镜胆囊切除术后随访吗" in turn["question"]
    assert "张三" not in turn["question"]
    stopped = await _opt_out(bot, family.own, {"text": "确定", "enrolments": [enrolment_id]})
    assert stopped["step"] == "stopped" and "不会再发送随访消息" in stopped["messages"][0]
    assert await _enrolment(runtime, enrolment_id) == ("stopped", "opted_out", {"skipped"})
    [audited] = await _opted_out_audits(runtime, enrolment_id)
    assert audited.patient_id == family.patient_id and audited.staff_id is None
    assert audited.detail["relationship"] == "self"
    again = await _opt_out(bot, family.own)
    assert again["step"] == "none"  # nothing left to stop
    started = await _post(bot, family.own, f"/{family.enrolled.checkin_ids[1]}/start")
    assert started["step"] == "closed"


async def test_a_family_member_names_both_patients_and_confirming_stops_both(
    bot: httpx.AsyncClient, runtime: Runtime, family: Family, second_patient: Enrolled
) -> None:
    both = [family.enrolled.enrolment_id, second_patient.enrolment_id]
    turn = await _opt_out(bot, family.son)
    assert turn["step"] == "confirm" and turn["enrolments"] == both
    assert "1. 张三的腹腔镜胆囊切除术后随访" in turn["question"]
    assert "2. 李秀英的阑尾切除术后随访" in turn["question"]
    stopped = await _opt_out(bot, family.son, {"text": "确定停止", "enrolments": both})
    assert stopped["step"] == "stopped"
    assert "张三的腹腔镜胆囊切除术后随访" in stopped["messages"][0]
    assert "李秀英的阑尾切除术后随访" in stopped["messages"][0]
    for enrolment_id in both:
        assert await _enrolment(runtime, enrolment_id) == ("stopped", "opted_out", {"skipped"})
        [audited] = await _opted_out_audits(runtime, enrolment_id)
        assert audited.detail["relationship"] == "parent"


async def test_a_family_member_may_stop_one_of_two_by_its_number(
    bot: httpx.AsyncClient, runtime: Runtime, family: Family, second_patient: Enrolled
) -> None:
    both = [family.enrolled.enrolment_id, second_patient.enrolment_id]
    stopped = await _opt_out(bot, family.son, {"text": "2", "enrolments": both})
    assert stopped["step"] == "stopped" and "李秀英" in stopped["messages"][0]
    assert "张三" not in stopped["messages"][0]
    assert (await _enrolment(runtime, second_patient.enrolment_id))[:2] == ("stopped", "opted_out")
    assert (await _enrolment(runtime, family.enrolled.enrolment_id))[0] == "active"
    left = await _opt_out(bot, family.son)
    assert left["enrolments"] == [family.enrolled.enrolment_id] and "张三" in left["question"]


async def test_cancelling_keeps_the_follow_up(
    bot: httpx.AsyncClient, runtime: Runtime, family: Family
) -> None:
    enrolment_id = family.enrolled.enrolment_id
    kept = await _opt_out(bot, family.own, {"text": "取消", "enrolments": [enrolment_id]})
    assert kept["step"] == "kept" and "随访保持不变" in kept["messages"][0]
    assert (await _enrolment(runtime, enrolment_id))[0] == "active"
    assert await _opted_out_audits(runtime, enrolment_id) == []


async def test_an_unclear_reply_is_asked_once_more_then_keeps_the_follow_up(
    bot: httpx.AsyncClient, runtime: Runtime, family: Family
) -> None:
    enrolment_id = family.enrolled.enrolment_id
    first = await _opt_out(bot, family.own, {"text": "伤口有点痒", "enrolments": [enrolment_id]})
    assert first["step"] == "confirm" and first["enrolments"] == [enrolment_id]
    assert "没有看明白" in first["messages"][0] and "回复“确定”停止" in first["question"]
    second = await _opt_out(
        bot, family.own, {"text": "伤口有点痒", "enrolments": [enrolment_id], "asked_again": True}
    )
    assert second["step"] == "kept" and "随访保持不变" in second["messages"][0]
    person = await _opt_out(bot, family.own, {"text": "转人工", "enrolments": [enrolment_id]})
    assert person["step"] == "handoff"
    assert (await _enrolment(runtime, enrolment_id))[0] == "active"


async def test_another_sender_cannot_stop_someone_elses_follow_up(
    bot: httpx.AsyncClient, runtime: Runtime, family: Family, second_patient: Enrolled
) -> None:
    theirs = {"text": "确定", "enrolments": [family.enrolled.enrolment_id]}
    refused = await bot.post(
        "/internal/bot/followups/opt-out/confirm", params={"sender": family.stranger}, json=theirs
    )
    assert refused.status_code == 404
    # The patient's own account does not manage the son's mother: naming her enrolment refuses all.
    mixed = {"text": "确定", "enrolments": [family.enrolled.enrolment_id, second_patient.enrolment_id]}
    refused = await bot.post(
        "/internal/bot/followups/opt-out/confirm", params={"sender": family.own}, json=mixed
    )
    assert refused.status_code == 404
    for enrolment_id in (family.enrolled.enrolment_id, second_patient.enrolment_id):
        assert (await _enrolment(runtime, enrolment_id))[0] == "active"


async def test_a_bad_opt_out_reply_is_refused(bot: httpx.AsyncClient, family: Family) -> None:
    enrolment_id = family.enrolled.enrolment_id
    for body in (
        {"text": "确定", "enrolments": []},
        {"text": "", "enrolments": [enrolment_id]},
        {"text": "确定"},
        {"text": "确定", "enrolments": [0]},
        {"text": "确定", "enrolments": [enrolment_id], "extra": 1},
    ):
        response = await bot.post(
            "/internal/bot/followups/opt-out/confirm", params={"sender": family.own}, json=body
        )
        assert response.status_code in (400, 422), body
    assert (await _opt_out(bot, family.own))["step"] == "confirm"  # nothing changed


async def test_a_check_in_is_completed_once_when_chat_and_the_page_finish_together(
    bot: httpx.AsyncClient, runtime: Runtime, family: Family
) -> None:
    """The page read the open check-in, then the chat finished it: the page's completion must not
    complete it again (a second outcome, a second escalation); it is told the check-in closed."""
    checkin_id = family.enrolled.checkin_ids[0]
    async with runtime.db.sessions() as page_session:
        seen_by_page = await load_checkin(page_session, checkin_id)
        for text in GREEN_DAY_1:
            turn = await _answer(bot, family.own, checkin_id, text)
        assert turn["step"] == "finished"
        with pytest.raises(CheckinClosed):
            await complete_checkin(
                page_session, seen_by_page, channel=CheckinChannel.page, now=datetime.now(UTC)
            )
        await page_session.rollback()
    checkin, _ = await _stored(runtime, checkin_id)
    assert (checkin.status, checkin.channel) == ("answered", "chat")


async def test_an_emergency_the_route_screened_leaves_a_check_in_the_page_completed_meanwhile(
    runtime: Runtime, family: Family, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The listener read the started check-in, then the page completed it (green) before the
    listener wrote: the page's outcome stands, nothing is overwritten."""
    checkin_id = family.enrolled.checkin_ids[0]
    conversation_id = await _own_conversation(runtime, family)
    read_started = emergencies._under_way

    async def page_completes_meanwhile(session: Any, started: list[FollowupCheckin]) -> list[FollowupCheckin]:
        rows = await read_started(session, started)
        async with runtime.db.sessions() as page_session:
            checkin = await load_checkin(page_session, checkin_id)
            await complete_checkin(page_session, checkin, channel=CheckinChannel.page, now=datetime.now(UTC))
            await page_session.commit()
        return rows

    monkeypatch.setattr(emergencies, "_under_way", page_completes_meanwhile)
    emergency = EscalationRequested(conversation_id, reason="emergency", priority="urgent", team="nursing")

    assert await end_checkins_on_emergency(runtime, emergency) == []

    checkin, _ = await _stored(runtime, checkin_id)
    assert (checkin.status, checkin.channel, checkin.worst_flag) == ("answered", "page", "green")


async def test_an_emergency_ends_only_the_check_in_under_way_of_a_family_managing_two(
    bot: httpx.AsyncClient, runtime: Runtime, family: Family
) -> None:
    """The son manages his father (answering now) and his own record has a check-in started
    yesterday: "突然喘不上气" ends the father's check-in, not the other one."""
    async with runtime.db.sessions() as session:
        son = await session.scalar(
            select(WeChatIdentity).where(WeChatIdentity.openid == family.son.split(":", 1)[1])
        )
        assert son is not None
        own_record = await enrol(
            session, son.patient_id, identity_id=son.id, now=datetime.now(UTC) - timedelta(days=1)
        )
        father = await session.get(FollowupCheckin, family.enrolled.checkin_ids[0])
        assert father is not None
        father.identity_id = son.id
        conversation = Conversation(patient_id=son.patient_id, identity_id=son.id)
        session.add(conversation)
        await session.commit()
        conversation_id = conversation.id
    assert (await _answer(bot, family.son, family.enrolled.checkin_ids[0], "3分"))["step"] == "ask"
    emergency = EscalationRequested(conversation_id, reason="emergency", priority="urgent", team="nursing")
    assert await end_checkins_on_emergency(runtime, emergency) == [family.enrolled.checkin_ids[0]]
    untouched, _ = await _stored(runtime, own_record.checkin_ids[0])
    assert (untouched.status, untouched.worst_flag) == ("started", None)


# -- pause, opt-out races, simultaneous answers -------------------------------------------------------


async def test_a_paused_enrolments_started_check_in_can_still_be_answered(
    bot: httpx.AsyncClient, runtime: Runtime, family: Family
) -> None:
    """Pausing stops new check-ins, not the one the patient is answering (pause_enrolment's promise)."""
    started, later = family.enrolled.checkin_ids[:2]
    assert (await _answer(bot, family.own, started, "2分"))["step"] == "ask"
    async with runtime.db.sessions() as session:
        await pause_enrolment(session, family.enrolled.enrolment_id)
        await session.commit()
    turn = await _answer(bot, family.own, started, "三十六度八")
    assert turn["step"] == "ask" and turn["question"]["code"] != "temperature"
    _, stored = await _stored(runtime, started)
    assert stored["temperature"][0] == 36.8
    assert (await _post(bot, family.own, f"/{later}/start"))["step"] == "closed"  # nothing new starts
    async with runtime.db.sessions() as session:
        await stop_enrolment(session, family.enrolled.enrolment_id, StopReason.deceased)
        await session.commit()
    assert (await _answer(bot, family.own, started, "没有"))["step"] == "closed"  # a stop is final


async def test_a_confirmed_opt_out_stops_the_follow_up_though_the_check_in_closed_meanwhile(
    bot: httpx.AsyncClient, runtime: Runtime, family: Family
) -> None:
    """Between "不想再收到随访" and "确定" the check-in was answered on the page: the patient still
    asked to hear no more."""
    checkin_id = family.enrolled.checkin_ids[0]
    assert (await _answer(bot, family.own, checkin_id, "不想再收到随访"))["step"] == "confirm_opt_out"
    async with runtime.db.sessions() as session:
        await session.execute(
            update(FollowupCheckin)
            .where(FollowupCheckin.id == checkin_id)
            .values(status="answered", channel="page", worst_flag="green", answered_at=datetime.now(UTC))
        )
        await session.commit()
    stopped = await _post(bot, family.own, f"/{checkin_id}/opt-out", {"text": "确定"})
    assert stopped["step"] == "stopped", stopped
    status, reason, statuses = await _enrolment(runtime, family.enrolled.enrolment_id)
    assert (status, reason) == ("stopped", "opted_out") and "scheduled" not in statuses
    assert len(await _opted_out_audits(runtime, family.enrolled.enrolment_id)) == 1
    # "继续" to a closed check-in still only says it has ended.
    kept = await _post(bot, family.own, f"/{checkin_id}/opt-out", {"text": "继续"})
    assert kept["step"] == "closed"


async def test_a_number_picks_from_the_list_shown_even_if_one_ended_meanwhile(
    bot: httpx.AsyncClient, runtime: Runtime, family: Family, second_patient: Enrolled
) -> None:
    """The son was shown 1. his own, 2. his father's, 3. his mother's follow-up; his own ended
    before he replied "2": his father's stops, not his mother's."""
    async with runtime.db.sessions() as session:
        son = await session.scalar(
            select(WeChatIdentity).where(WeChatIdentity.openid == family.son.split(":", 1)[1])
        )
        assert son is not None
        own = await enrol(session, son.patient_id, plan_code="appendectomy", identity_id=son.id)
        await session.commit()
    shown = await _opt_out(bot, family.son)
    listed = [own.enrolment_id, family.enrolled.enrolment_id, second_patient.enrolment_id]
    assert shown["enrolments"] == listed
    async with runtime.db.sessions() as session:
        await stop_enrolment(session, own.enrolment_id, StopReason.readmitted)
        await session.commit()
    stopped = await _opt_out(bot, family.son, {"text": "2", "enrolments": listed})
    assert stopped["step"] == "stopped" and "张三" in stopped["messages"][0], stopped
    assert (await _enrolment(runtime, family.enrolled.enrolment_id))[:2] == ("stopped", "opted_out")
    assert (await _enrolment(runtime, second_patient.enrolment_id))[0] == "active"
    # "1" names the one that ended: nothing else is stopped in its place.
    ended = await _opt_out(bot, family.son, {"text": "1", "enrolments": listed})
    assert ended["step"] == "none" and "已经结束" in ended["messages"][0]
    assert (await _enrolment(runtime, second_patient.enrolment_id))[0] == "active"
    assert (await _enrolment(runtime, own.enrolment_id))[1] == "readmitted"


async def _waiting_on_a_lock(runtime: Runtime) -> bool:
    async with runtime.db.sessions() as session:
        waiting = await session.scalar(
            sa.text(
                "select count(*) from pg_stat_activity"
                " where datname = current_database() and wait_event_type = 'Lock'"
            )
        )
    return bool(waiting)


async def test_a_chat_answer_to_a_question_the_page_is_answering_waits_instead_of_failing(
    bot: httpx.AsyncClient, runtime: Runtime, family: Family
) -> None:
    """The page holds the check-in while it stores the pain answer; the same answer arriving in chat
    waits for it (no 500 on the unique answer) and then is read against the next question."""
    if runtime.db.is_sqlite:
        pytest.skip("row locks and pg_stat_activity: PostgreSQL")
    checkin_id = family.enrolled.checkin_ids[0]
    async with runtime.db.sessions() as page:
        await lock_checkin(page, checkin_id)
        checkin = await load_checkin(page, checkin_id)
        await record_answer(page, checkin, "pain", 3, channel=CheckinChannel.page, now=datetime.now(UTC))
        chat = asyncio.create_task(
            bot.post(
                f"/internal/bot/followups/checkins/{checkin_id}/answer",
                params={"sender": family.own},
                json={"text": "3分"},
            )
        )
        deadline = asyncio.get_running_loop().time() + 10
        while not await _waiting_on_a_lock(runtime):
            assert asyncio.get_running_loop().time() < deadline and not chat.done()
            await asyncio.sleep(0.02)
        await page.commit()
    answered = await chat
    assert answered.status_code == 200, answered.text
    _, stored = await _stored(runtime, checkin_id)
    assert stored["pain"][0] == 3 and stored["pain"][2] == ""  # the page's answer stands


# -- a reply lost on its way back to the action server ---------------------------------------------


@contextlib.asynccontextmanager
async def _losing_first_reply(crm: FastAPI) -> AsyncIterator[tuple[str, list[str]]]:
    """The bot API on a real port, as the action server reaches it, losing the first answer's reply:
    the CRM has done the work and the connection drops before the action server hears of it."""
    seen: list[str] = []
    transport = httpx.ASGITransport(app=crm)

    async def forward(request: web.Request) -> web.StreamResponse:
        seen.append(request.path)
        async with httpx.AsyncClient(transport=transport, base_url="http://crm") as http:
            reply = await http.request(
                request.method, request.path_qs, content=await request.read(), headers=dict(request.headers)
            )
        if request.path.endswith("/answer") and seen.count(request.path) == 1:
            assert request.transport is not None
            request.transport.close()  # the reply is lost
        return web.Response(body=reply.content, status=reply.status_code, content_type="application/json")

    app = web.Application()
    app.router.add_route("*", "/{path:.*}", forward)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}", seen
    finally:
        await runner.cleanup()


async def test_a_lost_reply_to_the_emergency_answer_is_asked_again_and_gets_the_advice(
    bot: httpx.AsyncClient,
    bot_app: FastAPI,
    runtime: Runtime,
    family: Family,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The action server's client (bot/dialogs/crm.py) asks again with the same message id: the
    patient gets 120 and the team the escalation, though the first reply never arrived."""
    monkeypatch.syspath_prepend(str(BOT_DIR))
    from dialogs.crm import CRM  # the action server's own client, as it runs there

    checkin_id = family.enrolled.checkin_ids[0]
    for text in ["3", "36.5", "没有", "没有", "1"]:
        await _answer(bot, family.own, checkin_id, text)
    async with _losing_first_reply(bot_app) as (proxy_url, seen):
        monkeypatch.setenv("CRM_API_URL", proxy_url)
        answer = await CRM(family.own).followup_answer(checkin_id, "1", [], "rasa-message-1")

    assert seen.count(f"/internal/bot/followups/checkins/{checkin_id}/answer") == 2
    turn = answer.body
    assert turn["step"] == "finished" and turn["flag"] == "emergency" and "120" in turn["messages"][0]
    assert turn["escalate"]["priority"] == "urgent" and "急症" in turn["escalate"]["reason"]
    checkin, answers = await _stored(runtime, checkin_id)
    assert (checkin.status, checkin.worst_flag) == ("answered", "emergency")
    assert answers["danger_signs"][0] == ["breathless"]
