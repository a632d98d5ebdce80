"""Triage in chat: which department for the patient's words, with a booking offer.

The CRM decides (`POST /internal/bot/triage`, red flags first); this module only carries the
answer: an emergency as it is (never a booking offer); an urgent answer (today: no appointment
offered); a recommendation with the offer to book that department; or, when two departments are
close, the CRM's one clarifying question, asked by triage_form before action_triage_recommend asks
the CRM again with both messages.
"""

from __future__ import annotations

import logging
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from dialogs.booking import BOOK, STOPPED, _reset
from dialogs.crm import CRM, Answer, CRMUnavailable
from dialogs.handoff import escalation_request
from dialogs.unhelpful import TRIAGE_SAY_MORE_PREFIX, said_last

log = logging.getLogger(__name__)

EMERGENCY = "emergency"
URGENT = "urgent"
#: The CRM's header saying its answer is a clarifying question, not yet a recommendation.
STEP_HEADER = "x-triage-step"
QUESTION_STEP = "question"
TRIAGE_FORM = "triage_form"
#: Every booking offer starts with this; a yes only books when the offer was the last thing said.
OFFER_PREFIX = "需要帮您预约"
CRM_DOWN = (
    "抱歉，系统暂时无法给出科室建议，请稍后再试，或回复“人工”由工作人员帮您看看。"
    "如果病情紧急，请立即拨打120或直接前往急诊。"
)
SAY_MORE = (
    f"{TRIAGE_SAY_MORE_PREFIX}能再具体说说哪里不舒服、有多久了、是谁不舒服吗？"
    "例如“孩子发烧咳嗽三天了”。也可以回复“人工”咨询工作人员。"
)
URGENT_WITHOUT_DEPARTMENT = (
    "从您的描述看，需要尽快就医：建议今天就到急诊科或当天门诊就诊；如果症状突然加重，请立即拨打120。"
    "以上只是就诊建议，不是诊断。"
)
CLEARED = [
    SlotSet("triage_text", None),
    SlotSet("triage_question", None),
    SlotSet("triage_clarification", None),
]


def _text(tracker: Tracker) -> str:
    text = (tracker.latest_message.get("text") or "").strip()
    return "" if text.startswith("/") else text


def _is_question(answer: Answer) -> bool:
    return any(k.lower() == STEP_HEADER and v == QUESTION_STEP for k, v in answer.headers.items())


def _deliver(answer: Answer, dispatcher: CollectingDispatcher) -> list[dict[str, Any]]:
    """Say the CRM's answer; offer to book its first department unless it is an emergency."""
    body = answer.body
    departments = body.get("departments") or []
    no_offer = [SlotSet("triage_offer", False), SlotSet("triage_department", None)]
    if body.get("level") == EMERGENCY:
        # The route screens each message alone; a question and its clarification together can
        # still add up to an emergency, which then reaches the nurses as the route's would.
        dispatcher.utter_message(text=body.get("answer") or "")
        dispatcher.utter_message(
            json_message=escalation_request(EMERGENCY, team="nursing", priority="urgent")
        )
        return no_offer
    if body.get("level") == URGENT:
        # Today, at the emergency department or a same-day clinic: an appointment would come too late.
        dispatcher.utter_message(text=body.get("answer") or URGENT_WITHOUT_DEPARTMENT)
        return no_offer
    if not body.get("answer") or not departments:
        dispatcher.utter_message(text=SAY_MORE)
        return no_offer
    first = departments[0]
    dispatcher.utter_message(text=body["answer"])
    dispatcher.utter_message(
        text=f"{OFFER_PREFIX}{first['name']}吗？",
        buttons=[
            {"title": f"预约{first['name']}", "payload": "/affirm"},
            {"title": "先不用", "payload": "/deny"},
        ],
    )
    return [SlotSet("triage_offer", True), SlotSet("triage_department", first)]


class ActionTriage(Action):
    """A symptom description or a which-department question."""

    def name(self) -> str:
        return "action_triage"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        text = _text(tracker)
        if not text:
            dispatcher.utter_message(text=SAY_MORE)
            return []
        try:
            answer = await CRM(tracker.sender_id).triage(text)
        except CRMUnavailable:
            log.exception("triage: CRM unavailable")
            dispatcher.utter_message(text=CRM_DOWN)
            return [SlotSet("triage_offer", False)]
        if _is_question(answer) and answer.body.get("level") != EMERGENCY:
            return [
                SlotSet("triage_offer", False),
                SlotSet("triage_text", text),
                SlotSet("triage_question", answer.body.get("answer")),
                SlotSet("triage_clarification", None),
                FollowupAction(TRIAGE_FORM),
            ]
        return [*CLEARED, *_deliver(answer, dispatcher)]


class ActionAskTriageClarification(Action):
    """triage_form's one question: the CRM's, kept in a slot by action_triage."""

    def name(self) -> str:
        return "action_ask_triage_clarification"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        question = tracker.get_slot("triage_question") or "能再具体说说您的情况吗？"
        dispatcher.utter_message(text=f"为了推荐更合适的科室，想先问一下：{question}")
        return []


class ActionTriageRecommend(Action):
    """After the clarifying answer: the CRM decides from both messages, and never asks again."""

    def name(self) -> str:
        return "action_triage_recommend"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        text = tracker.get_slot("triage_text") or ""
        clarification = tracker.get_slot("triage_clarification") or ""
        try:
            answer = await CRM(tracker.sender_id).triage(text, clarification=clarification)
        except CRMUnavailable:
            log.exception("triage: CRM unavailable")
            dispatcher.utter_message(text=CRM_DOWN)
            return [*CLEARED, SlotSet("triage_offer", False)]
        return [*CLEARED, *_deliver(answer, dispatcher)]


def _offer_was_last(tracker: Tracker) -> bool:
    """Was the booking offer the last thing the assistant said before the patient's yes?"""
    return (said_last(tracker) or "").startswith(OFFER_PREFIX)


class ActionTriageBook(Action):
    """Yes to the offer: booking_form starts with the suggested department filled in."""

    def name(self) -> str:
        return "action_triage_book"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        department = tracker.get_slot("triage_department") or {}
        done = [SlotSet("triage_offer", False), SlotSet("triage_department", None)]
        if not department.get("name") or not _offer_was_last(tracker):
            # A stale offer: the yes answers something else; the form ends at once, quietly.
            dispatcher.utter_message(response="utter_anything_else")
            return [*_reset(STOPPED), *done]
        try:
            words = await CRM(tracker.sender_id).understand(department["name"])
        except CRMUnavailable:
            log.exception("triage booking: CRM unavailable")
            words = {}
        found = words.get("department")
        events = [*_reset(BOOK), *done]
        if found:
            events.append(SlotSet("booking_department", found))
        return events


class ActionTriageDeclined(Action):
    def name(self) -> str:
        return "action_triage_declined"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        dispatcher.utter_message(
            text="好的。如果症状加重或出现新的变化，请及时就医；需要挂号时发送“挂号”即可。"
        )
        return [SlotSet("triage_offer", False), SlotSet("triage_department", None)]
