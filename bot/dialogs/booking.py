"""Booking in chat: book, reschedule and cancel appointments, and register 就诊人.

One form (booking_form) in four modes. Its validation action reads every new message through the
CRM's bot API (departments, doctors and Chinese dates are understood there, against the hospital's
own data), so a patient can answer several questions in one sentence and correct an earlier answer
at any time. The form asks only for what is still missing; options are buttons, which the CRM shows
as a numbered list. Nothing is booked, moved or cancelled before the patient confirms.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from dialogs.crm import CRM, CRMUnavailable

log = logging.getLogger(__name__)

BOOK, RESCHEDULE, CANCEL, ADD_PATIENT, STOPPED = "book", "reschedule", "cancel", "add_patient", "stopped"
NEW_PATIENT = "new"

REGISTRATION = [
    "patient_consent",
    "patient_relationship",
    "patient_name",
    "patient_id_number",
    "patient_phone",
]
BOOKING = ["booking_patient", "booking_department", "booking_date", "booking_schedule", "booking_confirmed"]
FORM_SLOTS = [
    "booking_mode",
    *BOOKING,
    "booking_half_day",
    "booking_doctor",
    "booking_expert",
    "booking_options",
    "booking_appointment",
    *REGISTRATION,
]
#: What a change to one of these slots invalidates: the options shown, the choice, the confirmation.
SEARCH_SLOTS = ("booking_department", "booking_date", "booking_half_day", "booking_doctor", "booking_expert")

CRM_DOWN = "抱歉，系统暂时无法查询号源，请稍后再试，或回复“人工”由工作人员帮您处理。"
YES_WORDS = ("确认", "确定", "是", "是的", "好", "好的", "对", "对的", "可以", "行", "嗯", "嗯嗯", "没问题")
YES_WORDS += ("同意",)
NO_WORDS = ("不", "不是", "不对", "不用", "不用了", "不了", "算了", "不要", "否", "不同意", "取消")
_ID_NUMBER = re.compile(r"(?<![0-9])[0-9]{17}[0-9Xx](?![0-9A-Za-z])")
_MOBILE = re.compile(r"(?<![0-9])1[3-9][0-9]{9}(?![0-9])")


def _choice(tracker: Tracker) -> str | None:
    for entity in tracker.latest_message.get("entities") or []:
        if entity.get("entity") == "choice" and entity.get("value") is not None:
            return str(entity["value"])
    return None


def _intent(tracker: Tracker) -> str | None:
    return (tracker.latest_message.get("intent") or {}).get("name")


def _text(tracker: Tracker) -> str:
    text = tracker.latest_message.get("text") or ""
    return "" if text.startswith("/") else text.strip()


def _yes_no(tracker: Tracker) -> bool | None:
    """A yes or no from the intent, or from the plain words patients use for it."""
    intent, text = _intent(tracker), _text(tracker).rstrip("。！!.~～ ")
    if intent == "affirm" or text in YES_WORDS:
        return True
    if intent == "deny" or text in NO_WORDS:
        return False
    return None


def _is_fresh(tracker: Tracker) -> bool:
    """True when the latest patient message has not been answered yet (not a return from a digression)."""
    for event in reversed(tracker.events):
        kind = event.get("event")
        if kind == "user":
            return True
        if kind in ("bot", "action_execution_rejected"):
            return False
    return False


def required_slots(mode: str, slots: dict[str, Any]) -> list[str]:
    """The slots this mode still needs, in the order they are asked."""
    if mode == STOPPED:
        return []
    if mode == ADD_PATIENT:
        return REGISTRATION if slots.get("booking_patient") is None else []
    if mode == CANCEL:
        return ["booking_appointment", "booking_confirmed"]
    if mode == RESCHEDULE:
        return ["booking_appointment", "booking_date", "booking_schedule", "booking_confirmed"]
    registration = REGISTRATION if slots.get("booking_patient") == NEW_PATIENT else []
    return registration + BOOKING


def _button(title: str, choice: str) -> dict[str, str]:
    return {"title": title, "payload": f'/inform{{"choice": "{choice}"}}'}


def _reset(mode: str | None = None) -> list[dict[str, Any]]:
    return [SlotSet(slot, None) for slot in FORM_SLOTS if slot != "booking_mode"] + [
        SlotSet("booking_mode", mode)
    ]


class _Reader:
    """Reads one patient message into slot updates and things to say, for one validation run."""

    def __init__(self, tracker: Tracker, crm: CRM, dispatcher: CollectingDispatcher) -> None:
        self.tracker = tracker
        self.crm = crm
        self.dispatcher = dispatcher
        self.slots: dict[str, Any] = {name: tracker.get_slot(name) for name in FORM_SLOTS}
        self.mode: str = self.slots.get("booking_mode") or BOOK
        self.updates: dict[str, Any] = {}
        self.requested: str | None = tracker.get_slot("requested_slot")

    @property
    def registering(self) -> bool:
        """A new 就诊人's details are being collected (numbers typed are read as theirs)."""
        return self.mode == ADD_PATIENT or self.slots.get("booking_patient") == NEW_PATIENT

    def set(self, slot: str, value: Any) -> None:
        self.updates[slot] = value
        self.slots[slot] = value

    def say(self, text: str, slot_to_ask_again: str | None = None) -> None:
        """Tell the patient something; re-asking a slot also marks the message as handled."""
        self.dispatcher.utter_message(text=text)
        if slot_to_ask_again is not None:
            self.set(slot_to_ask_again, None)

    # -- reading ---------------------------------------------------------------------------

    async def read(self) -> None:
        choice = _choice(self.tracker)
        if choice is not None:
            await self._read_choice(choice)
        elif self.requested in ("booking_confirmed", "patient_consent"):
            answer = _yes_no(self.tracker)
            if answer is not None:
                self.set(self.requested, answer)
        text = _text(self.tracker)
        if not text:
            return
        if self.registering:
            await self._read_details(text)
        if self.mode in (BOOK, RESCHEDULE) and self.requested not in REGISTRATION:
            await self._read_booking_words(text)

    async def _read_choice(self, choice: str) -> None:
        kind, value = choice[:1], choice[1:]
        if choice == "pnew":
            self.set("booking_patient", NEW_PATIENT)
        elif kind == "p" and value.isdigit():
            patient = next((p for p in await self.crm.patients() if p["id"] == int(value)), None)
            self.set("booking_patient", patient)
        elif kind == "s" and value.isdigit():
            options = self.slots.get("booking_options") or []
            opening = next((o for o in options if o["schedule_id"] == int(value)), None)
            if opening is None:
                self.say("这个号源已经更新了，请从最新的列表中选择。", "booking_schedule")
            else:
                self.set("booking_schedule", opening)
                self.set("booking_confirmed", None)
        elif kind == "a" and value.isdigit():
            found = next((a for a in await self.crm.appointments() if a["id"] == int(value)), None)
            self.set("booking_appointment", found)
        elif choice.startswith("r:"):
            self.set("patient_relationship", choice[2:])

    async def _read_details(self, text: str) -> None:
        """Registration answers: typed numbers are recognised wherever they appear in the message."""
        id_number = _ID_NUMBER.search(text)
        if id_number or self.requested == "patient_id_number":
            await self._check("patient_id_number", "id_number", id_number.group(0) if id_number else text)
        phone = _MOBILE.search(text)
        if phone or self.requested == "patient_phone":
            await self._check("patient_phone", "phone", phone.group(0) if phone else text)
        if self.requested == "patient_name":
            await self._check("patient_name", "name", text)
        elif self.requested == "patient_relationship":
            await self._check("patient_relationship", "relationship", text)

    async def _check(self, slot: str, field: str, value: str) -> None:
        answer = await self.crm.check(field, value)
        if answer.body.get("ok"):
            self.set(slot, answer.body["value"])
        else:
            self.say(answer.body.get("message") or "这个信息好像不对，请核对后重新输入。", slot)

    async def _read_booking_words(self, text: str) -> None:
        words = await self.crm.understand(text)
        before = {slot: self.slots.get(slot) for slot in SEARCH_SLOTS}
        if self.mode == BOOK and words.get("department"):
            self.set("booking_department", words["department"])
        if words.get("doctor"):
            self.set("booking_doctor", words["doctor"])
        elif words.get("department") and before["booking_department"] != words["department"]:
            self.set("booking_doctor", None)  # another department: the doctor named before is not there
        if words.get("date_from"):
            date = {"from": words["date_from"], "to": words["date_to"], "label": words["date_label"]}
            self.set("booking_date", date)
        if words.get("half_day"):
            self.set("booking_half_day", words["half_day"])
        if words.get("expert"):
            self.set("booking_expert", True)
        if self.mode == BOOK and self.slots.get("booking_patient") is None and words.get("relationship"):
            await self._patient_by_relationship(words["relationship"])
        if self.requested == "booking_schedule" and "booking_schedule" not in self.updates:
            self._pick_from_options(words)
        understood = any(self.slots.get(slot) != before[slot] for slot in SEARCH_SLOTS)
        if understood or self.updates or _intent(self.tracker) not in ("inform", "nlu_fallback", None):
            return
        if self.requested == "booking_department":
            self.say("抱歉，没有找到这个科室。请换个说法，例如“儿科”“心内科”“皮肤科”。", "booking_department")
        elif self.requested == "booking_date":
            self.say("抱歉，没看懂是哪一天。可以说“明天”“下周三上午”或“12月5号”。", "booking_date")

    async def _patient_by_relationship(self, relationship: str) -> None:
        matches = [p for p in await self.crm.patients() if p["relationship"] == relationship]
        if len(matches) == 1:
            self.set("booking_patient", matches[0])
        elif not matches:
            self.set("booking_patient", NEW_PATIENT)
            self.set("patient_relationship", relationship)

    def _pick_from_options(self, words: dict[str, Any]) -> None:
        """A worded answer to the numbered list: "任意医生", "下午的", "郑医生那个"."""
        options = self.slots.get("booking_options") or []
        if words.get("any_doctor") and options:
            self.set("booking_schedule", options[0])
            return
        picked = [
            o
            for o in options
            if (not words.get("half_day") or o["half_day"] == words["half_day"])
            and (not words.get("doctor") or o["doctor"] == words["doctor"]["name"])
        ]
        if (words.get("half_day") or words.get("doctor")) and len(picked) == 1 and not words.get("date_from"):
            self.set("booking_schedule", picked[0])

    # -- consequences ----------------------------------------------------------------------

    async def settle(self, first_run: bool) -> None:
        """Everything that follows from the answers: patients, appointments, options, registration."""
        if first_run and self.mode in (CANCEL, RESCHEDULE) and self.slots.get("booking_appointment") is None:
            appointments = await self.crm.appointments()
            if not appointments:
                self.say("您目前没有待就诊的预约。如需挂号，回复“挂号”即可。")
                self.set("booking_mode", STOPPED)
                self.mode = STOPPED
                return
            if len(appointments) == 1:
                self.set("booking_appointment", appointments[0])
        if first_run and self.mode == BOOK and self.slots.get("booking_patient") is None:
            patients = await self.crm.patients()
            if not patients:
                self.set("booking_patient", NEW_PATIENT)
            elif len(patients) == 1:
                self.set("booking_patient", patients[0])
        if self.slots.get("patient_consent") is False:
            self.say("好的。没有您的同意，我们无法登记就诊人信息。如需帮助，可以回复“人工”联系工作人员。")
            self.set("booking_mode", STOPPED)
            self.mode = STOPPED
            return
        await self._register_if_complete()
        if any(slot in self.updates for slot in (*SEARCH_SLOTS, "booking_appointment")):
            await self._refresh_options()

    async def _register_if_complete(self) -> None:
        if not self.registering or any(self.slots.get(slot) is None for slot in REGISTRATION):
            return
        answer = await self.crm.register(
            {
                "relationship": self.slots["patient_relationship"],
                "name": self.slots["patient_name"],
                "id_number": self.slots["patient_id_number"],
                "phone": self.slots["patient_phone"],
            }
        )
        if answer.ok:
            patient = answer.body["patient"]
            self.set("booking_patient", patient)
            for slot in ("patient_id_number", "patient_phone"):
                self.set(slot, None)  # the CRM keeps them encrypted; the tracker need not
            if self.mode == BOOK:
                self.say(f"已为您登记就诊人：{patient['label']}。")
            return
        message = answer.body.get("message") or "登记没有成功，请核对信息后重试。"
        self.say(message)
        if "关系" in message or "本人" in message:
            self.set("patient_relationship", None)
        else:
            self.set("patient_name", None)
            self.set("patient_id_number", None)

    async def _refresh_options(self) -> None:
        """New search inputs: look the sessions up again, and forget a choice made from the old list."""
        department = self.slots.get("booking_department")
        appointment = self.slots.get("booking_appointment")
        if self.mode == RESCHEDULE and appointment:
            department = {"id": appointment["department_id"], "name": appointment["department"]}
        date = self.slots.get("booking_date")
        if "booking_schedule" not in self.updates:
            self.set("booking_schedule", None)
        self.set("booking_confirmed", None)
        if not department or not date:
            self.set("booking_options", None)
            return
        doctor = self.slots.get("booking_doctor") or {}
        found = await self.crm.openings(
            {
                "department_id": department["id"],
                "date_from": date["from"],
                "date_to": date["to"],
                "half_day": self.slots.get("booking_half_day"),
                "doctor_id": doctor.get("id"),
                "expert": bool(self.slots.get("booking_expert")),
            }
        )
        options = found.get("openings") or found.get("alternatives") or []
        self.set("booking_options", options or None)
        if found.get("openings"):
            return
        if found.get("alternatives"):
            self.say(f"{found['message']}为您找到时间最近的可预约号源：")
            return
        self.say(found.get("message") or "这段时间没有可预约的号。", "booking_date")
        if found.get("problem") == "full":
            self.say("最近两周都没有可预约的号，建议换个日期或科室，也可以回复“人工”咨询。")


