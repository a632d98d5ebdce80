"""Complaints and praise in chat through the real stack (webhook, worker, Rasa, action server, bot
API; WeChat is the sandbox): a complaint about waiting taken down, corrected and confirmed with a
case number and a working-day deadline, a photo sent meanwhile attached; praise; a safety risk
escalated at once, urgent, with the patient's words, before anything is confirmed; the status of
one's cases and a photo added to an open one; and the patient's reply to the hospital's answer
(accepted and rated; not accepted, reopened)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import redis
from sqlalchemy import select

from crm_backend.complaints.deadlines import deadline_for
from crm_backend.complaints.models import CaseStatus, Complaint, ComplaintTimelineEntry, TimelineKind
from crm_backend.complaints.replies import write_to_patient
from crm_backend.complaints.service import ComplaintIntake, register_case, transition
from crm_backend.config import HOSPITAL_TZ
from crm_backend.conversations.models import (
    Conversation,
    DeliveryStatus,
    InboundMessage,
    InboundStatus,
    Message,
)
from crm_backend.patients.models import WeChatIdentity
from crm_backend.patients.service import rasa_sender
from crm_backend.runtime import Runtime
from crm_backend.staff.models import Staff
from tests.conftest import REDIS_BASE, REDIS_DB
from tests.e2e.test_followup_checkin import _escalations
from tests.support.settle import send_marker_and_wait, wait_turn_settled
from tests.support.stack import ADMIN_USERNAME, Stack

WHAT_QUESTION = "请您具体说说发生了什么事"
WHEN_QUESTION = "大概是什么时候发生的"
WHERE_QUESTION = "哪个科室或病区"
WHO_QUESTION = "涉及的工作人员您知道是谁吗"
WISH_QUESTION = "您希望医院怎么处理"
READBACK = "我核对一下记录"
IMAGE_RECEIVED = "已收到您发来的图片"


async def _send_image(stack: Stack, openid: str, url: str) -> list[str]:
    """A photo from the patient; returns once its acknowledgement is out."""
    before = len(await asyncio.to_thread(stack.wechat.texts, openid))
    push = stack.build("image", openid, pic_url=url)
    response = await stack.post(push)
    assert response.status_code == 200 and response.text == "success", response.text
    await stack.wait_answers(openid, before + 1)
    assert push.msg_id is not None
    await wait_turn_settled(stack, openid, push.msg_id)
    return (await asyncio.to_thread(stack.wechat.texts, openid))[before:]


async def _identity(runtime: Runtime, openid: str) -> WeChatIdentity:
    async with runtime.db.sessions() as session:
        identity = await session.scalar(select(WeChatIdentity).where(WeChatIdentity.openid == openid))
        assert identity is not None
        return identity


async def _cases(runtime: Runtime, openid: str) -> list[Complaint]:
    identity = await _identity(runtime, openid)
    async with runtime.db.sessions() as session:
        rows = await session.scalars(
            select(Complaint).where(Complaint.identity_id == identity.id).order_by(Complaint.id)
        )
        return list(rows)


async def _timeline(runtime: Runtime, complaint_id: int) -> list[ComplaintTimelineEntry]:
    async with runtime.db.sessions() as session:
        rows = await session.scalars(
            select(ComplaintTimelineEntry)
            .where(ComplaintTimelineEntry.complaint_id == complaint_id)
            .order_by(ComplaintTimelineEntry.id)
        )
        return list(rows)


async def _registered(runtime: Runtime, openid: str, what: str) -> Complaint:
    """A case registered from this patient's chat (as the bot registers one), committed."""
    identity = await _identity(runtime, openid)
    async with runtime.db.sessions() as session:
        conversation_id = await session.scalar(
            select(Conversation.id)
            .where(Conversation.identity_id == identity.id)
            .order_by(Conversation.id.desc())
        )
        intake = ComplaintIntake(kind="complaint", what=what, when_text="上周五", wish="希望给个说法")
        case = await register_case(session, identity.patient_id, conversation_id, intake, "bot")
        await session.commit()
        return case


