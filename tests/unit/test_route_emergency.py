"""The red-flag rule of a turn's route: an emergency is decided before consent, staff, a rating or
the bot see the message; negations and hypotheticals are not emergencies."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from crm_backend.conversations import red_flag_screen
from crm_backend.conversations.models import ConversationStatus
from crm_backend.conversations.pending import PendingPush
from crm_backend.conversations.route import (
    DIALOGUE,
    Limits,
    Route,
    RouteState,
    StaffWait,
    Turn,
    acknowledge_waiting,
    decide,
)

NOW = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)
LIMITS = Limits(max_attempts=5, retry_for=timedelta(minutes=10))
BOT = RouteState(
    identity_id=7,
    consent_granted=True,
    conversation_id=3,
    conversation_status=ConversationStatus.BOT,
    rating_pending=False,
    last_message_at=NOW - timedelta(minutes=5),
)
FATHER = "我爸胸口疼得厉害还出冷汗"


def _text(text: str, attempts: int = 1) -> Turn:
    return Turn("text", text, attempts)


@pytest.mark.parametrize(
    "state",
    [
        BOT,
        replace(BOT, consent_granted=None),  # never answered the consent question
        replace(BOT, consent_granted=False),  # declined
        replace(BOT, conversation_status=ConversationStatus.ESCALATED),  # staff hold the chat
        replace(BOT, rating_pending=True),  # asked to rate the staff's help
    ],
    ids=["bot", "consent_unanswered", "consent_declined", "staff_hold", "rating"],
)
def test_an_emergency_takes_the_emergency_route_in_every_state(state: RouteState) -> None:
    assert decide(_text(FATHER), state, LIMITS) is Route.EMERGENCY
    voice = Turn("voice", "孩子三个月发烧38度5", 1)
    assert decide(voice, state, LIMITS) is Route.EMERGENCY


@pytest.mark.parametrize("text", ["如果发烧怎么办", "没有胸痛", "上个月胸口闷过一次现在好了", "我想挂个号"])
def test_a_hypothetical_a_negation_or_the_past_goes_where_it_went_before(text: str) -> None:
    assert decide(_text(text), BOT, LIMITS) is Route.BOT
    staff = replace(BOT, conversation_status=ConversationStatus.ESCALATED)
    assert decide(_text(text), staff, LIMITS) is Route.STAFF
    assert decide(_text(text), replace(BOT, consent_granted=None), LIMITS) is Route.CONSENT


def test_events_dialogues_and_media_are_not_screened() -> None:
    assert decide(Turn("event", None, 1), BOT, LIMITS) is Route.EVENT
    assert decide(Turn(DIALOGUE, None, 1), BOT, LIMITS) is Route.BOT
    assert decide(Turn("image", None, 1), BOT, LIMITS) is Route.MEDIA


def test_only_a_turn_given_up_on_comes_before_the_screen() -> None:
    tired = Turn("text", FATHER, LIMITS.max_attempts + 1, waited=LIMITS.retry_for)
    assert decide(tired, BOT, LIMITS) is Route.GIVE_UP
    assert decide(Turn("text", FATHER, LIMITS.max_attempts + 1), BOT, LIMITS) is Route.EMERGENCY


def test_an_emergency_is_never_asked_of_the_bot_early() -> None:
    """The pending read asks Rasa at once only for the bot's route: an emergency waits for nobody."""
    push = PendingPush(
        inbound_id=1, msg_type="text", payload={"Content": FATHER}, attempts=0,
        create_time=int(NOW.timestamp()), state=BOT,
    )  # fmt: skip
    assert not push.goes_to_bot(LIMITS)
    assert replace(push, payload={"Content": "没有胸痛"}).goes_to_bot(LIMITS)


def test_the_system_does_not_add_a_waiting_notice_to_an_emergency_answer() -> None:
    unanswered = StaffWait(answered=False, agent_online=False, agent_last_wrote_at=None, last_ack_at=None)
    assert acknowledge_waiting(Route.EMERGENCY, FATHER, unanswered, NOW, timedelta(minutes=2)) is None
    assert acknowledge_waiting(Route.STAFF, "咳嗽", unanswered, NOW, timedelta(minutes=2)) is not None


def test_the_mark_names_the_red_flags_with_the_rule_version() -> None:
    mark = red_flag_screen.mark("我爸突然胸痛，喘不上气")
    assert mark is not None
    assert mark["rules"] == ["cardiac_chest_pain", "severe_breathlessness"]
    assert mark["version"] and len(mark["flags"]) == 2
    assert red_flag_screen.flags_of({red_flag_screen.MARK_KEY: mark}) == mark["flags"]
    assert red_flag_screen.mark("没有胸痛，就是咳嗽") is None
    assert red_flag_screen.flags_of(None) == [] and red_flag_screen.flags_of({"other": 1}) == []


def test_a_red_flag_at_the_end_of_a_long_message_is_found() -> None:
    """A patient who writes a long story first must not have the emergency at its end cut off."""
    story = "我想先说一下这几年的情况，" + "平时身体还可以，偶尔有点累。" * 120
    assert len(story) > 1500
    assert not red_flag_screen.screened(story).emergency
    assert red_flag_screen.screened(story + "可是刚才我爸突然嘴歪了，说话也说不清楚").emergency