class ValidateBookingForm(Action):
    """Reads each message of the booking form and decides what to ask next."""

    def name(self) -> str:
        return "validate_booking_form"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        reader = _Reader(tracker, CRM(tracker.sender_id), dispatcher)
        first_run = reader.requested is None
        try:
            if _is_fresh(tracker):
                await reader.read()
            await reader.settle(first_run)
        except CRMUnavailable:
            log.exception("booking form: CRM unavailable")
            dispatcher.utter_message(text=CRM_DOWN)
            return [*_reset(STOPPED), SlotSet("requested_slot", None)]
        required = required_slots(reader.mode, reader.slots)
        missing = [slot for slot in required if reader.slots.get(slot) is None]
        events = [SlotSet(slot, value) for slot, value in reader.updates.items()]
        if not events and not first_run and _is_fresh(tracker):
            return []  # nothing in this message for the form: Rasa lets the rules answer it
        return [*events, SlotSet("requested_slot", missing[0] if missing else None)]


# -- starting the form -----------------------------------------------------------------------


class ActionStartBooking(Action):
    """Starts the form in its mode; answers left from an earlier, unfinished request are cleared."""

    mode = BOOK

    def name(self) -> str:
        return "action_start_booking" if self.mode == BOOK else f"action_start_{self.mode}"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        return _reset(self.mode)