async def test_a_complaint_about_waiting_is_read_back_corrected_confirmed_and_numbered_with_its_photo(
    stack: Stack, crm: Runtime
) -> None:
    openid = await stack.consented_patient()
    opening = await stack.converse(openid, "我要投诉")
    assert "很抱歉给您带来了不好的体验" in opening[0] and WHAT_QUESTION in opening[-1], opening
    assert (
        WHEN_QUESTION in (await stack.converse(openid, "带孩子在门诊排队等了三个小时才看上，也没人解释"))[-1]
    )
    assert IMAGE_RECEIVED in (await _send_image(stack, openid, "http://mmbiz.example/queue-ticket.jpg"))[-1]
    assert WHERE_QUESTION in (await stack.converse(openid, "昨天上午"))[-1]
    assert WHO_QUESTION in (await stack.converse(openid, "儿科门诊"))[-1]
    assert WISH_QUESTION in (await stack.converse(openid, "不清楚"))[-1]
    readback = (await stack.converse(openid, "希望给个解释，改进叫号"))[-1]
    assert READBACK in readback and "等了三个小时" in readback and "昨天上午" in readback, readback
    assert "涉及人员：（未提供）" in readback and "希望给个解释" in readback
    assert "2. 时间" in (await stack.converse(openid, "改一下"))[-1]
    assert WHEN_QUESTION in (await stack.converse(openid, "2"))[-1]
    corrected = (await stack.converse(openid, "前天上午"))[-1]
    assert READBACK in corrected and "前天上午" in corrected and "昨天上午" not in corrected, corrected
    registered = "\n".join(await stack.converse(openid, "确认"))

    [case] = await _cases(crm, openid)
    due = deadline_for(case.registered_at).due_on
    assert case.case_number.startswith("TS-") and case.case_number in registered, registered
    assert f"5个工作日内（{due.month}月{due.day}日前）" in registered
    assert "1张图片" in registered
    assert (case.kind, case.status, case.safety_risk) == ("complaint", "registered", False)
    # The bot keyed the registration by this intake: 确认 sent again would find this case.
    identity = await _identity(crm, openid)
    assert case.intake_key and case.intake_key.startswith(rasa_sender(identity.app_id, openid) + ":")
    assert case.when_text == "前天上午" and case.who is None and case.wish == "希望给个解释，改进叫号"
    today = case.registered_at.astimezone(HOSPITAL_TZ).date()
    assert case.when_date == today - timedelta(days=2)
    assert case.where_department is not None and "儿科" in case.where_department
    [photo] = [entry for entry in await _timeline(crm, case.id) if entry.kind == TimelineKind.patient_added]
    assert photo.data and photo.data["url"] == "http://mmbiz.example/queue-ticket.jpg"
    assert await _escalations(crm, openid) == []
    # The intake is over: the bot answers the next message on its own.
    marked = await send_marker_and_wait(stack, openid)
    assert marked.answers and READBACK not in marked.answers[-1]


async def test_anything_but_a_yes_or_a_correction_at_the_read_back_reads_it_back_again(
    stack: Stack, crm: Runtime
) -> None:
    """The fault suite's patient, waiting too long for the read-back, said 我要投诉 again: that
    restarted the intake with everything gone, and 确认 then got "nothing awaits confirmation"
    with a failed registration, again and again. The read-back is asked again, and 确认 registers."""
    openid = await stack.consented_patient()
    await stack.converse(openid, "我要投诉")
    for answer in ["门诊排队等了两个小时，叫号也没人解释", "昨天上午", "门诊三楼皮肤科", "跳过"]:
        await stack.converse(openid, answer)
    assert READBACK in (await stack.converse(openid, "希望改进叫号"))[-1]
    for said in ["我要投诉", "什么时候能有结果"]:
        again = await stack.converse(openid, said)
        assert len(again) == 1 and READBACK in again[0] and "等了两个小时" in again[0], again
    registered = await stack.converse(openid, "确认")
    [case] = await _cases(crm, openid)
    assert len(registered) == 1 and case.case_number in registered[0], registered
    assert case.what == "门诊排队等了两个小时，叫号也没人解释" and case.wish == "希望改进叫号"


