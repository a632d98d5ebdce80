"""SLA clocks run in staffed hours only: a chat that arrives at night is due after the next opening,
and one that arrives just before closing carries the rest of its SLA into the next period."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from crm_backend.config import Settings
from crm_backend.escalations.hours import add_staffed_time, staffed_seconds
from crm_backend.escalations.models import Escalation, Priority
from crm_backend.escalations.sla import sla_breached, sla_due_at

DAY_DESK = Settings(STAFFED_HOURS="08:00-20:00", STAFFED_DAYS="1,2,3,4,5", SLA_NORMAL_SECONDS=900)
NIGHT_DESK = Settings(STAFFED_HOURS="20:00-08:00", STAFFED_DAYS="1,2,3,4,5", SLA_NORMAL_SECONDS=900)
ALWAYS = Settings(STAFFED_HOURS="00:00-00:00", STAFFED_DAYS="1,2,3,4,5,6,7", SLA_NORMAL_SECONDS=900)


def shanghai(day: int, hour: int, minute: int = 0) -> datetime:
    """A November 2026 Shanghai wall-clock time as UTC (23 November 2026 is a Monday; no DST)."""
    return datetime(2026, 11, day, hour, minute, tzinfo=ZoneInfo("Asia/Shanghai")).astimezone(UTC)


@pytest.mark.parametrize(
    ("settings", "created", "due"),
    [
        (DAY_DESK, shanghai(24, 3, 25), shanghai(24, 8, 15)),  # the night: opening + SLA
        (DAY_DESK, shanghai(24, 10), shanghai(24, 10, 15)),  # staffed: plain SLA
        (DAY_DESK, shanghai(23, 19, 55), shanghai(24, 8, 10)),  # 5 minutes tonight, 10 tomorrow
        (DAY_DESK, shanghai(23, 20), shanghai(24, 8, 15)),  # closing time is not staffed
        (DAY_DESK, shanghai(27, 19, 50), shanghai(30, 8, 5)),  # Friday evening: the rest on Monday
        (DAY_DESK, shanghai(28, 10), shanghai(30, 8, 15)),  # Saturday: Monday morning
        (NIGHT_DESK, shanghai(24, 7, 50), shanghai(24, 20, 5)),  # end of Monday's night shift
        (NIGHT_DESK, shanghai(24, 12), shanghai(24, 20, 15)),  # Tuesday noon: Tuesday evening
        (NIGHT_DESK, shanghai(28, 7, 55), shanghai(30, 20, 10)),  # Friday's shift ends; none at weekends
        (NIGHT_DESK, shanghai(24, 23, 50), shanghai(25, 0, 5)),  # the shift runs past midnight
        (ALWAYS, shanghai(29, 3, 25), shanghai(29, 3, 40)),  # around the clock
    ],
)
def test_due_time_counts_staffed_time_only(settings: Settings, created: datetime, due: datetime) -> None:
    assert sla_due_at(settings, created, Priority.NORMAL) == due
    assert staffed_seconds(settings, created, due) == 900


def test_staffed_seconds_between_two_moments() -> None:
    assert staffed_seconds(DAY_DESK, shanghai(24, 3), shanghai(24, 9)) == 3600
    assert staffed_seconds(DAY_DESK, shanghai(27, 19), shanghai(30, 9)) == 7200  # over a weekend
    assert staffed_seconds(DAY_DESK, shanghai(28, 1), shanghai(29, 23)) == 0
    assert staffed_seconds(DAY_DESK, shanghai(24, 9), shanghai(24, 8)) == 0


def test_zero_staffed_time_is_the_next_opening() -> None:
    assert add_staffed_time(DAY_DESK, shanghai(28, 10), 0) == shanghai(30, 8)
    assert add_staffed_time(DAY_DESK, shanghai(24, 10), 0) == shanghai(24, 10)


def _escalation(created: datetime, **times: datetime) -> Escalation:
    return Escalation(created_at=created, sla_due_at=sla_due_at(DAY_DESK, created, Priority.NORMAL), **times)


def test_a_night_escalation_is_not_breached_before_staff_start() -> None:
    created = shanghai(24, 3, 25)
    waiting = _escalation(created)
    assert not sla_breached(waiting, created + timedelta(minutes=15))
    assert not sla_breached(waiting, shanghai(24, 8, 15))
    assert sla_breached(waiting, shanghai(24, 8, 16))


def test_the_clock_stops_at_the_first_answer() -> None:
    answered = _escalation(shanghai(24, 3, 25), first_response_at=shanghai(24, 8, 10))
    late = _escalation(shanghai(24, 3, 25), first_response_at=shanghai(24, 8, 20))
    assert not sla_breached(answered, shanghai(24, 12))
    assert sla_breached(late, shanghai(24, 12))


def test_a_weekday_list_without_weekdays_is_refused() -> None:
    with pytest.raises(ValueError, match="STAFFED_DAYS"):
        sla_due_at(Settings(STAFFED_DAYS="9"), shanghai(24, 3), Priority.NORMAL)
