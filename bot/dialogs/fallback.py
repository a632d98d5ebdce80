"""Patient-friendly first stage of Rasa's two-stage fallback.

Rasa's built-in ``action_default_ask_affirmation`` asks "Did you mean 'greet'?" with the raw
intent name. Patients need a plain Chinese question, so this action replaces it.
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import UserUtteranceReverted
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from dialogs.handoff import BOOKING_HELP, escalation_request, was_booking
from dialogs.unhelpful import AFFIRMATION_PREFIX, hand_over_if_unhelpful_again

#: The intent Rasa's ``action_two_stage_fallback`` loop treats as "no, that is not what I meant"
#: (``USER_INTENT_OUT_OF_SCOPE`` in rasa/core/actions/two_stage_fallback.py). The deny button
#: must send exactly ``/out_of_scope`` for the loop to move on to asking for a rephrase.
DENY_INTENT = "out_of_scope"
FALLBACK_INTENT = "nlu_fallback"

#: What each intent means to a patient, phrased to fit "请问您是想……吗？" and a button title.
#: A feature that adds intents adds their labels here.
INTENT_LABELS: dict[str, str] = {
    "greet": "打个招呼",
    "thank": "表示感谢",
    "goodbye": "结束本次咨询",
    "bot_challenge": "确认是不是真人在回复",
    "request_human": "转人工服务",
    "book_appointment": "预约挂号",
    "list_appointments": "查询已有的预约",
    "cancel_appointment": "取消预约",
    "reschedule_appointment": "更改预约时间",
    "add_patient": "添加就诊人",
    "inform": "继续刚才的挂号",
    "affirm": "表示同意",
    "deny": "表示不需要",
    "triage_symptoms": "咨询该看哪个科",
    "hospital_info": "了解医院的时间、地址或停车等信息",
    "followup_postpone": "稍后再回答随访问题",
    "followup_opt_out": "停止接收术后随访",
    "complaint": "投诉或反映问题",
    "praise": "表扬医护人员",
    "complaint_status": "查询投诉的处理进度",
    "complaint_add": "给投诉补充内容",
}
GENERIC_LABEL = "咨询其他事情"
DENY_TITLE = "都不是"


def intent_label(intent: str) -> str:
    """Chinese label for an intent; intents without one get a generic label rather than a raw name."""
    return INTENT_LABELS.get(intent, GENERIC_LABEL)


def best_guess(latest_message: dict[str, Any]) -> str | None:
    """The most likely real intent of the message NLU was unsure about.

    The FallbackClassifier puts ``nlu_fallback`` first in the ranking, so the guess is the best
    remaining intent. ``out_of_scope`` is skipped too: offering it as "yes" would send the same
    payload as the deny button and be read as a denial.
    """
    ranking = latest_message.get("intent_ranking") or []
    top = (latest_message.get("intent") or {}).get("name")
    candidates = [entry.get("name") for entry in ranking] or [top]
    for name in candidates:
        if name and name not in (FALLBACK_INTENT, DENY_INTENT):
            return name
    return None


class ActionDefaultAskAffirmation(Action):
    """Ask "did you mean ...?" in Chinese with a confirm and a deny button."""

    def name(self) -> str:
        """Overrides Rasa's built-in action of the same name."""
        return "action_default_ask_affirmation"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        """Send the affirmation question; the two-stage fallback loop handles the answer."""
        if hand_over_if_unhelpful_again(dispatcher, tracker, domain):
            # An unclear message right after an out-of-scope answer: the second unhelpful answer
            # in a row would be this question, so a person took over instead.
            return []
        intent = best_guess(tracker.latest_message)
        if intent is None:
            # Nothing sensible to offer: asking for a rephrase is the next stage anyway.
            dispatcher.utter_message(response="utter_ask_rephrase")
            return []

        label = intent_label(intent)
        dispatcher.utter_message(
            text=f"{AFFIRMATION_PREFIX}请问您是想{label}吗？",
            buttons=[
                {"title": label, "payload": f"/{intent}"},
                {"title": DENY_TITLE, "payload": f"/{DENY_INTENT}"},
            ],
        )
        return []


class ActionGiveUpToPeople(Action):
    """Replaces Rasa's `action_default_fallback`: after two failed tries a person takes over.

    Rasa runs this at the end of the two-stage fallback (two unclear messages in a row, or a second
    都不是) and when its policies are unsure what to do next.
    """

    def name(self) -> str:
        return "action_default_fallback"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        dispatcher.utter_message(response="utter_handing_over")
        reason = BOOKING_HELP if was_booking(tracker) else "bot_fallback"
        dispatcher.utter_message(json_message=escalation_request(reason))
        # Like the built-in fallback: the unclear message does not shape later predictions.
        return [UserUtteranceReverted()]
