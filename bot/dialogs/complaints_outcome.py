"""The patient's reply to the hospital's answer to a case: accepted or not, and how satisfied (1-5).

Staff answer a case in the console; the CRM sends that answer and then starts this dialogue
(start_dialogue, intent complaint_outcome, entity case_number). `action_complaint_outcome_start`
checks the case with the bot API; `complaint_outcome_form` asks whether the patient accepts the
outcome and for a score, reads the replies itself (complaints_reading.py: a negation decides first,
"不太满意" is not accepting), and records them; not accepting reopens the case in the CRM.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from dialogs import complaints_reading as reading
from dialogs.complaints import KIND_LABEL, text_of
from dialogs.crm import CRM, CRMUnavailable
from dialogs.handoff import request_for

log = logging.getLogger(__name__)

CASE = "complaint_outcome_case"
ACCEPTS = "complaint_accepts"
SATISFACTION = "complaint_satisfaction"
SLOTS = (CASE, ACCEPTS, SATISFACTION)

ASK_ACCEPTS = "您是否接受这个处理结果？请回复“接受”或“不接受”。"
ASK_SATISFACTION = "您对这次处理的满意程度打几分？请回复 1 到 5 的数字（5 分最满意）。"
ACCEPTED = "感谢您的反馈！这件{kind}就此办结。如有其他需要，随时发消息给我。"
REOPENED = "好的，已记录您不接受这个结果，这件{kind}已重新打开，工作人员会再次跟进并尽快与您联系。"
CRM_DOWN = "抱歉，系统暂时无法记录您的回复，工作人员会再联系您。您也可以回复“人工”。"
_CASE_ENTITY = re.compile(r"^[A-Za-z0-9-]{4,40}$")


def _case_number(tracker: Tracker) -> str | None:
    for entity in tracker.latest_message.get("entities") or []:
        value = str(entity.get("value", ""))
        if entity.get("entity") == "case_number" and _CASE_ENTITY.match(value):
            return value
    return None


def _ended(outcome: str) -> list[dict[str, Any]]:
    return [SlotSet(ACCEPTS, outcome), SlotSet(SATISFACTION, outcome), SlotSet("requested_slot", None)]


class ActionComplaintOutcomeStart(Action):
    """The CRM asks about one answered case: it must be this account's (otherwise nothing is said)."""

    def name(self) -> str:
        return "action_complaint_outcome_start"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        number = _case_number(tracker)
        if number is None:
            log.error("complaint outcome started without a case_number: %s", tracker.latest_message)
            return [SlotSet(CASE, None), *_ended("closed")]
        try:
            answer = await CRM(tracker.sender_id).complaint_case(number)
        except CRMUnavailable:
            log.exception("complaint outcome start: CRM unavailable")
            return [SlotSet(CASE, None), *_ended("error")]
        if not answer.ok:
            log.error("complaint %s refused for %s: %s", number, tracker.sender_id, answer.body)
            return [SlotSet(CASE, None), *_ended("closed")]
        kind = KIND_LABEL.get(str(answer.body.get("kind")), "投诉")
        dispatcher.utter_message(text=f"关于您的{kind}（编号 {number}），工作人员已经给您答复。")
        return [SlotSet(CASE, number), SlotSet(ACCEPTS, None), SlotSet(SATISFACTION, None)]


class ValidateComplaintOutcomeForm(Action):
    """Each reply: accepted or not, then the score; both recorded at once."""

    def name(self) -> str:
        return "validate_complaint_outcome_form"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        requested = tracker.get_slot("requested_slot")
        accepts = tracker.get_slot(ACCEPTS)
        if tracker.get_slot(SATISFACTION) is not None:
            return [SlotSet("requested_slot", None)]
        if requested is None:
            return [SlotSet("requested_slot", SATISFACTION if accepts is not None else ACCEPTS)]
        text = text_of(tracker)
        if text and reading.asks_for_person(text):
            dispatcher.utter_message(json_message=request_for(f"投诉 {text}", booking=False))
            return _ended("handoff")
        if requested == ACCEPTS:
            reply = reading.read_acceptance(text)
            if reply is None:
                return [SlotSet(ACCEPTS, None), SlotSet("requested_slot", ACCEPTS)]
            return [SlotSet(ACCEPTS, reply), SlotSet("requested_slot", SATISFACTION)]
        score = reading.read_satisfaction(text)
        if score is None:
            return [SlotSet(SATISFACTION, None), SlotSet("requested_slot", SATISFACTION)]
        return await self._record(dispatcher, tracker, bool(accepts), score)

    async def _record(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, accepts: bool, score: int
    ) -> list[dict[str, Any]]:
        number = str(tracker.get_slot(CASE))
        try:
            answer = await CRM(tracker.sender_id).complaint_outcome(number, accepts, score)
        except CRMUnavailable:
            log.exception("complaint outcome: CRM unavailable")
            dispatcher.utter_message(text=CRM_DOWN)
            return _ended("error")
        if not answer.ok:
            log.error("complaint outcome %s refused for %s: %s", number, tracker.sender_id, answer.body)
            dispatcher.utter_message(text=CRM_DOWN)
            return _ended("error")
        kind = KIND_LABEL.get(str(answer.body.get("kind")), "投诉")
        dispatcher.utter_message(text=(ACCEPTED if accepts else REOPENED).format(kind=kind))
        return [SlotSet(SATISFACTION, score), SlotSet("requested_slot", None)]


class ActionAskComplaintAccepts(Action):
    def name(self) -> str:
        return "action_ask_complaint_accepts"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        dispatcher.utter_message(text=ASK_ACCEPTS)
        return []


class ActionAskComplaintSatisfaction(Action):
    def name(self) -> str:
        return "action_ask_complaint_satisfaction"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        dispatcher.utter_message(text=ASK_SATISFACTION)
        return []


class ActionComplaintOutcomeEnd(Action):
    def name(self) -> str:
        return "action_complaint_outcome_end"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        return [SlotSet(slot, None) for slot in SLOTS]
