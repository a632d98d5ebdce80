"""Searching conversations by their words: only chats the staff member may read, LIKE's own
characters taken literally, a snippet around the match, and every search audited with its words."""

from __future__ import annotations

import itertools

import httpx
import sqlalchemy as sa
from fastapi import FastAPI

from crm_backend.audit.models import AuditEntry
from crm_backend.conversations.models import SenderType
from crm_backend.runtime import Runtime
from tests.console_labels.conftest import make_chat, make_team
from tests.support.api import staff_client

URL = "/api/console/conversation-search"
_words = itertools.count(1)


async def _searches(runtime: Runtime, staff_id: int) -> list[dict]:
    async with runtime.db.sessions() as session:
        rows = await session.scalars(
            sa.select(AuditEntry)
            .where(AuditEntry.staff_id == staff_id, AuditEntry.action == "conversation.search")
            .order_by(AuditEntry.id)
        )
        return [entry.detail for entry in rows.all()]


async def test_agents_find_words_in_their_teams_chats_only(
    app: FastAPI, runtime: Runtime, admin_client: httpx.AsyncClient
) -> None:
    word = f"阿莫西林{next(_words)}号"
    mine, theirs = await make_team(runtime), await make_team(runtime)
    chat = await make_chat(
        runtime,
        mine,
        (SenderType.PATIENT, f"医生您好，我孩子昨天开始发烧到三十九度，想问一下{word}胶囊每次吃多少合适"),
        (SenderType.AGENT, f"{word}请按说明书服用，并尽快来儿科门诊。"),
        name="王小明",
    )
    bot_chat = await make_chat(runtime, mine, (SenderType.BOT, f"关于{word}的用法，请咨询医生。"))
    foreign = await make_chat(runtime, theirs, (SenderType.PATIENT, f"{word}过敏怎么办"))

    async with staff_client(app, admin_client, "agent", [mine]) as (agent, client):
        answer = await client.get(URL, params={"q": word})
        assert answer.status_code == 200, answer.text
        hits = answer.json()
        assert [(h["conversation_id"], h["sender_type"]) for h in hits] == [
            (bot_chat.conversation_id, "bot"),
            (chat.conversation_id, "agent"),
            (chat.conversation_id, "patient"),
        ]  # newest first; the other team's chat is not among them
        patient_hit = hits[-1]
        assert patient_hit["patient"] == {"id": chat.patient_id, "label": "王小明"}
        assert patient_hit["created_at"]
        snippet = patient_hit["snippet"]
        start, length = patient_hit["match_start"], patient_hit["match_length"]
        assert snippet[start : start + length] == word
        assert snippet.startswith("…") and len(snippet) < 80  # the text around it, not the whole message
        assert await _searches(runtime, agent["id"]) == [
            {
                "query": word,
                "results": 3,
                "patients": sorted({chat.patient_id, bot_chat.patient_id}),
                "conversations": sorted({chat.conversation_id, bot_chat.conversation_id}),
            }
        ]

    async with staff_client(app, admin_client, "supervisor", []) as (_, client):
        found = {h["conversation_id"] for h in (await client.get(URL, params={"q": word})).json()}
        assert found == {chat.conversation_id, bot_chat.conversation_id, foreign.conversation_id}


async def test_like_characters_are_literal_and_latin_letters_match_in_any_case(
    app: FastAPI, runtime: Runtime, admin_client: httpx.AsyncClient
) -> None:
    n = next(_words)
    team = await make_team(runtime)
    percent = await make_chat(runtime, team, (SenderType.PATIENT, f"血氧{n}9%左右正常吗"))
    await make_chat(runtime, team, (SenderType.PATIENT, f"血氧{n}95左右"))
    underscore = await make_chat(runtime, team, (SenderType.PATIENT, f"单号 a{n}_b 查不到"))
    await make_chat(runtime, team, (SenderType.PATIENT, f"单号 a{n}xb 查不到"))
    backslash = await make_chat(runtime, team, (SenderType.PATIENT, f"路径 c{n}\\d"))
    scan = await make_chat(runtime, team, (SenderType.PATIENT, f"明天做ct{n}需要空腹吗"))

    async with staff_client(app, admin_client, "agent", [team]) as (_, client):

        async def found(words: str) -> list[int]:
            return [h["conversation_id"] for h in (await client.get(URL, params={"q": words})).json()]

        assert await found(f"{n}9%") == [percent.conversation_id]
        assert await found(f"a{n}_b") == [underscore.conversation_id]
        assert await found(f"c{n}\\d") == [backslash.conversation_id]
        assert await found(f"CT{n}") == [scan.conversation_id]
        assert await found(f"无此内容{n}") == []


async def test_bad_searches_are_refused_and_not_run(
    app: FastAPI, runtime: Runtime, admin_client: httpx.AsyncClient
) -> None:
    async with staff_client(app, admin_client, "nurse", []) as (nurse, client):
        for params in ({"q": "   "}, {"q": ""}, {"q": "字" * 101}, {}, {"q": "发烧", "limit": 0}):
            answer = await client.get(URL, params=params)
            assert answer.status_code == 400, (params, answer.text)
        assert await _searches(runtime, nurse["id"]) == []
        # A search that finds nothing is a search all the same.
        assert (await client.get(URL, params={"q": "没有人写过的话"})).json() == []
        assert await _searches(runtime, nurse["id"]) == [
            {"query": "没有人写过的话", "results": 0, "patients": [], "conversations": []}
        ]
