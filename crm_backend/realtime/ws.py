"""`/api/console/ws`: live console events, with catch-up from the stream after a reconnect."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from fastapi import APIRouter, Depends, WebSocket, WebSocketDisconnect

from crm_backend.realtime.events import STREAM_ID, ConsoleEvents, stream_id_key
from crm_backend.realtime.hub import Hub
from crm_backend.staff.deps import CurrentStaff, current_staff

router = APIRouter()

#: An open console page refreshes its mark four times per CONSOLE_GONE_AFTER_SECONDS.
HEARTBEATS_PER_GONE_WINDOW = 4


async def mark_console_open(runtime: Any, staff_id: int) -> None:
    """Remember that this staff member has a console open (read by the worker's presence job)."""
    await runtime.redis.zadd(runtime.settings.key("console", "open"), {str(staff_id): time.time()})


#: Events about the whole hospital rather than a team's conversations.
FOR_EVERYONE = frozenset({"presence", "label.created"})


def visible_to(staff: CurrentStaff, event: dict[str, Any]) -> bool:
    if event.get("type") in FOR_EVERYONE:
        return True
    return staff.may_access_team(event.get("team_id"))


@router.websocket("/api/console/ws")
async def console_socket(websocket: WebSocket, staff: CurrentStaff = Depends(current_staff)) -> None:  # noqa: B008
    runtime = websocket.app.state.runtime
    hub: Hub = websocket.app.state.console_hub
    events = ConsoleEvents(runtime.redis, runtime.settings)
    since_param = websocket.query_params.get("since")
    if since_param is not None and not STREAM_ID.match(since_param):
        await websocket.close(code=1008, reason="since must be a console event id")
        return
    await websocket.accept()
    # Listen before reading history, so nothing published in between is missed.
    live = hub.listen()
    try:
        since = since_param or await events.last_id()
        last = stream_id_key(since)
        for event in await events.since(since):
            if visible_to(staff, event):
                await websocket.send_json(event)
            last = stream_id_key(event["id"])
        await websocket.send_json({"type": "ready", "id": f"{last[0]}-{last[1]}"})
        reader = asyncio.create_task(_drain_client(websocket))
        await mark_console_open(runtime, staff.id)
        heartbeat = runtime.settings.console_gone_after_seconds / HEARTBEATS_PER_GONE_WINDOW
        getter: asyncio.Task[dict[str, Any]] | None = None
        while not reader.done():
            getter = getter or asyncio.create_task(live.get())
            done, _ = await asyncio.wait(
                {getter, reader}, timeout=heartbeat, return_when=asyncio.FIRST_COMPLETED
            )
            if not done:
                await mark_console_open(runtime, staff.id)
                continue
            if getter not in done:
                getter.cancel()
                break
            event = getter.result()
            getter = None
            if stream_id_key(event["id"]) <= last:
                continue
            last = stream_id_key(event["id"])
            if visible_to(staff, event):
                await websocket.send_json(event)
    except WebSocketDisconnect:
        pass
    finally:
        hub.forget(live)
        with contextlib.suppress(Exception):
            await websocket.close()


async def _drain_client(websocket: WebSocket) -> None:
    """The page only listens; reading detects the disconnect."""
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            await websocket.receive_text()
