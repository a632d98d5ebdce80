"""Complaints and praise in chat (issue 16): the intake, the status of one's cases, adding to one.

Intake: `action_complaint_start` (intent complaint or praise) asks the CRM for the intake's media
mark (images stored after it are attached to the case), takes the first message as the story when
it already tells one, and opens `complaint_form`. Its validation action reads every message itself
(complaints_reading.py): each answer fills the slot asked, 跳过 leaves who was involved empty, 算了
stops, 转人工 hands over. With every part answered the record is read back in the patient's own
words; 确认 registers it through the bot API (crm_backend/complaints/bot_views.py), which decides
whether it is a safety risk (escalated at once, urgent) and answers with the case number and the
deadline in working days; 改一下 asks which part to correct and asks that part again.

The hospital's answer and the patient's reply to it are complaints_outcome.py.
"""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from dialogs import complaints_reading as reading
from dialogs.crm import COMPLAINT_TEXT_CHARS, COMPLAINT_WHAT_CHARS, CRM, Answer, CRMUnavailable
from dialogs.handoff import request_for

log = logging.getLogger(__name__)

FORM = "complaint_form"
KIND = "complaint_kind"
WHAT = "complaint_what"
WHEN = "complaint_when"
WHERE = "complaint_where"
WHO = "complaint_who"
WISH = "complaint_wish"
#: The last required slot: empty while the record is read back, then how the intake ended
#: (registered, cancelled, handoff, escalated: a safety risk went to staff at once, error).
CONFIRMED = "complaint_confirmed"
STEP = "complaint_step"
MEDIA_AFTER = "complaint_media_after"
#: The parts of the record, in the order they are asked.
PARTS = (WHAT, WHEN, WHERE, WHO, WISH)
SLOTS = (KIND, *PARTS, CONFIRMED, STEP, MEDIA_AFTER)

COMPLAINT = "complaint"
PRAISE = "praise"
#: Praise is passed on: the patient is not asked what they want done.
PRAISE_WISH = "转达感谢"

INTRO = {
    COMPLAINT: "很抱歉给您带来了不好的体验。我来把情况记录下来，登记后会有专人跟进处理。",
    PRAISE: "谢谢您的认可！我来把您的表扬记录下来，转达给相关科室和工作人员。",
}
QUESTIONS = {
    (COMPLAINT, WHAT): "请您具体说说发生了什么事？有照片或单据的话，也可以直接发图片给我。",
    (PRAISE, WHAT): "请说说您想表扬的人做了什么，让您印象深刻？",
    (COMPLAINT, WHEN): "这件事大概是什么时候发生的？（例如：昨天上午、12月3日下午）",
    (PRAISE, WHEN): "这是什么时候的事？（例如：上周住院期间、昨天门诊）",
    (COMPLAINT, WHERE): "是在哪个科室或病区？（例如：儿科门诊、住院部5楼心内科病区）",
    (PRAISE, WHERE): "是在哪个科室或病区？（例如：骨科二病区、急诊科）",
    (COMPLAINT, WHO): "涉及的工作人员您知道是谁吗？姓名、工号或外貌特征都可以；不清楚请回复“跳过”。",
    (PRAISE, WHO): "您要表扬的是哪位？姓名、工号或外貌特征都可以；不清楚请回复“跳过”。",
    (COMPLAINT, WISH): "您希望医院怎么处理？（例如：给个解释、道歉、退费、改进服务）",
}
KIND_LABEL = {COMPLAINT: "投诉", PRAISE: "表扬"}
NOT_GIVEN = "（未提供）"
CONFIRM_HINT = "内容无误请回复“确认”提交；需要修改请回复“改一下”。"
STOPPED = "好的，已取消这次登记，没有提交任何内容。如需再反映，随时发消息给我。"
CRM_DOWN = (
    "抱歉，系统暂时无法登记，您的内容还没有提交。请稍后回复“确认”再试，或回复“人工”由工作人员为您登记。"
)
REFUSED = "抱歉，这次登记没有成功。我已把您说的内容转给投诉办公室的工作人员，他们会为您登记并联系您。"
SAFETY_NOW = (
    "您说的情况可能涉及患者安全，我已立即转交投诉办公室，工作人员会尽快联系您，并帮您把这件投诉登记完整。"
    "如果现在仍有危险，请马上告诉身边的医护人员。"
)
SAFETY_RECORDED = "您反映的情况已先行登记，编号 {case_number}。"


