"""The follow-up report: discharge follow-up coverage (出院患者随访比例), response by channel, time from a
red flag to a nurse, flag rates and lost to follow-up, over a range of hospital days.

Two things are counted, each by its own day:

- **Enrolments by discharge day.** Coverage, lost to follow-up (失访) and stops count the enrolments
  whose `discharged_on` lies in the range. An enrolment is one admission that the HIS or staff
  reported as discharged; a discharge never enrolled is unknown to CareBridge, so the denominator is
  "discharges reported", not every discharge of the hospital. An admission counts as followed up
  when it had at least one successful contact by the time of the report: a check-in answered on any
  channel, or a phone call that reached the patient. Several contacts count once.
- **Check-ins by due day.** Response, red-flag contact and flag rates count the check-ins whose due
  time (hospital time) lies in the range.

Staff of a team see that team's figures; the caller passes the teams (views decide who may see what).
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from pydantic import BaseModel
from sqlalchemy import Select, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_backend.config import HOSPITAL_TZ
from crm_backend.followups.flag_times import flagged_at
from crm_backend.followups.models import (
    CheckinChannel,
    CheckinStatus,
    FollowupCall,
    FollowupCheckin,
    FollowupEnrolment,
    FollowupPlan,
    FollowupPlanVersion,
    StopReason,
)
from crm_backend.followups.plans import Flag
from crm_backend.staff.models import Team

#: The longest range one report covers, in days.
MAX_REPORT_DAYS = 366
#: Flags that call for a nurse now; the report times the first contact after them.
URGENT_FLAGS = frozenset({Flag.red.value, Flag.emergency.value})
#: Check-ins that may still be answered (until their window ends).
WAITING_STATUSES = frozenset({CheckinStatus.scheduled, CheckinStatus.claimed, CheckinStatus.started})

COVERAGE_BASIS = (
    "Enrolments whose discharge day (hospital time) lies in the range: the discharges the HIS or staff "
    "reported to CareBridge. Discharges that were never enrolled are unknown to CareBridge and are not "
    "counted. An enrolment is followed up when at least one check-in was answered (chat, page or phone) "
    "or a phone call reached the patient, by the time of the report; several contacts count once."
)
CHECKIN_BASIS = (
    "Check-ins whose due time (hospital time) lies in the range. The response rate is responded ÷ "
    "(due − skipped − awaiting): check-ins never sent (skipped) and those still inside their answer "
    "window are left out. A reached phone call counts as a response on the phone channel."
)


class ReportRangeError(ValueError):
    """The range asked for cannot be reported (reversed or too long)."""


def check_range(date_from: date, date_to: date) -> None:
    if date_from > date_to:
        raise ReportRangeError("from is after to")
    if (date_to - date_from).days + 1 > MAX_REPORT_DAYS:
        raise ReportRangeError(f"a report covers at most {MAX_REPORT_DAYS} days")


#: Years a report may name; beyond them date arithmetic overflows (9999-12-31 + 1 day).
EARLIEST_YEAR, LATEST_YEAR = 2000, 2100


def report_range(
    now: datetime, date_from: date | None, date_to: date | None, default_days: int
) -> tuple[date, date]:
    """The hospital days a report covers: up to today and `default_days` back unless named;
    `ReportRangeError` for years outside EARLIEST_YEAR–LATEST_YEAR, a reversed or too long range."""
    date_to = date_to or now.astimezone(HOSPITAL_TZ).date()
    date_from = date_from or date_to - timedelta(days=default_days - 1)
    if not (EARLIEST_YEAR <= date_from.year and date_to.year <= LATEST_YEAR):
        raise ReportRangeError(f"dates must lie in the years {EARLIEST_YEAR}–{LATEST_YEAR}")
    check_range(date_from, date_to)
    return date_from, date_to


def local_midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=HOSPITAL_TZ).astimezone(UTC)


def _share(part: int, whole: int) -> float | None:
    """0-1 with three decimals; null when there is nothing to divide by."""
    return round(part / whole, 3) if whole else None


def nearest_rank(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile: the smallest value with at least `fraction` of values at or below."""
    ordered = sorted(values)
    return ordered[max(math.ceil(fraction * len(ordered)), 1) - 1]


# --- the JSON shapes ----------------------------------------------------------------------------------


class TeamRef(BaseModel):
    id: int
    name: str


class PlanRef(BaseModel):
    id: int
    code: str
    name: str


class CoverageFigures(BaseModel):
    """出院患者随访比例: followed_up ÷ discharged (enrolments by discharge day)."""

    discharged: int
    followed_up: int
    #: 0-1, three decimals; null without discharges.
    rate: float | None


