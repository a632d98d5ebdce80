"""Talk to the Rasa server over its REST channel; Rasa lives in its own virtualenv and process."""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

# The sender id format belongs to the WeChat identity (patients); processing reads it from here.
from crm_backend.patients.service import rasa_sender as rasa_sender

log = logging.getLogger(__name__)


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


@dataclass(frozen=True)
class OpenForm:
    """A form open in Rasa's tracker, with the tracker's slots."""

    name: str
    slots: dict[str, Any]


#: Rasa's two-stage fallback loop, which asks "did you mean …?" (training_data/fallback/rules.yml).
CLARIFYING = "action_two_stage_fallback"

#: A Rasa server whose action server was found down is passed over for this long before its
#: action server is asked again.
ACTION_SERVER_RECHECK_SECONDS = 1.0
ACTION_SERVER_CHECK_TIMEOUT = 2.0


@dataclass
class RasaServer:
    base: str
    #: Its action server, when known: Rasa answers without an action's messages when that is away.
    actions: str | None
    actions_down_since: float | None = None


class BotGateway:
    """One or more Rasa servers sharing one tracker store (Redis).

    Turns are spread over the servers in turn; a server that cannot be reached is skipped for the
    next one. Any server may answer any patient because the patient lock (patient_lock.py), not
    Rasa's lock store, keeps one patient's turns in order. A request that reached a server and then
    failed is not sent to another: Rasa may have recorded it, and asking twice would say it twice.

    When an action server is away, Rasa still answers 200, only without that action's messages. An
    empty answer is therefore checked against the server's action server; if it is down, the turn
    is asked again of another server, or later. The failed run left no slot or form change, so the
    dialogue carries on where it was; Rasa's tracker shows the message twice. (Taking the turn back
    with a `rewind` event instead undoes an open form's earlier steps.) A turn Rasa broke off
    without listening is mended first (`_mend_broken_turn`).
    """

    def __init__(
        self,
        rasa_urls: list[str],
        http: httpx.AsyncClient,
        timeout: float,
        action_server_urls: list[str] | None = None,
    ) -> None:
        actions = (
            action_server_urls if action_server_urls and len(action_server_urls) == len(rasa_urls) else None
        )
        self.servers = [
            RasaServer(url.rstrip("/"), actions[i].rstrip("/") if actions else None)
            for i, url in enumerate(rasa_urls)
        ]
        self.http = http
        self.timeout = timeout
        self._next = itertools.cycle(range(len(self.servers)))

    async def ask(self, sender_id: str, text: str) -> list[BotReply]:
        """No `metadata` is sent: Rasa 3.6 spends a noticeable part of a turn on it (figure in
        docs/PERFORMANCE.md), and actions identify the patient by the sender id (app id + openid)."""
        body = {"sender": sender_id, "message": text}
        return await self._turn(sender_id, "/webhooks/rest/webhook", body, lambda data: data)

    async def trigger(self, sender_id: str, intent: str, entities: dict[str, Any]) -> list[BotReply]:
        """Start a dialogue: Rasa runs `intent` as if the patient had said it, and answers here
        (no output channel given, so Rasa collects the messages into its response)."""
        body = {"name": intent, "entities": entities or {}}
        path = f"/conversations/{sender_id}/trigger_intent"
        return await self._turn(sender_id, path, body, lambda data: data.get("messages") or [])

    async def active_form(self, sender_id: str) -> OpenForm | None:
        """The form the patient is filling in (a booking, say), if any. A "did you mean …?" question
        (Rasa's two-stage fallback loop) is not one: a patient may leave it unanswered for days, and
        what the bot starts next (a check-in) closes it, as a clear message of the patient's would."""
        _, response = await self._request("GET", _state_path(sender_id))
        state = response.json()
        name = _open_loop(state)
        if name is None or name == CLARIFYING:
            return None
        return OpenForm(name, state.get("slots") or {})

    async def end_form(self, sender_id: str) -> None:
        """Close the form the patient was filling in, if any (a no-op otherwise)."""
        events = [
            {"event": "active_loop", "name": None},
            {"event": "slot", "name": "requested_slot", "value": None},
        ]
        await self._request("POST", f"/conversations/{quote(sender_id, safe=':')}/tracker/events", events)

    async def set_paused(self, sender_id: str, *, paused: bool) -> None:
        """Pause or resume the tracker, so the bot's state matches who has the chat."""
        body = {"event": "pause" if paused else "resume"}
        await self._request("POST", f"/conversations/{sender_id}/tracker/events", body)

    async def _turn(
        self, sender_id: str, path: str, body: dict[str, Any], messages: Callable[[Any], list[dict[str, Any]]]
    ) -> list[BotReply]:
        skip: set[int] = set()
        asked_again = False
        while True:
            server, response = await self._request("POST", path, body, skip=skip, need_actions=True)
            replies = _replies(messages(response.json()))
            if replies:
                return replies
            down = server.actions is not None and not await self._actions_alive(server)
            broke_off = await self._mend_broken_turn(server, sender_id)
            if down:
                # Rasa ran the turn without its action server, so the actions changed nothing;
                # asked again (elsewhere now, or later), the message carries on where it was.
                log.warning("%s: action server down; turn of %s to be asked again", server.base, sender_id)
                skip.add(self.servers.index(server))
            elif broke_off and not asked_again:
                # Its actions failed, yet the action server is up: it came back during the turn.
                log.warning("%s: turn of %s broke off; asked once more", server.base, sender_id)
                asked_again = True
            else:
                if broke_off:
                    log.error("%s: turn of %s broke off twice, action server up", server.base, sender_id)
                return replies

    async def _mend_broken_turn(self, server: RasaServer, sender_id: str) -> bool:
        """Whether Rasa broke the turn off without listening for the patient; if so, it is mended.

        Every finished turn ends with `action_listen`. When actions fail one after another (the
        action server away), Rasa's circuit breaker stops the turn after the last instead; Rasa
        counts the actions since the last listen, so every later message of that patient would trip
        the breaker at once and never be answered. With no form open, the turn is taken out of the
        tracker (`rewind`: the message and what followed it, with the listen before it; then that
        listen again), so asking it again is as if it were the first time. With a form open, a
        rewind would also undo the form's earlier steps (Rasa folds a form's steps into its last
        run), so only the listen is added and the tracker shows the message twice.
        """
        state = (await self._call(server, "GET", _state_path(sender_id), None)).json()
        if state.get("paused") or state.get("latest_action_name") in (None, "action_listen"):
            return False
        listen = {"event": "action", "name": "action_listen"}
        events = [listen] if _open_loop(state) else [{"event": "rewind"}, listen]
        await self._call(server, "POST", f"/conversations/{sender_id}/tracker/events", events)
        return True

    async def _request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | list[Any] | None = None,
        *,
        skip: Collection[int] = (),
        need_actions: bool = False,
    ) -> tuple[RasaServer, httpx.Response]:
        # The sender id goes into the path as it is: Rasa does not decode the path, and an escaped
        # ':' would name another conversation.
        first = next(self._next)
        passed: list[str] = []
        for offset in range(len(self.servers)):
            index = (first + offset) % len(self.servers)
            server = self.servers[index]
            if index in skip or (need_actions and not await self._actions_usable(server)):
                passed.append(f"{server.base}: action server down")
                continue
            try:
                return server, await self._call(server, method, path, body)
            except _NotReached as exc:
                passed.append(str(exc))  # never reached that server: another may answer
        raise BotUnavailable("no Rasa server could take the turn: " + "; ".join(passed))

    async def _call(
        self, server: RasaServer, method: str, path: str, body: dict[str, Any] | list[Any] | None
    ) -> httpx.Response:
        try:
            response = await self.http.request(method, server.base + path, json=body, timeout=self.timeout)
        except httpx.ConnectError as exc:
            raise _NotReached(f"{server.base}: {exc}") from exc
        except httpx.HTTPError as exc:
            raise BotUnavailable(f"{server.base}: {type(exc).__name__}: {exc}") from exc
        if response.status_code != 200:
            raise BotUnavailable(f"{server.base} answered HTTP {response.status_code} to {method} {path}")
        return response

    async def _actions_usable(self, server: RasaServer) -> bool:
        """Whether to send a turn to `server`: its action server was not found down lately."""
        if server.actions_down_since is None:
            return True
        if time.monotonic() - server.actions_down_since < ACTION_SERVER_RECHECK_SECONDS:
            return False
        return await self._actions_alive(server)

    async def _actions_alive(self, server: RasaServer) -> bool:
        assert server.actions is not None
        try:
            response = await self.http.get(f"{server.actions}/health", timeout=ACTION_SERVER_CHECK_TIMEOUT)
            alive = response.status_code == 200
        except httpx.HTTPError:
            alive = False
        server.actions_down_since = None if alive else time.monotonic()
        return alive


def _state_path(sender_id: str) -> str:
    """The tracker's current state, without its events (they grow with the conversation)."""
    return f"/conversations/{sender_id}/tracker?include_events=NONE"


def _open_loop(state: dict[str, Any]) -> str | None:
    """The loop (a form, or the two-stage fallback) open in a tracker state, if any."""
    return (state.get("active_loop") or {}).get("name") or None


class _NotReached(BotUnavailable):
    """The request never reached that Rasa server."""


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