class ActionStartReschedule(ActionStartBooking):
    mode = RESCHEDULE


class ActionStartCancel(ActionStartBooking):
    mode = CANCEL


class ActionStartAddPatient(ActionStartBooking):
    mode = ADD_PATIENT


# -- asking ----------------------------------------------------------------------------------


class ActionAskBookingPatient(Action):
    def name(self) -> str:
        return "action_ask_booking_patient"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        patients = await CRM(tracker.sender_id).patients()
        buttons = [_button(p["label"], f"p{p['id']}") for p in patients]
        buttons.append(_button("添加新的就诊人", "pnew"))
        dispatcher.utter_message(text="请问这次为哪位就诊人挂号？", buttons=buttons)
        return []


#: The relationships a new 就诊人 may have to the account, as the menu offers them.
RELATIONSHIP_MENU = (
    ("本人", "self"),
    ("子女", "child"),
    ("父母", "parent"),
    ("配偶", "spouse"),
    ("其他亲友", "other"),
)


class ActionAskPatientRelationship(Action):
    """Sent by an action, not a domain response: Rasa would read each payload's JSON as a slot."""

    def name(self) -> str:
        return "action_ask_patient_relationship"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        buttons = [_button(title, f"r:{value}") for title, value in RELATIONSHIP_MENU]
        dispatcher.utter_message(text="这位就诊人是您的什么人？", buttons=buttons)
        return []


