"""The bot API for check-ins: start one, answer its current question, postpone it, opt out; and
opting out with no check-in open (/internal/bot/followups/opt-out, opt_out.py).

Called by the action server (bot/dialogs/followup.py) under /internal/bot/followups/checkins/{id}/.
The questions come from the check-in's plan version, one at a time, so the Rasa form asks whatever
the plan says without knowing it. Each answer is read by understanding.py, recorded by
answers.record_answer (the same scoring as the mobile page and a nurse's call) and, after the last
question or at an emergency answer, the check-in is completed by answers.complete_checkin. Every
answer is a `CheckinTurn`: what the bot says, the question to ask next (or none), and an escalation
for the bot's {"escalate": ...} instruction (red and emergency: urgent, to the enrolment's team).

Only the patient's own WeChat identity or one that manages the patient (就诊人) may touch a
check-in: any other sender gets 404. A check-in that is no longer open answers `closed`.
"""

from __future__ import annotations

import enum
import logging
import re
from datetime import date, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Request, status
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_backend.audit.service import record as audit
from crm_backend.config import HOSPITAL_TZ, parse_hhmm
from crm_backend.conversations.models import Conversation
from crm_backend.database.core import RowId
from crm_backend.followups import opt_out as opting_out
from crm_backend.followups import scoring
from crm_backend.followups.answers import (
    Checkin,
    CheckinClosed,
    answer_label,
    answers_of,
    complete_checkin,
    load_checkin,
    record_answer,
    stored_flag,
)
from crm_backend.followups.care_answers import answer_for
from crm_backend.followups.enrolment import stop_enrolment, stop_for_checkin
from crm_backend.followups.models import (
    CheckinChannel,
    StopReason,
)
from crm_backend.followups.page import lock_checkin
from crm_backend.followups.plans import Flag, Question, QuestionType
from crm_backend.followups.understanding import (
    Digression,
    Reading,
    digression_of,
    is_question,
    read_answer,
    yes_or_no,
)
from crm_backend.patients.bot_access import BOT_API_PREFIX, BotToken, SenderIdentity
from crm_backend.patients.models import PatientLink, PatientRelation, WeChatIdentity
from crm_backend.staff.deps import DbSession, runtime_of
from crm_backend.staff.models import Team

log = logging.getLogger(__name__)

router = APIRouter(prefix=f"{BOT_API_PREFIX}/followups", tags=["bot"], dependencies=[BotToken])

#: "稍后再说" asks again this much later, the same day and before FOLLOWUP_SEND_UNTIL.
POSTPONE_BY = timedelta(hours=2)
#: A postponement keeps this far from the end of the send window.
POSTPONE_MARGIN = timedelta(minutes=30)
#: What the patient may have noted for the nurse (questions no care answer matched).
MAX_NOTES = 5
#: How long a turn is kept for the same message sent again (the bot's retry comes within seconds).
REPEATED_TURN_SECONDS = 600

CLOSED_TEXT = "这次随访已经结束了，感谢您的配合。如有不适，请及时就医；需要帮助时，回复“人工”联系工作人员。"
CONTINUE_TEXT = "好的，我们接着刚才的问题。"


class Step(enum.StrEnum):
    #: Ask `question` (the next one, or the same one again after a hint).
    ask = "ask"
    #: The check-in is complete: `messages` hold the summary and the advice; maybe `escalate`.
    finished = "finished"
    #: "稍后再说": asked again later today.
    postponed = "postponed"
    #: The patient asked to stop: ask them to confirm (then call /opt-out).
    confirm_opt_out = "confirm_opt_out"
    #: Follow-up stopped at the patient's request.
    stopped = "stopped"
    #: The patient asked for a person: the bot hands over (its existing handoff).
    handoff = "handoff"
    #: Not open any more (answered, missed, stopped).
    closed = "closed"


class QuestionRead(BaseModel):
    code: str
    type: QuestionType
    #: What the patient reads: the question, with numbered choices.
    text: str


