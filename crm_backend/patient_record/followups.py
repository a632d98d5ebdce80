"""A patient's post-operative follow-up as the 360 view shows it: each enrolment (plan, version,
status, team, doctor), its check-ins by day with the worst flag, and each question's answers over
time (pain by day), so a nurse sees the course at a glance rather than one check-in at a time.

Questions are read from the enrolment's own plan version: a plan changed since still shows what this
patient was asked.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_backend.config import HOSPITAL_TZ
from crm_backend.followups.answers import answer_label
from crm_backend.followups.models import (
    FollowupAnswer,
    FollowupCheckin,
    FollowupEnrolment,
    FollowupPlan,
    FollowupPlanVersion,
)
from crm_backend.followups.plans import PlanDefinition, Question, QuestionType
from crm_backend.staff.models import Team

#: Enrolments shown, newest first (a patient has a handful in a lifetime).
MAX_ENROLMENTS = 20


class FollowupCheckinLineRead(BaseModel):
    id: int
    #: Days after the anchor date (第 N 天).
    day: int
    due_at: datetime
    #: The due day in hospital time.
    due_date: date
    status: str
    channel: str | None
    answered_at: datetime | None
    worst_flag: str | None


class AnswerPointRead(BaseModel):
    checkin_id: int
    day: int
    #: The day it was answered (hospital time); the due day when the answer has no time.
    date: date
    value: Any
    #: The answer as staff read it, without the question ("5分", "是", "恶心、呕吐").
    shown: str
    flag: str
    channel: str


class AnswerSeriesRead(BaseModel):
    """One question's answers across the enrolment's check-ins, in day order."""

    question: str
    text: str
    type: QuestionType
    unit: str
    #: For numbers and scales: the allowed range, so a chart has a fixed scale (0-10 for pain).
    low: float | None
    high: float | None
    points: list[AnswerPointRead]


class FollowupEnrolmentRecordRead(BaseModel):
    id: int
    plan_id: int
    plan_code: str
    plan_name: str
    version: int
    status: str
    stop_reason: str | None
    lost_to_followup: bool
    team_id: int
    team: str
    attending_doctor: str
    procedure: str
    discharged_on: date
    anchor_date: date
    checkins: list[FollowupCheckinLineRead]
    answers: list[AnswerSeriesRead]


def shown_value(question: Question, value: Any) -> str:
    """`answer_label` without its question: what a table cell shows."""
    label = answer_label(question, value)
    return label.split("：", 1)[1] if "：" in label else label


def _local_day(at: datetime) -> date:
    return at.astimezone(HOSPITAL_TZ).date()


def _series(
    plan: PlanDefinition, checkins: list[FollowupCheckin], answers: list[FollowupAnswer]
) -> list[AnswerSeriesRead]:
    by_checkin = {c.id: c for c in checkins}
    questions: dict[str, Question] = {}
    for point in plan.time_points:
        for question in point.questionnaire.questions:
            questions.setdefault(question.code, question)
    series: dict[str, AnswerSeriesRead] = {}
    for row in sorted(answers, key=lambda a: (by_checkin[a.checkin_id].day, a.id)):
        question = questions.get(row.question)
        if question is None:  # not in this version: nothing to read it by
            continue
        checkin = by_checkin[row.checkin_id]
        numeric = question.type in (QuestionType.scale, QuestionType.number)
        line = series.setdefault(
            question.code,
            AnswerSeriesRead(
                question=question.code,
                text=question.text,
                type=question.type,
                unit=question.unit,
                low=question.low if numeric else None,
                high=question.high if numeric else None,
                points=[],
            ),
        )
        answered = checkin.answered_at or row.created_at or checkin.due_at
        line.points.append(
            AnswerPointRead(
                checkin_id=checkin.id,
                day=checkin.day,
                date=_local_day(answered),
                value=row.value,
                shown=shown_value(question, row.value),
                flag=row.flag,
                channel=row.channel,
            )
        )
    order = list(questions)
    return sorted(series.values(), key=lambda s: order.index(s.question))


async def patient_followups(
    session: AsyncSession, patient_id: int, team_ids: Collection[int] | None
) -> list[FollowupEnrolmentRecordRead]:
    """The patient's enrolments of `team_ids` (None: every team's, for supervisors and admins),
    newest first, each with its check-ins and answers. Another team's answers stay with that team,
    as its check-in's detail does (worklists: 403)."""
    query = (
        select(FollowupEnrolment, FollowupPlanVersion, FollowupPlan, Team)
        .join(FollowupPlanVersion, FollowupPlanVersion.id == FollowupEnrolment.plan_version_id)
        .join(FollowupPlan, FollowupPlan.id == FollowupPlanVersion.plan_id)
        .join(Team, Team.id == FollowupEnrolment.team_id)
        .where(FollowupEnrolment.patient_id == patient_id)
        .order_by(FollowupEnrolment.discharged_on.desc(), FollowupEnrolment.id.desc())
        .limit(MAX_ENROLMENTS)
    )
    if team_ids is not None:
        query = query.where(FollowupEnrolment.team_id.in_(list(team_ids)))
    rows = (await session.execute(query)).all()
    if not rows:
        return []
    enrolment_ids = [enrolment.id for enrolment, *_ in rows]
    checkins = (
        await session.scalars(
            select(FollowupCheckin)
            .where(FollowupCheckin.enrolment_id.in_(enrolment_ids))
            .order_by(FollowupCheckin.time_point)
        )
    ).all()
    answers = (
        await session.scalars(
            select(FollowupAnswer)
            .where(FollowupAnswer.checkin_id.in_([c.id for c in checkins]))
            .order_by(FollowupAnswer.id)
        )
    ).all()
    result = []
    for enrolment, version, plan, team in rows:
        own = [c for c in checkins if c.enrolment_id == enrolment.id]
        own_ids = {c.id for c in own}
        definition = PlanDefinition.model_validate(version.definition)
        result.append(
            FollowupEnrolmentRecordRead(
                id=enrolment.id,
                plan_id=plan.id,
                plan_code=plan.code,
                plan_name=plan.name,
                version=version.version,
                status=enrolment.status,
                stop_reason=enrolment.stop_reason,
                lost_to_followup=enrolment.lost_to_followup,
                team_id=team.id,
                team=team.name,
                attending_doctor=enrolment.attending_doctor,
                procedure=enrolment.procedure,
                discharged_on=enrolment.discharged_on,
                anchor_date=enrolment.anchor_date,
                checkins=[
                    FollowupCheckinLineRead(
                        id=c.id,
                        day=c.day,
                        due_at=c.due_at,
                        due_date=_local_day(c.due_at),
                        status=c.status,
                        channel=c.channel,
                        answered_at=c.answered_at,
                        worst_flag=c.worst_flag,
                    )
                    for c in own
                ],
                answers=_series(definition, own, [a for a in answers if a.checkin_id in own_ids]),
            )
        )
    return result
