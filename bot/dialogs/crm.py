"""The action server's client for the CRM's bot API (/internal/bot/...).

The action server runs in Rasa's virtualenv and never opens the CRM database: patient records,
schedules and bookings are reached over HTTP, with the shared INTERNAL_API_TOKEN, naming the
conversation's WeChat identity (Rasa's sender id) on every call.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any

import aiohttp

log = logging.getLogger(__name__)

#: Without real WeChat credentials the CRM accepts this token (crm_backend/config.py says the same).
SANDBOX_TOKEN = "sandbox-internal-token"
TIMEOUT = aiohttp.ClientTimeout(total=10)
#: A check-in answer is asked twice at most within the CRM's wait for Rasa (RASA_TIMEOUT_SECONDS).
FOLLOWUP_ANSWER_TIMEOUT = aiohttp.ClientTimeout(total=6)

#: The longest texts the bot APIs take (crm_backend/triage/bot_views.py, hospital_info/bot_views.py).
TRIAGE_TEXT_CHARS = 1000
CLARIFICATION_CHARS = 300
HOSPITAL_QUESTION_CHARS = 500
FOLLOWUP_TEXT_CHARS = 1000
#: The longest part of a complaint the bot API takes (crm_backend/complaints/bot_views.py).
COMPLAINT_TEXT_CHARS = 2000
#: What happened may be longer than the other parts (the CRM keeps up to this many characters).
COMPLAINT_WHAT_CHARS = 4000


class CRMUnavailable(Exception):
    """The CRM did not answer as expected; the dialogue says so instead of guessing."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def _base_url() -> str:
    # Not PORT: under honcho every process gets its own PORT; the Makefile sets CRM_API_URL.
    return (os.environ.get("CRM_API_URL") or "http://127.0.0.1:8000").rstrip("/")


def _headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {os.environ.get('INTERNAL_API_TOKEN') or SANDBOX_TOKEN}"}