class ChannelFigures(BaseModel):
    channel: CheckinChannel
    #: Check-ins offered this way: chat started in chat, page invited by a template message (its
    #: link opens the page), phone called at least once.
    offered: int
    #: Check-ins answered through this channel (phone: also a reached call without answers).
    responded: int
    #: responded ÷ the response rate's denominator; the channels' rates add up to the total rate.
    rate: float | None


class ResponseFigures(BaseModel):
    due: int
    #: Never sent (enrolment stopped, nobody to address): left out of the rate.
    skipped: int
    #: Still inside the answer window and unanswered: left out of the rate until it closes.
    awaiting: int
    responded: int
    #: Window closed without an answer or a reached call.
    unanswered: int
    #: responded ÷ (due − skipped − awaiting).
    rate: float | None
    channels: list[ChannelFigures]


class FlagContactFigures(BaseModel):
    """From a red or emergency flag to the nurse's first contact with the patient: answered
    check-ins from their answer, check-ins answered only in part (a red answer, then silence) from
    the answer that raised the flag (flag_times.py)."""

    flagged: int
    red: int
    emergency: int
    contacted: int
    without_contact: int
    #: Wall-clock seconds (red means now, at any hour); median of the contacted ones.
    median_seconds: int | None
    #: Nearest-rank 90th percentile.
    p90_seconds: int | None


class FlagFigures(BaseModel):
    """The worst flag of answered check-ins, as counts and shares of `answered`."""

    answered: int
    green: int
    amber: int
    red: int
    emergency: int
    green_share: float | None
    amber_share: float | None
    red_share: float | None
    emergency_share: float | None


class StopCount(BaseModel):
    reason: StopReason
    count: int


class LostFigures(BaseModel):
    """失访 and stops among the enrolments discharged in the range."""

    lost: int
    #: lost ÷ discharged.
    rate: float | None
    stopped: int
    stopped_by_reason: list[StopCount]


class FollowupFigures(BaseModel):
    coverage: CoverageFigures
    response: ResponseFigures
    flag_contact: FlagContactFigures
    flags: FlagFigures
    lost_to_followup: LostFigures


class TeamFollowupFigures(FollowupFigures):
    team: TeamRef


class PlanFollowupFigures(FollowupFigures):
    plan: PlanRef


class FollowupReport(BaseModel):
    date_from: date
    date_to: date
    time_zone: str
    #: The filters applied: the team and plan asked for (null: all the caller may see).
    team_id: int | None
    plan_id: int | None
    #: What coverage's denominator is, in words (it is not every discharge of the hospital).
    coverage_basis: str
    checkin_basis: str
    total: FollowupFigures
    teams: list[TeamFollowupFigures]
    plans: list[PlanFollowupFigures]


# --- reading -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scope:
    """Which enrolments the report reads: the teams the caller may see (None: every team), and the
    team and plan asked for (None: all of them)."""

    team_ids: frozenset[int] | None = None
    team_id: int | None = None
    plan_id: int | None = None


@dataclass
class _Enrolment:
    id: int
    team_id: int
    plan_id: int
    status: str
    stop_reason: str | None
    lost: bool
    contacted: bool = False


@dataclass
class _Checkin:
    id: int
    team_id: int
    plan_id: int
    status: str
    started_via: str | None
    channel: str | None
    answered_at: datetime | None
    window_ends_at: datetime
    worst_flag: str | None
    first_contact_at: datetime | None
    #: When it reached its worst flag, if flagged (flag_times.py).
    flagged_at: datetime | None = None
    calls: int = 0
    #: When calls reached the patient, earliest first.
    reached_at: list[datetime] = field(default_factory=list)

    @property
    def answered(self) -> bool:
        return self.status == CheckinStatus.answered or self.answered_at is not None

    def response_channel(self) -> str | None:
        """Where the patient responded: the answer's channel, else a reached phone call."""
        if self.answered:
            return self.channel or (CheckinChannel.phone if self.reached_at else CheckinChannel.chat)
        return CheckinChannel.phone if self.reached_at else None

    def first_contact_after_flag(self) -> datetime | None:
        """The earlier of the contact staff recorded and a call that reached the patient after the
        flagging answer."""
        after = self.flagged_at
        reached = next((t for t in self.reached_at if after is not None and t >= after), None)
        known = [t for t in (self.first_contact_at, reached) if t is not None]
        return min(known, default=None)


def _scoped(statement: Select, scope: Scope) -> Select:
    if scope.team_ids is not None:
        statement = statement.where(FollowupEnrolment.team_id.in_(sorted(scope.team_ids)))
    if scope.team_id is not None:
        statement = statement.where(FollowupEnrolment.team_id == scope.team_id)
    if scope.plan_id is not None:
        statement = statement.where(FollowupPlanVersion.plan_id == scope.plan_id)
    return statement


