"""The patient's own cases: how they stand ("我的投诉怎么样了"), and adding to an open one.

`action_complaint_status` lists the cases the CRM's bot API returns for this account. Adding
(`complaint_add_form`): the CRM gives the media mark and the open cases; with several the patient
picks one by number, then writes what to add. Images sent meanwhile never reach Rasa; the CRM
attaches those stored after the mark when the text arrives.
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
from dialogs.complaints import KIND_LABEL, deadline_text, text_of
from dialogs.crm import CRM, CRMUnavailable
from dialogs.handoff import request_for

log = logging.getLogger(__name__)

CASE = "complaint_add_case"
TEXT = "complaint_add_text"
CHOICES = "complaint_add_choices"
MEDIA_AFTER = "complaint_media_after"
SLOTS = (CASE, TEXT, CHOICES, MEDIA_AFTER)

NO_CASES = "您目前没有投诉或表扬的记录。如需反映问题，直接告诉我发生了什么就可以。"
NO_OPEN_CASE = "您目前没有正在处理中的投诉。如需反映新的问题，直接告诉我发生了什么就可以。"
CRM_DOWN = "抱歉，系统暂时无法查询，请稍后再试，或回复“人工”由工作人员为您查询。"
ADD_FAILED = "抱歉，这次补充没有成功。请稍后再发一次，或回复“人工”由工作人员为您补充。"
STOPPED = "好的，这次没有补充任何内容。"
SAFETY_ADDED = "您补充的情况可能涉及患者安全，已同时紧急转交投诉办公室，工作人员会尽快与您联系。"
#: TS-20261205-0007 (投诉) or BY-20261205-0002 (表扬), as crm_backend/complaints numbers cases.
_CASE_NUMBER = re.compile(r"[A-Z]{2}-?\d{8}-?\d{4}")


def is_open(case: dict[str, Any]) -> bool:
    """The CRM says whether the case still takes additions (answered, closed and referred do not)."""
    return bool(case.get("open"))


def case_line(index: int, case: dict[str, Any]) -> str:
    """One case as the patient reads it: kind, number (it holds the day of receipt), state in the
    CRM's words and, while it is worked on, the day they hear back by."""
    kind = KIND_LABEL.get(str(case.get("kind")), "投诉")
    line = f"{index}. {kind} {case.get('case_number', '')}"
    line += f"：{case.get('status_text') or case.get('status') or ''}"
    due = deadline_text(case.get("due_on"))
    if due and is_open(case):
        line += f"，预计{due}前答复"
    return line


def status_text(cases: list[dict[str, Any]]) -> str:
    if not cases:
        return NO_CASES
    lines = [f"您有{len(cases)}件记录："]
    lines += [case_line(i, case) for i, case in enumerate(cases, 1)]
    if any(is_open(case) for case in cases):
        lines.append("还有补充的话，发“补充投诉”，文字和图片都可以。")
    return "\n".join(lines)


def picked(text: str, choices: list[str]) -> str | None:
    """The case the patient picked: by its number in the list, or by its case number."""
    words = reading.plain(text)
    if words.isdigit() and 1 <= int(words) <= len(choices):
        return choices[int(words) - 1]
    named = _CASE_NUMBER.search(text.upper())
    if named and named.group(0) in choices:
        return named.group(0)
    return None


def _ended(outcome: str) -> list[dict[str, Any]]:
    return [SlotSet(CASE, outcome), SlotSet(TEXT, outcome), SlotSet("requested_slot", None)]


async def _cases(tracker: Tracker) -> list[dict[str, Any]]:
    answer = await CRM(tracker.sender_id).complaints()
    cases = answer.body.get("cases") if answer.ok else None
    return [case for case in cases or [] if isinstance(case, dict)]


class ActionComplaintStatus(Action):
    """ "我的投诉怎么样了": each of the account's cases with its state and deadline."""

    def name(self) -> str:
        return "action_complaint_status"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        try:
            cases = await _cases(tracker)
        except CRMUnavailable:
            log.exception("complaint status: CRM unavailable")
            dispatcher.utter_message(text=CRM_DOWN)
            return []
        dispatcher.utter_message(text=status_text(cases))
        return []