class CRM:
    """One call per method; a refusal the patient should read comes back as `Answer.body["message"]`."""

    def __init__(self, sender_id: str) -> None:
        self.sender = sender_id

    async def _call(
        self,
        method: str,
        path: str,
        json: dict[str, Any] | None = None,
        timeout: aiohttp.ClientTimeout = TIMEOUT,
    ) -> Answer:
        url = f"{_base_url()}/internal/bot{path}"
        try:
            async with aiohttp.ClientSession(timeout=timeout, headers=_headers()) as http:
                async with http.request(method, url, params={"sender": self.sender}, json=json) as response:
                    body = await response.json(content_type=None)
                    answer = Answer(
                        response.status, body if isinstance(body, dict) else {}, dict(response.headers)
                    )
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise CRMUnavailable(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
        if answer.status >= 500 or answer.status in (400, 401, 403):
            raise CRMUnavailable(f"{method} {path}: HTTP {answer.status} {answer.body}")
        return answer

    async def patients(self) -> list[dict[str, Any]]:
        return (await self._call("GET", "/patients")).body.get("patients", [])

    async def check(self, field: str, value: str) -> Answer:
        return await self._call("POST", "/patients/check", {"field": field, "value": value})

    async def register(self, details: dict[str, str]) -> Answer:
        return await self._call("POST", "/patients", details)

    async def understand(self, text: str) -> dict[str, Any]:
        return (await self._call("POST", "/booking/understand", {"text": text})).body

    async def openings(self, query: dict[str, Any]) -> dict[str, Any]:
        return (await self._call("POST", "/booking/openings", query)).body

    async def book(self, patient_id: int, schedule_id: int) -> Answer:
        body = {"patient_id": patient_id, "schedule_id": schedule_id}
        return await self._call("POST", "/appointments", body)

    async def appointments(self) -> list[dict[str, Any]]:
        return (await self._call("GET", "/appointments")).body.get("appointments", [])

    async def cancel(self, appointment_id: int) -> Answer:
        return await self._call("POST", f"/appointments/{appointment_id}/cancel")

    async def reminder(self, appointment_id: int) -> Answer:
        """The day-before reminder of one of this account's appointments, worded by the CRM."""
        return await self._call("GET", f"/appointments/{appointment_id}/reminder")

    async def reschedule(self, appointment_id: int, schedule_id: int) -> Answer:
        return await self._call(
            "POST", f"/appointments/{appointment_id}/reschedule", {"schedule_id": schedule_id}
        )

    async def triage(self, text: str, clarification: str | None = None) -> Answer:
        """Which department (or an emergency) for the patient's words; see crm_backend/triage/bot_views.py."""
        # The API refuses longer text; the red-flag screen has already read the whole message.
        body: dict[str, Any] = {"text": text[:TRIAGE_TEXT_CHARS]}
        if clarification is not None:
            body["clarification"] = clarification[:CLARIFICATION_CHARS]
        return await self._call("POST", "/triage", body)

    async def hospital_info(self, text: str) -> dict[str, Any]:
        """The hospital's own answer to a question about hours, address, parking, visiting, phone, where."""
        return (await self._call("POST", "/hospital-info", {"text": text[:HOSPITAL_QUESTION_CHARS]})).body

    async def followup_start(self, checkin_id: int) -> Answer:
        """The greeting and the first open question of a check-in (crm_backend/followups/bot_views.py)."""
        return await self._call("POST", f"/followups/checkins/{checkin_id}/start")

    async def followup_answer(
        self, checkin_id: int, text: str, noted: list[str], message: str | None = None
    ) -> Answer:
        """One message of the patient's to the current question; `noted`: questions kept for the nurse.
        With Rasa's `message` id the call may be repeated: the CRM answers the same message with the
        same turn, so it is asked once more when the first answer is lost (a timeout, a dropped
        connection), instead of losing the advice and the escalation of a completed check-in."""
        body: dict[str, Any] = {"text": text[:FOLLOWUP_TEXT_CHARS], "noted": [n[:200] for n in noted][-5:]}
        if message:
            body["message"] = message
        path = f"/followups/checkins/{checkin_id}/answer"
        try:
            return await self._call("POST", path, body, FOLLOWUP_ANSWER_TIMEOUT)
        except CRMUnavailable:
            if not message:
                raise
            log.warning("follow-up check-in %s: answer lost, asked again", checkin_id, exc_info=True)
            return await self._call("POST", path, body, FOLLOWUP_ANSWER_TIMEOUT)

    async def followup_opt_out(self, checkin_id: int, text: str) -> Answer:
        """The reply to "stop follow-up?": the CRM reads yes or no and stops the enrolment on yes."""
        body = {"text": text[:FOLLOWUP_TEXT_CHARS]}
        return await self._call("POST", f"/followups/checkins/{checkin_id}/opt-out", body)

    async def followup_opt_out_request(self) -> Answer:
        """不想再收到随访 with no check-in open: the follow-ups this account could stop, to confirm."""
        return await self._call("POST", "/followups/opt-out")

    async def followup_opt_out_reply(self, text: str, enrolments: list[int], asked_again: bool) -> Answer:
        """The reply to that confirmation, with the enrolments it named."""
        body = {"text": text[:FOLLOWUP_TEXT_CHARS], "enrolments": enrolments, "asked_again": asked_again}
        return await self._call("POST", "/followups/opt-out/confirm", body)

    # -- complaints and praise (crm_backend/complaints/bot_views.py) -------------------------------

    async def complaint_intake(self) -> Answer:
        """An intake starts: the CRM's mark after which the patient's images belong to it."""
        return await self._call("POST", "/complaints/intake")

    async def complaint_screen(
        self, text: str, intake_key: str | None, earlier: str, media_after: int | None
    ) -> Answer:
        """A part of an intake read for safety risks at once; a risk is recorded as the intake's
        case (with what was said before and the photos sent) and comes with its escalation."""
        body = {
            "text": text[:COMPLAINT_TEXT_CHARS],
            "intake_key": intake_key,
            "earlier": earlier[:COMPLAINT_TEXT_CHARS],
            "media_after": media_after,
        }
        return await self._call("POST", "/complaints/screen", body)

    async def complaint_register(self, record: dict[str, Any]) -> Answer:
        """The confirmed record: the CRM registers the case and answers its number and deadline."""
        return await self._call("POST", "/complaints", record)

    async def complaints(self) -> Answer:
        """The cases this account registered, newest first, with their status and deadline."""
        return await self._call("GET", "/complaints")

    async def complaint_case(self, case_number: str) -> Answer:
        return await self._call("GET", f"/complaints/{case_number}")

    async def complaint_add(self, case_number: str, text: str, media_after: int | None) -> Answer:
        """Text (and the images stored after `media_after`) added to an open case."""
        body = {"text": text[:COMPLAINT_TEXT_CHARS], "media_after": media_after}
        return await self._call("POST", f"/complaints/{case_number}/additions", body)

    async def complaint_outcome(self, case_number: str, accepts: bool, satisfaction: int) -> Answer:
        """The patient's reply to the hospital's answer; not accepting reopens the case."""
        body = {"accepts": accepts, "satisfaction": satisfaction}
        return await self._call("POST", f"/complaints/{case_number}/outcome", body)