class EscalationRead(BaseModel):
    """The bot's {"escalate": {...}} instruction (conversations/processing.py turns it into one)."""

    reason: str
    priority: str
    team: str


class CheckinTurn(BaseModel):
    step: Step
    #: What the bot says first, in order (greeting, hint, care answer, summary, advice).
    messages: list[str] = Field(default_factory=list)
    question: QuestionRead | None = None
    #: The worst flag, once finished.
    flag: Flag | None = None
    escalate: EscalationRead | None = None
    #: A question the patient asked that no care answer matched (for the nurse, at the end).
    noted: str | None = None


Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)]
Note = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
MessageId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]


class AnswerBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: Text
    #: Questions noted for the nurse earlier in this check-in (the bot keeps them in a slot).
    noted: list[Note] = Field(default_factory=list, max_length=MAX_NOTES)
    #: Rasa's id of the patient's message: the same message sent again (its answer was lost on the
    #: way back to the bot) gets the same turn instead of being read as the next answer.
    message: MessageId | None = None


class OptOutBody(BaseModel):
    """The patient's reply to "您确定…吗？": `text` as they wrote it, or `confirmed` when known."""

    model_config = ConfigDict(extra="forbid")

    confirmed: bool | None = None
    text: Text | None = None


# -- who may answer --------------------------------------------------------------------------


async def _relationship(session: AsyncSession, identity: WeChatIdentity, patient_id: int) -> PatientRelation:
    """How the sender stands to the check-in's patient; 404 when it does not manage them."""
    link = await session.get(PatientLink, (identity.id, patient_id))
    if identity.patient_id == patient_id:
        return PatientRelation.SELF
    if link is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "not one of this account's check-ins")
    return PatientRelation(link.relationship)


async def _checkin_for(session: AsyncSession, identity: WeChatIdentity, checkin_id: int) -> Checkin:
    """The sender's check-in, open or not (404 when it does not exist or is someone else's)."""
    try:
        checkin = await load_checkin(session, checkin_id, open_only=False)
    except CheckinClosed as error:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such check-in") from error
    await _relationship(session, identity, checkin.enrolment.patient_id)
    return checkin


def _closed() -> CheckinTurn:
    return CheckinTurn(step=Step.closed, messages=[CLOSED_TEXT])


# -- wording ---------------------------------------------------------------------------------


def question_read(question: Question) -> QuestionRead:
    lines = [question.text]
    if question.choices:
        lines += [f"{number}. {choice.text}" for number, choice in enumerate(question.choices, start=1)]
    return QuestionRead(code=question.code, type=question.type, text="\n".join(lines))


def _patient_words(checkin: Checkin, relation: PatientRelation) -> str:
    """ "您" for the patient; "您的家人张三" for a family member who manages them."""
    if relation == PatientRelation.SELF:
        return "您"
    return f"您的家人{checkin.patient.display_name or ''}"


def reminded(checkin: Checkin) -> bool:
    """The dispatcher's reminder went out since the check-in started: its dialogue is taken up
    again (dispatch._remind), so the greeting says the check-in is still waiting."""
    row = checkin.row
    return row.reminded_at is not None and (row.started_at is None or row.reminded_at >= row.started_at)


def greeting(checkin: Checkin, relation: PatientRelation, hospital: str) -> str:
    who = _patient_words(checkin, relation)
    since = "术后" if checkin.plan.anchor == "surgery" else "出院"
    day = checkin.row.day
    when = f"（{checkin.plan.name}，{since}第 {day} 天）" if day else f"（{checkin.plan.name}）"
    whose = "根据" if relation == PatientRelation.SELF else f"您根据{checkin.patient.display_name or '家人'}"
    if reminded(checkin):
        return (
            f"【随访提醒】您好，这里是{hospital}随访服务。{who}术后的随访{when}还没有完成，"
            f"请{whose}今天的情况接着回答；现在不方便的话，回复“稍后再说”。"
        )
    return (
        f"您好，这里是{hospital}随访服务，想了解一下{who}术后的恢复情况{when}。"
        f"请{whose}今天的情况回答几个问题，大约需要 2 分钟；现在不方便的话，回复“稍后再说”。"
    )


