"""POST /internal/bot/triage: the fixed answer shape, the bot token, bad input, the clarifying step,
and the sender's own age and sex; plus the hospital-information bot API."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from crm_backend.config import SANDBOX_INTERNAL_TOKEN
from crm_backend.hospital_info.bot_views import router as hospital_info_router
from crm_backend.patients.models import Patient, PatientLink, PatientRelation, WeChatIdentity
from crm_backend.runtime import Runtime
from crm_backend.triage.bot_views import router as triage_bot_router
from crm_backend.triage.models import TriageDecision
from crm_backend.triage.red_flag_rules import rule_book
from tests.support.api import build_api_app

CONTRACT_KEYS = {"level", "red_flags", "departments", "answer"}


@pytest.fixture(scope="module")
async def bot_app(runtime: Runtime) -> FastAPI:
    return await build_api_app(runtime, triage_bot_router, hospital_info_router)


@pytest.fixture
async def bot(bot_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=bot_app)
    headers = {"Authorization": f"Bearer {SANDBOX_INTERNAL_TOKEN}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver", headers=headers) as c:
        yield c


async def test_a_childs_fever_goes_to_paediatrics_in_the_fixed_shape(bot: httpx.AsyncClient) -> None:
    response = await bot.post("/internal/bot/triage", json={"text": "孩子发烧咳嗽三天了该看哪个科"})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == CONTRACT_KEYS
    assert body["level"] in ("urgent", "routine", "self_care")
    assert body["red_flags"] == []
    assert body["departments"][0] == {"code": "PED", "name": "儿科"}
    assert all(set(d) == {"code", "name"} for d in body["departments"])
    assert 1 <= len(body["departments"]) <= 3
    assert "儿科" in body["answer"] and "不是诊断" in body["answer"]
    assert response.headers["x-triage-step"] == "answer"


async def test_an_emergency_is_answered_as_one_with_its_red_flags_and_kept_for_review(
    bot: httpx.AsyncClient, runtime: Runtime
) -> None:
    text = "我爸胸口疼得厉害还出冷汗，手臂也麻"
    response = await bot.post("/internal/bot/triage", json={"text": text})
    body = response.json()
    assert response.status_code == 200 and set(body) == CONTRACT_KEYS
    assert body["level"] == "emergency"
    assert body["red_flags"]
    assert "120" in body["answer"]
    assert response.headers["x-triage-step"] == "emergency"
    async with runtime.db.sessions() as session:
        decision = await session.scalar(select(TriageDecision).where(TriageDecision.answer == body["answer"]))
    assert decision is not None
    assert (decision.source, decision.level, decision.red_flags) == (
        "bot_api",
        "emergency",
        body["red_flags"],
    )
    assert decision.rule_version == rule_book().version


async def test_close_departments_get_one_question_then_a_recommendation(bot: httpx.AsyncClient) -> None:
    text = "我肚子疼，肚脐周围疼"
    first = await bot.post("/internal/bot/triage", json={"text": text})
    assert first.headers["x-triage-step"] == "question"
    assert set(first.json()) == CONTRACT_KEYS
    assert "右下腹" in first.json()["answer"]
    assert {d["code"] for d in first.json()["departments"][:2]} == {"GAST", "GSUR"}
    second = await bot.post(
        "/internal/bot/triage", json={"text": text, "clarification": "对，右下腹按着更疼，走路也疼"}
    )
    assert second.headers["x-triage-step"] == "answer"
    body = second.json()
    assert body["departments"][0]["code"] == "GSUR"
    assert "普通外科" in body["answer"] and "不是诊断" in body["answer"]


async def test_the_senders_own_record_gives_sex_unless_someone_else_is_ill(
    bot: httpx.AsyncClient, runtime: Runtime
) -> None:
    """A man asking about himself is not sent to gynaecology; asking about his mother, he may be."""
    async with runtime.db.sessions() as session:
        me = Patient(sex="M")
        session.add(me)
        await session.flush()
        identity = WeChatIdentity(app_id="wx_test", openid="o-triage-self", patient_id=me.id)
        session.add(identity)
        await session.flush()
        session.add(PatientLink(identity_id=identity.id, patient_id=me.id, relationship=PatientRelation.SELF))
        await session.commit()

    async def codes(text: str, sender: str | None) -> list[str]:
        params = {"sender": sender} if sender else {}
        body = (await bot.post("/internal/bot/triage", params=params, json={"text": text})).json()
        assert set(body) == CONTRACT_KEYS
        return [d["code"] for d in body["departments"]]

    assert "GYN" in await codes("下腹疼，小便的时候也疼", None)
    assert "GYN" not in await codes("下腹疼，小便的时候也疼", "wx_test:o-triage-self")
    assert "GYN" in await codes("我妈下腹疼，小便的时候也疼", "wx_test:o-triage-self")


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"text": ""},
        {"text": "   "},
        {"text": "肚子疼" * 400},
        {"text": 12},
        {"text": "肚子疼", "extra": 1},
        {"text": "肚子疼", "clarification": "右" * 301},
    ],
)
async def test_bad_input_is_a_4xx(bot: httpx.AsyncClient, body: object) -> None:
    response = await bot.post("/internal/bot/triage", json=body)
    assert 400 <= response.status_code < 500


async def test_the_bot_token_is_required(bot_app: FastAPI) -> None:
    transport = httpx.ASGITransport(app=bot_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as anonymous:
        assert (await anonymous.post("/internal/bot/triage", json={"text": "肚子疼"})).status_code == 401
        wrong = {"Authorization": "Bearer not-the-token"}
        response = await anonymous.post("/internal/bot/triage", json={"text": "肚子疼"}, headers=wrong)
        assert response.status_code == 401
        assert (await anonymous.post("/internal/bot/hospital-info", json={"text": "停车"})).status_code == 401


@pytest.mark.parametrize(
    ("question", "topic", "words"),
    [
        ("医院几点开门", "opening_hours", "8:00"),
        ("停车场在哪", "parking", "停车场"),
        ("医院在哪里，坐地铁怎么去", "address", "地铁"),
        ("几点可以去病房看望病人", "visiting_hours", "探视"),
        ("你们医院电话多少", "service_phone", "服务电话"),
        ("心内科在几楼", "locations", "心内科"),
    ],
)
async def test_hospital_information_comes_from_the_hospitals_data(
    bot: httpx.AsyncClient, runtime: Runtime, question: str, topic: str, words: str
) -> None:
    response = await bot.post("/internal/bot/hospital-info", json={"text": question})
    assert response.status_code == 200
    assert response.json()["topic"] == topic
    assert words in response.json()["answer"]
    if topic == "service_phone":
        assert runtime.settings.hospital_service_phone in response.json()["answer"]


async def test_a_hospital_question_without_an_answer_gives_the_phone(
    bot: httpx.AsyncClient, runtime: Runtime
) -> None:
    response = await bot.post("/internal/bot/hospital-info", json={"text": "医院院长叫什么"})
    assert response.json()["topic"] is None
    assert runtime.settings.hospital_service_phone in response.json()["answer"]


@pytest.mark.parametrize("body", [{}, {"text": ""}, {"text": "停" * 501}, {"text": "停车", "x": 1}])
async def test_hospital_info_bad_input_is_a_4xx(bot: httpx.AsyncClient, body: object) -> None:
    assert 400 <= (await bot.post("/internal/bot/hospital-info", json=body)).status_code < 500
