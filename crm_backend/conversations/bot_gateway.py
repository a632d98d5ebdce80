"""Talk to the Rasa server over its REST channel; Rasa lives in its own virtualenv and process."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

# The sender id format belongs to the WeChat identity (patients); processing reads it from here.
from crm_backend.patients.service import rasa_sender as rasa_sender


class BotUnavailable(Exception):
    """Rasa did not answer; the push stays queued and is tried again."""


@dataclass(frozen=True)
class Button:
    title: str
    payload: str


@dataclass(frozen=True)
class BotReply:
    text: str
    buttons: list[Button] = field(default_factory=list)
    #: Rasa's `json_message`: instructions for us, e.g. {"escalate": {...}}; never shown to patients.
    custom: dict[str, Any] | None = None


class BotGateway:
    def __init__(self, rasa_url: str, http: httpx.AsyncClient, timeout: float) -> None:
        self.base = rasa_url.rstrip("/")
        self.url = self.base + "/webhooks/rest/webhook"
        self.http = http
        self.timeout = timeout

    async def ask(self, sender_id: str, text: str) -> list[BotReply]:
        """No `metadata` is sent: Rasa 3.6 spends a noticeable part of a turn on it (figure in
        docs/PERFORMANCE.md), and actions identify the patient by the sender id (app id + openid)."""
        try:
            response = await self.http.post(
                self.url, json={"sender": sender_id, "message": text}, timeout=self.timeout
            )
        except httpx.HTTPError as exc:
            raise BotUnavailable(f"{type(exc).__name__}: {exc}") from exc
        if response.status_code != 200:
            raise BotUnavailable(f"Rasa answered HTTP {response.status_code}")
        return _replies(response.json())

    async def trigger(self, sender_id: str, intent: str, entities: dict[str, Any]) -> list[BotReply]:
        """Start a dialogue: Rasa runs `intent` as if the patient had said it, and answers here
        (no output channel given, so Rasa collects the messages into its response)."""
        response = await self._call("POST", f"/conversations/{sender_id}/trigger_intent", intent, entities)
        return _replies(response.json().get("messages") or [])

    async def active_form(self, sender_id: str) -> str | None:
        """The form the patient is filling in (a booking, say), if any."""
        response = await self._call("GET", f"/conversations/{sender_id}/tracker?include_events=NONE")
        loop = response.json().get("active_loop") or {}
        return loop.get("name") or None

    async def _call(
        self, method: str, path: str, intent: str | None = None, entities: dict[str, Any] | None = None
    ) -> httpx.Response:
        # The sender id goes into the path as it is: Rasa does not decode the path, and an escaped
        # ':' would name another conversation.
        body = {"name": intent, "entities": entities or {}} if intent is not None else None
        try:
            response = await self.http.request(method, self.base + path, json=body, timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise BotUnavailable(f"{type(exc).__name__}: {exc}") from exc
        if response.status_code != 200:
            raise BotUnavailable(f"Rasa answered HTTP {response.status_code} to {method} {path}")
        return response


def _replies(items: list[dict[str, Any]]) -> list[BotReply]:
    """Rasa's messages (REST channel or collected) as replies; empty ones are dropped."""
    replies: list[BotReply] = []
    for item in items:
        buttons = [
            Button(str(b.get("title", "")), str(b.get("payload", "")))
            for b in item.get("buttons") or []
            if b.get("payload")
        ]
        text = str(item.get("text") or "")
        custom = item.get("custom") if isinstance(item.get("custom"), dict) else None
        if text or buttons or custom:
            replies.append(BotReply(text, buttons, custom))
    return replies
