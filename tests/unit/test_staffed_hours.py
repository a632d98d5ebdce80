"""Outside staffed hours the patient is told when a person will reply, in hospital local time."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from crm_backend.config import Settings
from crm_backend.escalations.hours import describe_opening, is_staffed, next_opening

SETTINGS = Settings(STAFFED_HOURS="08:00-20:00", STAFFED_DAYS="1,2,3,4,5")


def shanghai(day: int, hour: int, minute: int = 0) -> datetime:
    """A November 2026 time on a Shanghai wall clock, as UTC (23 November 2026 is a Monday)."""
    return datetime(2026, 11, day, hour, minute, tzinfo=ZoneInfo("Asia/Shanghai")).astimezone(UTC)


@pytest.mark.parametrize(
    ("at", "staffed"),
    [
        (shanghai(23, 9), True),  # Monday 09:00
        (shanghai(23, 7, 59), False),  # Monday before opening
        (shanghai(23, 20), False),  # closing time is exclusive
        (shanghai(28, 10), False),  # Saturday
    ],
)
def test_is_staffed(at: datetime, staffed: bool) -> None:
    assert is_staffed(SETTINGS, at) is staffed


def test_next_opening_after_hours_is_tomorrow_morning() -> None:
    now = shanghai(23, 21)  # Monday 21:00
    opening = next_opening(SETTINGS, now)
    assert opening == shanghai(24, 8)
    assert describe_opening(opening, now) == "明天 08:00"


def test_next_opening_skips_the_weekend() -> None:
    now = shanghai(27, 22)  # Friday 22:00
    opening = next_opening(SETTINGS, now)
    assert opening == shanghai(30, 8)  # Monday
    assert describe_opening(opening, now) == "周一 08:00"


def test_during_hours_the_opening_is_now() -> None:
    now = shanghai(24, 11)
    assert next_opening(SETTINGS, now) == now


NIGHT_DESK = Settings(STAFFED_HOURS="20:00-08:00", STAFFED_DAYS="1,2,3,4,5")


@pytest.mark.parametrize(
    ("at", "staffed"),
    [
        (shanghai(23, 21), True),  # Monday evening
        (shanghai(24, 3), True),  # the small hours belong to Monday's shift
        (shanghai(24, 12), False),  # Tuesday noon
        (shanghai(28, 21), False),  # Saturday evening: no shift starts
        (shanghai(28, 3), True),  # Saturday 03:00 is still Friday's shift
    ],
)
def test_overnight_window(at: datetime, staffed: bool) -> None:
    assert is_staffed(NIGHT_DESK, at) is staffed


@pytest.mark.parametrize(
    ("hours", "days"),
    [
        ("8-20", "1,2"),
        ("08:00-25:00", "1"),
        ("08:00", "1"),
        ("08:00-20:00", ""),
        ("08:00-20:00", "0,8"),
        ("08:00-20:00", "周一"),
    ],
)
def test_staffed_hours_that_cannot_be_read_are_refused_at_start(hours: str, days: str) -> None:
    """A typo must stop the process at start-up, not turn every later escalation into an error."""
    with pytest.raises(ValidationError):
        Settings(STAFFED_HOURS=hours, STAFFED_DAYS=days)