def _summary_line(question: Question, value: object) -> str:
    """answers.answer_label with the question cut to its first sentence, to read on a phone."""
    shown = answer_label(question, value)[len(question.text.rstrip("？?")) + 1 :]
    return f"{re.split(r'[？?。；]', question.text)[0]}：{shown}"


def _summary(checkin: Checkin, answers: scoring.Answers) -> str:
    kept = scoring.relevant_answers(checkin.questionnaire, answers)
    lines = [_summary_line(checkin.questionnaire.question(code), value) for code, value in kept.items()]
    return "您本次的回答：\n" + "\n".join(f"· {line}" for line in lines)


# -- the steps -------------------------------------------------------------------------------


async def _conversation_id(session: AsyncSession, identity: WeChatIdentity) -> int:
    found = await session.scalar(
        select(Conversation.id)
        .where(Conversation.identity_id == identity.id)
        .order_by(Conversation.id.desc())
    )
    return found or 0


async def _next_turn(session: AsyncSession, checkin: Checkin, messages: list[str]) -> CheckinTurn | None:
    answers = await answers_of(session, checkin.row.id)
    question = scoring.next_question(checkin.questionnaire, answers)
    if question is None:
        return None
    return CheckinTurn(step=Step.ask, messages=messages, question=question_read(question))


async def _finish(
    session: AsyncSession,
    checkin: Checkin,
    identity: WeChatIdentity,
    notes: list[str],
    messages: list[str],
    now: datetime,
    escalated: Flag | None = None,
) -> CheckinTurn:
    """Complete the check-in: summary and advice by the worst flag; red and emergency escalate at
    once (urgent, the enrolment's team) unless nurses were told already (`escalated`: the flag
    before the answer just recorded; by default the check-in's stored one); questions no care
    answer matched go to the nurse too."""
    conversation_id = await _conversation_id(session, identity)
    try:
        outcome = await complete_checkin(
            session,
            checkin,
            channel=CheckinChannel.chat,
            now=now,
            conversation_id=conversation_id,
            escalated=stored_flag(checkin.row) if escalated is None else escalated,
        )
    except CheckinClosed:  # finished on the page (or stopped) a moment ago: its outcome stands
        await session.rollback()
        return _closed()
    answers = await answers_of(session, checkin.row.id)
    flag = outcome.flag
    text = outcome.text
    escalate = None
    if outcome.escalation is not None:
        reason = outcome.escalation.reason
        if notes:
            reason = f"{reason}；患者提问：{'；'.join(notes)}"
        escalate = EscalationRead(reason=reason[:255], priority="urgent", team=outcome.escalation.team)
    elif notes:
        # Nobody answered the patient's question yet: a nurse does, within the amber time at most.
        if flag == Flag.green:
            flag = Flag.amber
            checkin.row.worst_flag = flag.value
            text = f"{text}\n您刚才的问题我们已经转给护士，护士会尽快在这里或电话回复您。"
        team = await session.get(Team, checkin.enrolment.team_id)
        escalate = EscalationRead(
            reason=f"随访 {checkin.plan.name} 第{checkin.row.day}天 患者提问：{'；'.join(notes)}"[:255],
            priority="normal",
            team=team.name if team is not None else "nursing",
        )
    if flag == Flag.emergency:
        shown = [*messages, text]  # 120 first: no summary before it
    else:
        shown = [*messages, _summary(checkin, answers), text]
    await session.commit()
    log.info("check-in %s answered in chat: %s", checkin.row.id, flag.value)
    return CheckinTurn(step=Step.finished, messages=shown, flag=flag, escalate=escalate)


