"""The post-operative check-in (随访) in chat: the CRM starts it, the plan's questions are asked one
at a time, and it ends with a summary and advice by the worst flag.

The CRM starts the dialogue (start_dialogue, intent EXTERNAL_followup_checkin, entity checkin_id),
which opens `followup_form` at once: the form's validation at activation fetches the greeting and
the first question from the bot API, so a start costs Rasa one step and the action server one call
(many check-ins start in the same minute of the morning). The questions are the plan's data, not
Rasa slots: `followup_form` has one required slot, `followup_answer`, that stays empty while
questions remain. Each patient message goes to the CRM (validate_followup_form), which understands
it, records it and answers with what to say and the next question (kept in `followup_prompt`, asked
by the response `utter_ask_followup_answer`). When the check-in ends (complete, postponed, stopped,
handed over, closed) the slot gets that outcome and the form is done. A red or emergency outcome
carries an escalation, sent as the {"escalate": ...} instruction handoff uses.
An answer whose reply is lost is asked again with the same message id (the CRM repeats the turn);
when the CRM cannot be reached at all, a nurse is asked to look at the chat.
"""

from __future__ import annotations

import logging
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from dialogs.crm import CRM, CRMUnavailable
from dialogs.handoff import escalation_request, request_for

log = logging.getLogger(__name__)

FORM = "followup_form"
#: The form's one required slot: empty while questions remain, then how the check-in ended.
ANSWER = "followup_answer"
CHECKIN = "followup_checkin"
PROMPT = "followup_prompt"
#: "ask", or "confirm_opt_out" while the patient is asked to confirm stopping.
STATE = "followup_state"
#: Questions of the patient's that no care answer matched, for the nurse at the end.
NOTED = "followup_noted"
SLOTS = (ANSWER, CHECKIN, PROMPT, STATE, NOTED)

CRM_DOWN = "抱歉，随访系统暂时无法记录您的回答，我们稍后再来问您。如有不适，请及时就医或回复“人工”。"
#: The CRM did not confirm an answer twice: it may have recorded a red or emergency one whose
#: escalation never reached the bot, so a nurse looks at the chat now, as for a red answer
#: (over-triage: never a lost red flag). The escalation is stored by the worker, not the CRM's API.
CRM_DOWN_ESCALATION = escalation_request(
    "随访回答未能确认记录（随访系统无响应），请护士立即查看对话", team="nursing", priority="urgent"
)
#: Steps of the bot API after which the check-in dialogue is over.
ENDING_STEPS = frozenset({"finished", "postponed", "stopped", "closed"})


def _text(tracker: Tracker) -> str:
    text = tracker.latest_message.get("text") or ""
    return "" if text.startswith("/") else text.strip()


def _checkin_id(tracker: Tracker) -> int | None:
    for entity in tracker.latest_message.get("entities") or []:
        if entity.get("entity") == "checkin_id" and str(entity.get("value", "")).isdigit():
            return int(entity["value"])
    return None


def _say(dispatcher: CollectingDispatcher, turn: dict[str, Any]) -> None:
    for message in turn.get("messages") or []:
        dispatcher.utter_message(text=str(message))


def _escalate(dispatcher: CollectingDispatcher, turn: dict[str, Any]) -> None:
    request = turn.get("escalate")
    if isinstance(request, dict) and request.get("reason"):
        escalation = {
            "reason": str(request["reason"]),
            "team": str(request.get("team") or "nursing"),
            "priority": str(request.get("priority") or "urgent"),
        }
        dispatcher.utter_message(json_message={"escalate": escalation})


#: The intent the CRM starts a check-in with (bot/intents/followup.yml).
START_INTENT = "EXTERNAL_followup_checkin"


def _starting(tracker: Tracker) -> bool:
    """The CRM starts the check-in: the form's activation, or its reminder while the form is still
    open (the form takes the check-in up again: greeting and the question not answered yet)."""
    intent = (tracker.latest_message.get("intent") or {}).get("name")
    return intent == START_INTENT


def _other_checkin_open(tracker: Tracker) -> bool:
    """A reminder for one check-in came while the form asks another's questions (a daughter
    answering for both parents): the open one carries on and its question is asked again. The CRM
    holds such a reminder back until the form ends (`resumes_with`), so only a race comes here."""
    open_one = tracker.get_slot(CHECKIN)
    return (
        tracker.get_slot("requested_slot") is not None
        and tracker.get_slot(ANSWER) is None
        and open_one is not None
        and _checkin_id(tracker) != int(open_one)
    )


