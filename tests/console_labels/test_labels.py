"""Labels on conversations: a shared set, put on and taken off by staff who see the chat, shown in
the queue and the conversation, filterable, audited and announced to other consoles."""

from __future__ import annotations

import itertools

import httpx
import sqlalchemy as sa
from fastapi import FastAPI

from crm_backend.audit.models import AuditEntry
from crm_backend.escalations.label_models import ConversationLabel
from crm_backend.realtime.events import ConsoleEvents
from crm_backend.runtime import Runtime
from tests.console_labels.conftest import make_chat, make_team
from tests.support.api import staff_client

_names = itertools.count(1)


def fresh(word: str) -> str:
    return f"{word}{next(_names)}"


async def _audit(runtime: Runtime, staff_id: int, action: str) -> list[AuditEntry]:
    async with runtime.db.sessions() as session:
        rows = await session.scalars(
            sa.select(AuditEntry).where(AuditEntry.staff_id == staff_id, AuditEntry.action == action)
        )
        return list(rows.all())


async def _rows(runtime: Runtime, conversation_id: int) -> list[int]:
    async with runtime.db.sessions() as session:
        rows = await session.scalars(
            sa.select(ConversationLabel.label_id).where(ConversationLabel.conversation_id == conversation_id)
        )
        return sorted(rows.all())


async def test_staff_create_labels_and_bad_names_change_nothing(
    app: FastAPI, runtime: Runtime, admin_client: httpx.AsyncClient
) -> None:
    async with staff_client(app, admin_client, "agent", []) as (agent, client):
        name = fresh("复诊")
        created = await client.post("/api/console/labels", json={"name": f"  {name} "})
        assert created.status_code == 201, created.text
        label = created.json()
        assert label["name"] == name
        assert label in (await client.get("/api/console/labels")).json()
        [entry] = await _audit(runtime, agent["id"], "label.create")
        assert entry.detail == {"name": name}

        english = fresh("Follow up ")
        assert (await client.post("/api/console/labels", json={"name": english})).status_code == 201
        before = (await client.get("/api/console/labels")).json()
        for bad, status in [
            (name, 409),  # the same name
            (english.upper(), 409),  # the same name in other letters' case
            ("Ｆｏｌｌｏｗ ｕｐ " + english.split()[-1], 409),  # full-width letters
            ("很长很长很长很长很长很长很长很长的标签", 400),  # more than 16 characters
            ("   ", 400),
            ("", 400),
            ("a\u0000b", 400),
        ]:
            answer = await client.post("/api/console/labels", json={"name": bad})
            assert answer.status_code == status, (bad, answer.text)
            assert answer.json()["detail"]
        assert (await client.get("/api/console/labels")).json() == before
        assert len(await _audit(runtime, agent["id"], "label.create")) == 2


async def test_labels_go_on_and_off_and_show_in_queue_and_conversation(
    app: FastAPI, runtime: Runtime, admin_client: httpx.AsyncClient
) -> None:
    team = await make_team(runtime)
    chat = await make_chat(runtime, team)
    other = await make_chat(runtime, team)
    label = (await admin_client.post("/api/console/labels", json={"name": fresh("投诉跟进")})).json()
    events = ConsoleEvents(runtime.redis, runtime.settings)
    since = await events.last_id()

    async with staff_client(app, admin_client, "agent", [team]) as (agent, client):
        url = f"/api/console/conversations/{chat.conversation_id}/labels/{label['id']}"
        answer = await client.put(url)
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"conversation_id": chat.conversation_id, "labels": [label]}
        again = await client.put(url)  # already there: same answer, nothing new
        assert again.json()["labels"] == [label]
        assert len(await _audit(runtime, agent["id"], "conversation.label.add")) == 1

        [queue] = [q for q in (await client.get("/api/console/queues")).json() if q["team"]["id"] == team]
        by_conversation = {item["conversation_id"]: item for item in queue["items"]}
        assert by_conversation[chat.conversation_id]["labels"] == [label]
        assert by_conversation[other.conversation_id]["labels"] == []
        view = (await client.get(f"/api/console/conversations/{chat.conversation_id}")).json()
        assert view["labels"] == [label]
        assert view["escalation"]["labels"] == [label]

        # The console filters its queue by label.
        filtered = (await client.get("/api/console/queues", params={"label": label["id"]})).json()
        [queue] = [q for q in filtered if q["team"]["id"] == team]
        assert [item["conversation_id"] for item in queue["items"]] == [chat.conversation_id]

        # Other consoles of the team hear of it.
        published = [e for e in await events.since(since) if e["type"] == "conversation.labels"]
        assert published[-1] == {
            "id": published[-1]["id"],
            "type": "conversation.labels",
            "team_id": team,
            "conversation_id": chat.conversation_id,
            "labels": [label],
        }

        removed = await client.delete(url)
        assert removed.status_code == 200 and removed.json()["labels"] == []
        assert await _rows(runtime, chat.conversation_id) == []
        [entry] = await _audit(runtime, agent["id"], "conversation.label.remove")
        assert entry.patient_id == chat.patient_id and entry.detail["label_id"] == label["id"]
        assert (await client.delete(url)).status_code == 404  # not on it any more


async def test_refused_label_changes_change_nothing(
    app: FastAPI, runtime: Runtime, admin_client: httpx.AsyncClient
) -> None:
    mine, theirs = await make_team(runtime), await make_team(runtime)
    chat = await make_chat(runtime, mine)
    foreign = await make_chat(runtime, theirs)
    label = (await admin_client.post("/api/console/labels", json={"name": fresh("加急")})).json()
    async with staff_client(app, admin_client, "nurse", [mine]) as (nurse, client):
        base = "/api/console/conversations"
        refused = {
            f"{base}/{chat.conversation_id}/labels/2147483000": 404,  # no such label
            f"{base}/{chat.conversation_id}/labels/0": 400,
            f"{base}/{foreign.conversation_id}/labels/{label['id']}": 403,  # another team's chat
            f"{base}/2147483000/labels/{label['id']}": 404,
        }
        for url, status in refused.items():
            answer = await client.put(url)
            assert answer.status_code == status, (url, answer.text)
        assert await _rows(runtime, chat.conversation_id) == []
        assert await _rows(runtime, foreign.conversation_id) == []
        assert await _audit(runtime, nurse["id"], "conversation.label.add") == []
        unknown = await client.get("/api/console/queues", params={"label": 2147483000})
        assert unknown.status_code == 404
