"""Talk to the Rasa server over its REST channel; Rasa lives in its own virtualenv and process."""

from __future__ import annotations

import itertools
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
    """One or more Rasa servers sharing one tracker store (Redis).

    Turns are spread over the servers in turn; a server that cannot be reached is skipped for the
    next one. Any server may answer any patient because the patient lock (patient_lock.py), not
    Rasa's lock store, keeps one patient's turns in order. A request that reached a server and then
    failed is not sent to another: Rasa may have recorded it, and asking twice would say it twice.
    """

    def __init__(self, rasa_urls: list[str], http: httpx.AsyncClient, timeout: float) -> None:
        self.bases = [url.rstrip("/") for url in rasa_urls]
        self.http = http
        self.timeout = timeout
        self._next = itertools.cycle(range(len(self.bases)))

    async def ask(self, sender_id: str, text: str) -> list[BotReply]:
        """No `metadata` is sent: Rasa 3.6 spends a noticeable part of a turn on it (figure in
        docs/PERFORMANCE.md), and actions identify the patient by the sender id (app id + openid)."""
        body = {"sender": sender_id, "message": text}
        response = await self._request("POST", "/webhooks/rest/webhook", body)
        return _replies(response.json())

    async def trigger(self, sender_id: str, intent: str, entities: dict[str, Any]) -> list[BotReply]:
        """Start a dialogue: Rasa runs `intent` as if the patient had said it, and answers here
        (no output channel given, so Rasa collects the messages into its response)."""
        body = {"name": intent, "entities": entities or {}}
        response = await self._request("POST", f"/conversations/{sender_id}/trigger_intent", body)
        return _replies(response.json().get("messages") or [])

    async def active_form(self, sender_id: str) -> str | None:
        """The form the patient is filling in (a booking, say), if any."""
        response = await self._request("GET", f"/conversations/{sender_id}/tracker?include_events=NONE")
        loop = response.json().get("active_loop") or {}
        return loop.get("name") or None

    async def set_paused(self, sender_id: str, *, paused: bool) -> None:
        """Pause or resume the tracker, so the bot's state matches who has the chat."""
        body = {"event": "pause" if paused else "resume"}
        await self._request("POST", f"/conversations/{sender_id}/tracker/events", body)

    async def _request(self, method: str, path: str, body: dict[str, Any] | None) -> httpx.Response:
        # The sender id goes into the path as it is: Rasa does not decode the path, and an escaped
        # ':' would name another conversation.
        first = next(self._next)
        refused: list[str] = []
        for offset in range(len(self.bases)):
            base = self.bases[(first + offset) % len(self.bases)]
            try:
                response = await self.http.request(method, base + path, json=body, timeout=self.timeout)
            except httpx.ConnectError as exc:
                refused.append(f"{base}: {exc}")
                continue  # never reached that server: another may answer
            except httpx.HTTPError as exc:
                raise BotUnavailable(f"{base}: {type(exc).__name__}: {exc}") from exc
            if response.status_code != 200:
                raise BotUnavailable(f"{base} answered HTTP {response.status_code} to {method} {path}")
            return response
        raise BotUnavailable("no Rasa server reachable: " + "; ".join(refused))


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
