"""Staffed hours in hospital local time: outside them the patient is told when a person will reply,
and SLA clocks stand still (a chat that comes in at night is due after the next opening)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta

from crm_backend.config import HOSPITAL_TZ, Settings


def _window(settings: Settings) -> tuple[time, time, set[int]]:
    start_text, _, end_text = settings.staffed_hours.partition("-")
    start = time.fromisoformat(start_text.strip())
    end = time.fromisoformat(end_text.strip())
    days = {int(day) for day in settings.staffed_days.split(",") if day.strip()}
    return start, end, days


def staffed_periods(settings: Settings, at: datetime) -> Iterator[tuple[datetime, datetime]]:
    """The staffed periods (UTC opening, closing) that close after `at`, in order, without end; the
    first may have opened before `at`.

    A window like 20:00-08:00 runs overnight: the part after midnight belongs to the day it started,
    so STAFFED_DAYS names the days a shift starts. A window whose start equals its end (00:00-00:00)
    is staffed around the clock.
    """
    start, end, days = _window(settings)
    if not days & set(range(1, 8)):
        raise ValueError("STAFFED_DAYS names no weekday")
    day = at.astimezone(HOSPITAL_TZ).date() - timedelta(days=1)  # yesterday's shift may still run
    while True:
        if day.isoweekday() in days:
            opens = datetime.combine(day, start, tzinfo=HOSPITAL_TZ)
            closing_day = day if start < end else day + timedelta(days=1)
            closes = datetime.combine(closing_day, end, tzinfo=HOSPITAL_TZ)
            if closes > at:
                yield opens.astimezone(UTC), closes.astimezone(UTC)
        day += timedelta(days=1)


def is_staffed(settings: Settings, at: datetime) -> bool:
    opens, _ = next(staffed_periods(settings, at))
    return opens <= at


def next_opening(settings: Settings, at: datetime) -> datetime:
    """The next moment staff are on duty (UTC); `at` itself if they are now."""
    return add_staffed_time(settings, at, 0)


def add_staffed_time(settings: Settings, at: datetime, seconds: float) -> datetime:
    """The moment (UTC) when `seconds` of staffed time have passed since `at`: the clock waits for
    the next opening and stops at each closing, so a period's rest carries into the next one."""
    left = timedelta(seconds=seconds)
    for opens, closes in staffed_periods(settings, at):
        begin = max(opens, at)
        if begin + left <= closes:
            return begin + left
        left -= closes - begin
    raise AssertionError("staffed_periods never ends")


def staffed_seconds(settings: Settings, since: datetime, until: datetime) -> float:
    """Staffed time between two moments, in seconds (0 if `until` is not after `since`)."""
    total = 0.0
    for opens, closes in staffed_periods(settings, since):
        if opens >= until:
            break
        total += (min(closes, until) - max(opens, since)).total_seconds()
    return max(total, 0.0)


def describe_opening(opening: datetime, now: datetime) -> str:
    """今天/明天/周X 08:00, as a patient would say it."""
    local_open = opening.astimezone(HOSPITAL_TZ)
    local_now = now.astimezone(HOSPITAL_TZ)
    days = (local_open.date() - local_now.date()).days
    day = {0: "今天", 1: "明天", 2: "后天"}.get(days, "周" + "一二三四五六日"[local_open.weekday()])
    return f"{day} {local_open:%H:%M}"