async def _enrolments(
    session: AsyncSession, scope: Scope, date_from: date, date_to: date
) -> list[_Enrolment]:
    chosen = _scoped(
        select(FollowupEnrolment.id)
        .join(FollowupPlanVersion, FollowupPlanVersion.id == FollowupEnrolment.plan_version_id)
        .where(FollowupEnrolment.discharged_on >= date_from, FollowupEnrolment.discharged_on <= date_to),
        scope,
    )
    rows = await session.execute(
        select(
            FollowupEnrolment.id,
            FollowupEnrolment.team_id,
            FollowupPlanVersion.plan_id,
            FollowupEnrolment.status,
            FollowupEnrolment.stop_reason,
            FollowupEnrolment.lost_to_followup,
        )
        .join(FollowupPlanVersion, FollowupPlanVersion.id == FollowupEnrolment.plan_version_id)
        .where(FollowupEnrolment.id.in_(chosen))
        .order_by(FollowupEnrolment.id)
    )
    enrolments = {row[0]: _Enrolment(*row) for row in rows}
    answered = select(FollowupCheckin.enrolment_id).where(
        FollowupCheckin.enrolment_id.in_(chosen),
        or_(FollowupCheckin.status == CheckinStatus.answered, FollowupCheckin.answered_at.is_not(None)),
    )
    reached = (
        select(FollowupCheckin.enrolment_id)
        .join(FollowupCall, FollowupCall.checkin_id == FollowupCheckin.id)
        .where(FollowupCheckin.enrolment_id.in_(chosen), FollowupCall.reached.is_(True))
    )
    for (enrolment_id,) in await session.execute(answered.union(reached)):
        enrolments[enrolment_id].contacted = True
    return list(enrolments.values())


async def _checkins(session: AsyncSession, scope: Scope, date_from: date, date_to: date) -> list[_Checkin]:
    due = _scoped(
        select(
            FollowupCheckin.id,
            FollowupEnrolment.team_id,
            FollowupPlanVersion.plan_id,
            FollowupCheckin.status,
            FollowupCheckin.started_via,
            FollowupCheckin.channel,
            FollowupCheckin.answered_at,
            FollowupCheckin.window_ends_at,
            FollowupCheckin.worst_flag,
            FollowupCheckin.first_contact_at,
        )
        .join(FollowupEnrolment, FollowupEnrolment.id == FollowupCheckin.enrolment_id)
        .join(FollowupPlanVersion, FollowupPlanVersion.id == FollowupEnrolment.plan_version_id)
        .where(
            FollowupCheckin.due_at >= local_midnight(date_from),
            FollowupCheckin.due_at < local_midnight(date_to + timedelta(days=1)),
        ),
        scope,
    )
    checkins = {row[0]: _Checkin(*row) for row in await session.execute(due.order_by(FollowupCheckin.id))}
    ids = select(due.subquery().c.id)
    calls = await session.execute(
        select(FollowupCall.checkin_id, FollowupCall.reached, FollowupCall.created_at)
        .where(FollowupCall.checkin_id.in_(ids))
        .order_by(FollowupCall.created_at, FollowupCall.id)
    )
    for checkin_id, reached, created_at in calls:
        checkin = checkins[checkin_id]
        checkin.calls += 1
        if reached:
            checkin.reached_at.append(created_at)
    for checkin_id, at in (await flagged_at(session, list(checkins.values()))).items():
        checkins[checkin_id].flagged_at = at
    return list(checkins.values())


# --- figures -------------------------------------------------------------------------------------------


def _coverage(enrolments: list[_Enrolment]) -> CoverageFigures:
    followed = sum(e.contacted for e in enrolments)
    return CoverageFigures(
        discharged=len(enrolments), followed_up=followed, rate=_share(followed, len(enrolments))
    )


def _offered(checkin: _Checkin, channel: CheckinChannel) -> bool:
    if channel == CheckinChannel.chat:
        return checkin.started_via == "chat"
    if channel == CheckinChannel.page:
        return checkin.started_via == "template"
    return checkin.calls > 0


def _response(checkins: list[_Checkin], now: datetime) -> ResponseFigures:
    skipped = [c for c in checkins if c.status == CheckinStatus.skipped and c.response_channel() is None]
    responded = [c for c in checkins if c.response_channel() is not None]
    awaiting = [
        c
        for c in checkins
        if c.response_channel() is None and c.status in WAITING_STATUSES and c.window_ends_at > now
    ]
    decided = len(checkins) - len(skipped) - len(awaiting)
    channels = [
        ChannelFigures(
            channel=channel,
            offered=sum(_offered(c, channel) for c in checkins),
            responded=sum(c.response_channel() == channel for c in responded),
            rate=_share(sum(c.response_channel() == channel for c in responded), decided),
        )
        for channel in CheckinChannel
    ]
    return ResponseFigures(
        due=len(checkins),
        skipped=len(skipped),
        awaiting=len(awaiting),
        responded=len(responded),
        unanswered=decided - len(responded),
        rate=_share(len(responded), decided),
        channels=channels,
    )