class ActionAskBookingSchedule(Action):
    def name(self) -> str:
        return "action_ask_booking_schedule"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        options = tracker.get_slot("booking_options") or []
        if not options:
            dispatcher.utter_message(response="utter_ask_booking_date")
            return [SlotSet("booking_date", None), SlotSet("requested_slot", "booking_date")]
        first = options[0]
        intro = f"{first['department']}可预约的号如下，请选择（也可以回复“任意医生”选最早的号）："
        dispatcher.utter_message(
            text=intro, buttons=[_button(o["label"], f"s{o['schedule_id']}") for o in options]
        )
        return []


class ActionAskBookingAppointment(Action):
    def name(self) -> str:
        return "action_ask_booking_appointment"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        appointments = await CRM(tracker.sender_id).appointments()
        verb = "取消" if tracker.get_slot("booking_mode") == CANCEL else "改约"
        dispatcher.utter_message(
            text=f"请问要{verb}哪一个预约？",
            buttons=[_button(a["label"], f"a{a['id']}") for a in appointments],
        )
        return []


class ActionAskBookingConfirmed(Action):
    def name(self) -> str:
        return "action_ask_booking_confirmed"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        mode = tracker.get_slot("booking_mode")
        appointment = tracker.get_slot("booking_appointment") or {}
        opening = tracker.get_slot("booking_schedule") or {}
        if mode == CANCEL:
            text = f"确认取消这个预约吗？\n{appointment.get('label', '')}"
            yes = "确认取消"
        elif mode == RESCHEDULE:
            new = opening.get("summary") or opening.get("label", "")
            text = f"确认改约吗？\n原预约：{appointment.get('label', '')}\n改为：{new}"
            yes = "确认改约"
        else:
            patient = tracker.get_slot("booking_patient") or {}
            text = (
                "请确认预约信息：\n"
                f"就诊人：{patient.get('label', '')}\n"
                f"科室：{opening.get('department', '')}\n"
                f"时间和医生：{opening.get('summary') or opening.get('label', '')}"
            )
            yes = "确认预约"
        dispatcher.utter_message(
            text=text, buttons=[{"title": yes, "payload": "/affirm"}, {"title": "先不了", "payload": "/deny"}]
        )
        return []


