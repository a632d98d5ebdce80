"""Recording a check-in's answers and its outcome, the same for chat, the mobile page and a nurse's call.

Each answer is checked against its question (scoring.check_value) and stored with the flag it
raised; a corrected answer replaces the earlier one. Completing a check-in stores its worst flag and
returns what the patient is told and whether nurses must act: amber waits on the team's flagged
list (contact within 24 hours), red and emergency are escalated to the enrolment's team at once,
priority urgent, with the worrying answers in the escalation's reason. The caller commits and then
publishes `escalation` (an event after the commit, so staff never see a check-in that rolled back).

A check-in keeps its worst flag so far while it is open (`record_answer` stores it with every
answer), so a worrying answer counts even when the rest are never given: it stands on the team's
flagged list at once, and a missed check-in keeps it. An answer that raises the check-in to red or
emergency is escalated when it is recorded (`Recorded.escalates`), not only at the end.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_backend.config import HOSPITAL_TZ
from crm_backend.conversations.events import EscalationRequested
from crm_backend.followups import scoring
from crm_backend.followups.models import (
    CheckinChannel,
    CheckinStatus,
    EnrolmentStatus,
    FollowupAnswer,
    FollowupCheckin,
    FollowupEnrolment,
    FollowupPlanVersion,
)
from crm_backend.followups.plans import Flag, PlanDefinition, Question, Questionnaire, QuestionType
from crm_backend.patients.models import Patient
from crm_backend.staff.models import Team

#: Check-ins that may still be answered.
OPEN_STATUSES = frozenset({CheckinStatus.scheduled, CheckinStatus.claimed, CheckinStatus.started})
#: A nurse's call may also answer a missed check-in: the phone list exists for those.
PHONE_STATUSES = OPEN_STATUSES | {CheckinStatus.missed}


class CheckinClosed(LookupError):
    """The check-in does not exist, its enrolment stopped, or it was answered or missed already."""


@dataclass
class Checkin:
    """A check-in with what answering it needs: its plan version's questionnaire and the patient."""

    row: FollowupCheckin
    enrolment: FollowupEnrolment
    plan: PlanDefinition
    patient: Patient

    @property
    def questionnaire(self) -> Questionnaire:
        return self.plan.time_points[self.row.time_point].questionnaire

    @property
    def is_open(self) -> bool:
        """Open check-ins of an active enrolment. A pause stops new check-ins from starting, not the
        one the patient is answering: a started check-in of a paused enrolment carries on."""
        if self.enrolment.status == EnrolmentStatus.paused:
            return self.row.status == CheckinStatus.started
        return self.row.status in OPEN_STATUSES and self.enrolment.status == EnrolmentStatus.active

    def answerable_by(self, channel: CheckinChannel) -> bool:
        """Chat and the page answer open check-ins only. A nurse's call may also answer a missed
        one, and one whose enrolment paused or completed meanwhile (the missed check-in may have
        been its last), but never one whose enrolment stopped (deceased, opted out, readmitted)."""
        if channel != CheckinChannel.phone:
            return self.is_open
        return self.row.status in PHONE_STATUSES and self.enrolment.status != EnrolmentStatus.stopped


async def load_checkin(session: AsyncSession, checkin_id: int, *, open_only: bool = True) -> Checkin:
    row = await session.get(FollowupCheckin, checkin_id)
    if row is None:
        raise CheckinClosed(f"no check-in {checkin_id}")
    enrolment = await session.get(FollowupEnrolment, row.enrolment_id)
    version = await session.get(FollowupPlanVersion, enrolment.plan_version_id) if enrolment else None
    patient = await session.get(Patient, enrolment.patient_id) if enrolment else None
    if enrolment is None or version is None or patient is None:
        raise CheckinClosed(f"check-in {checkin_id} has no enrolment")
    checkin = Checkin(row, enrolment, PlanDefinition.model_validate(version.definition), patient)
    if open_only and not checkin.is_open:
        raise CheckinClosed(f"check-in {checkin_id} is {row.status} (enrolment {enrolment.status})")
    return checkin


async def answers_of(session: AsyncSession, checkin_id: int) -> scoring.Answers:
    rows = await session.scalars(
        select(FollowupAnswer).where(FollowupAnswer.checkin_id == checkin_id).order_by(FollowupAnswer.id)
    )
    return {row.question: row.value for row in rows}