def _flag_contact(checkins: list[_Checkin]) -> FlagContactFigures:
    # Answered or not: a red answer followed by silence is what most needs a nurse.
    flagged = [c for c in checkins if c.worst_flag in URGENT_FLAGS and c.flagged_at is not None]
    waits: list[float] = []
    for checkin in flagged:
        contact = checkin.first_contact_after_flag()
        if contact is not None and checkin.flagged_at is not None:
            waits.append(max((contact - checkin.flagged_at).total_seconds(), 0.0))
    return FlagContactFigures(
        flagged=len(flagged),
        red=sum(c.worst_flag == Flag.red for c in flagged),
        emergency=sum(c.worst_flag == Flag.emergency for c in flagged),
        contacted=len(waits),
        without_contact=len(flagged) - len(waits),
        median_seconds=round(statistics.median(waits)) if waits else None,
        p90_seconds=round(nearest_rank(waits, 0.9)) if waits else None,
    )


def _flags(checkins: list[_Checkin]) -> FlagFigures:
    flags = [c.worst_flag for c in checkins if c.answered and c.worst_flag is not None]
    counts = {flag.value: flags.count(flag.value) for flag in Flag}
    return FlagFigures(
        answered=len(flags),
        **counts,
        **{f"{flag}_share": _share(count, len(flags)) for flag, count in counts.items()},
    )


def _lost(enrolments: list[_Enrolment]) -> LostFigures:
    lost = sum(e.lost for e in enrolments)
    stopped = [e for e in enrolments if e.status == "stopped"]
    return LostFigures(
        lost=lost,
        rate=_share(lost, len(enrolments)),
        stopped=len(stopped),
        stopped_by_reason=[
            StopCount(
                reason=reason, count=sum((e.stop_reason or StopReason.other) == reason for e in stopped)
            )
            for reason in StopReason
        ],
    )


def figures(enrolments: list[_Enrolment], checkins: list[_Checkin], now: datetime) -> FollowupFigures:
    return FollowupFigures(
        coverage=_coverage(enrolments),
        response=_response(checkins, now),
        flag_contact=_flag_contact(checkins),
        flags=_flags(checkins),
        lost_to_followup=_lost(enrolments),
    )


def _grouped(
    key: Callable[[_Enrolment | _Checkin], Hashable],
    enrolments: Iterable[_Enrolment],
    checkins: Iterable[_Checkin],
) -> dict[Hashable, tuple[list[_Enrolment], list[_Checkin]]]:
    groups: dict[Hashable, tuple[list[_Enrolment], list[_Checkin]]] = defaultdict(lambda: ([], []))
    for enrolment in enrolments:
        groups[key(enrolment)][0].append(enrolment)
    for checkin in checkins:
        groups[key(checkin)][1].append(checkin)
    return groups


async def followup_report(
    session: AsyncSession, scope: Scope, date_from: date, date_to: date, now: datetime
) -> FollowupReport:
    """The report for `date_from` to `date_to` inclusive, hospital calendar days, within `scope`."""
    check_range(date_from, date_to)
    enrolments = await _enrolments(session, scope, date_from, date_to)
    checkins = await _checkins(session, scope, date_from, date_to)
    by_team = _grouped(lambda row: row.team_id, enrolments, checkins)
    by_plan = _grouped(lambda row: row.plan_id, enrolments, checkins)
    teams = {
        t.id: TeamRef(id=t.id, name=t.name)
        for t in (await session.scalars(select(Team).where(Team.id.in_(list(by_team))))).all()
    }
    plans = {
        p.id: PlanRef(id=p.id, code=p.code, name=p.name)
        for p in (await session.scalars(select(FollowupPlan).where(FollowupPlan.id.in_(list(by_plan))))).all()
    }
    return FollowupReport(
        date_from=date_from,
        date_to=date_to,
        time_zone=str(HOSPITAL_TZ),
        team_id=scope.team_id,
        plan_id=scope.plan_id,
        coverage_basis=COVERAGE_BASIS,
        checkin_basis=CHECKIN_BASIS,
        total=figures(enrolments, checkins, now),
        teams=sorted(
            (
                TeamFollowupFigures(team=teams[team_id], **figures(*rows, now).model_dump())
                for team_id, rows in by_team.items()
            ),
            key=lambda row: (row.team.name, row.team.id),
        ),
        plans=sorted(
            (
                PlanFollowupFigures(plan=plans[plan_id], **figures(*rows, now).model_dump())
                for plan_id, rows in by_plan.items()
            ),
            key=lambda row: (row.plan.name, row.plan.id),
        ),
    )