def _local_time(day: date, hhmm: str) -> datetime:
    return datetime.combine(day, parse_hhmm(hhmm), tzinfo=HOSPITAL_TZ)


def postpone_until(now: datetime, send_from: str, send_until: str) -> datetime:
    """Two hours later the same day, at the latest 30 minutes before the send window closes; when
    the day is nearly over (or it is night), an hour after the window opens on the next morning."""
    local = now.astimezone(HOSPITAL_TZ)
    wanted = min(local + POSTPONE_BY, _local_time(local.date(), send_until) - POSTPONE_MARGIN)
    if wanted > local + timedelta(minutes=10) and wanted >= _local_time(local.date(), send_from):
        return wanted
    morning = (
        local.date() if local < _local_time(local.date(), send_from) else local.date() + timedelta(days=1)
    )
    return _local_time(morning, send_from) + timedelta(hours=1)


@router.post("/checkins/{checkin_id}/start")
async def start(
    checkin_id: RowId, request: Request, session: DbSession, identity: SenderIdentity
) -> CheckinTurn:
    """The greeting and the first question not answered yet (a postponed check-in resumes). A check-in
    closed before its dialogue began (stopped, answered on the page) starts silently: the patient
    asked nothing, and after a stop (deceased, opted out) nothing more may reach them."""
    checkin = await _checkin_for(session, identity, checkin_id)
    if not checkin.is_open:
        return CheckinTurn(step=Step.closed, messages=[])
    relation = await _relationship(session, identity, checkin.enrolment.patient_id)
    hospital = runtime_of(request).settings.hospital_name
    turn = await _next_turn(session, checkin, [greeting(checkin, relation, hospital)])
    if turn is None:  # every question answered (a page or a crash in between): close it now
        return await _finish(session, checkin, identity, [], [], runtime_of(request).clock())
    return turn


@router.post("/checkins/{checkin_id}/answer")
async def answer(
    checkin_id: RowId, body: AnswerBody, request: Request, session: DbSession, identity: SenderIdentity
) -> CheckinTurn:
    """One message of the patient's while a question is asked. The check-in is held for the turn
    (page.lock_checkin), as the page holds it: an answer to the same question from both waits.
    The same message (by Rasa's id) sent again gets the turn the first one got, once that one is
    done: the bot asks again when the answer to its first call was lost, and the advice and
    escalation of a check-in the first call completed must not turn into `closed`."""
    await lock_checkin(session, checkin_id)
    if body.message is None:
        return await _answer(
            await _checkin_for(session, identity, checkin_id), body, request, session, identity
        )
    runtime = runtime_of(request)
    seen = runtime.settings.key("followup", "turn", checkin_id, body.message)
    # Read under the lock: a first call still at work has committed when the second reads.
    async with runtime.redis.lock(
        runtime.settings.key("lock", "followup-answer", checkin_id), timeout=30, blocking_timeout=10
    ):
        checkin = await _checkin_for(session, identity, checkin_id)
        if (earlier := await runtime.redis.get(seen)) is not None:
            log.info("check-in %s: message %s again, its turn repeated", checkin_id, body.message)
            return CheckinTurn.model_validate_json(earlier)
        turn = await _answer(checkin, body, request, session, identity)
        await runtime.redis.set(seen, turn.model_dump_json(), ex=REPEATED_TURN_SECONDS)
    return turn


