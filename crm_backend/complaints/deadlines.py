"""When a complaint's answer is due: working days on China's official calendar (《医疗机构投诉管理办法》).

The State Council publishes each year's public holidays and the weekend days worked in exchange
(调休) every autumn; `chinese_calendar` (PyPI `chinesecalendar`) ships them as data and is updated
within days of each notice. A year the installed version does not cover yet is counted as Monday to
Friday without holidays: holidays only ever move a deadline later, so the case is due no later than
the official calendar would make it (a swapped Saturday aside), and a warning says to update the
package.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import chinese_calendar

from crm_backend.config import HOSPITAL_TZ

log = logging.getLogger(__name__)

#: Working days for feedback: one department, or several (第十七条 of the 2019 rules).
ONE_DEPARTMENT_DAYS = 5
SEVERAL_DEPARTMENTS_DAYS = 10
#: Years already warned about in this process (one warning each).
_uncovered_years: set[int] = set()


def is_working_day(day: date) -> bool:
    """The official calendar's answer; Monday to Friday for a year it does not cover (logged)."""
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        if day.year not in _uncovered_years:
            _uncovered_years.add(day.year)
            log.warning(
                "the holiday calendar does not cover %s: counting Monday to Friday; update chinesecalendar",
                day.year,
            )
        return day.weekday() < 5


def covers(day: date) -> bool:
    """Whether the installed calendar knows the official holidays of `day`'s year."""
    try:
        chinese_calendar.is_workday(day)
    except NotImplementedError:
        return False
    return True


def add_working_days(start: date, days: int) -> date:
    """The `days`-th working day after `start` (the day of receipt itself does not count)."""
    day = start
    counted = 0
    while counted < days:
        day += timedelta(days=1)
        if is_working_day(day):
            counted += 1
    return day


def previous_working_day(day: date) -> date:
    day -= timedelta(days=1)
    while not is_working_day(day):
        day -= timedelta(days=1)
    return day


@dataclass(frozen=True, slots=True)
class Deadline:
    #: The hospital-local day by whose end the patient must have heard back.
    due_on: date
    #: The end of that day (hospital time), stored in UTC.
    due_at: datetime
    #: The start of the last working day before it: one working day left, the case is flagged.
    nearing_at: datetime
    working_days: int
    #: False when the holiday calendar did not cover every day counted (Monday to Friday assumed).
    official_calendar: bool


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time.min, HOSPITAL_TZ)


def deadline_for(received_at: datetime, several_departments: bool = False) -> Deadline:
    """The deadline of a case received at `received_at` (aware)."""
    days = SEVERAL_DEPARTMENTS_DAYS if several_departments else ONE_DEPARTMENT_DAYS
    received_on = received_at.astimezone(HOSPITAL_TZ).date()
    due_on = add_working_days(received_on, days)
    official = all(covers(received_on + timedelta(days=n)) for n in range((due_on - received_on).days + 1))
    return Deadline(
        due_on=due_on,
        due_at=_start_of(due_on + timedelta(days=1)),
        nearing_at=_start_of(previous_working_day(due_on)),
        working_days=days,
        official_calendar=official,
    )


def working_days_left(now: datetime, due_on: date) -> int:
    """Working days from tomorrow (hospital time) to `due_on`, both ends included; 0 on the due day
    and after it."""
    today = now.astimezone(HOSPITAL_TZ).date()
    left = 0
    day = today
    while day < due_on:
        day += timedelta(days=1)
        if is_working_day(day):
            left += 1
    return left