# -- finishing -------------------------------------------------------------------------------


class ActionBookingSubmit(Action):
    """Runs once the form is complete: the only place an appointment is booked, moved or cancelled."""

    def name(self) -> str:
        return "action_booking_submit"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        mode = tracker.get_slot("booking_mode")
        crm = CRM(tracker.sender_id)
        try:
            await self._finish(mode, tracker, crm, dispatcher)
        except CRMUnavailable:
            log.exception("booking submit: CRM unavailable")
            dispatcher.utter_message(text=CRM_DOWN)
        return _reset()

    async def _finish(
        self, mode: str | None, tracker: Tracker, crm: CRM, dispatcher: CollectingDispatcher
    ) -> None:
        if mode == STOPPED:
            return
        if mode == ADD_PATIENT:
            patient = tracker.get_slot("booking_patient") or {}
            dispatcher.utter_message(
                text=f"已添加就诊人：{patient.get('label', '')}。需要为TA挂号时，发送“挂号”即可。"
            )
            return
        if tracker.get_slot("booking_confirmed") is not True:
            dispatcher.utter_message(text="好的，这次先不办理了。有需要随时发消息给我。")
            return
        opening = tracker.get_slot("booking_schedule") or {}
        appointment = tracker.get_slot("booking_appointment") or {}
        if mode == CANCEL:
            answer = await crm.cancel(appointment["id"])
            done = "已为您取消预约：{label}。号源已释放，如需重新预约，发送“挂号”即可。"
        elif mode == RESCHEDULE:
            answer = await crm.reschedule(appointment["id"], opening["schedule_id"])
            done = "改约成功！新的就诊时间：{label}。原来的预约已自动取消。"
        else:
            patient = tracker.get_slot("booking_patient") or {}
            answer = await crm.book(patient["id"], opening["schedule_id"])
            done = "预约成功！{label}。\n就诊前一天会提醒您，请按时携带身份证或就诊卡到门诊取号。"
        if answer.ok:
            booked = answer.body.get("appointment") or {}
            dispatcher.utter_message(text=done.format(label=booked.get("label", "")))
            return
        lines = [answer.body.get("message") or "办理没有成功，请稍后再试。"]
        alternatives = answer.body.get("alternatives") or []
        if alternatives:
            lines.append("目前还可以预约：")
            lines += [f"· {o['label']}" for o in alternatives]
            lines.append("如需预约，请再发送一次“挂号”。")
        dispatcher.utter_message(text="\n".join(lines))