def text_of(tracker: Tracker) -> str:
    text = tracker.latest_message.get("text") or ""
    return "" if text.startswith("/") else text.strip()


def kind_of(tracker: Tracker) -> str:
    return PRAISE if tracker.get_slot(KIND) == PRAISE else COMPLAINT


def parts_of(kind: str) -> list[str]:
    """The parts asked (and offered for correction): praise is not asked what should be done."""
    return [part for part in PARTS if not (kind == PRAISE and part == WISH)]


def next_part(slots: dict[str, Any]) -> str:
    """The first part not answered yet, else the confirmation."""
    return next((part for part in PARTS if slots.get(part) is None), CONFIRMED)


def deadline_text(day: str | None) -> str:
    """ "12月14日" from the CRM's ISO date (the year only when it is not this year's)."""
    if not day:
        return ""
    when = date.fromisoformat(day)
    year = "" if when.year == date.today().year else f"{when.year}年"
    return f"{year}{when.month}月{when.day}日"


def readback(slots: dict[str, Any]) -> str:
    """The record as it will be registered, in the patient's own words."""
    kind = slots.get(KIND) or COMPLAINT
    lines = [f"我核对一下记录（{KIND_LABEL[kind]}）："]
    for part in parts_of(kind):
        value = slots.get(part)
        lines.append(f"{reading.part_label(part)}：{value or NOT_GIVEN}")
    lines.append(CONFIRM_HINT)
    return "\n".join(lines)


def fix_question(kind: str) -> str:
    choices = "\n".join(f"{i}. {reading.part_label(part)}" for i, part in enumerate(parts_of(kind), 1))
    return f"请问要修改哪一项？回复序号即可：\n{choices}"


def registered_text(kind: str, case: dict[str, Any]) -> str:
    number = case.get("case_number", "")
    days = case.get("working_days")
    due = deadline_text(case.get("deadline"))
    when = f"{days}个工作日内（{due}前）" if days and due else "尽快"
    if kind == PRAISE:
        lines = [
            f"您的表扬已登记，编号：{number}。我们会转达给相关科室和工作人员，并在{when}告诉您。谢谢您！"
        ]
    else:
        lines = [f"您的投诉已登记，编号：{number}。我们会在{when}给您答复。"]
    if case.get("safety_risk"):
        lines.append("您反映的情况涉及患者安全，已同时紧急转交投诉办公室处理，工作人员会尽快与您联系。")
    if case.get("media"):
        lines.append(f"您发来的{case['media']}张图片已附在这件{KIND_LABEL[kind]}里。")
    lines.append("想了解进度，随时发“我的投诉怎么样了”；还有补充，发“补充投诉”即可。")
    return "\n".join(lines)


def intake_key(tracker: Tracker) -> str | None:
    """This intake's key for the CRM: the Rasa sender and the message that started the intake.
    确认 sent again after the CRM timed out (it may have registered the case meanwhile) then finds
    the same case instead of registering a second one. None when the start is not in the tracker."""
    started: dict[str, Any] | None = None
    for event in reversed(tracker.events):
        if (
            started is None
            and event.get("event") == "action"
            and event.get("name") == "action_complaint_start"
        ):
            started = event
        elif started is not None and event.get("event") == "user" and event.get("message_id"):
            return f"{tracker.sender_id}:{event['message_id']}"
    return f"{tracker.sender_id}:{started['timestamp']}" if started and started.get("timestamp") else None


def _slots(tracker: Tracker) -> dict[str, Any]:
    return {slot: tracker.get_slot(slot) for slot in SLOTS}


def _ended(outcome: str) -> list[dict[str, Any]]:
    """The intake is over: the form completes (requested_slot None) with this outcome."""
    return [SlotSet(CONFIRMED, outcome), SlotSet(STEP, None), SlotSet("requested_slot", None)]


