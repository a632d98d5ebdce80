"""What the mobile questionnaire page (H5) shows and records, one question at a time.

The page opened from a template message's link answers one check-in. The server decides every step:
which question comes next (scoring.next_question, so a conditional question appears only when its
condition is met), whether an answer is allowed (answers.record_answer) and the outcome
(answers.complete_checkin, channel `page`). The browser only renders the question it is given and
posts what the patient chose; no rule lives in JavaScript. An emergency answer completes the check-in
at once (the 120 advice shows now, not after the remaining questions); a red answer is escalated
when it is recorded. Escalations go to the enrolment's team through the recipient's current
conversation, published after the commit.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_backend.conversations.events import EscalationRequested
from crm_backend.conversations.service import current_conversation
from crm_backend.followups import scoring
from crm_backend.followups.answers import (
    Checkin,
    CheckinClosed,
    answered_outcome,
    answers_of,
    complete_checkin,
    load_checkin,
    record_answer,
    urgent_escalation,
)
from crm_backend.followups.models import CheckinChannel, CheckinStatus, EnrolmentStatus, FollowupCheckin
from crm_backend.followups.plans import Flag, Question, QuestionType
from crm_backend.patients.models import WeChatIdentity
from crm_backend.runtime import Runtime

log = logging.getLogger(__name__)

CLOSED_TEXT = {
    CheckinStatus.answered: "本次随访已完成，感谢您的配合。",
    CheckinStatus.missed: "本次随访已超过填写时间，护士会电话联系您。如有不适，请及时就医。",
}
STOPPED_TEXT = "本次随访已结束，无需填写。如有不适，请在公众号里留言或及时就医。"
PAUSED_TEXT = "随访已暂停，暂时无需填写。如有不适，请在公众号里留言或及时就医。"


class ChoiceRead(BaseModel):
    code: str
    text: str


class QuestionRead(BaseModel):
    """One question as the page renders it: no flag rules or conditions (the server applies them)."""

    code: str
    text: str
    type: QuestionType
    unit: str
    minimum: float | None
    maximum: float | None
    choices: list[ChoiceRead]
    hint: str
    #: The answer given before (when the patient went back to correct it).
    value: Any = None

    @classmethod
    def of(cls, question: Question, value: Any = None) -> QuestionRead:
        numeric = question.type in (QuestionType.scale, QuestionType.number)
        return cls(
            code=question.code,
            text=question.text,
            type=question.type,
            unit=question.unit or ("分" if question.type == QuestionType.scale else ""),
            minimum=question.low if numeric else None,
            maximum=question.high if numeric else None,
            choices=[ChoiceRead(code=c.code, text=c.text) for c in question.choices],
            hint=hint_for(question),
            value=value,
        )


class OutcomeRead(BaseModel):
    flag: Flag
    text: str


class PageStateRead(BaseModel):
    """Everything the page shows at one step."""

    #: The patient's name masked ("张*"): the link may be forwarded or seen over a shoulder.
    patient: str
    plan: str
    #: "出院后第 3 天" / "术后第 3 天".
    day_label: str
    status: Literal["open", "answered", "closed"]
    question: QuestionRead | None = None
    #: The question before the current one, for "上一题"; None on the first.
    previous: str | None = None
    #: Questions answered so far (those that count).
    answered: int = 0
    outcome: OutcomeRead | None = None
    message: str = ""


#: A value as JSON brings it: a number, yes/no, a choice code or words, a list of choice codes.
AnswerValue = (
    StrictBool
    | StrictInt
    | Annotated[float, Field(strict=True, allow_inf_nan=False)]
    | Annotated[StrictStr, Field(max_length=1000)]
    | Annotated[list[Annotated[StrictStr, Field(max_length=40)]], Field(max_length=30)]
)


class AnswerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")
    value: AnswerValue


class AnswerNotAllowed(ValueError):
    """The answer was refused; `hint` says in Chinese what the question allows."""

    def __init__(self, hint: str, question: str) -> None:
        super().__init__(hint)
        self.hint = hint
        self.question = question


class PageClosed(LookupError):
    """The check-in can no longer be answered here; `state` is its closed page."""

    def __init__(self, state: PageStateRead) -> None:
        super().__init__(state.message)
        self.state = state


def mask_name(name: str | None) -> str:
    """The family name and one star per other character ("张三" → "张*", "欧阳娜娜" → "欧***")."""
    name = (name or "").strip()
    if not name:
        return "您"
    return name[0] + "*" * max(len(name) - 1, 1)


def hint_for(question: Question) -> str:
    """What to answer on the page or the nurse's form, by the question's type. (A plan's own `hint`
    is worded for chat re-asks, "请回复序号", so it is not used here; the range always is.)"""
    kind = question.type
    if kind == QuestionType.scale:
        return "请选择 0 到 10 之间的整数，0 表示不痛，10 表示最痛"
    if kind == QuestionType.number:
        unit = f"（单位：{question.unit}）" if question.unit else ""
        return f"请填写 {question.low:g} 到 {question.high:g} 之间的数字{unit}"
    if kind == QuestionType.yes_no:
        return "请选择“是”或“否”"
    if kind == QuestionType.single_choice:
        return "请选择一项"
    if kind == QuestionType.multiple_choice:
        return "请选择符合的各项；都没有请选“以上都没有”"
    return "请简单写一下您的情况"


def day_label(checkin: Checkin) -> str:
    anchor = "术后" if checkin.plan.anchor == "surgery" else "出院后"
    return f"{anchor}第 {checkin.row.day} 天"


def _heading(checkin: Checkin) -> dict[str, Any]:
    return {
        "patient": mask_name(checkin.patient.display_name),
        "plan": checkin.plan.name,
        "day_label": day_label(checkin),
    }


async def _closed_state(session: AsyncSession, checkin: Checkin) -> PageStateRead:
    row = checkin.row
    if row.status == CheckinStatus.answered:
        answers = await answers_of(session, row.id)
        flag, text = await answered_outcome(session, checkin)
        return PageStateRead(
            **_heading(checkin),
            status="answered",
            answered=len(scoring.relevant_answers(checkin.questionnaire, answers)),
            outcome=OutcomeRead(flag=flag, text=text),
            message=CLOSED_TEXT[CheckinStatus.answered],
        )
    if checkin.enrolment.status == EnrolmentStatus.paused:
        text = PAUSED_TEXT
    elif checkin.enrolment.status != EnrolmentStatus.active:
        text = STOPPED_TEXT
    else:
        text = CLOSED_TEXT.get(CheckinStatus(row.status), STOPPED_TEXT)
    return PageStateRead(**_heading(checkin), status="closed", message=text)


def _previous(checkin: Checkin, answers: scoring.Answers, before: str | None) -> str | None:
    """The last question that counts before `before` (or before the end)."""
    kept = scoring.relevant_answers(checkin.questionnaire, answers)
    codes = [q.code for q in checkin.questionnaire.questions if q.code in kept]
    if before is not None and before in codes:
        codes = codes[: codes.index(before)]
    return codes[-1] if codes else None


async def state(session: AsyncSession, checkin_id: int, *, ask: str | None = None) -> PageStateRead:
    """The page at this moment: the next question, or (`ask`) an earlier one to correct, or the
    closed page. CheckinClosed when there is no such check-in."""
    checkin = await load_checkin(session, checkin_id, open_only=False)
    if not checkin.is_open:
        return await _closed_state(session, checkin)
    answers = await answers_of(session, checkin_id)
    questionnaire = checkin.questionnaire
    question = None
    if ask is not None:
        try:
            question = questionnaire.question(ask)
        except KeyError:
            question = None
        # Only a question already answered and still asked may be gone back to.
        if question is not None and (
            question.code not in answers or not scoring.is_enabled(question, answers)
        ):
            question = None
    if question is None:
        question = scoring.next_question(questionnaire, answers)
    if question is None:
        # Every answer is in but the check-in is still open (answered in chat, not yet completed):
        # the last one is shown again, and sending it completes the check-in.
        last = _previous(checkin, answers, None)
        if last is None:  # a questionnaire without an askable question: cannot happen with a valid plan
            return await _closed_state(session, checkin)
        question = questionnaire.question(last)
    return PageStateRead(
        **_heading(checkin),
        status="open",
        question=QuestionRead.of(question, answers.get(question.code)),
        previous=_previous(checkin, answers, question.code),
        answered=len(scoring.relevant_answers(questionnaire, answers)),
    )


async def lock_checkin(session: AsyncSession, checkin_id: int) -> None:
    """Hold the check-in for this transaction, so two taps on the last answer (or a tap and a
    nurse's call) complete it once: an UPDATE that changes nothing locks the row on PostgreSQL and
    takes SQLite's write lock, before anything is read (as the audit chain's head does)."""
    await session.execute(
        update(FollowupCheckin).where(FollowupCheckin.id == checkin_id).values(id=FollowupCheckin.id)
    )


async def _conversation_for(session: AsyncSession, checkin: Checkin, now: datetime) -> int | None:
    """The recipient's current conversation, which the escalation opens in the console; None when the
    check-in names nobody (it still waits on the team's flagged list)."""
    if checkin.row.identity_id is None:
        return None
    identity = await session.get(WeChatIdentity, checkin.row.identity_id)
    if identity is None:
        return None
    return (await current_conversation(session, identity, now)).id


async def submit(runtime: Runtime, checkin_id: int, body: AnswerIn) -> PageStateRead:
    """Record one answer from the page; complete the check-in after its last question or at an
    emergency answer; a red answer is escalated when it is recorded.

    AnswerNotAllowed (nothing stored) for a value or question the check-in does not allow;
    PageClosed when it can no longer be answered; CheckinClosed when it does not exist.
    """
    now = runtime.clock()
    escalation: EscalationRequested | None = None
    async with runtime.db.sessions() as session:
        await lock_checkin(session, checkin_id)
        checkin = await load_checkin(session, checkin_id, open_only=False)
        if not checkin.is_open:
            raise PageClosed(await _closed_state(session, checkin))
        questionnaire = checkin.questionnaire
        answers = await answers_of(session, checkin_id)
        try:
            question = questionnaire.question(body.question)
        except KeyError:
            raise AnswerNotAllowed("这个问题不在本次随访中，请刷新页面", body.question) from None
        if not scoring.is_enabled(question, answers):
            raise AnswerNotAllowed("这个问题暂时不需要回答，请刷新页面", body.question)
        try:
            recorded = await record_answer(
                session,
                checkin,
                question.code,
                body.value,
                channel=CheckinChannel.page,
                text=body.value if isinstance(body.value, str) else "",
                identity_id=checkin.row.identity_id,
                now=now,
            )
        except scoring.AnswerRefused:
            await session.rollback()
            raise AnswerNotAllowed(hint_for(question), question.code) from None
        answers = await answers_of(session, checkin_id)
        conversation_id = (
            await _conversation_for(session, checkin, now) if recorded.flag.rank >= Flag.red.rank else None
        )
        # An emergency ends the check-in at once (120 on the page now), as in chat; otherwise the
        # last answer does.
        if recorded.finding.flag == Flag.emergency or scoring.next_question(questionnaire, answers) is None:
            outcome = await complete_checkin(
                session,
                checkin,
                channel=CheckinChannel.page,
                now=now,
                conversation_id=conversation_id,
                escalated=recorded.before,
            )
            escalation = outcome.escalation
            log.info("follow-up check-in %s answered on the page: %s", checkin_id, outcome.flag.value)
        elif recorded.escalates and conversation_id is not None:
            # A red answer reaches the nurses now, even if the patient closes the page here.
            escalation = await urgent_escalation(session, checkin, answers, recorded.flag, conversation_id)
            log.info("follow-up check-in %s flagged %s on the page", checkin_id, recorded.flag.value)
        await session.commit()
        result = await state(session, checkin_id)
    if escalation is not None:
        try:
            await runtime.events.publish(escalation)
        except Exception:  # the flagged check-in waits on the team's flagged list
            log.exception(
                "follow-up check-in %s: escalation failed; it stays on the flagged list", checkin_id
            )
    return result


__all__ = ["AnswerIn", "AnswerNotAllowed", "CheckinClosed", "PageClosed", "PageStateRead", "state", "submit"]
