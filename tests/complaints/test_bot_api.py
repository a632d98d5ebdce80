"""The complaints bot API (/internal/bot/complaints): a record registered with what the CRM reads
from it, images after the intake's mark attached and none from before, a safety risk answered with
the escalation the bot raises, and another account's case as unknown as a wrong number."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from crm_backend.complaints.bot_views import router as complaints_bot_router
from crm_backend.complaints.models import Complaint, ComplaintTimelineEntry, TimelineKind
from crm_backend.complaints.service import case_by_number
from crm_backend.conversations.models import DeliveryStatus, Direction, Message, SenderType
from crm_backend.patients.models import WeChatIdentity
from crm_backend.patients.service import rasa_sender
from crm_backend.runtime import Runtime
from tests.complaints.support import Complainant, complainant
from tests.support.api import bot_client, build_api_app

RECORD = {
    "kind": "complaint",
    "what": "在门诊等了三个小时才看上",
    "when_text": "昨天上午",
    "where_text": "住院部3楼儿科",
    "who": "",
    "wish": "希望改进叫号",
}


@pytest.fixture(scope="module")
async def bot_app(runtime: Runtime) -> FastAPI:
    return await build_api_app(runtime, complaints_bot_router)


@pytest.fixture
async def bot(bot_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with bot_client(bot_app) as client:
        yield client


async def _sender(runtime: Runtime, who: Complainant) -> dict[str, str]:
    async with runtime.db.sessions() as session:
        identity = await session.get(WeChatIdentity, who.identity_id)
        assert identity is not None
        return {"sender": rasa_sender(identity.app_id, identity.openid)}


async def _image(runtime: Runtime, who: Complainant, url: str) -> int:
    """An image the patient sent, stored as the MEDIA route stores it."""
    async with runtime.db.sessions() as session:
        message = Message(
            conversation_id=who.conversation_id,
            direction=Direction.IN,
            sender_type=SenderType.PATIENT,
            msg_type="image",
            content="",
            extra={"pic_url": url, "media_id": f"media-{url[-5:]}"},
            delivery_status=DeliveryStatus.RECEIVED,
            created_at=datetime.now(UTC),
        )
        session.add(message)
        await session.commit()
        return message.id


async def _case(runtime: Runtime, number: str) -> tuple[Complaint, list[ComplaintTimelineEntry]]:
    async with runtime.db.sessions() as session:
        case = await session.scalar(select(Complaint).where(Complaint.case_number == number))
        assert case is not None
        entries = await session.scalars(
            select(ComplaintTimelineEntry)
            .where(ComplaintTimelineEntry.complaint_id == case.id)
            .order_by(ComplaintTimelineEntry.id)
        )
        return case, list(entries)


async def test_a_record_is_registered_with_its_day_ward_and_only_the_images_sent_during_intake(
    bot: httpx.AsyncClient, runtime: Runtime
) -> None:
    who = await complainant(runtime)
    sender = await _sender(runtime, who)
    await _image(runtime, who, "http://mmbiz.example/before.jpg")
    mark = (await bot.post("/internal/bot/complaints/intake", params=sender)).json()["media_after"]
    during = await _image(runtime, who, "http://mmbiz.example/during.jpg")
    answer = await bot.post("/internal/bot/complaints", params=sender, json={**RECORD, "media_after": mark})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["case_number"].startswith("TS-") and body["working_days"] == 5
    assert (body["safety_risk"], body["media"], body["escalate"]) == (False, 1, None)
    case, entries = await _case(runtime, body["case_number"])
    assert case.where_ward == "3楼" and case.when_date is not None and case.who is None
    assert case.due_on.isoformat() == body["deadline"]
    attached = [entry.data for entry in entries if entry.kind == TimelineKind.patient_added]
    assert attached == [
        {
            "msg_type": "image",
            "message_id": during,
            "media_id": "media-g.jpg",
            "url": "http://mmbiz.example/during.jpg",
        }
    ]


async def test_a_safety_risk_is_marked_escalated_and_the_escalation_handed_to_the_bot(
    bot: httpx.AsyncClient, runtime: Runtime
) -> None:
    who = await complainant(runtime)
    record = {**RECORD, "what": "护士给我妈发错药了", "where_text": "心内科病房"}
    body = (
        await bot.post("/internal/bot/complaints", params=await _sender(runtime, who), json=record)
    ).json()
    assert body["safety_risk"] is True
    assert body["escalate"] == {
        "reason": "complaint_safety",
        "priority": "urgent",
        "team": "complaints",
        "summary": f"{body['case_number']}：护士给我妈发错药了",
    }
    case, entries = await _case(runtime, body["case_number"])
    assert case.safety_escalated_at is not None and case.category == "safety"
    assert [entry.kind for entry in entries] == [TimelineKind.registered, TimelineKind.escalated]


async def test_another_accounts_case_is_unknown_and_an_open_case_takes_additions(
    bot: httpx.AsyncClient, runtime: Runtime
) -> None:
    owner, stranger = await complainant(runtime), await complainant(runtime)
    body = (
        await bot.post("/internal/bot/complaints", params=await _sender(runtime, owner), json=RECORD)
    ).json()
    number = body["case_number"]
    theirs = await _sender(runtime, stranger)
    assert (await bot.get(f"/internal/bot/complaints/{number}", params=theirs)).status_code == 404
    refused = await bot.post(
        f"/internal/bot/complaints/{number}/additions", params=theirs, json={"text": "补充"}
    )
    assert refused.status_code == 404
    assert (await bot.get("/internal/bot/complaints", params=theirs)).json() == {"cases": []}

    mine = await _sender(runtime, owner)
    listed = (await bot.get("/internal/bot/complaints", params=mine)).json()["cases"]
    assert [(c["case_number"], c["status_text"], c["open"]) for c in listed] == [
        (number, "已登记，等待分派", True)
    ]
    added = await bot.post(
        f"/internal/bot/complaints/{number}/additions", params=mine, json={"text": "还有收据"}
    )
    assert added.json() == {"case_number": number, "media": 0, "escalate": None}
    not_answered = await bot.post(
        f"/internal/bot/complaints/{number}/outcome", params=mine, json={"accepts": True, "satisfaction": 5}
    )
    assert not_answered.status_code == 409


async def test_a_part_of_an_intake_with_a_safety_risk_is_answered_with_its_escalation_at_once(
    bot: httpx.AsyncClient, runtime: Runtime
) -> None:
    sender = await _sender(runtime, await complainant(runtime))
    risky = await bot.post(
        "/internal/bot/complaints/screen", params=sender, json={"text": "我爸半夜摔倒了，按铃半小时没人来"}
    )
    assert risky.status_code == 200, risky.text
    body = risky.json()
    number = body["case_number"]
    assert number and number.startswith("TS-")
    assert body["risks"] and body["escalate"] == {
        "reason": "complaint_safety",
        "priority": "urgent",
        "team": "complaints",
        "summary": f"{number}：我爸半夜摔倒了，按铃半小时没人来",
    }
    # Recorded as well as escalated, once per intake: the same part sent again finds the case.
    again = await bot.post(
        "/internal/bot/complaints/screen",
        params=sender,
        json={"text": "我爸半夜摔倒了，按铃半小时没人来", "intake_key": "k-1"},
    )
    repeated = await bot.post(
        "/internal/bot/complaints/screen",
        params=sender,
        json={"text": "我爸半夜摔倒了，按铃半小时没人来", "intake_key": "k-1"},
    )
    assert again.json()["case_number"] == repeated.json()["case_number"] != number
    calm = await bot.post("/internal/bot/complaints/screen", params=sender, json={"text": "排队太久了"})
    assert calm.json() == {"risks": [], "escalate": None, "case_number": None}


async def test_a_safety_risk_in_words_added_to_an_open_case_is_escalated_with_them(
    bot: httpx.AsyncClient, runtime: Runtime
) -> None:
    mine = await _sender(runtime, await complainant(runtime))
    number = (await bot.post("/internal/bot/complaints", params=mine, json=RECORD)).json()["case_number"]
    added = "还有，护士给我孩子输错液了"
    body = (
        await bot.post(f"/internal/bot/complaints/{number}/additions", params=mine, json={"text": added})
    ).json()
    assert body["escalate"] == {
        "reason": "complaint_safety",
        "priority": "urgent",
        "team": "complaints",
        "summary": f"{number}：{added}",
    }
    case, entries = await _case(runtime, number)
    assert case.safety_risk and case.safety_escalated_at is not None and case.category == "safety"
    assert entries[-1].kind == TimelineKind.escalated and entries[-1].data
    assert entries[-1].data["words"] == added


async def test_a_registration_sent_again_with_its_intake_key_answers_the_same_case(
    bot: httpx.AsyncClient, runtime: Runtime
) -> None:
    """The action server gave up after its timeout while the case committed; the patient's next 确认
    sends the same intake again: one case, the same number (and its escalation again, owed)."""
    who = await complainant(runtime)
    mine = await _sender(runtime, who)
    record = {**RECORD, "what": "护士给我妈发错药了", "intake_key": f"{mine['sender']}:m-1"}
    # Two at the same moment (a retry racing the first), then one more.
    both = await asyncio.gather(
        *(bot.post("/internal/bot/complaints", params=mine, json=record) for _ in "ab")
    )
    first, second = (answer.json() for answer in both)
    again = (await bot.post("/internal/bot/complaints", params=mine, json=record)).json()
    assert first == second == again
    async with runtime.db.sessions() as session:
        numbers = await session.scalars(
            select(Complaint.case_number).where(Complaint.patient_id == who.patient_id)
        )
        assert list(numbers) == [first["case_number"]]
    _, entries = await _case(runtime, first["case_number"])
    assert [entry.kind for entry in entries] == [TimelineKind.registered, TimelineKind.escalated]
    # Another intake of the same patient is another case.
    other = {**RECORD, "intake_key": f"{mine['sender']}:m-2"}
    assert (await bot.post("/internal/bot/complaints", params=mine, json=other)).json()[
        "case_number"
    ] != first["case_number"]


async def test_a_long_detailed_account_is_registered_whole(bot: httpx.AsyncClient, runtime: Runtime) -> None:
    """Patients paste long accounts: up to 4,000 characters of what happened are kept."""
    mine = await _sender(runtime, await complainant(runtime))
    story = "从挂号到做完检查一共等了六个小时，中间问了三次都没人解释。" * 90
    assert 2000 < len(story) <= 4000
    answer = await bot.post("/internal/bot/complaints", params=mine, json={**RECORD, "what": story})
    assert answer.status_code == 200, answer.text
    async with runtime.db.sessions() as session:
        case = await case_by_number(session, answer.json()["case_number"])
        assert case.what == story


async def test_a_record_confirmed_after_its_safety_screen_is_added_to_the_screened_case(
    bot: httpx.AsyncClient, runtime: Runtime
) -> None:
    """The screen recorded the first words (its answer lost on the way, the intake went on); the
    confirmed record lands on the same case, nothing dropped."""
    who = await complainant(runtime)
    mine = await _sender(runtime, who)
    key = f"{mine['sender']}:m-9"
    screened = await bot.post(
        "/internal/bot/complaints/screen", params=mine, json={"text": "护士给我妈发错药了", "intake_key": key}
    )
    number = screened.json()["case_number"]
    record = {**RECORD, "what": "护士给我妈发错药了，吃了才发现", "intake_key": key}
    confirmed = await bot.post("/internal/bot/complaints", params=mine, json=record)
    assert confirmed.json()["case_number"] == number
    again = await bot.post("/internal/bot/complaints", params=mine, json=record)
    assert again.json()["case_number"] == number
    _, entries = await _case(runtime, number)
    added = [entry.text for entry in entries if entry.kind == TimelineKind.patient_added]
    [text] = added  # the retry adds nothing
    assert text and "吃了才发现" in text and "昨天上午" in text