async def _answer(
    checkin: Checkin, body: AnswerBody, request: Request, session: AsyncSession, identity: WeChatIdentity
) -> CheckinTurn:
    if not checkin.is_open:
        return _closed()
    digression = digression_of(body.text)
    if digression == Digression.handoff:
        return CheckinTurn(step=Step.handoff)
    if digression == Digression.opt_out:
        relation = await _relationship(session, identity, checkin.enrolment.patient_id)
        whose = "" if relation == PatientRelation.SELF else f"关于{checkin.patient.display_name or '家人'}的"
        return CheckinTurn(
            step=Step.confirm_opt_out,
            messages=[
                f"您是想以后不再接收{whose}术后随访消息吗？停止后我们不会再发随访问题。\n"
                "回复“确定”停止随访；回复“继续”，我们接着回答刚才的问题。"
            ],
        )
    if digression == Digression.postpone:
        return await _postpone(session, checkin, request)
    now = runtime_of(request).clock()
    answers = await answers_of(session, checkin.row.id)
    question = scoring.next_question(checkin.questionnaire, answers)
    if question is None:
        return await _finish(session, checkin, identity, body.noted, [], now)
    understood = read_answer(question, body.text)
    if understood.reading is not Reading.answer:
        return _not_an_answer(question, body.text, understood.hint)
    recorded = await record_answer(
        session,
        checkin,
        question.code,
        understood.value,
        channel=CheckinChannel.chat,
        text=body.text,
        identity_id=identity.id,
        now=now,
    )
    notes, said = list(body.noted), []
    if question.type == QuestionType.free_text and is_question(body.text):
        # "还有什么想问的吗？" answered with a question: answered now, or by the nurse.
        found = answer_for(body.text)
        if found is not None:
            said.append(care_text(found.answer))
        else:
            notes.append(body.text[:200])
    if recorded.finding.flag.rank >= Flag.red.rank:
        # What to do now and the nurse told now: the escalation hands the chat to the team, whose
        # nurse asks the rest (an emergency: 120 first, no more questions).
        return await _finish(session, checkin, identity, notes, said, now, recorded.before)
    turn = await _next_turn(session, checkin, said)
    if turn is None:
        return await _finish(session, checkin, identity, notes, said, now, recorded.before)
    await session.commit()
    return turn


def care_text(answer: str) -> str:
    """A care answer as the patient reads it: general advice, the discharge instructions first."""
    return answer if "医嘱" in answer else f"{answer}\n（以上为一般建议，请以您的出院医嘱为准。）"


def _not_an_answer(question: Question, text: str, hint: str) -> CheckinTurn:
    """A question of the patient's own gets its answer (or goes to the nurse); anything else the hint.
    The same question is asked again either way."""
    if question.type != QuestionType.free_text and is_question(text):
        found = answer_for(text)
        if found is not None:
            messages = [f"{care_text(found.answer)}\n\n{CONTINUE_TEXT}"]
            return CheckinTurn(step=Step.ask, messages=messages, question=question_read(question))
        return CheckinTurn(
            step=Step.ask,
            messages=[f"这个问题我先记下来，随访结束后转给护士回复您。{CONTINUE_TEXT}"],
            question=question_read(question),
            noted=text[:200],
        )
    return CheckinTurn(step=Step.ask, messages=[hint], question=question_read(question))


async def _postpone(session: AsyncSession, checkin: Checkin, request: Request) -> CheckinTurn:
    runtime = runtime_of(request)
    now, settings = runtime.clock(), runtime.settings
    until = postpone_until(now, settings.followup_send_from, settings.followup_send_until)
    if until >= checkin.row.window_ends_at:
        return CheckinTurn(
            step=Step.postponed,
            messages=["好的，不打扰您了。如果有明显不舒服，请及时就医，或回复“人工”联系工作人员。"],
        )
    checkin.row.postponed_until = until
    await session.commit()
    local = until.astimezone(HOSPITAL_TZ)
    day = "今天" if local.date() == now.astimezone(HOSPITAL_TZ).date() else "明天"
    return CheckinTurn(
        step=Step.postponed,
        messages=[
            f"好的，不打扰您了。{day} {local:%H:%M} 左右我再来问您；"
            "如果这期间有明显不舒服，请及时就医或回复“人工”。"
        ],
    )


