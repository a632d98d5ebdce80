"""Questions about the hospital itself, answered from the hospital's own data (via the CRM)."""

from __future__ import annotations

import logging
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from dialogs.crm import CRM, CRMUnavailable

log = logging.getLogger(__name__)

CRM_DOWN = "抱歉，暂时查不到医院的信息，请稍后再试，或回复“人工”咨询工作人员。"


class ActionHospitalInfo(Action):
    """Opening hours, address and transport, parking, visiting hours, service phone, where a department is."""

    def name(self) -> str:
        return "action_hospital_info"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        text = tracker.latest_message.get("text") or ""
        try:
            answer = await CRM(tracker.sender_id).hospital_info(text)
        except CRMUnavailable:
            log.exception("hospital info: CRM unavailable")
            dispatcher.utter_message(text=CRM_DOWN)
            return []
        dispatcher.utter_message(text=answer.get("answer") or CRM_DOWN)
        return []