class ActionComplaintAddStart(Action):
    """ "补充投诉": the open cases (none: said so and done) and the media mark."""

    def name(self) -> str:
        return "action_complaint_add_start"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        crm = CRM(tracker.sender_id)
        try:
            open_cases = [case for case in await _cases(tracker) if is_open(case)]
            mark = await crm.complaint_intake() if open_cases else None
        except CRMUnavailable:
            log.exception("complaint addition: CRM unavailable")
            dispatcher.utter_message(text=CRM_DOWN)
            return _ended("error")
        if not open_cases:
            dispatcher.utter_message(text=NO_OPEN_CASE)
            return _ended("none")
        numbers = [str(case.get("case_number")) for case in open_cases]
        media_after = mark.body.get("media_after") if mark is not None and mark.ok else None
        events = [SlotSet(TEXT, None), SlotSet(CHOICES, numbers), SlotSet(MEDIA_AFTER, media_after)]
        if len(numbers) == 1:
            return [*events, SlotSet(CASE, numbers[0])]
        lines = ["请问要补充到哪一件？回复序号即可："]
        lines += [case_line(i, case) for i, case in enumerate(open_cases, 1)]
        dispatcher.utter_message(text="\n".join(lines))
        return [*events, SlotSet(CASE, None)]


class ValidateComplaintAddForm(Action):
    """The case picked, then the text added (with the images stored after the mark)."""

    def name(self) -> str:
        return "validate_complaint_add_form"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        requested = tracker.get_slot("requested_slot")
        case = tracker.get_slot(CASE)
        if tracker.get_slot(TEXT) is not None:
            return [SlotSet("requested_slot", None)]
        if requested is None:
            return [SlotSet("requested_slot", TEXT if case else CASE)]
        text = text_of(tracker)
        if not text:
            return [SlotSet(requested, None), SlotSet("requested_slot", requested)]
        if reading.asks_for_person(text):
            dispatcher.utter_message(json_message=request_for(f"投诉 {text}", booking=False))
            return _ended("handoff")
        if reading.wants_to_stop(text):
            dispatcher.utter_message(text=STOPPED)
            return _ended("cancelled")
        if requested == CASE:
            chosen = picked(text, list(tracker.get_slot(CHOICES) or []))
            if chosen is None:
                dispatcher.utter_message(text="请回复列表里的序号。")
                return [SlotSet(CASE, None), SlotSet("requested_slot", CASE)]
            return [SlotSet(CASE, chosen), SlotSet("requested_slot", TEXT)]
        try:
            answer = await CRM(tracker.sender_id).complaint_add(
                str(case), text, tracker.get_slot(MEDIA_AFTER)
            )
        except CRMUnavailable:
            log.exception("complaint addition: CRM unavailable")
            dispatcher.utter_message(text=ADD_FAILED)
            return _ended("error")
        if not answer.ok:
            log.error("complaint addition refused for %s: %s", tracker.sender_id, answer.body)
            dispatcher.utter_message(text=ADD_FAILED)
            return _ended("error")
        media = answer.body.get("media") or 0
        with_images = f"和{media}张图片" if media else ""
        dispatcher.utter_message(text=f"已把您的补充说明{with_images}加到{case}里，工作人员会一并查看。")
        escalation = answer.body.get("escalate")
        if isinstance(escalation, dict) and escalation.get("reason"):
            # A safety risk in what was added: staff are told at once (the worker raises it).
            dispatcher.utter_message(text=SAFETY_ADDED)
            dispatcher.utter_message(json_message={"escalate": escalation})
        return [SlotSet(TEXT, "added"), SlotSet("requested_slot", None)]


class ActionAskComplaintAddCase(Action):
    def name(self) -> str:
        return "action_ask_complaint_add_case"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        return []  # the list was sent when the addition started; a wrong answer is told so


class ActionAskComplaintAddText(Action):
    def name(self) -> str:
        return "action_ask_complaint_add_text"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        dispatcher.utter_message(
            text=(
                f"请把要补充到{tracker.get_slot(CASE)}的内容发给我。有照片的话直接发送，"
                "发完照片后再发一句文字说明（例如“就这些”），我会一起补充进去。"
            )
        )
        return []


class ActionComplaintAddEnd(Action):
    def name(self) -> str:
        return "action_complaint_add_end"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        return [SlotSet(slot, None) for slot in SLOTS]