@router.post("/checkins/{checkin_id}/postpone")
async def postpone(
    checkin_id: RowId, request: Request, session: DbSession, identity: SenderIdentity
) -> CheckinTurn:
    """ "稍后再说": asked again later today (the dispatcher starts it again at `postponed_until`)."""
    checkin = await _checkin_for(session, identity, checkin_id)
    if not checkin.is_open:
        return _closed()
    return await _postpone(session, checkin, request)


@router.post("/checkins/{checkin_id}/opt-out")
async def opt_out(
    checkin_id: RowId, body: OptOutBody, request: Request, session: DbSession, identity: SenderIdentity
) -> CheckinTurn:
    """The confirmation of "不想再收到随访": stop the enrolment (opted out, audited), or carry on.
    A yes stops the enrolment while it still runs, even if the check-in closed meanwhile (answered
    on the page, missed): the patient asked to hear no more, not about this check-in only."""
    checkin = await _checkin_for(session, identity, checkin_id)
    confirmed = body.confirmed if body.confirmed is not None else yes_or_no(body.text or "")
    if not checkin.is_open and not (confirmed and checkin.enrolment.status in opting_out.RUNNING):
        return _closed()
    if confirmed is None:
        return CheckinTurn(
            step=Step.confirm_opt_out, messages=["请回复“确定”停止随访，或回复“继续”接着回答刚才的问题。"]
        )
    if not confirmed:
        turn = await _next_turn(session, checkin, [CONTINUE_TEXT])
        return turn or await _finish(session, checkin, identity, [], [], runtime_of(request).clock())
    relation = await _relationship(session, identity, checkin.enrolment.patient_id)
    who = "本人" if relation == PatientRelation.SELF else "家属"
    await stop_for_checkin(
        session,
        checkin.row.id,
        StopReason.opted_out,
        note=f"患者在随访对话中要求停止（{who}确认）",
        now=runtime_of(request).clock(),
    )
    await audit(
        session,
        staff_id=None,
        action="followup.opted_out",
        object_type="followup_enrolment",
        object_id=checkin.enrolment.id,
        patient_id=checkin.enrolment.patient_id,
        request=request,
        detail={"checkin_id": checkin.row.id, "identity_id": identity.id, "relationship": relation.value},
    )
    await session.commit()
    whose = "" if relation == PatientRelation.SELF else f"{checkin.patient.display_name or '家人'}的"
    return CheckinTurn(
        step=Step.stopped,
        messages=[
            f"好的，已为您停止{whose}术后随访，之后不会再发送随访消息。"
            "如有不适，请及时就医；需要帮助时，随时回复“人工”联系工作人员。"
        ],
    )


# -- 不想再收到随访 with no check-in open ------------------------------------------------------------

NOTHING_RUNNING_TEXT = (
    "目前没有正在进行的术后随访，我们不会给您发送随访问题。如有不适，请及时就医；"
    "需要帮助时，回复“人工”联系工作人员。"
)
KEPT_TEXT = "好的，随访保持不变，我们会按计划继续关心您的恢复情况。"
ASK_AGAIN_TEXT = "抱歉，我没有看明白。"
ENDED_TEXT = "这项随访已经结束了，不会再发送随访问题。"
#: At most this many enrolments named in one confirmation (a family rarely manages more).
MAX_OPT_OUT_ENROLMENTS = 20


class OptOutStep(enum.StrEnum):
    #: No active or paused enrolment: nothing to stop.
    none = "none"
    #: Ask `question`: stop the enrolments named in `enrolments`?
    confirm = "confirm"
    #: Stopped (opted out, audited).
    stopped = "stopped"
    #: Cancelled, or unclear twice: nothing changed.
    kept = "kept"
    #: The patient asked for a person instead: the bot hands over (nothing changed).
    handoff = "handoff"


class OptOutTurn(BaseModel):
    step: OptOutStep
    messages: list[str] = Field(default_factory=list)
    #: The confirmation to ask, while `step` is confirm.
    question: str | None = None
    #: The enrolments the question names, in its order (the bot sends them back with the reply).
    enrolments: list[int] = Field(default_factory=list)