class ActionListAppointments(Action):
    def name(self) -> str:
        return "action_list_appointments"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        try:
            appointments = await CRM(tracker.sender_id).appointments()
        except CRMUnavailable:
            log.exception("list appointments: CRM unavailable")
            dispatcher.utter_message(text=CRM_DOWN)
            return []
        if not appointments:
            dispatcher.utter_message(text="您目前没有待就诊的预约。需要挂号的话，发送“挂号”即可。")
            return []
        lines = ["您有以下待就诊的预约："]
        lines += [f"{i}) {a['label']}" for i, a in enumerate(appointments, start=1)]
        lines.append("如需取消或改约，发送“取消预约”或“改约”。")
        dispatcher.utter_message(text="\n".join(lines))
        return []


class ActionAppointmentReminder(Action):
    """The day-before reminder: the CRM starts it (intent EXTERNAL_appointment_reminder, entity
    appointment_id) and words it, as it also words the template message sent outside the window."""

    def name(self) -> str:
        return "action_appointment_reminder"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        entities = tracker.latest_message.get("entities") or []
        ids = [e.get("value") for e in entities if e.get("entity") == "appointment_id"]
        if not ids or not str(ids[0]).isdigit():
            log.error("appointment reminder started without an appointment id: %s", entities)
            return []
        try:
            answer = await CRM(tracker.sender_id).reminder(int(ids[0]))
        except CRMUnavailable:
            # Nothing is said: the CRM records the reminder as not sent and staff see it.
            log.exception("appointment reminder: CRM unavailable")
            return []
        if answer.ok and answer.body.get("text"):
            dispatcher.utter_message(text=str(answer.body["text"]))
        return []
