"""The day and the ward in a patient's own words about something that already happened.

The record keeps the patient's words as they were confirmed (when_text, the where answer); these
readings only add what the office sorts and reports by: a date and a ward. Unlike booking's dates
(appointments/dates.py, which look forward), a complaint's day is in the past: "周三" is the last
Wednesday, "3号" the latest 3rd not after today. Anything unclear is left empty.
"""

from __future__ import annotations

import re
from datetime import date, timedelta

_DIGITS = {"零": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_WEEKDAYS = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6}
_RELATIVE = {
    "今天": 0,
    "今早": 0,
    "今晚": 0,
    "昨天": 1,
    "昨晚": 1,
    "昨日": 1,
    "前天": 2,
    "前晚": 2,
    "大前天": 3,
}
_NUMBER = r"(\d{1,2}|[一二三四五六七八九十]{1,3})"
_FULL_DATE = re.compile(r"(20\d\d)\s*[年./-]\s*(\d{1,2})\s*[月./-]\s*(\d{1,2})")
_MONTH_DAY = re.compile(_NUMBER + r"\s*[月./-]\s*" + _NUMBER + r"\s*[日号]?")
_DAY_ONLY = re.compile(_NUMBER + r"\s*[号日]")
_DAYS_AGO = re.compile(_NUMBER + r"\s*天前")
_WEEKDAY = re.compile(r"(上上|上个?|这个?|本)?\s*(?:周|星期|礼拜)([一二三四五六日天])")
_WARD = re.compile(
    r"([\dA-Za-z一二三四五六七八九十东西南北]+\s*(?:病区|病房|号楼|楼|层)(?:\s*\d+\s*(?:床|号床|房))?"
    r"|\d+\s*(?:号)?床|[A-Za-z]?\d+\s*(?:房|病房))"
)
_MAX_WARD_CHARS = 64


def _number(text: str) -> int:
    """A day or month number in digits or Chinese numerals; 0 when it is not one ("十十")."""
    try:
        return _read_number(text)
    except (KeyError, ValueError):
        return 0


def _read_number(text: str) -> int:
    if text.isdigit():
        return int(text)
    if text == "十":
        return 10
    if text.startswith("十"):
        return 10 + _DIGITS[text[1]]
    if text.endswith("十"):
        return _DIGITS[text[0]] * 10
    if "十" in text:
        tens, ones = text.split("十")
        return _DIGITS[tens] * 10 + _DIGITS[ones]
    return _DIGITS.get(text, 0)


def _safe(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _latest(month: int, day: int, today: date) -> date | None:
    """The latest month/day not after today (this year, else last year)."""
    this_year = _safe(today.year, month, day)
    if this_year is not None and this_year <= today:
        return this_year
    return _safe(today.year - 1, month, day)


def _weekday(prefix: str | None, name: str, today: date) -> date:
    weekday = _WEEKDAYS[name]
    monday = today - timedelta(days=today.weekday())
    if prefix and prefix.startswith("上上"):
        return monday - timedelta(weeks=2) + timedelta(days=weekday)
    if prefix and prefix.startswith("上"):
        return monday - timedelta(weeks=1) + timedelta(days=weekday)
    day = monday + timedelta(days=weekday)
    # "周三" said on a Monday means the last one: a complaint is about the past.
    return day if day <= today or prefix else day - timedelta(weeks=1)


def day_of(text: str, today: date) -> date | None:
    """The day a complaint's "when" names, if it names one and it is not in the future."""
    if match := _FULL_DATE.search(text):
        found = _safe(int(match.group(1)), int(match.group(2)), int(match.group(3)))
        return found if found is not None and found <= today else None
    for word, days in sorted(_RELATIVE.items(), key=lambda item: -len(item[0])):
        if word in text:
            return today - timedelta(days=days)
    if match := _DAYS_AGO.search(text):
        return today - timedelta(days=_number(match.group(1)))
    if match := _WEEKDAY.search(text):
        return _weekday(match.group(1), match.group(2), today)
    if match := _MONTH_DAY.search(text):
        month, day = _number(match.group(1)), _number(match.group(2))
        if 1 <= month <= 12:
            return _latest(month, day, today)
    if match := _DAY_ONLY.search(text):
        day = _number(match.group(1))
        this_month = _safe(today.year, today.month, day)
        if this_month is not None and this_month <= today:
            return this_month
        last = today.replace(day=1) - timedelta(days=1)
        return _safe(last.year, last.month, day)
    return None


def ward_of(text: str) -> str | None:
    """The ward, floor, room or bed the patient named ("5楼心内科病区" → "5楼", "3病区12床")."""
    match = _WARD.search(text)
    return match.group(0).strip()[:_MAX_WARD_CHARS] if match else None
