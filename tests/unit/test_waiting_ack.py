"""A patient waiting for staff is acknowledged: the rule (route.acknowledge_waiting) and the words
(escalations/waiting.py), without the stack; tests/e2e/test_waiting.py runs them through it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from crm_backend.config import Settings
from crm_backend.conversations.route import StaffWait, WaitingAck, acknowledge_waiting, asks_for_person
from crm_backend.escalations.waiting import Wait, wording

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai")).astimezone(UTC)  # a Monday
EVERY = timedelta(minutes=3)
SETTINGS = Settings(STAFFED_HOURS="08:00-20:00", STAFFED_DAYS="1,2,3,4,5")


@pytest.mark.parametrize(
    ("text", "asks"),
    [
        ("转人工", True),
        ("人工！", True),
        ("我要找真人客服", True),
        ("怎么还没有人工", True),
        ("你好", False),
        (None, False),
        ("刚才客服说让我明天早上空腹来抽血，需要带什么", False),  # long: about something else
    ],
)
def test_asks_for_person(text: str | None, asks: bool) -> None:
    assert asks_for_person(text) is asks


def test_the_first_message_while_waiting_is_acknowledged() -> None:
    assert acknowledge_waiting("还要等多久", StaffWait(False, None), NOW, EVERY) is WaitingAck.WAITING


def test_at_most_one_acknowledgement_per_interval() -> None:
    recent = StaffWait(False, NOW - EVERY + timedelta(seconds=1))
    assert acknowledge_waiting("还要等多久", recent, NOW, EVERY) is None
    assert acknowledge_waiting("还要等多久", StaffWait(False, NOW - EVERY), NOW, EVERY) is WaitingAck.WAITING


def test_a_repeated_request_for_a_person_is_always_acknowledged() -> None:
    recent = StaffWait(False, NOW)
    assert acknowledge_waiting("转人工", recent, NOW, EVERY) is WaitingAck.REPEATED_REQUEST


def test_nothing_is_added_once_a_person_answers() -> None:
    attended = StaffWait(True, None)
    assert acknowledge_waiting("转人工", attended, NOW, EVERY) is None
    assert acknowledge_waiting("还要等多久", attended, NOW, EVERY) is None


def test_wording_in_the_queue_names_the_place() -> None:
    text = wording(WaitingAck.WAITING, Wait(True, 2, False, False), SETTINGS, NOW)
    assert "前面还有 2 位" in text and "已收到" in text
    repeated = wording(WaitingAck.REPEATED_REQUEST, Wait(True, 0, False, False), SETTINGS, NOW)
    assert "已经在为您转接人工服务" in repeated and "前面还有 0 位" in repeated


def test_wording_when_the_agent_is_away_or_looking() -> None:
    assert "暂时离开" in wording(WaitingAck.WAITING, Wait(True, 0, True, False), SETTINGS, NOW)
    assert "正在查看" in wording(WaitingAck.WAITING, Wait(True, 0, True, True), SETTINGS, NOW)


def test_wording_outside_staffed_hours_says_when_staff_reply() -> None:
    night = datetime(2026, 11, 23, 23, 0, tzinfo=ZoneInfo("Asia/Shanghai")).astimezone(UTC)
    text = wording(WaitingAck.WAITING, Wait(False, 3, False, False), SETTINGS, night)
    assert "非工作时间" in text and "明天 08:00" in text and "前面还有" not in text
    friday = datetime(2026, 11, 27, 21, 0, tzinfo=ZoneInfo("Asia/Shanghai")).astimezone(UTC)
    assert "周一 08:00" in wording(WaitingAck.REPEATED_REQUEST, Wait(False, 0, False, False), SETTINGS, friday)
