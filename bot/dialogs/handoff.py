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


def escalation_request(reason: str, *, team: str = "service", priority: str = "normal") -> dict[str, Any]:
    return {"escalate": {"reason": reason, "team": team, "priority": priority}}


def team_for(text: str) -> str:
    for team, words in TEAM_KEYWORDS:
        if any(word in text for word in words):
            return team
    return "service"


class ActionHandoff(Action):
    """The patient asked for a person (人工, 转人工, 找护士, 我要投诉 …)."""

    def name(self) -> str:
        return "action_handoff"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        text = tracker.latest_message.get("text") or ""
        dispatcher.utter_message(json_message=escalation_request("patient_request", team=team_for(text)))
        return []