async def test_a_confirmation_the_bot_lost_its_record_of_is_never_taken_for_a_success(
    stack: Stack, crm: Runtime
) -> None:
    """Rasa's tracker is gone between the read-back and 确认 (Redis lost its data): the patient is
    told nothing was submitted and how to start again, not "好的" as if it were done."""
    openid = await stack.consented_patient()
    await stack.converse(openid, "我要投诉")
    for answer in ["门诊排队等了两个小时，叫号也没人解释", "昨天上午", "门诊三楼皮肤科", "跳过"]:
        await stack.converse(openid, answer)
    assert READBACK in (await stack.converse(openid, "希望改进叫号"))[-1]
    # What losing Redis's data does to this patient's tracker: its key in Rasa's tracker store is gone.
    identity = await _identity(crm, openid)
    trackers = redis.Redis.from_url(f"{REDIS_BASE}/{REDIS_DB['rasa']}")
    keys = [
        key for key in trackers.scan_iter(match="*") if rasa_sender(identity.app_id, openid).encode() in key
    ]
    assert keys and trackers.delete(*keys) == len(keys)

    answered = "\n".join(await stack.converse(openid, "确认"))
    assert "还没有提交成功" in answered and "我要投诉" in answered, answered
    assert await _cases(crm, openid) == []


async def test_praise_is_taken_down_without_asking_what_should_be_done(stack: Stack, crm: Runtime) -> None:
    openid = await stack.consented_patient()
    opening = await stack.converse(openid, "我想表扬心内科的王医生，对我妈特别耐心")
    assert "谢谢您的认可" in opening[0] and "这是什么时候的事" in opening[-1], opening
    assert WHERE_QUESTION in (await stack.converse(openid, "上周住院的时候"))[-1]
    assert "您要表扬的是哪位" in (await stack.converse(openid, "心内科二病区"))[-1]
    readback = (await stack.converse(openid, "王建国医生"))[-1]
    assert READBACK in readback and "（表扬）" in readback and "诉求" not in readback, readback
    registered = "\n".join(await stack.converse(openid, "对的"))
    [case] = await _cases(crm, openid)
    assert case.case_number.startswith("BY-") and case.case_number in registered
    assert "您的表扬已登记" in registered
    assert (case.kind, case.who, case.where_ward) == ("praise", "王建国医生", "二病区")
    assert case.what == "我想表扬心内科的王医生，对我妈特别耐心"


async def _safety_escalation(crm: Runtime, openid: str) -> str:
    """The one escalation of this chat is the complaints office's urgent safety one: its words."""
    [(escalation, team)] = await _escalations(crm, openid)
    assert (escalation.reason, escalation.priority, team) == ("complaint_safety", "urgent", "投诉办公室")
    assert escalation.summary is not None
    return escalation.summary


async def test_a_safety_risk_in_the_first_message_goes_to_staff_at_once_with_the_patients_words(
    stack: Stack, crm: Runtime
) -> None:
    openid = await stack.consented_patient()
    opening = "\n".join(await stack.converse(openid, "我要投诉，护士给我爸发错药了，吃了才发现"))
    # Nothing confirmed, nothing more asked: staff have it now, the patient's words on it.
    assert "涉及患者安全" in opening and WHEN_QUESTION not in opening, opening
    assert "护士给我爸发错药了" in await _safety_escalation(crm, openid)
    # Recorded as well as escalated: a case with the words so far, for staff to complete.
    [case] = await _cases(crm, openid)
    assert case.case_number in opening and case.safety_risk and "护士给我爸发错药了" in case.what
    # The patient gives up: the escalation stays, and staff read it (no bot intake any more).
    await stack.post(stack.build("text", openid, content="算了"))
    marked = await send_marker_and_wait(stack, openid)
    assert READBACK not in "\n".join(marked.answers) and WHEN_QUESTION not in "\n".join(marked.answers)
    assert "护士给我爸发错药了" in await _safety_escalation(crm, openid)


