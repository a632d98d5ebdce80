"""The nurses' follow-up work lists, one check-in's detail, and recording a phone call.

Lists (each for the caller's teams; supervisors and admins see every team; stopped enrolments are
left out): due today (hospital-local day), overdue (started, unanswered past the reminder delay),
missed, flagged (amber, red or emergency without a first contact, answered or only partly: a
worrying answer counts when it is recorded; with the time nurses must have called by:
answers.reply_by) and the phone list (flagged, then missed check-ins no call has reached).

A call's answers are recorded like every channel's (answers.record_answer, channel `phone`) and
complete the check-in when the questionnaire is complete (answers.complete_checkin): a missed
check-in may be answered by phone. A reached call sets the first contact of a flagged check-in,
which the report measures red flag → first contact. The nurse on the phone is that contact, so a
call's red answers are not escalated again; the outcome's advice is returned for the nurse to read.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr
from sqlalchemy import Select, and_, case, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_backend.config import HOSPITAL_TZ, Settings
from crm_backend.followups import scoring
from crm_backend.followups.answers import (
    Checkin,
    answer_label,
    answers_of,
    complete_checkin,
    load_checkin,
    record_answer,
    reply_by,
)
from crm_backend.followups.flag_times import FLAGGED, flagged_at
from crm_backend.followups.models import (
    CheckinChannel,
    CheckinStatus,
    EnrolmentStatus,
    FollowupAnswer,
    FollowupCall,
    FollowupCheckin,
    FollowupEnrolment,
    FollowupPlanVersion,
    FollowupSend,
)
from crm_backend.followups.page import AnswerValue, QuestionRead, hint_for, lock_checkin
from crm_backend.followups.plans import EnableWhen, Flag, PlanDefinition, Questionnaire, QuestionType
from crm_backend.patients.models import Patient
from crm_backend.patients.records import MASKED, patient_summary
from crm_backend.protection import FieldProtector
from crm_backend.staff.models import Staff, Team

MAX_ITEMS = 200


class WorkList(enum.StrEnum):
    due_today = "due_today"
    overdue = "overdue"
    missed = "missed"
    flagged = "flagged"
    phone = "phone"


class CheckinItemRead(BaseModel):
    """One check-in on a list."""

    id: int
    enrolment_id: int
    patient_id: int
    patient_name: str
    #: Masked ("139****1234"); the full number through the patient record's audited reveal.
    phone: str | None
    team_id: int
    team_name: str
    plan_name: str
    day: int
    due_at: datetime
    window_ends_at: datetime
    status: CheckinStatus
    started_via: str | None
    started_at: datetime | None
    reminded_at: datetime | None
    answered_at: datetime | None
    channel: str | None
    worst_flag: Flag | None
    #: Nurses must have contacted the patient by then (flagged check-ins).
    reply_by: datetime | None
    first_contact_at: datetime | None
    calls: int
    last_call_at: datetime | None
    last_call_reached: bool | None


class AnswerRead(BaseModel):
    value: Any
    #: "疼痛评分：5分" (answers.answer_label).
    label: str
    #: The answer alone, as the label shows it ("5分").
    shown: str
    flag: Flag
    channel: str
    text: str
    answered_at: datetime
    answered_by_staff_id: int | None
    #: False when a later correction undid its question's condition: it no longer counts.
    counts: bool


class QuestionDetailRead(QuestionRead):
    #: "仅当「伤口发红」答“是”时询问", or "" for a question always asked.
    condition: str
    #: Whether it is asked given the answers so far.
    enabled: bool
    answer: AnswerRead | None


class SendRead(BaseModel):
    id: int
    kind: str
    status: str
    error: str
    created_at: datetime


class CallRead(BaseModel):
    id: int
    staff_id: int
    staff_name: str
    reached: bool
    note: str
    created_at: datetime


class CheckinDetailRead(BaseModel):
    checkin: CheckinItemRead
    plan_code: str
    plan_version: int
    procedure: str
    attending_doctor: str
    anchor_date: str
    discharged_on: str
    enrolment_status: str
    reason: str
    questions: list[QuestionDetailRead]
    sends: list[SendRead]
    calls: list[CallRead]
    #: A call may still record answers (open or missed, enrolment not stopped).
    answerable_by_phone: bool


class CallIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reached: StrictBool
    note: StrictStr = Field(default="", max_length=1000)
    #: Answers the patient gave on the phone, by question code.
    answers: dict[str, AnswerValue] = Field(default_factory=dict, max_length=60)


class CallOutcomeRead(BaseModel):
    call_id: int
    #: The worst flag when the call completed the check-in; what the nurse tells the patient.
    flag: Flag | None
    advice: str
    detail: CheckinDetailRead


class CallRefused(Exception):
    """The call cannot be recorded as sent; nothing was written. `errors` by question code."""

    def __init__(self, status: int, detail: str, errors: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors or {}


@dataclass(frozen=True)
class Scope:
    """Whose check-ins a caller sees: None = every team."""

    team_ids: frozenset[int] | None

    def allows(self, team_id: int) -> bool:
        return self.team_ids is None or team_id in self.team_ids


# -- lists -----------------------------------------------------------------------------------------


def _query(scope: Scope) -> Select[Any]:
    query = (
        select(FollowupCheckin, FollowupEnrolment, Patient, Team.name, FollowupPlanVersion)
        .join(FollowupEnrolment, FollowupEnrolment.id == FollowupCheckin.enrolment_id)
        .join(Patient, Patient.id == FollowupEnrolment.patient_id)
        .join(Team, Team.id == FollowupEnrolment.team_id)
        .join(FollowupPlanVersion, FollowupPlanVersion.id == FollowupEnrolment.plan_version_id)
        .where(FollowupEnrolment.status != EnrolmentStatus.stopped)
    )
    if scope.team_ids is not None:
        query = query.where(FollowupEnrolment.team_id.in_(scope.team_ids))
    return query


def _reached() -> Any:
    return exists().where(FollowupCall.checkin_id == FollowupCheckin.id, FollowupCall.reached.is_(True))


def _flag_rank() -> Any:
    return case(
        (FollowupCheckin.worst_flag == Flag.emergency.value, 3),
        (FollowupCheckin.worst_flag == Flag.red.value, 2),
        else_=1,
    )


def _awaiting_contact() -> Any:
    """Flagged and nobody has contacted the patient yet: answered, or only partly (a worrying
    answer, then silence; the check-in may still be open or missed since)."""
    return and_(
        FollowupCheckin.status != CheckinStatus.skipped,
        func.coalesce(FollowupCheckin.worst_flag, Flag.green.value).in_(FLAGGED),
        FollowupCheckin.first_contact_at.is_(None),
    )


def _flagged(scope: Scope) -> Select[Any]:
    return (
        _query(scope)
        .where(_awaiting_contact())
        .order_by(
            _flag_rank().desc(),
            func.coalesce(FollowupCheckin.answered_at, FollowupCheckin.started_at, FollowupCheckin.due_at),
            FollowupCheckin.id,
        )
    )


def _missed(scope: Scope) -> Select[Any]:
    return _query(scope).where(FollowupCheckin.status == CheckinStatus.missed)


def local_day_bounds(now: datetime) -> tuple[datetime, datetime]:
    """Today in hospital time, as UTC instants [start, end)."""
    today = now.astimezone(HOSPITAL_TZ).date()
    start = datetime.combine(today, time(0), HOSPITAL_TZ)
    return start, start + timedelta(days=1)


async def list_checkins(
    session: AsyncSession,
    protector: FieldProtector,
    settings: Settings,
    kind: WorkList,
    scope: Scope,
    now: datetime,
    limit: int = MAX_ITEMS,
) -> list[CheckinItemRead]:
    if kind == WorkList.due_today:
        start, end = local_day_bounds(now)
        query = (
            _query(scope)
            .where(FollowupCheckin.due_at >= start, FollowupCheckin.due_at < end)
            .order_by(FollowupCheckin.due_at, FollowupCheckin.id)
        )
    elif kind == WorkList.overdue:
        cutoff = now - timedelta(hours=settings.followup_reminder_after_hours)
        query = (
            _query(scope)
            .where(
                FollowupCheckin.status == CheckinStatus.started,
                or_(FollowupCheckin.reminded_at.is_not(None), FollowupCheckin.started_at <= cutoff),
            )
            .order_by(FollowupCheckin.started_at, FollowupCheckin.id)
        )
    elif kind == WorkList.missed:
        query = _missed(scope).order_by(FollowupCheckin.window_ends_at.desc(), FollowupCheckin.id.desc())
    elif kind == WorkList.flagged:
        query = _flagged(scope)
    else:
        flagged = await _items(session, protector, _flagged(scope).limit(limit))
        to_call = (
            _missed(scope)
            .where(~_reached(), ~_awaiting_contact())  # a flagged one is listed first already
            .order_by(FollowupCheckin.window_ends_at, FollowupCheckin.id)
        )
        return flagged + await _items(session, protector, to_call.limit(max(limit - len(flagged), 0)))
    return await _items(session, protector, query.limit(limit))


async def _items(
    session: AsyncSession, protector: FieldProtector, query: Select[Any]
) -> list[CheckinItemRead]:
    rows = (await session.execute(query)).all()
    if not rows:
        return []
    ids = [row[0].id for row in rows]
    calls = {
        checkin_id: (count, last)
        for checkin_id, count, last in (
            await session.execute(
                select(FollowupCall.checkin_id, func.count(FollowupCall.id), func.max(FollowupCall.id))
                .where(FollowupCall.checkin_id.in_(ids))
                .group_by(FollowupCall.checkin_id)
            )
        ).all()
    }
    flag_times = await flagged_at(session, [row[0] for row in rows])
    last_calls = {
        call.id: call
        for call in await session.scalars(
            select(FollowupCall).where(FollowupCall.id.in_([last for _, last in calls.values()]))
        )
    }
    plans: dict[int, PlanDefinition] = {}
    items = []
    for checkin, enrolment, patient, team_name, version in rows:
        if version.id not in plans:
            plans[version.id] = PlanDefinition.model_validate(version.definition)
        count, last_id = calls.get(checkin.id, (0, None))
        items.append(
            _item(
                checkin,
                enrolment,
                patient,
                team_name,
                plans[version.id],
                protector,
                count,
                last_calls.get(last_id),
                flag_times.get(checkin.id),
            )
        )
    return items


def _item(
    checkin: FollowupCheckin,
    enrolment: FollowupEnrolment,
    patient: Patient,
    team_name: str,
    plan: PlanDefinition,
    protector: FieldProtector,
    calls: int,
    last_call: FollowupCall | None,
    flagged_at: datetime | None,
) -> CheckinItemRead:
    summary = patient_summary(patient, protector, MASKED)
    flag = Flag(checkin.worst_flag) if checkin.worst_flag else None
    due = reply_by(flagged_at, flag) if flag is not None and flagged_at is not None else None
    return CheckinItemRead(
        id=checkin.id,
        enrolment_id=enrolment.id,
        patient_id=patient.id,
        patient_name=summary["label"],
        phone=summary["phone"],
        team_id=enrolment.team_id,
        team_name=team_name,
        plan_name=plan.name,
        day=checkin.day,
        due_at=checkin.due_at,
        window_ends_at=checkin.window_ends_at,
        status=checkin.status,
        started_via=checkin.started_via,
        started_at=checkin.started_at,
        reminded_at=checkin.reminded_at,
        answered_at=checkin.answered_at,
        channel=checkin.channel,
        worst_flag=flag,
        reply_by=due,
        first_contact_at=checkin.first_contact_at,
        calls=calls,
        last_call_at=last_call.created_at if last_call else None,
        last_call_reached=last_call.reached if last_call else None,
    )


# -- one check-in ----------------------------------------------------------------------------------


def condition_text(questionnaire: Questionnaire, condition: EnableWhen | None) -> str:
    """A question's condition in the nurses' words, computed here so the console holds no rule."""
    if condition is None:
        return ""
    earlier = questionnaire.question(condition.question)
    subject = re.split(r"[？?]", earlier.text, maxsplit=1)[0]  # its first sentence, not chat instructions
    if condition.equals is not None:
        wanted = "“是”" if condition.equals else "“否”"
    elif condition.at_least is not None:
        unit = earlier.unit or ("分" if earlier.type == QuestionType.scale else "")
        wanted = f"不低于 {condition.at_least:g}{unit}"
    else:
        names = [c.text for c in earlier.choices if c.code in condition.any_of]
        wanted = "、".join(f"“{name}”" for name in names)
        if earlier.type == QuestionType.multiple_choice and len(names) > 1:
            wanted = f"含{wanted}之一"
    return f"仅当「{subject}」答{wanted}时询问"


async def checkin_detail(
    session: AsyncSession, protector: FieldProtector, checkin: Checkin
) -> CheckinDetailRead:
    row, enrolment = checkin.row, checkin.enrolment
    team_name = await session.scalar(select(Team.name).where(Team.id == enrolment.team_id)) or ""
    version = await session.get(FollowupPlanVersion, enrolment.plan_version_id)
    assert version is not None
    calls = (
        await session.execute(
            select(FollowupCall, Staff.display_name)
            .join(Staff, Staff.id == FollowupCall.staff_id)
            .where(FollowupCall.checkin_id == row.id)
            .order_by(FollowupCall.id)
        )
    ).all()
    item = _item(
        row,
        enrolment,
        checkin.patient,
        team_name,
        checkin.plan,
        protector,
        len(calls),
        calls[-1][0] if calls else None,
        (await flagged_at(session, [row])).get(row.id),
    )
    answer_rows = {
        a.question: a
        for a in await session.scalars(select(FollowupAnswer).where(FollowupAnswer.checkin_id == row.id))
    }
    answers = {code: a.value for code, a in answer_rows.items()}
    kept = scoring.relevant_answers(checkin.questionnaire, answers)
    questionnaire = checkin.questionnaire
    questions = []
    for question in questionnaire.questions:
        stored = answer_rows.get(question.code)
        answer = None
        if stored is not None:
            label = answer_label(question, stored.value)
            answer = AnswerRead(
                value=stored.value,
                label=label,
                shown=label.removeprefix(question.text.rstrip("？?") + "："),
                flag=Flag(stored.flag),
                channel=stored.channel,
                text=stored.text,
                answered_at=stored.created_at,
                answered_by_staff_id=stored.answered_by_staff_id,
                counts=question.code in kept,
            )
        base = QuestionRead.of(question, stored.value if stored is not None else None)
        questions.append(
            QuestionDetailRead(
                **base.model_dump(),
                condition=condition_text(questionnaire, question.enable_when),
                enabled=scoring.is_enabled(question, answers),
                answer=answer,
            )
        )
    sends = await session.scalars(
        select(FollowupSend).where(FollowupSend.checkin_id == row.id).order_by(FollowupSend.id)
    )
    return CheckinDetailRead(
        checkin=item,
        plan_code=checkin.plan.code,
        plan_version=version.version,
        procedure=enrolment.procedure,
        attending_doctor=enrolment.attending_doctor,
        anchor_date=enrolment.anchor_date.isoformat(),
        discharged_on=enrolment.discharged_on.isoformat(),
        enrolment_status=enrolment.status,
        reason=row.reason,
        questions=questions,
        sends=[SendRead.model_validate(s, from_attributes=True) for s in sends],
        calls=[
            CallRead(
                id=call.id,
                staff_id=call.staff_id,
                staff_name=name,
                reached=call.reached,
                note=call.note,
                created_at=call.created_at,
            )
            for call, name in calls
        ],
        answerable_by_phone=checkin.answerable_by(CheckinChannel.phone),
    )


async def load_for_staff(session: AsyncSession, checkin_id: int, *, lock: bool = False) -> Checkin:
    """The check-in whatever its status (CheckinClosed if there is none); locked for a call."""
    if lock:
        await lock_checkin(session, checkin_id)
    return await load_checkin(session, checkin_id, open_only=False)


# -- a call ----------------------------------------------------------------------------------------


async def _record_call_answers(
    session: AsyncSession, checkin: Checkin, answers_in: dict[str, Any], staff_id: int, now: datetime
) -> None:
    """Every answer checked and stored in questionnaire order; CallRefused (caller rolls back) on any."""
    questionnaire = checkin.questionnaire
    codes = {q.code for q in questionnaire.questions}
    errors = {code: "本次随访没有这个问题" for code in answers_in if code not in codes}
    merged = dict(await answers_of(session, checkin.row.id))
    for question in questionnaire.questions:
        if question.code not in answers_in or errors:
            continue
        if not scoring.is_enabled(question, merged):
            errors[question.code] = f"{question.text}：按已填的回答，这一题不需要问"
            continue
        value = answers_in[question.code]
        try:
            await record_answer(
                session,
                checkin,
                question.code,
                value,
                channel=CheckinChannel.phone,
                text=value if isinstance(value, str) else "",
                staff_id=staff_id,
                now=now,
            )
        except scoring.AnswerRefused:
            errors[question.code] = f"{question.text}：{hint_for(question)}"
            continue
        merged[question.code] = scoring.check_value(question, value)
    if errors:
        raise CallRefused(422, "some answers are not allowed", errors)


async def record_call(
    session: AsyncSession, checkin: Checkin, body: CallIn, *, staff_id: int, now: datetime
) -> tuple[FollowupCall, Flag | None, str]:
    """Store the call and its answers; complete the check-in when its questionnaire is complete.
    Returns the call, the outcome's flag (None when not completed) and the advice to read out.
    CallRefused when the body cannot be recorded (the caller rolls back)."""
    outcome = None
    if body.answers:
        if not body.reached:
            raise CallRefused(422, "answers need a call that reached the patient")
        if not checkin.answerable_by(CheckinChannel.phone):
            raise CallRefused(409, f"this check-in is {checkin.row.status}: record the call without answers")
        await _record_call_answers(session, checkin, body.answers, staff_id, now)
        answers = await answers_of(session, checkin.row.id)
        if scoring.next_question(checkin.questionnaire, answers) is None:
            outcome = await complete_checkin(session, checkin, channel=CheckinChannel.phone, now=now)
    call = FollowupCall(
        checkin_id=checkin.row.id, staff_id=staff_id, reached=body.reached, note=body.note, created_at=now
    )
    session.add(call)
    row = checkin.row
    if body.reached and row.worst_flag in FLAGGED and row.first_contact_at is None:
        row.first_contact_at = now
    await session.flush()
    if outcome is None:
        return call, None, ""
    return call, outcome.flag, outcome.text


__all__ = ["CallIn", "CallRefused", "CheckinDetailRead", "CheckinItemRead", "Scope", "WorkList"]