def _ask(slot: str) -> list[dict[str, Any]]:
    """Ask `slot` (again). The slot is set too, to nothing: a validation that sets no slot makes
    Rasa reject the form, and the message then goes to the other rules (a "我要投诉" at the
    read-back restarted the intake with everything in it gone)."""
    return [SlotSet(slot, None), SlotSet("requested_slot", slot)]


class ActionComplaintStart(Action):
    """A complaint or praise: the intake starts, with the story when the first message tells it."""

    def name(self) -> str:
        return "action_complaint_start"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        kind = PRAISE if intent == PRAISE else COMPLAINT
        media_after = None
        try:
            answer = await CRM(tracker.sender_id).complaint_intake()
            media_after = answer.body.get("media_after") if answer.ok else None
        except CRMUnavailable:
            # The intake goes on; without the mark no image is attached (the patient may add them).
            log.exception("complaint intake start: CRM unavailable")
        dispatcher.utter_message(text=INTRO[kind])
        return [
            *(SlotSet(slot, None) for slot in SLOTS),
            SlotSet(KIND, kind),
            SlotSet(MEDIA_AFTER, media_after),
            SlotSet(WHAT, reading.story_in(text_of(tracker))),
            SlotSet(WISH, PRAISE_WISH if kind == PRAISE else None),
        ]


async def _register_once(crm: CRM, record: dict[str, Any]) -> Answer:
    """Registration is keyed by the intake, so a call that failed on the way (a web process that
    died, a lost answer) is simply made again once before the patient is asked to retry."""
    try:
        return await crm.complaint_register(record)
    except CRMUnavailable:
        log.warning("complaint register: CRM unavailable, trying again")
        return await crm.complaint_register(record)