async def test_a_safety_risk_told_midway_goes_to_staff_before_any_confirmation(
    stack: Stack, crm: Runtime
) -> None:
    openid = await stack.consented_patient()
    await stack.converse(openid, "我要投诉")
    await stack.converse(openid, "病房护工态度很差")
    assert WHERE_QUESTION in (await stack.converse(openid, "昨天晚上"))[-1]
    told = "\n".join(await stack.converse(openid, "住院部5楼，我妈半夜摔倒了按铃半小时都没人来"))
    assert "涉及患者安全" in told and WHO_QUESTION not in told, told
    assert "我妈半夜摔倒了" in await _safety_escalation(crm, openid)
    [case] = await _cases(crm, openid)
    assert case.case_number in told and case.safety_risk and "我妈半夜摔倒了" in case.what
    # The words said before the risk are on the case too.
    assert "病房护工态度很差" in case.what and "昨天晚上" in case.what, case.what


async def test_a_safety_risk_added_to_an_open_case_goes_to_staff_at_once_with_the_words(
    stack: Stack, crm: Runtime
) -> None:
    openid = await stack.consented_patient()
    case = await _registered(crm, openid, "护工说话很不客气")
    assert case.case_number in (await stack.converse(openid, "我想补充一下投诉的内容"))[-1]
    added = "\n".join(await stack.converse(openid, "还有，那天护士给我孩子输错液了"))
    assert f"加到{case.case_number}" in added and "涉及患者安全" in added, added
    assert "护士给我孩子输错液了" in await _safety_escalation(crm, openid)
    async with crm.db.sessions() as session:
        row = await session.get(Complaint, case.id)
        assert row is not None and row.safety_risk and row.safety_escalated_at is not None


async def test_the_status_of_ones_cases_and_a_photo_added_to_an_open_one(stack: Stack, crm: Runtime) -> None:
    openid = await stack.consented_patient()
    assert "没有投诉或表扬的记录" in (await stack.converse(openid, "我的投诉怎么样了"))[-1]
    case = await _registered(crm, openid, "收费处多收了一次检查费")
    status = (await stack.converse(openid, "我之前投诉的事情处理得怎么样了"))[-1]
    due = case.due_on
    assert case.case_number in status and "已登记，等待分派" in status, status
    assert f"预计{due.month}月{due.day}日前答复" in status

    asking = (await stack.converse(openid, "我想补充一下投诉的内容"))[-1]
    assert case.case_number in asking and "照片" in asking, asking
    await _send_image(stack, openid, "http://mmbiz.example/receipt.jpg")
    added = (await stack.converse(openid, "这是两次扣费的收据，就这些"))[-1]
    assert f"和1张图片加到{case.case_number}" in added, added
    entries = [entry for entry in await _timeline(crm, case.id) if entry.kind == TimelineKind.patient_added]
    assert [entry.text for entry in entries] == ["这是两次扣费的收据，就这些", None]
    assert entries[1].data and entries[1].data["url"] == "http://mmbiz.example/receipt.jpg"
    async with crm.db.sessions() as session:
        image = await session.get(Message, entries[1].data["message_id"])
        assert image is not None and image.msg_type == "image"


async def _record_answer(crm: Runtime, case: Complaint, answer: str) -> int:
    """The office's answer recorded on the case (state answered) as the console records it; the
    admin's staff id."""
    async with crm.db.sessions() as session:
        row = await session.get(Complaint, case.id)
        staff_id = await session.scalar(select(Staff.id).where(Staff.username == ADMIN_USERNAME))
        assert row is not None and staff_id is not None
        await transition(session, row, CaseStatus.answered, ADMIN_USERNAME, staff_id=staff_id)
        row.answer = answer
        await session.commit()
        return staff_id


async def _answered(stack: Stack, crm: Runtime, openid: str) -> Complaint:
    """A registered case answered by the office as the console answers it (the answer sent in the
    chat, then the outcome dialogue started); returns once the patient was asked whether they accept."""
    case = await _registered(crm, openid, "护工对我奶奶说话很粗鲁")
    answer = "经核实，已对该护工进行批评教育并调整岗位。"
    staff_id = await _record_answer(crm, case, answer)
    before = len(stack.wechat.texts(openid))
    delivery = await write_to_patient(
        crm, case.id, answer, staff_id=staff_id, actor=ADMIN_USERNAME, answer=True
    )
    assert delivery == "chat"
    texts = (await stack.wait_answers(openid, before + 3))[before:]
    assert any(answer in text and case.case_number in text for text in texts), texts
    assert any(f"编号 {case.case_number}）" in text and "已经给您答复" in text for text in texts), texts
    assert "是否接受这个处理结果" in texts[-1], texts
    return case


