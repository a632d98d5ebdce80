"""A complaint's day and ward in the patient's words (crm_backend/complaints/intake_words.py): days
are in the past, unclear words give nothing."""

from __future__ import annotations

from datetime import date

import pytest

from crm_backend.complaints.intake_words import day_of, ward_of

TODAY = date(2026, 12, 5)  # a Saturday


@pytest.mark.parametrize(
    ("text", "day"),
    [
        ("今天早上", date(2026, 12, 5)),
        ("昨天上午", date(2026, 12, 4)),
        ("前天下午", date(2026, 12, 3)),
        ("大前天", date(2026, 12, 2)),
        ("三天前", date(2026, 12, 2)),
        ("周三", date(2026, 12, 2)),
        ("上周五", date(2026, 11, 27)),
        ("12月1日", date(2026, 12, 1)),
        ("12月20号", date(2025, 12, 20)),
        ("11.28", date(2026, 11, 28)),
        ("3号", date(2026, 12, 3)),
        ("8号", date(2026, 11, 8)),
        ("2026年11月30日", date(2026, 11, 30)),
        ("2027-01-02", None),
        ("记不清了", None),
        ("上次住院的时候", None),
        ("十十号", None),  # not a number: no day, not an error
        ("十一月十十日", None),
    ],
)
def test_the_day_a_complaint_names(text: str, day: date | None) -> None:
    assert day_of(text, TODAY) == day


@pytest.mark.parametrize(
    ("text", "ward"),
    [
        ("心内科二病区", "二病区"),
        ("住院部5楼心内科", "5楼"),
        ("骨科3病区12床", "3病区12床"),
        ("儿科门诊", None),
    ],
)
def test_the_ward_a_complaint_names(text: str, ward: str | None) -> None:
    assert ward_of(text) == ward