@dataclass(frozen=True)
class Recorded:
    """One answer stored: the flag it raised, and the check-in's worst flag before and after it."""

    finding: scoring.Finding
    before: Flag
    flag: Flag

    @property
    def escalates(self) -> bool:
        """This answer raised the check-in to red or emergency: nurses must hear of it now."""
        return self.flag.rank >= Flag.red.rank and self.flag.rank > self.before.rank


def stored_flag(row: FollowupCheckin) -> Flag:
    return Flag(row.worst_flag) if row.worst_flag else Flag.green


async def record_answer(
    session: AsyncSession,
    checkin: Checkin,
    question_code: str,
    value: Any,
    *,
    channel: CheckinChannel,
    text: str = "",
    identity_id: int | None = None,
    staff_id: int | None = None,
    now: datetime,
) -> Recorded:
    """Store one answer (replacing an earlier one to the same question) and the check-in's worst
    flag so far; AnswerRefused if not allowed."""
    try:
        question = checkin.questionnaire.question(question_code)
    except KeyError as error:
        raise scoring.AnswerRefused(f"no question {question_code} in this check-in") from error
    value = scoring.check_value(question, value)
    finding = scoring.assess_answer(question, value)
    existing = await session.scalar(
        select(FollowupAnswer).where(
            FollowupAnswer.checkin_id == checkin.row.id, FollowupAnswer.question == question_code
        )
    )
    row = existing or FollowupAnswer(checkin_id=checkin.row.id, question=question_code)
    row.value = value
    row.text = (text or "")[:1000]
    row.flag = finding.flag.value
    row.channel = channel
    row.answered_by_identity_id = identity_id
    row.answered_by_staff_id = staff_id
    row.created_at = now
    if existing is None:
        session.add(row)
    await session.flush()
    before = stored_flag(checkin.row)
    flag = scoring.assess(checkin.questionnaire, await answers_of(session, checkin.row.id)).flag
    if checkin.row.status != CheckinStatus.answered:  # an answered check-in's flag is its outcome's
        checkin.row.worst_flag = flag.value
        await session.flush()
    return Recorded(finding, before, flag)


def answer_label(question: Question, value: Any) -> str:
    """An answer as staff and the patient's summary read it ("疼痛评分：5 分", "伤口发红：是")."""
    if question.type == QuestionType.yes_no:
        shown = "是" if value else "否"
    elif question.type in (QuestionType.scale, QuestionType.number):
        number = f"{value:g}" if isinstance(value, float) else str(value)
        shown = f"{number}{question.unit or ('分' if question.type == QuestionType.scale else '')}"
    elif question.type == QuestionType.single_choice:
        shown = next((c.text for c in question.choices if c.code == value), str(value))
    elif question.type == QuestionType.multiple_choice:
        shown = "、".join(c.text for c in question.choices if c.code in value) or "都没有"
    else:
        shown = str(value)
    return f"{question.text.rstrip('？?')}：{shown}"


@dataclass(frozen=True)
class Outcome:
    """A completed check-in: its worst flag, what the patient is told, and any escalation to publish."""

    flag: Flag
    text: str
    escalation: EscalationRequested | None
    next_due: datetime | None


def _day_label(day: date) -> str:
    return f"{day.month}月{day.day}日"


def outcome_text(flag: Flag, assessment: scoring.Assessment, next_due: datetime | None) -> str:
    """The closing message, by the worst flag (the wording clinicians review with the plans)."""
    if flag == Flag.emergency:
        advice = "\n".join(assessment.advice) or "请立即拨打 120 或马上到最近医院的急诊科就诊。"
        return f"{advice}\n我们已同时通知护士，请保持电话畅通。"
    if flag == Flag.red:
        advice = "\n".join(assessment.advice)
        lead = f"您的情况需要尽快处理：\n{advice}\n" if advice else "您的情况需要尽快处理。\n"
        return f"{lead}我们已通知护士，护士会尽快与您电话联系。如情况加重，请立即到急诊科就诊。"
    if flag == Flag.amber:
        return (
            "感谢您的回复。您的部分情况需要护士进一步了解，护士会在 24 小时内与您联系。"
            "如果症状加重，请及时就医。"
        )
    closing = "感谢您的回复！从您的回答看，恢复情况良好，请继续按出院医嘱休养。"
    if next_due is not None:
        closing += f"下次随访时间：{_day_label(next_due.astimezone(HOSPITAL_TZ).date())}。"
    return closing


