"""The complaints report: complaints and praise by department, category and month; on-time rate, time
to first response, reopen rate and satisfaction (docs/CONSOLE_API.md, "Complaints report").

Cases count by the hospital day they were received (Asia/Shanghai), both ends included, at most 366
days. The figures are computed in Python over the range's rows (one query): a year of a hospital's
complaints is a few thousand rows.

- **On time**: a complaint whose first answer came by the deadline then in force, out of those
  answered plus those still unanswered past their deadline (an unanswered case inside its deadline
  counts neither way).
- **First response**: from receipt to the first message or answer that went to the patient, in
  wall-clock hours (median and nearest-rank p90).
- **Reopen rate**: answered complaints the patient reopened at least once ÷ answered complaints.
- **Satisfaction**: the patients' 1–5 replies to the answer: average and the share of 4 and 5.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_backend.appointments.models import Department
from crm_backend.complaints.access import CaseScope
from crm_backend.complaints.models import CaseKind, Complaint
from crm_backend.config import HOSPITAL_TZ
from crm_backend.followups.report import ReportRangeError, check_range, local_midnight, nearest_rank

__all__ = ["ComplaintReport", "ReportRangeError", "complaint_report"]

#: Group names for cases without a department or a category yet.
UNASSIGNED = "unassigned"
UNCATEGORISED = "uncategorised"


class ComplaintFigures(BaseModel):
    complaints: int
    praise: int
    answered: int
    #: Complaints whose deadline has come, answered or not (the on-time denominator).
    due: int
    on_time: int
    on_time_rate: float | None
    #: Complaints answered or written to, of which the first response times are taken.
    responded: int
    first_response_hours_median: float | None
    first_response_hours_p90: float | None
    reopened: int
    reopen_rate: float | None
    rated: int
    satisfaction_average: float | None
    satisfied_share: float | None
    referred: int


class GroupFigures(ComplaintFigures):
    #: The department's id, the category's code or the month ("2026-10"); see `label`.
    key: str
    label: str


class ComplaintReport(BaseModel):
    date_from: date
    date_to: date
    generated_at: datetime
    total: ComplaintFigures
    by_department: list[GroupFigures]
    by_category: list[GroupFigures]
    by_month: list[GroupFigures]


@dataclass(frozen=True, slots=True)
class _Case:
    kind: str
    department_id: int | None
    category: str | None
    month: str
    registered_at: datetime
    due_at: datetime
    first_response_at: datetime | None
    first_answered_at: datetime | None
    answered_on_time: bool | None
    reopen_count: int
    satisfaction: int | None
    status: str


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def figures(cases: list[_Case], now: datetime) -> ComplaintFigures:
    complaints = [c for c in cases if c.kind == CaseKind.complaint]
    answered = [c for c in complaints if c.first_answered_at is not None]
    late_unanswered = [c for c in complaints if c.first_answered_at is None and c.due_at <= now]
    on_time = sum(1 for c in answered if c.answered_on_time)
    due = len(answered) + len(late_unanswered)
    hours = [
        (c.first_response_at - c.registered_at).total_seconds() / 3600
        for c in complaints
        if c.first_response_at is not None
    ]
    ratings = [c.satisfaction for c in complaints if c.satisfaction is not None]
    reopened = sum(1 for c in answered if c.reopen_count > 0)
    return ComplaintFigures(
        complaints=len(complaints),
        praise=len(cases) - len(complaints),
        answered=len(answered),
        due=due,
        on_time=on_time,
        on_time_rate=_share(on_time, due),
        responded=len(hours),
        first_response_hours_median=round(statistics.median(hours), 2) if hours else None,
        first_response_hours_p90=round(nearest_rank(hours, 0.9), 2) if hours else None,
        reopened=reopened,
        reopen_rate=_share(reopened, len(answered)),
        rated=len(ratings),
        satisfaction_average=round(statistics.fmean(ratings), 2) if ratings else None,
        satisfied_share=_share(sum(1 for r in ratings if r >= 4), len(ratings)),
        referred=sum(1 for c in complaints if c.status == "referred"),
    )


def _grouped(
    cases: list[_Case], now: datetime, key: Callable[[_Case], str], label: Callable[[str], str]
) -> list[GroupFigures]:
    groups: dict[str, list[_Case]] = {}
    for case in cases:
        groups.setdefault(key(case), []).append(case)
    return [
        GroupFigures(key=name, label=label(name), **figures(members, now).model_dump())
        for name, members in sorted(groups.items())
    ]


async def complaint_report(
    session: AsyncSession, scope: CaseScope, date_from: date, date_to: date, now: datetime
) -> ComplaintReport:
    check_range(date_from, date_to)
    start, end = local_midnight(date_from), local_midnight(date_to + timedelta(days=1))
    rows = await session.scalars(
        select(Complaint).where(
            scope.condition(), Complaint.registered_at >= start, Complaint.registered_at < end
        )
    )
    cases = [
        _Case(
            kind=row.kind,
            department_id=row.department_id,
            category=row.category,
            month=row.registered_at.astimezone(HOSPITAL_TZ).strftime("%Y-%m"),
            registered_at=row.registered_at,
            due_at=row.due_at,
            first_response_at=row.first_response_at,
            first_answered_at=row.first_answered_at,
            answered_on_time=row.answered_on_time,
            reopen_count=row.reopen_count,
            satisfaction=row.satisfaction,
            status=row.status,
        )
        for row in rows
    ]
    department_ids = {c.department_id for c in cases if c.department_id is not None}
    names: dict[int, str] = {}
    if department_ids:
        result = await session.execute(
            select(Department.id, Department.name).where(Department.id.in_(department_ids))
        )
        names = {row.id: row.name for row in result}
    return ComplaintReport(
        date_from=date_from,
        date_to=date_to,
        generated_at=now,
        total=figures(cases, now),
        by_department=_grouped(
            cases,
            now,
            lambda c: str(c.department_id) if c.department_id is not None else UNASSIGNED,
            lambda key: "未分派" if key == UNASSIGNED else names.get(int(key), key),
        ),
        by_category=_grouped(
            cases,
            now,
            lambda c: c.category or UNCATEGORISED,
            lambda key: CATEGORY_LABELS.get(key, key),
        ),
        by_month=_grouped(cases, now, lambda c: c.month, lambda key: key),
    )


#: The categories in words (the CSV and the console table).
CATEGORY_LABELS = {
    "attitude": "服务态度",
    "care_quality": "医疗质量",
    "waiting": "等候时间",
    "cost": "费用",
    "communication": "医患沟通",
    "environment": "环境设施",
    "safety": "患者安全",
    "other": "其他",
    UNCATEGORISED: "未分类",
}