class OptOutReplyBody(BaseModel):
    """The patient's reply to the confirmation, with the enrolments it named."""

    model_config = ConfigDict(extra="forbid")

    text: Text
    enrolments: list[RowId] = Field(min_length=1, max_length=MAX_OPT_OUT_ENROLMENTS)
    #: The question was already asked again once: an unclear reply now keeps everything.
    asked_again: bool = False


def _confirm(running: list[opting_out.Running], said: list[str]) -> OptOutTurn:
    return OptOutTurn(
        step=OptOutStep.confirm,
        messages=said,
        question=opting_out.confirm_text(running),
        enrolments=[item.enrolment_id for item in running],
    )


@router.post("/opt-out")
async def opt_out_request(session: DbSession, identity: SenderIdentity) -> OptOutTurn:
    """ "不想再收到随访" outside a check-in: whose running follow-ups would stop, to confirm."""
    running = await opting_out.running_for(session, identity)
    if not running:
        return OptOutTurn(step=OptOutStep.none, messages=[NOTHING_RUNNING_TEXT])
    return _confirm(running, [])


@router.post("/opt-out/confirm")
async def opt_out_reply(
    body: OptOutReplyBody, request: Request, session: DbSession, identity: SenderIdentity
) -> OptOutTurn:
    """The reply, read like the check-in's confirmation (understanding.yes_or_no; a number picks one
    of several): yes stops each named enrolment still running (opted out, audited); no keeps them;
    unclear asks once more, then keeps them; "人工" hands over."""
    if not await opting_out.belongs_to(session, identity, body.enrolments):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "not one of this account's follow-ups")
    running = await opting_out.running_for(session, identity, body.enrolments)
    running.sort(key=lambda item: body.enrolments.index(item.enrolment_id))
    if not running:
        return OptOutTurn(step=OptOutStep.none, messages=[ENDED_TEXT])
    if digression_of(body.text) == Digression.handoff:
        return OptOutTurn(step=OptOutStep.handoff)
    # A number counts in the list the patient was shown (`enrolments`, in its order), not in what
    # still runs now: one that ended meanwhile must not shift "2" onto someone else's follow-up.
    shown = len(body.enrolments)
    number = opting_out.chosen_number(body.text, shown) if shown > 1 else None
    if number is not None:
        picked = [item for item in running if item.enrolment_id == body.enrolments[number - 1]]
        if not picked:
            return OptOutTurn(step=OptOutStep.none, messages=[ENDED_TEXT])
        running = picked
    confirmed = True if number is not None else yes_or_no(body.text)
    if confirmed is None:
        if body.asked_again:
            return OptOutTurn(step=OptOutStep.kept, messages=[f"没有收到明确的答复，{KEPT_TEXT}"])
        return _confirm(running, [ASK_AGAIN_TEXT])
    if not confirmed:
        return OptOutTurn(step=OptOutStep.kept, messages=[KEPT_TEXT])
    chosen = running
    now = runtime_of(request).clock()
    for item in chosen:
        who = "本人" if item.relation == PatientRelation.SELF else "家属"
        await stop_enrolment(
            session,
            item.enrolment_id,
            StopReason.opted_out,
            note=f"患者在随访对话外要求停止（{who}确认）",
            now=now,
        )
        await audit(
            session,
            staff_id=None,
            action="followup.opted_out",
            object_type="followup_enrolment",
            object_id=item.enrolment_id,
            patient_id=item.patient_id,
            request=request,
            detail={"checkin_id": None, "identity_id": identity.id, "relationship": item.relation.value},
        )
    await session.commit()
    log.info("enrolments %s opted out by identity %s", [i.enrolment_id for i in chosen], identity.id)
    return OptOutTurn(step=OptOutStep.stopped, messages=[opting_out.stopped_text(chosen)])
