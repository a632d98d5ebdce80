"""Staffed hours in hospital local time: outside them the patient is told when a person will reply."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from crm_backend.config import Settings

HOSPITAL_TZ = ZoneInfo("Asia/Shanghai")


def _window(settings: Settings) -> tuple[time, time, set[int]]:
    start_text, _, end_text = settings.staffed_hours.partition("-")
    start = time.fromisoformat(start_text.strip())
    end = time.fromisoformat(end_text.strip())
    days = {int(day) for day in settings.staffed_days.split(",") if day.strip()}
    return start, end, days


def is_staffed(settings: Settings, at: datetime) -> bool:
    """A window like 20:00-08:00 runs overnight: the part after midnight belongs to the day it started."""
    start, end, days = _window(settings)
    local = at.astimezone(HOSPITAL_TZ)
    if start <= end:
        return local.isoweekday() in days and start <= local.time() < end
    if local.time() >= start:
        return local.isoweekday() in days
    started = local - timedelta(days=1)
    return local.time() < end and started.isoweekday() in days


def next_opening(settings: Settings, at: datetime) -> datetime:
    """The next moment staff are on duty (UTC); `at` itself if they are now."""
    if is_staffed(settings, at):
        return at
    start, _, days = _window(settings)
    local = at.astimezone(HOSPITAL_TZ)
    for offset in range(8):
        day = (local + timedelta(days=offset)).date()
        opening = datetime.combine(day, start, tzinfo=HOSPITAL_TZ)
        if opening > local and opening.isoweekday() in days:
            return opening.astimezone(UTC)
    raise ValueError("STAFFED_DAYS names no weekday")


def describe_opening(opening: datetime, now: datetime) -> str:
    """今天/明天/周X 08:00, as a patient would say it."""
    local_open = opening.astimezone(HOSPITAL_TZ)
    local_now = now.astimezone(HOSPITAL_TZ)
    days = (local_open.date() - local_now.date()).days
    day = {0: "今天", 1: "明天", 2: "后天"}.get(days, "周" + "一二三四五六日"[local_open.weekday()])
    return f"{day} {local_open:%H:%M}"
