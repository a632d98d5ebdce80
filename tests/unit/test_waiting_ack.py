"""A patient waiting for staff is acknowledged: the rule (route.acknowledge_waiting) and the words
(escalations/waiting.py), without the stack; tests/e2e/test_waiting.py runs them through it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from crm_backend.config import Settings
from crm_backend.conversations.route import Route, StaffWait, WaitingAck, acknowledge_waiting, asks_for_person
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


def waiting(last_ack_at: datetime | None = None) -> StaffWait:
    """Nobody has answered yet."""
    return StaffWait(answered=False, agent_online=False, agent_last_wrote_at=None, last_ack_at=last_ack_at)


def test_the_first_message_while_waiting_is_acknowledged() -> None:
    assert acknowledge_waiting(Route.STAFF, "还要等多久", waiting(), NOW, EVERY) is WaitingAck.WAITING


def test_at_most_one_acknowledgement_per_interval() -> None:
    recent = waiting(NOW - EVERY + timedelta(seconds=1))
    assert acknowledge_waiting(Route.STAFF, "还要等多久", recent, NOW, EVERY) is None
    assert (
        acknowledge_waiting(Route.STAFF, "还要等多久", waiting(NOW - EVERY), NOW, EVERY) is WaitingAck.WAITING
    )


def test_a_repeated_request_for_a_person_is_always_acknowledged() -> None:
    assert acknowledge_waiting(Route.STAFF, "转人工", waiting(NOW), NOW, EVERY) is WaitingAck.REPEATED_REQUEST


def test_nothing_is_added_while_a_person_who_answered_is_there() -> None:
    online = StaffWait(answered=True, agent_online=True, agent_last_wrote_at=None, last_ack_at=None)
    just_wrote = StaffWait(answered=True, agent_online=False, agent_last_wrote_at=NOW, last_ack_at=None)
    for attended in (online, just_wrote):
        assert acknowledge_waiting(Route.STAFF, "转人工", attended, NOW, EVERY) is None
        assert acknowledge_waiting(Route.STAFF, "还要等多久", attended, NOW, EVERY) is None


def test_an_agent_who_answered_and_went_away_leaves_the_patient_waiting_again() -> None:
    away = StaffWait(answered=True, agent_online=False, agent_last_wrote_at=NOW - EVERY, last_ack_at=None)
    assert acknowledge_waiting(Route.STAFF, "还要等多久", away, NOW, EVERY) is WaitingAck.WAITING


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
    assert "周一 08:00" in wording(
        WaitingAck.REPEATED_REQUEST, Wait(False, 0, False, False), SETTINGS, friday
    )


def test_a_message_answered_on_its_own_route_is_not_acknowledged_again() -> None:
    assert acknowledge_waiting(Route.CONSENT, "撤回同意", waiting(), NOW, EVERY) is None
