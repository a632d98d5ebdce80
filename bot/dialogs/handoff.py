"""Hand the conversation to people: the patient asked for one, or the bot could not understand.

The action server never touches the CRM: it sends a `json_message` {"escalate": {...}} that the
CRM's gateway turns into a call to `escalate()`, the single way a conversation reaches the console.
That call also pauses this sender's tracker and tells the patient how long the wait is.
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

#: Words that route the request to a specific team (checked in this order).
TEAM_KEYWORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("complaints", ("投诉", "举报", "维权")),
    ("nursing", ("护士", "护理", "伤口", "换药")),
)


#: Why a patient's request for a person is raised, by the team it goes to: (reason, priority).
#: The console shows each reason in words (crm_backend/console/static/js/labels.js).
REQUEST_REASONS: dict[str, tuple[str, str]] = {
    "complaints": ("complaint", "high"),
    "nursing": ("nursing_request", "normal"),
    "service": ("patient_request", "normal"),
}
#: The request came in the middle of booking: people see it was booking that went wrong.
BOOKING_HELP = "booking_help"
BOOKING_FORM = "booking_form"


def escalation_request(reason: str, *, team: str = "service", priority: str = "normal") -> dict[str, Any]:
    return {"escalate": {"reason": reason, "team": team, "priority": priority}}


def team_for(text: str) -> str:
    for team, words in TEAM_KEYWORDS:
        if any(word in text for word in words):
            return team
    return "service"


def was_booking(tracker: Tracker) -> bool:
    """Was the booking form active when the patient's latest message came? The rule that hands
    over from inside the form closes it first, so the form is read from before that message."""
    if (tracker.active_loop or {}).get("name") == BOOKING_FORM:
        return True
    seen_message = False
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            seen_message = True
        elif seen_message and event.get("event") == "active_loop":
            # The last change of the active form before the message: what was open then.
            return event.get("name") == BOOKING_FORM
    return False


def request_for(text: str, *, booking: bool) -> dict[str, Any]:
    """The escalation a patient's request for a person raises: a complaint goes to the complaints
    office, high priority; a request during booking says so."""
    team = team_for(text)
    reason, priority = REQUEST_REASONS[team]
    if booking and team == "service":
        reason = BOOKING_HELP
    return escalation_request(reason, team=team, priority=priority)


class ActionHandoff(Action):
    """The patient asked for a person (人工, 转人工, 找护士, 我要投诉 …)."""

    def name(self) -> str:
        return "action_handoff"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        text = tracker.latest_message.get("text") or ""
        dispatcher.utter_message(json_message=request_for(text, booking=was_booking(tracker)))
        return []