class ValidateComplaintForm(Action):
    """Every message while the intake asks: an answer, a correction, the confirmation, or leaving."""

    def name(self) -> str:
        return "validate_complaint_form"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        slots = _slots(tracker)
        requested = tracker.get_slot("requested_slot")
        if slots[CONFIRMED] is not None:
            return [SlotSet("requested_slot", None)]
        if requested is None:  # activation: the story in the first message, if it told one
            if slots[WHAT] and await self._safety_risk(dispatcher, tracker, slots[WHAT], slots):
                return _ended("escalated")
            return _ask(next_part(slots))
        text = text_of(tracker)
        if not text:
            return _ask(requested)
        if await self._safety_risk(dispatcher, tracker, text, slots):
            return _ended("escalated")
        if reading.asks_for_person(text):
            dispatcher.utter_message(json_message=request_for(f"投诉 {text}", booking=False))
            return _ended("handoff")
        if reading.wants_to_stop(text):
            dispatcher.utter_message(text=STOPPED)
            return _ended("cancelled")
        if requested == CONFIRMED:
            return await self._confirmation(dispatcher, tracker, slots, text)
        value = "" if requested == WHO and reading.is_skip(text) else text
        slots[requested] = value
        return [SlotSet(requested, value), *_ask(next_part(slots))]

    async def _safety_risk(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, text: str, slots: dict[str, Any]
    ) -> bool:
        """Every message of the intake is read for a safety risk as it comes: one goes to staff at
        once (urgent, with the patient's words), confirmed or not; the intake ends there and staff
        take the complaint down. With the CRM away the intake goes on (registration reads it too)."""
        try:
            # What the patient said before this message goes with it: the case holds it all.
            earlier = [
                str(slots[part]) for part in (WHAT, WHEN, WHERE, WHO) if slots[part] and slots[part] != text
            ]
            answer = await CRM(tracker.sender_id).complaint_screen(
                text, intake_key(tracker), "\n".join(earlier), slots[MEDIA_AFTER]
            )
        except CRMUnavailable:
            log.exception("complaint safety screen: CRM unavailable")
            return False
        escalation = answer.body.get("escalate") if answer.ok else None
        if not (isinstance(escalation, dict) and escalation.get("reason")):
            return False
        case_number = answer.body.get("case_number")
        said = SAFETY_RECORDED.format(case_number=case_number) + SAFETY_NOW if case_number else SAFETY_NOW
        dispatcher.utter_message(text=said)
        dispatcher.utter_message(json_message={"escalate": escalation})
        return True

    async def _confirmation(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, slots: dict[str, Any], text: str
    ) -> list[dict[str, Any]]:
        kind = kind_of(tracker)
        if slots[STEP] == "fix":
            part = reading.part_named(text, parts_of(kind))
            if part is None:
                return _ask(CONFIRMED)  # the list again
            return [SlotSet(part, None), SlotSet(STEP, None), *_ask(part)]
        answer = reading.read_confirmation(text)
        if answer is reading.Confirmation.FIX:
            part = reading.part_named(text, parts_of(kind))
            if part is not None:
                return [SlotSet(part, None), *_ask(part)]
            return [SlotSet(STEP, "fix"), *_ask(CONFIRMED)]
        if answer is reading.Confirmation.UNCLEAR:
            return _ask(CONFIRMED)
        return await self._register(dispatcher, tracker, slots, kind)

    async def _register(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, slots: dict[str, Any], kind: str
    ) -> list[dict[str, Any]]:
        record = {
            "kind": kind,
            "what": (slots[WHAT] or "")[:COMPLAINT_WHAT_CHARS],
            "when_text": (slots[WHEN] or "")[:COMPLAINT_TEXT_CHARS],
            "where_text": (slots[WHERE] or "")[:COMPLAINT_TEXT_CHARS],
            "who": (slots[WHO] or "")[:COMPLAINT_TEXT_CHARS],
            "wish": (slots[WISH] or "")[:COMPLAINT_TEXT_CHARS],
            "media_after": slots[MEDIA_AFTER],
            "intake_key": intake_key(tracker),
        }
        try:
            answer = await _register_once(CRM(tracker.sender_id), record)
        except CRMUnavailable:
            # The record stays as it is: 确认 again tries again.
            log.exception("complaint register: CRM unavailable")
            dispatcher.utter_message(text=CRM_DOWN)
            return _ask(CONFIRMED)
        if not answer.ok:
            # Never dropped: the patient's words are in the chat, and staff take the chat over.
            log.error("complaint refused for %s: %s", tracker.sender_id, answer.body)
            dispatcher.utter_message(text=REFUSED)
            dispatcher.utter_message(json_message=request_for(f"投诉 {record['what']}", booking=False))
            return _ended("handoff")
        dispatcher.utter_message(text=registered_text(kind, answer.body))
        escalation = answer.body.get("escalate")
        if isinstance(escalation, dict) and escalation.get("reason"):
            # A safety risk: the worker raises it right after this turn (urgent, complaints office).
            dispatcher.utter_message(json_message={"escalate": escalation})
        return _ended("registered")


class _AskPart:
    """Asks one part of the record, in the words for a complaint or for praise (a mixin: not an
    Action itself, so the action server registers only the named ones below)."""

    part = WHAT

    def name(self) -> str:
        return f"action_ask_{self.part}"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        dispatcher.utter_message(text=QUESTIONS[(kind_of(tracker), self.part)])
        return []


class ActionAskComplaintWhat(_AskPart, Action):
    part = WHAT


class ActionAskComplaintWhen(_AskPart, Action):
    part = WHEN


class ActionAskComplaintWhere(_AskPart, Action):
    part = WHERE


class ActionAskComplaintWho(_AskPart, Action):
    part = WHO


class ActionAskComplaintWish(_AskPart, Action):
    part = WISH


class ActionAskComplaintConfirmed(Action):
    """Reads the record back, or lists the parts while the patient picks one to correct."""

    def name(self) -> str:
        return "action_ask_complaint_confirmed"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        if tracker.get_slot(STEP) == "fix":
            dispatcher.utter_message(text=fix_question(kind_of(tracker)))
        else:
            dispatcher.utter_message(text=readback(_slots(tracker)))
        return []


class ActionComplaintEnd(Action):
    """The intake is over (everything was said as it ended): forget its slots."""

    def name(self) -> str:
        return "action_complaint_end"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        return [SlotSet(slot, None) for slot in SLOTS]
