"""不想再收到随访 with no check-in open: the CRM names whose follow-up would stop, the patient confirms.

Built like the check-in dialogue (followup.py): `action_followup_opt_out_start` asks the CRM's bot
API which running follow-ups this account answers for (its own, and the 就诊人 it manages). None:
the CRM's message says so and the form ends at once. Otherwise the confirmation is the prompt of
`followup_opt_out_form`, whose one required slot, `followup_opt_out_answer`, stays empty until the
CRM has read the reply (validate_followup_opt_out_form: "确定" stops, "取消" keeps, a number picks
one of several, "人工" hands over, anything else is asked once more and then keeps). Rasa's intent
never decides what the reply means.
"""

from __future__ import annotations

import logging
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from dialogs.crm import CRM, CRMUnavailable
from dialogs.followup import _say, _text
from dialogs.handoff import request_for

log = logging.getLogger(__name__)

#: The form's one required slot: empty while the confirmation is asked, then how it ended.
ANSWER = "followup_opt_out_answer"
#: The enrolments the confirmation named, in its order.
ENROLMENTS = "followup_opt_out_enrolments"
PROMPT = "followup_opt_out_prompt"
#: True once the confirmation was asked a second time (an unclear reply then keeps everything).
ASKED_AGAIN = "followup_opt_out_asked_again"
SLOTS = (ANSWER, ENROLMENTS, PROMPT, ASKED_AGAIN)

CRM_DOWN = "抱歉，随访系统暂时无法处理您的请求，请稍后再试，或回复“人工”由工作人员为您办理。"


def _ended(outcome: str) -> list[dict[str, Any]]:
    return [SlotSet(ANSWER, outcome), SlotSet("requested_slot", None)]


class ActionFollowupOptOutStart(Action):
    """The patient asked to stop follow-up: the CRM names whose follow-ups would stop (or none)."""

    def name(self) -> str:
        return "action_followup_opt_out_start"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        try:
            answer = await CRM(tracker.sender_id).followup_opt_out_request()
        except CRMUnavailable:
            log.exception("follow-up opt-out: CRM unavailable")
            dispatcher.utter_message(text=CRM_DOWN)
            return [SlotSet(ANSWER, "error")]
        if not answer.ok:
            log.error("follow-up opt-out refused for %s: %s", tracker.sender_id, answer.body)
            dispatcher.utter_message(text=CRM_DOWN)
            return [SlotSet(ANSWER, "error")]
        turn = answer.body
        _say(dispatcher, turn)
        if turn.get("step") != "confirm":
            return [SlotSet(ANSWER, str(turn.get("step") or "none"))]
        return [
            SlotSet(ANSWER, None),
            SlotSet(ENROLMENTS, [int(i) for i in turn.get("enrolments") or []]),
            SlotSet(PROMPT, str(turn.get("question") or "")),
            SlotSet(ASKED_AGAIN, False),
        ]


class ValidateFollowupOptOutForm(Action):
    """The reply to the confirmation goes to the CRM, which reads it and stops or keeps."""

    def name(self) -> str:
        return "validate_followup_opt_out_form"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        enrolments = list(tracker.get_slot(ENROLMENTS) or [])
        if tracker.get_slot(ANSWER) is not None or not enrolments:
            return [SlotSet("requested_slot", None)]  # nothing to confirm
        if tracker.get_slot("requested_slot") is None:
            # Activation: the confirmation is asked next (action_ask_followup_opt_out_answer).
            return [SlotSet("requested_slot", ANSWER)]
        text = _text(tracker)
        if not text:
            return [SlotSet(ANSWER, None), SlotSet("requested_slot", ANSWER)]
        asked_again = bool(tracker.get_slot(ASKED_AGAIN))
        try:
            answer = await CRM(tracker.sender_id).followup_opt_out_reply(text, enrolments, asked_again)
        except CRMUnavailable:
            log.exception("follow-up opt-out reply: CRM unavailable")
            dispatcher.utter_message(text=CRM_DOWN)
            return _ended("error")
        if not answer.ok:
            log.error("follow-up opt-out reply refused for %s: %s", tracker.sender_id, answer.body)
            dispatcher.utter_message(text=CRM_DOWN)
            return _ended("error")
        turn = answer.body
        step = str(turn.get("step") or "kept")
        if step == "handoff":
            # The patient asked for a person: the existing handoff, as in a check-in.
            dispatcher.utter_message(json_message=request_for(text, booking=False))
            return _ended("handoff")
        _say(dispatcher, turn)
        if step != "confirm":
            return _ended(step)
        return [
            SlotSet(PROMPT, str(turn.get("question") or "")),
            SlotSet(ENROLMENTS, [int(i) for i in turn.get("enrolments") or enrolments]),
            SlotSet(ASKED_AGAIN, True),
            SlotSet("requested_slot", ANSWER),
        ]


class ActionAskFollowupOptOutAnswer(Action):
    """Asks the confirmation, as the CRM worded it (whose follow-up, or the numbered list)."""

    def name(self) -> str:
        return "action_ask_followup_opt_out_answer"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        prompt = tracker.get_slot(PROMPT)
        if prompt:
            dispatcher.utter_message(text=str(prompt))
        return []


class ActionFollowupOptOutEnd(Action):
    """The opt-out dialogue is over (everything was said as it ended): forget its slots."""

    def name(self) -> str:
        return "action_followup_opt_out_end"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        return [SlotSet(slot, None) for slot in SLOTS]