async def _outcome_turn_answered(crm: Runtime, case_number: str, timeout: float = 40) -> list[Message]:
    """The outcome dialogue's turn is processed and none of its answers is still being sent: they
    went out (sent) or wait their turn (pending). Returns them."""
    key = f"dialogue:complaints:outcome:{case_number}:0"
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        async with crm.db.sessions() as session:
            turn = await session.scalar(select(InboundMessage).where(InboundMessage.dedupe_key == key))
            if turn is not None and turn.status == InboundStatus.PROCESSED:
                rows = list(
                    await session.scalars(select(Message).where(Message.reply_to_inbound_id == turn.id))
                )
                if rows and all(row.delivery_status != DeliveryStatus.SENDING for row in rows):
                    return rows
        assert asyncio.get_running_loop().time() < deadline, (
            f"the outcome dialogue of {case_number} did not run"
        )
        await asyncio.sleep(0.1)


async def test_the_answer_reaches_the_patient_before_the_question_about_it(
    stack: Stack, crm: Runtime
) -> None:
    """The outbox is slow to send the answer (another delivery holds the chat, as the outbound
    consumer does while it retries WeChat); the outcome dialogue runs meanwhile, and its question
    waits behind the answer instead of overtaking it."""
    openid = await stack.consented_patient()
    case = await _registered(crm, openid, "收费处态度很差，还多收了钱")
    answer = "经核实，多收的费用已原路退回，并对收费员进行了批评教育。"
    staff_id = await _record_answer(crm, case, answer)
    before = len(await asyncio.to_thread(stack.wechat.texts, openid))
    lock = crm.redis.lock(crm.settings.key("lock", "deliver", case.conversation_id), timeout=60)
    assert await lock.acquire()
    try:
        delivery = await write_to_patient(
            crm, case.id, answer, staff_id=staff_id, actor=ADMIN_USERNAME, answer=True
        )
        assert delivery == "chat"
        await _outcome_turn_answered(crm, case.case_number)
    finally:
        await lock.release()
    texts = (await stack.wait_answers(openid, before + 3))[before:]
    answer_at = next(i for i, text in enumerate(texts) if answer in text)
    question_at = next(i for i, text in enumerate(texts) if "是否接受这个处理结果" in text)
    assert answer_at < question_at, texts


async def _case(crm: Runtime, case_id: int) -> Complaint:
    async with crm.db.sessions() as session:
        row = await session.get(Complaint, case_id)
        assert row is not None
        return row


async def test_the_patient_accepts_the_outcome_and_rates_it(stack: Stack, crm: Runtime) -> None:
    openid = await stack.consented_patient()
    case = await _answered(stack, crm, openid)
    assert "1 到 5" in (await stack.converse(openid, "可以，接受"))[-1]
    closing = (await stack.converse(openid, "5分"))[-1]
    assert "就此办结" in closing, closing
    row = await _case(crm, case.id)
    assert (row.status, row.accepted, row.satisfaction) == ("closed", True, 5)


async def test_a_patient_who_does_not_accept_the_outcome_reopens_the_case(stack: Stack, crm: Runtime) -> None:
    openid = await stack.consented_patient()
    case = await _answered(stack, crm, openid)
    assert "1 到 5" in (await stack.converse(openid, "不太满意，不接受"))[-1]
    assert "1 到 5" in (await stack.converse(openid, "说不好"))[-1]  # unclear: asked again
    closing = (await stack.converse(openid, "2"))[-1]
    assert "已重新打开" in closing, closing
    row = await _case(crm, case.id)
    assert (row.status, row.accepted, row.satisfaction, row.reopen_count) == ("reopened", False, 2, 1)