async def complete_checkin(
    session: AsyncSession,
    checkin: Checkin,
    *,
    channel: CheckinChannel,
    now: datetime,
    conversation_id: int | None = None,
    escalated: Flag = Flag.green,
) -> Outcome:
    """Mark the check-in answered with its worst flag; the escalation (red, emergency) is returned for
    the caller to publish after its commit, unless `escalated` (the flag nurses were already told of
    when an answer was recorded) is as worrying. Raises CheckinClosed when it is no longer open."""
    if not checkin.answerable_by(channel):
        raise CheckinClosed(f"check-in {checkin.row.id} is {checkin.row.status}")
    answers = await answers_of(session, checkin.row.id)
    assessment = scoring.assess(checkin.questionnaire, answers)
    flag = assessment.flag
    row = checkin.row
    # Conditional, so that of two channels finishing at once (chat and the page, which may have read
    # the check-in before the other committed) only one completes it and escalates.
    allowed = PHONE_STATUSES if channel == CheckinChannel.phone else OPEN_STATUSES
    completed = await session.execute(
        update(FollowupCheckin)
        .where(FollowupCheckin.id == row.id, FollowupCheckin.status.in_(allowed))
        .values(status=CheckinStatus.answered, answered_at=now, channel=channel, worst_flag=flag.value)
        .execution_options(synchronize_session=False)
    )
    if completed.rowcount != 1:  # type: ignore[attr-defined]
        raise CheckinClosed(f"check-in {row.id} was completed or closed meanwhile")
    row.status = CheckinStatus.answered
    row.answered_at = now
    row.channel = channel
    row.worst_flag = flag.value
    next_due = await next_due_at(session, row)
    escalation = None
    if flag.rank > max(escalated.rank, Flag.amber.rank) and conversation_id is not None:
        escalation = await urgent_escalation(session, checkin, answers, flag, conversation_id)
    await session.flush()
    return Outcome(flag, outcome_text(flag, assessment, next_due), escalation, next_due)


async def next_due_at(session: AsyncSession, row: FollowupCheckin) -> datetime | None:
    """When the enrolment's next check-in is due (the green outcome names its date)."""
    return await session.scalar(
        select(FollowupCheckin.due_at)
        .where(
            FollowupCheckin.enrolment_id == row.enrolment_id,
            FollowupCheckin.time_point > row.time_point,
            FollowupCheckin.status == CheckinStatus.scheduled,
        )
        .order_by(FollowupCheckin.time_point)
        .limit(1)
    )


async def answered_outcome(session: AsyncSession, checkin: Checkin) -> tuple[Flag, str]:
    """An answered check-in's outcome again (its stored worst flag and closing text), for a page
    opened again."""
    assessment = scoring.assess(checkin.questionnaire, await answers_of(session, checkin.row.id))
    flag = Flag(checkin.row.worst_flag) if checkin.row.worst_flag else assessment.flag
    return flag, outcome_text(flag, assessment, await next_due_at(session, checkin.row))


async def urgent_escalation(
    session: AsyncSession, checkin: Checkin, answers: scoring.Answers, flag: Flag, conversation_id: int
) -> EscalationRequested:
    """Red or emergency: urgent, to the enrolment's team, the worrying answers in the reason."""
    team = await session.get(Team, checkin.enrolment.team_id)
    return EscalationRequested(
        conversation_id=conversation_id,
        reason=escalation_reason(checkin, answers, flag),
        priority="urgent",
        team=team.name if team is not None else "nursing",
    )


def escalation_reason(checkin: Checkin, answers: scoring.Answers, flag: Flag) -> str:
    """What the nurse reads first: the plan, the day and the worrying answers (255 characters)."""
    questionnaire = checkin.questionnaire
    worrying = [
        answer_label(questionnaire.question(f.question), answers[f.question])
        for f in scoring.assess(questionnaire, answers).worrying
    ]
    head = f"随访{'急症' if flag == Flag.emergency else '红色'}预警 {checkin.plan.name} 第{checkin.row.day}天"
    return f"{head}：{'；'.join(worrying)}"[:255]


def reply_by(flagged_at: datetime, flag: Flag) -> datetime | None:
    """When nurses must have contacted the patient: amber within 24 hours, red and emergency now."""
    if flag == Flag.amber:
        return flagged_at + timedelta(hours=24)
    if flag.rank >= Flag.red.rank:
        return flagged_at
    return None
