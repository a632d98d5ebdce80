"""The send-window rule appointment reminders and follow-up check-ins share (config.within_local_hours):
hospital time, the start included and the end excluded, whatever zone the instant comes in."""

from __future__ import annotations

from datetime import UTC, datetime

from crm_backend.appointments.reminders import in_send_window
from crm_backend.config import HOSPITAL_TZ, Settings, within_local_hours
from crm_backend.followups.dispatch import in_send_hours


def _at(hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, 12, 5, hour, minute, second, tzinfo=HOSPITAL_TZ)


def test_the_start_is_inside_and_the_end_outside():
    assert not within_local_hours(_at(8, 59, 59), "09:00", "20:00")
    assert within_local_hours(_at(9), "09:00", "20:00")
    assert within_local_hours(_at(19, 59, 59), "09:00", "20:00")
    assert not within_local_hours(_at(20), "09:00", "20:00")


def test_an_instant_in_utc_is_read_in_hospital_time():
    # 16:30 UTC is 00:30 the next day in Shanghai (UTC+8, no daylight saving): night.
    assert not within_local_hours(datetime(2026, 12, 5, 16, 30, tzinfo=UTC), "09:00", "20:00")
    # 01:00 UTC is 09:00 in Shanghai.
    assert within_local_hours(datetime(2026, 12, 5, 1, 0, tzinfo=UTC), "09:00", "20:00")


def test_reminders_and_check_ins_apply_the_same_rule():
    settings = Settings.model_validate(
        {
            "REMINDER_SEND_FROM": "08:30",
            "REMINDER_SEND_UNTIL": "21:00",
            "FOLLOWUP_SEND_FROM": "08:30",
            "FOLLOWUP_SEND_UNTIL": "21:00",
        }
    )
    for instant in (_at(8, 29), _at(8, 30), _at(20, 59), _at(21), datetime(2026, 12, 5, 13, 0, tzinfo=UTC)):
        assert in_send_window(settings, instant) == in_send_hours(settings, instant)
    assert in_send_hours(settings, _at(8, 30)) and not in_send_hours(settings, _at(21))
