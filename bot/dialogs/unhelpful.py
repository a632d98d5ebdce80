"""Two unhelpful answers in a row hand the chat to a person.

The two-stage fallback already gives up after two unclear messages; this covers "超出范围" answers:
an out-of-scope question right after an unhelpful answer (out of scope, "please rephrase", the
fallback's "did you mean ...?", triage's "please say more") is handed over instead of declined
again, and so is an unclear message right after such an answer (bot/dialogs/fallback.py asks).
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from dialogs.handoff import escalation_request

UNHELPFUL_RESPONSES = ("utter_out_of_scope", "utter_ask_rephrase")
#: How the fallback's "did you mean ...?" question starts (bot/dialogs/fallback.py); it did not help either.
AFFIRMATION_PREFIX = "不好意思，我不太确定有没有理解对。"
#: How triage's "please say more" starts (bot/dialogs/triage.py): no department could be named.
TRIAGE_SAY_MORE_PREFIX = "我还没能从您的描述判断该看哪个科。"
UNHELPFUL_REASON = "bot_fallback"


def _unhelpful_texts(domain: DomainDict) -> set[str]:
    responses = domain.get("responses") or {}
    return {
        (variant.get("text") or "").strip()
        for name in UNHELPFUL_RESPONSES
        for variant in responses.get(name) or []
    }


def said_last(tracker: Tracker) -> str | None:
    """What the assistant said last before the patient's latest message (None: nothing yet)."""
    seen_message = False
    for event in reversed(tracker.events):
        kind = event.get("event")
        if kind == "user":
            if seen_message:
                return None
            seen_message = True
        elif kind == "bot" and seen_message:
            return (event.get("text") or "").strip()
    return None


def previous_answer_unhelpful(tracker: Tracker, domain: DomainDict) -> bool:
    """The assistant's last words before the patient's latest message did not help."""
    text = said_last(tracker)
    if text is None:
        return False
    return text in _unhelpful_texts(domain) or text.startswith((AFFIRMATION_PREFIX, TRIAGE_SAY_MORE_PREFIX))


def hand_over_if_unhelpful_again(
    dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
) -> bool:
    """The answer about to be given would be the second unhelpful one in a row: a person takes over."""
    if not previous_answer_unhelpful(tracker, domain):
        return False
    dispatcher.utter_message(response="utter_handing_over")
    dispatcher.utter_message(json_message=escalation_request(UNHELPFUL_REASON))
    return True


class ActionOutOfScope(Action):
    """Decline politely, or hand over when the previous answer was unhelpful too."""

    def name(self) -> str:
        return "action_out_of_scope"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        if not hand_over_if_unhelpful_again(dispatcher, tracker, domain):
            dispatcher.utter_message(response="utter_out_of_scope")
        return []