async def _start(dispatcher: CollectingDispatcher, tracker: Tracker) -> list[dict[str, Any]]:
    """Greet the patient (or the family member) and ask the first question, as the CRM words them."""
    checkin_id = _checkin_id(tracker)
    if checkin_id is None:
        log.error("follow-up check-in started without a checkin_id: %s", tracker.latest_message)
        return _ended("closed")
    try:
        answer = await CRM(tracker.sender_id).followup_start(checkin_id)
    except CRMUnavailable:
        # Nothing is said: the check-in stays open and the dispatcher's reminder follows.
        log.exception("follow-up start: CRM unavailable")
        return _ended("error")
    if not answer.ok:
        log.error("follow-up check-in %s refused for %s: %s", checkin_id, tracker.sender_id, answer.body)
        return _ended("closed")
    turn = answer.body
    _say(dispatcher, turn)
    if turn.get("step") != "ask":
        _escalate(dispatcher, turn)
        return [SlotSet(CHECKIN, checkin_id), *_ended(str(turn.get("step") or "closed"))]
    return [SlotSet(CHECKIN, checkin_id), SlotSet(ANSWER, None), *_next(turn, [])]


def _ended(outcome: str) -> list[dict[str, Any]]:
    """The check-in dialogue is over: the form completes (requested_slot None) with this outcome."""
    return [SlotSet(ANSWER, outcome), SlotSet(STATE, None), SlotSet("requested_slot", None)]


def _next(turn: dict[str, Any], noted: list[str]) -> list[dict[str, Any]]:
    question = turn.get("question") or {}
    return [
        SlotSet(PROMPT, question.get("text") or ""),
        SlotSet(STATE, "ask"),
        SlotSet(NOTED, noted),
        SlotSet("requested_slot", ANSWER),
    ]


class ValidateFollowupForm(Action):
    """Every message while the check-in asks goes to the CRM, which decides what it means."""

    def name(self) -> str:
        return "validate_followup_form"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        if _starting(tracker):
            if _other_checkin_open(tracker):
                return [SlotSet(PROMPT, tracker.get_slot(PROMPT) or ""), SlotSet("requested_slot", ANSWER)]
            return await _start(dispatcher, tracker)
        checkin_id = tracker.get_slot(CHECKIN)
        if tracker.get_slot(ANSWER) is not None or checkin_id is None:
            return [SlotSet("requested_slot", None)]  # ended: nothing to ask
        text = _text(tracker)
        if not text:
            return [SlotSet(PROMPT, tracker.get_slot(PROMPT) or ""), SlotSet("requested_slot", ANSWER)]
        noted = list(tracker.get_slot(NOTED) or [])
        crm = CRM(tracker.sender_id)
        try:
            if tracker.get_slot(STATE) == "confirm_opt_out":
                answer = await crm.followup_opt_out(int(checkin_id), text)
            else:
                message = tracker.latest_message.get("message_id")
                answer = await crm.followup_answer(int(checkin_id), text, noted, message)
        except CRMUnavailable:
            log.exception("follow-up answer: CRM unavailable")
            dispatcher.utter_message(text=CRM_DOWN)
            dispatcher.utter_message(json_message=CRM_DOWN_ESCALATION)
            return _ended("error")
        if not answer.ok:
            log.error("follow-up check-in %s refused for %s: %s", checkin_id, tracker.sender_id, answer.body)
            return _ended("closed")
        turn = answer.body
        step = str(turn.get("step") or "")
        if step == "handoff":
            # The patient asked for a person: the existing handoff (a person takes the chat).
            dispatcher.utter_message(json_message=request_for(text, booking=False))
            return _ended("handoff")
        _say(dispatcher, turn)
        _escalate(dispatcher, turn)
        if step in ENDING_STEPS:
            return _ended(step)
        if step == "confirm_opt_out":
            return [SlotSet(STATE, "confirm_opt_out"), SlotSet(PROMPT, ""), SlotSet("requested_slot", ANSWER)]
        if turn.get("noted"):
            noted.append(str(turn["noted"]))
        return _next(turn, noted)


class ActionFollowupEnd(Action):
    """The check-in dialogue is over (everything was said while it ended): forget its slots."""

    def name(self) -> str:
        return "action_followup_end"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        return [SlotSet(slot, None) for slot in SLOTS]
