"""Post-operative check-ins through the real stack (webhook, worker, Rasa, action server; WeChat is
the sandbox): the check-in is started as the dispatcher starts it (start_dialogue, key
followup:checkin:<id>, intent EXTERNAL_followup_checkin), the plan's questions are answered in free
Chinese, and the outcome by the worst flag is what the patient reads and what the database keeps:
answers, flags, escalations. Also: an out-of-range answer asked again, a question mid-form,
postponing, a family member answering for a parent, and opting out, during a check-in and with
none open."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bench.fault_rig import Relay
from channels.outbound.delivery import Outbox
from crm_backend.config import HOSPITAL_TZ
from crm_backend.conversations.models import Conversation, InboundMessage
from crm_backend.conversations.turns import DialogueRequest, start_dialogue
from crm_backend.escalations.models import Escalation
from crm_backend.escalations.service import Escalations
from crm_backend.followups import dispatch
from crm_backend.followups.dispatch import run_followups
from crm_backend.followups.models import FollowupAnswer, FollowupCheckin, FollowupEnrolment, FollowupSend
from crm_backend.patients.models import Patient, PatientLink, PatientRelation, WeChatIdentity
from crm_backend.runtime import Runtime
from crm_backend.staff.models import Staff, Team
from tests.e2e.test_dialogues import _Admin
from tests.e2e.test_emergency import _tracker
from tests.support.api import crm_runtime
from tests.support.followup_rows import Enrolled, enrol
from tests.support.settle import send_marker_and_wait
from tests.support.stack import ADMIN_USERNAME, Process, Stack, wait_until

GREETING = "随访服务，想了解一下"
#: What the patient reads while the bot cannot answer (conversations/processing.py).
DELAYED = "智能助手暂时有点忙"
PAIN_QUESTION = "疼得厉害吗"
#: Day-1 answers of the shipped laparoscopic cholecystectomy plan, in the patient's own words.
GREEN = ["不疼", "三十六度八", "没有", "没有", "排气了也大便了", "都没有", "没有"]


@dataclass(frozen=True)
class Started:
    openid: str
    enrolled: Enrolled
    #: What the patient had received before the check-in's first message.
    before: int

    @property
    def checkin_id(self) -> int:
        return self.enrolled.checkin_ids[0]


async def _identity(runtime: Runtime, openid: str) -> WeChatIdentity:
    async with runtime.db.sessions() as session:
        identity = await session.scalar(select(WeChatIdentity).where(WeChatIdentity.openid == openid))
        assert identity is not None
        return identity


async def _dispatch(
    runtime: Runtime, identity: WeChatIdentity, patient_id: int, checkin_id: int, key: str
) -> None:
    """What the dispatcher does for a due check-in inside the window."""
    turn = await start_dialogue(
        runtime,
        DialogueRequest(
            key=key,
            identity_id=identity.id,
            patient_id=patient_id,
            intent="EXTERNAL_followup_checkin",
            reason="followup_checkin",
            expires_at=datetime.now(UTC) + timedelta(hours=12),
            entities={"checkin_id": checkin_id},
        ),
    )
    assert turn is not None


async def _enrolled_account(
    stack: Stack, crm: Runtime, parent: str | None = None
) -> tuple[str, WeChatIdentity, int, Enrolled]:
    """A consented account, enrolled (its own patient record, or a parent it manages)."""
    openid = await stack.consented_patient()
    identity = await _identity(crm, openid)
    async with crm.db.sessions() as session:
        if parent is None:
            patient = await session.get(Patient, identity.patient_id)
            assert patient is not None
            patient.display_name = "刘芳"
        else:
            patient = Patient(display_name=parent)
            session.add(patient)
            await session.flush()
            session.add(
                PatientLink(
                    identity_id=identity.id, patient_id=patient.id, relationship=PatientRelation.PARENT
                )
            )
        enrolled = await enrol(session, patient.id, identity_id=identity.id)
        await session.commit()
        return openid, identity, patient.id, enrolled


async def _start(stack: Stack, crm: Runtime, *, parent: str | None = None) -> Started:
    """An enrolled account with its day-1 check-in started; returns once the greeting and the
    first question arrived."""
    openid, identity, patient_id, enrolled = await _enrolled_account(stack, crm, parent)
    before = len(stack.wechat.texts(openid))
    checkin_id = enrolled.checkin_ids[0]
    await _dispatch(crm, identity, patient_id, checkin_id, f"followup:checkin:{checkin_id}")
    texts = (await stack.wait_answers(openid, before + 2))[before:]
    assert GREETING in texts[0] and PAIN_QUESTION in texts[1], texts
    return Started(openid, enrolled, before)


async def _first_question_asked(stack: Stack, openid: str) -> list[str]:
    """Wait until the last thing the patient received is a check-in's first question (one that
    waited for something); returns everything they received."""
    await asyncio.to_thread(
        wait_until,
        lambda: PAIN_QUESTION in stack.wechat.texts(openid)[-1],
        60,
        "the check-in's first question",
    )
    return stack.wechat.texts(openid)


async def _answer_all(stack: Stack, openid: str, answers: list[str]) -> list[str]:
    last: list[str] = []
    for text in answers:
        last = await stack.converse(openid, text)
    return last


async def _checkin(runtime: Runtime, checkin_id: int) -> tuple[FollowupCheckin, dict[str, Any]]:
    async with runtime.db.sessions() as session:
        checkin = await session.get(FollowupCheckin, checkin_id)
        rows = await session.scalars(select(FollowupAnswer).where(FollowupAnswer.checkin_id == checkin_id))
        assert checkin is not None
        return checkin, {row.question: (row.value, row.flag) for row in rows}


async def _escalations(runtime: Runtime, openid: str) -> list[tuple[Escalation, str]]:
    async with runtime.db.sessions() as session:
        rows = await session.execute(
            select(Escalation, Team.name)
            .join(Team, Team.id == Escalation.team_id)
            .join(Conversation, Conversation.id == Escalation.conversation_id)
            .join(WeChatIdentity, WeChatIdentity.id == Conversation.identity_id)
            .where(WeChatIdentity.openid == openid)
            .order_by(Escalation.id)
        )
        return [(escalation, team) for escalation, team in rows.all()]


async def test_a_green_check_in_in_free_words_ends_with_encouragement(stack: Stack, crm: Runtime) -> None:
    started = await _start(stack, crm)
    texts = stack.wechat.texts(started.openid)[started.before :]
    assert "想了解一下您术后的恢复情况" in texts[0]
    closing = await _answer_all(stack, started.openid, GREEN)
    joined = "\n".join(closing)
    assert "您本次的回答" in joined and "36.8°C" in joined
    assert "恢复情况良好" in joined and "下次随访时间" in joined
    checkin, answers = await _checkin(crm, started.checkin_id)
    assert (checkin.status, checkin.worst_flag, checkin.channel) == ("answered", "green", "chat")
    assert answers["pain"] == (0, "green") and answers["temperature"] == (36.8, "green")
    assert answers["bowel"] == ("both", "green") and answers["danger_signs"] == ([], "green")
    assert await _escalations(crm, started.openid) == []


async def test_a_check_in_started_while_the_action_server_is_away_starts_once_it_is_back(
    stack: Stack, crm: Runtime
) -> None:
    """The patient writes while the action server is away, just as the check-in is due (so did the
    fault suite's patients). Each fallback action failed in turn until Rasa's circuit breaker
    stopped the turn, and Rasa then ignored every later turn of the patient: the check-in said
    nothing and no answer was heard. Now both wait, and go on once the action server is back."""
    openid, identity, patient_id, enrolled = await _enrolled_account(stack, crm)
    checkin_id = enrolled.checkin_ids[0]
    before = len(stack.wechat.texts(openid))
    stack.rasa.actions.kill()
    try:
        await stack.say(openid, "没有")
        [notice] = (await stack.wait_answers(openid, before + 1))[before:]
        assert DELAYED in notice
        await _dispatch(crm, identity, patient_id, checkin_id, f"followup:checkin:{checkin_id}")
    finally:
        await asyncio.to_thread(stack.rasa.restart_actions)
    await _first_question_asked(stack, openid)
    closing = await _answer_all(stack, openid, GREEN)
    assert "恢复情况良好" in "\n".join(closing), closing
    checkin, _ = await _checkin(crm, checkin_id)
    assert (checkin.status, checkin.worst_flag) == ("answered", "green")


async def test_a_did_you_mean_question_left_unanswered_does_not_hold_the_check_in(
    stack: Stack, crm: Runtime
) -> None:
    """An unclear message gets a numbered "did you mean …?" that the patient may never answer; the
    check-in starts anyway (a booking form would hold it), and "2" then answers the pain question
    rather than picking option 2 of the old list."""
    openid, identity, patient_id, enrolled = await _enrolled_account(stack, crm)
    question = await stack.converse(openid, "阿斯顿发个噶")
    assert "回复数字" in question[-1], question
    checkin_id = enrolled.checkin_ids[0]
    before = len(stack.wechat.texts(openid))
    await _dispatch(crm, identity, patient_id, checkin_id, f"followup:checkin:{checkin_id}")
    texts = (await stack.wait_answers(openid, before + 2))[before:]
    assert GREETING in texts[0] and PAIN_QUESTION in texts[1], texts
    await stack.converse(openid, "2")
    _, answers = await _checkin(crm, checkin_id)
    assert answers["pain"] == (2, "green")


async def test_an_amber_check_in_re_asks_out_of_range_and_promises_a_nurse_within_24_hours(
    stack: Stack, crm: Runtime
) -> None:
    started = await _start(stack, crm)
    again = await stack.converse(started.openid, "12分")
    assert any("0 到 10" in text for text in again) and PAIN_QUESTION in again[-1]
    temperature = await stack.converse(started.openid, "有点疼，大概5分")
    assert "体温" in temperature[-1]
    wound = await stack.converse(started.openid, "三十八度二")
    assert "1. 伤口周围发红" in wound[-1]
    discharge = await stack.converse(started.openid, "伤口有点红但不流水")
    assert "流水或流脓" in discharge[-1]  # asked because the wound is red
    closing = await _answer_all(stack, started.openid, ["1", "没有", "1", "没有", "没有"])
    assert any("24 小时内" in text for text in closing)
    checkin, answers = await _checkin(crm, started.checkin_id)
    assert checkin.worst_flag == "amber"
    assert answers["pain"] == (5, "amber") and answers["temperature"] == (38.2, "amber")
    assert answers["wound"] == (["red"], "amber") and answers["wound_discharge"] == ("none", "green")
    assert await _escalations(crm, started.openid) == []  # amber waits on the team's flagged list


async def test_a_family_member_answers_for_a_parent_and_a_red_answer_reaches_the_team_urgently(
    stack: Stack, crm: Runtime
) -> None:
    started = await _start(stack, crm, parent="张建国")
    greeting = stack.wechat.texts(started.openid)[started.before]
    assert "想了解一下您的家人张建国术后的恢复情况" in greeting
    # Red ends the chat's questions at once: what to do now, and the team's nurse asks the rest.
    closing = await _answer_all(stack, started.openid, ["3分", "38度6"])
    joined = "\n".join(closing)
    assert "需要尽快处理" in joined and "38.5" in joined and "护士" in joined
    checkin, answers = await _checkin(crm, started.checkin_id)
    assert (checkin.status, checkin.worst_flag) == ("answered", "red")
    assert answers["temperature"] == (38.6, "red") and set(answers) == {"pain", "temperature"}
    async with crm.db.sessions() as session:
        identity = await _identity(crm, started.openid)
        answered_by = await session.scalar(
            select(FollowupAnswer.answered_by_identity_id).where(
                FollowupAnswer.checkin_id == started.checkin_id
            )
        )
    assert answered_by == identity.id
    [(escalation, team)] = await _escalations(crm, started.openid)
    assert (escalation.priority, team) == ("urgent", started.enrolled.team_name)
    assert "体温" in escalation.reason and "38.6" in escalation.reason


async def test_an_emergency_answer_gets_120_at_once_and_an_urgent_escalation(
    stack: Stack, crm: Runtime
) -> None:
    started = await _start(stack, crm)
    await _answer_all(stack, started.openid, ["2", "36.6", "没有", "没有", "1"])
    closing = await stack.converse(started.openid, "1")  # 1. 突然气短、喘不上气
    assert "120" in closing[0]
    checkin, answers = await _checkin(crm, started.checkin_id)
    assert (checkin.status, checkin.worst_flag) == ("answered", "emergency")
    assert answers["danger_signs"] == (["breathless"], "emergency") and "concerns" not in answers
    [(escalation, team)] = await _escalations(crm, started.openid)
    assert escalation.priority == "urgent" and team == started.enrolled.team_name
    assert "急症" in escalation.reason


async def test_an_emergency_in_words_mid_check_in_is_screened_first_and_ends_the_check_in(
    stack: Stack, crm: Runtime
) -> None:
    started = await _start(stack, crm)
    await stack.converse(started.openid, "4分")
    answered = await stack.converse(started.openid, "突然喘不上气，胸口很闷")
    assert "120" in answered[0]
    checkin, answers = await _checkin(crm, started.checkin_id)
    assert (checkin.status, checkin.worst_flag) == ("answered", "emergency")
    assert "急症" in checkin.reason and set(answers) == {"pain"}
    [(escalation, _team)] = await _escalations(crm, started.openid)
    assert (escalation.reason, escalation.priority) == ("emergency", "urgent")


async def test_a_question_mid_form_is_answered_and_the_same_question_comes_back(
    stack: Stack, crm: Runtime
) -> None:
    started = await _start(stack, crm)
    answered = await stack.converse(started.openid, "伤口能洗澡吗？")
    assert any("淋浴" in text for text in answered) and PAIN_QUESTION in answered[-1]
    nothing_stored = await _checkin(crm, started.checkin_id)
    assert nothing_stored[1] == {}
    nxt = await stack.converse(started.openid, "2分")
    assert "体温" in nxt[-1]


async def test_later_today_the_check_in_resumes_where_it_stopped(stack: Stack, crm: Runtime) -> None:
    started = await _start(stack, crm)
    await stack.converse(started.openid, "3分")
    answered = await stack.converse(started.openid, "现在在忙，稍后再说")
    checkin, answers = await _checkin(crm, started.checkin_id)
    assert checkin.status == "started" and set(answers) == {"pain"}
    assert checkin.postponed_until is not None
    until = checkin.postponed_until.astimezone(HOSPITAL_TZ)
    assert until > datetime.now(UTC) and until.strftime("%H:%M") in answered[-1]
    assert "09:00" <= until.strftime("%H:%M") <= "19:30"  # inside the send window, never at night
    # The dispatcher starts it again (a new turn key): the greeting, then the next open question.
    identity = await _identity(crm, started.openid)
    async with crm.db.sessions() as session:
        enrolment = await session.get(FollowupEnrolment, started.enrolled.enrolment_id)
        assert enrolment is not None
        patient_id = enrolment.patient_id
    before = len(stack.wechat.texts(started.openid))
    await _dispatch(crm, identity, patient_id, started.checkin_id, f"followup:checkin:{started.checkin_id}:2")
    texts = (await stack.wait_answers(started.openid, before + 2))[before:]
    assert GREETING in texts[0] and "体温" in texts[1]


async def test_opting_out_is_confirmed_then_nothing_more_is_asked(stack: Stack, crm: Runtime) -> None:
    started = await _start(stack, crm)
    confirm = await stack.converse(started.openid, "我不想再收到随访了")
    assert "确定" in confirm[-1]
    carry_on = await stack.converse(started.openid, "继续")
    assert PAIN_QUESTION in carry_on[-1]
    await stack.converse(started.openid, "不想再收到随访")
    stopped = await stack.converse(started.openid, "确定")
    assert "不会再发送随访消息" in stopped[-1]
    async with crm.db.sessions() as session:
        enrolment = await session.get(FollowupEnrolment, started.enrolled.enrolment_id)
        assert enrolment is not None and (enrolment.status, enrolment.stop_reason) == ("stopped", "opted_out")
        statuses = set(
            await session.scalars(
                select(FollowupCheckin.status).where(FollowupCheckin.enrolment_id == enrolment.id)
            )
        )
        patient_id = enrolment.patient_id
    assert statuses == {"skipped"}
    # A later check-in of the stopped enrolment, started anyway (a stop racing its start), says
    # nothing at all: the marker message's answer is the only thing the patient reads after it.
    identity = await _identity(crm, started.openid)
    second = started.enrolled.checkin_ids[1]
    before = len(stack.wechat.texts(started.openid))
    await _dispatch(crm, identity, patient_id, second, f"followup:checkin:{second}")
    await _settled(crm, f"dialogue:followup:checkin:{second}")
    after = await stack.converse(started.openid, "你好")
    assert after and stack.wechat.texts(started.openid)[before:] == after
    assert all(PAIN_QUESTION not in text and "随访已经结束" not in text for text in after)


async def test_opting_out_with_no_check_in_open_stops_the_follow_up_and_nothing_more_is_sent(
    stack: Stack, crm: Runtime
) -> None:
    openid = await stack.consented_patient()
    identity = await _identity(crm, openid)
    async with crm.db.sessions() as session:
        patient = await session.get(Patient, identity.patient_id)
        assert patient is not None
        enrolled = await enrol(session, patient.id, identity_id=identity.id)
        await session.commit()
    confirm = await stack.converse(openid, "不想再收到随访")
    assert "您要停止您的腹腔镜胆囊切除术后随访吗" in confirm[-1] and "确定" in confirm[-1], confirm
    stopped = await stack.converse(openid, "确定")
    assert "已为您停止" in stopped[-1] and "不会再发送随访消息" in stopped[-1], stopped
    async with crm.db.sessions() as session:
        enrolment = await session.get(FollowupEnrolment, enrolled.enrolment_id)
        assert enrolment is not None and (enrolment.status, enrolment.stop_reason) == ("stopped", "opted_out")
        # The next time point is made due now, inside the send window: the dispatcher must not start it.
        second = await session.get(FollowupCheckin, enrolled.checkin_ids[1])
        assert second is not None and second.status == "skipped"
        now = datetime.now(HOSPITAL_TZ).replace(hour=10, minute=0, second=0, microsecond=0).astimezone(UTC)
        second.due_at, second.window_ends_at = now - timedelta(minutes=1), now + timedelta(hours=12)
        await session.commit()
    before = len(stack.wechat.texts(openid))
    await run_followups(Outbox(crm), now)  # other tests' check-ins may start: only this patient counts
    marked = await send_marker_and_wait(stack, openid)
    assert marked.others[before:] == [] and all(GREETING not in text for text in marked.answers)
    second_now, _ = await _checkin(crm, enrolled.checkin_ids[1])
    assert second_now.status == "skipped" and second_now.started_at is None


async def _settled(runtime: Runtime, key: str) -> None:
    for _ in range(300):
        async with runtime.db.sessions() as session:
            status = await session.scalar(
                select(InboundMessage.status).where(InboundMessage.dedupe_key == key)
            )
        if status == "processed":
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"dialogue {key} never processed")


async def test_asking_for_a_person_mid_check_in_hands_over_and_closes_the_form(
    stack: Stack, crm: Runtime
) -> None:
    started = await _start(stack, crm)
    await stack.converse(started.openid, "5分")
    answered = await stack.converse(started.openid, "转人工")
    assert any("人工服务" in text for text in answered)
    [(escalation, team)] = await _escalations(crm, started.openid)
    assert (escalation.reason, team) == ("patient_request", "客服中心")
    checkin, answers = await _checkin(crm, started.checkin_id)
    assert checkin.status == "started" and set(answers) == {"pain"}  # still open: the nurse or a reminder
    tracker = await _tracker(stack, started.openid)
    assert not (tracker.get("active_loop") or {}).get("name")


async def _remind(stack: Stack, started: Started) -> list[str]:
    """The dispatcher's reminder for the started check-in (its delay is up); returns the reminder's
    greeting and the question that follows it, as the patient received them. Its dispatcher sends
    at any hour (the reminder carries the send hours; the test runs whenever CI does)."""
    async with crm_runtime(stack, FOLLOWUP_SEND_FROM="00:00", FOLLOWUP_SEND_UNTIL="23:59") as dispatcher:
        before = len(stack.wechat.texts(started.openid))
        assert await dispatch._remind(Outbox(dispatcher), started.checkin_id, datetime.now(UTC))
        return (await stack.wait_answers(started.openid, before + 2))[before:]


async def test_a_reminder_while_the_form_is_open_asks_the_open_question_and_the_reply_counts(
    stack: Stack, crm: Runtime
) -> None:
    started = await _start(stack, crm)
    await stack.converse(started.openid, "5分")
    reminder, question = await _remind(stack, started)
    assert reminder.startswith("【随访提醒】") and "还没有完成" in reminder
    assert "体温" in question
    await stack.converse(started.openid, "三十六度八")
    _, answers = await _checkin(crm, started.checkin_id)
    assert set(answers) == {"pain", "temperature"}


# The action server's code, not the database's: once is enough.
@pytest.mark.parametrize("stack", ["postgresql"], indirect=True)
async def test_an_answer_the_crm_cannot_record_goes_to_a_nurse_at_once(stack: Stack, crm: Runtime) -> None:
    """The action server reaches the CRM through a relay that is then cut: the answer may have been
    red, so the patient is told it was not recorded and a nurse looks at the chat, urgently."""
    relay = Relay("crm", [("127.0.0.1", stack.port)]).start()
    original = stack.rasa.actions
    relayed = Process(
        "actions-crm-relay", original.argv, {**original.env, "CRM_API_URL": f"http://127.0.0.1:{relay.port}"}
    )
    original.kill()
    stack.rasa.actions = relayed
    try:
        await asyncio.to_thread(stack.rasa.restart_actions)
        started = await _start(stack, crm)
        relay.cut(60)
        answered = await stack.converse(started.openid, "有点疼，大概5分", timeout=60)
        assert any("随访系统暂时无法记录您的回答" in text for text in answered), answered
        [(escalation, team)] = await _escalations(crm, started.openid)
        assert (escalation.priority, team) == ("urgent", "护理团队")
        assert "随访系统无响应" in (escalation.summary or escalation.reason), escalation.reason
    finally:
        relayed.stop()
        stack.rasa.actions = original
        relay.stop()
        await asyncio.to_thread(stack.rasa.restart_actions)


async def test_a_reminder_for_a_parent_waits_while_the_account_s_own_check_in_is_asked(
    stack: Stack, crm: Runtime
) -> None:
    """One account, two check-ins: the patient's own is being answered when the reminder for their
    mother's comes. The reminder waits for the form to end (before, it asked the open question
    again and the mother's check-in was never taken up), then takes the mother's up."""
    openid, identity, own_patient_id, own = await _enrolled_account(stack, crm)
    async with crm.db.sessions() as session:
        mother = Patient(display_name="王秀兰")
        session.add(mother)
        await session.flush()
        session.add(
            PatientLink(identity_id=identity.id, patient_id=mother.id, relationship=PatientRelation.PARENT)
        )
        theirs = await enrol(session, mother.id, identity_id=identity.id)
        await session.commit()
        mother_id = mother.id
    mothers, owns = theirs.checkin_ids[0], own.checkin_ids[0]
    before = len(stack.wechat.texts(openid))
    await _dispatch(crm, identity, mother_id, mothers, f"followup:checkin:{mothers}")
    await stack.wait_answers(openid, before + 2)
    await stack.converse(openid, "稍后再说")
    before = len(stack.wechat.texts(openid))
    await _dispatch(crm, identity, own_patient_id, owns, f"followup:checkin:{owns}")
    await stack.wait_answers(openid, before + 2)
    await stack.converse(openid, GREEN[0])
    async with crm_runtime(stack, FOLLOWUP_SEND_FROM="00:00", FOLLOWUP_SEND_UNTIL="23:59") as dispatcher:
        assert await dispatch._remind(Outbox(dispatcher), mothers, datetime.now(UTC))
    await _answer_all(stack, openid, GREEN[1:])
    _, answers = await _checkin(crm, owns)
    assert len(answers) == len(GREEN)  # every answer went to the open check-in
    texts = await _first_question_asked(stack, openid)
    reminder, question = texts[-2:]
    assert reminder.startswith("【随访提醒】") and "王秀兰" in reminder and PAIN_QUESTION in question, texts[
        -3:
    ]
    await stack.converse(openid, "3分")
    _, answers = await _checkin(crm, mothers)
    assert answers["pain"] == (3, "green")


async def test_a_reminder_after_a_handover_takes_the_check_in_up_where_it_stopped(
    stack: Stack, crm: Runtime
) -> None:
    """The handover closed the form; after the nurse handed the chat back, the reminder's
    "reply to continue" must reach the check-in, not the general bot."""
    started = await _start(stack, crm)
    await stack.converse(started.openid, "5分")
    await stack.converse(started.openid, "转人工")
    [(escalation, _)] = await _escalations(crm, started.openid)
    async with crm.db.sessions() as session:
        admin_id = await session.scalar(select(Staff.id).where(Staff.username == ADMIN_USERNAME))
    assert admin_id is not None
    await Escalations(crm).resolve(escalation.conversation_id, _Admin(admin_id))
    reminder, question = await _remind(stack, started)
    assert "还没有完成" in reminder and "体温" in question
    await stack.converse(started.openid, "三十六度八")
    _, answers = await _checkin(crm, started.checkin_id)
    assert set(answers) == {"pain", "temperature"}
    async with crm.db.sessions() as session:
        sent = await session.scalars(
            select(FollowupSend.status).where(
                FollowupSend.checkin_id == started.checkin_id, FollowupSend.kind == "reminder"
            )
        )
        assert list(sent) == ["sent"]
