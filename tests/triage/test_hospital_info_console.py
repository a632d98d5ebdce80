"""Console: staff read the hospital information, supervisors and admins edit it (audited, bad input
400), and the bot answers with the edited text."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError

from crm_backend.app import _bad_request
from crm_backend.audit.models import AuditEntry
from crm_backend.config import SANDBOX_INTERNAL_TOKEN
from crm_backend.hospital_info.bot_views import router as hospital_info_bot_router
from crm_backend.hospital_info.views import router as hospital_info_router
from crm_backend.runtime import Runtime
from crm_backend.staff.audit_views import router as audit_router
from crm_backend.staff.views import router as staff_router
from tests.support.api import ADMIN_PASSWORD, ADMIN_USERNAME, build_api_app, login, new_client, staff_client


@pytest.fixture(scope="module")
async def info_app(runtime: Runtime) -> FastAPI:
    app = await build_api_app(
        runtime, staff_router, audit_router, hospital_info_router, hospital_info_bot_router
    )
    app.add_exception_handler(RequestValidationError, _bad_request)
    return app


@pytest.fixture
async def admin(info_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with new_client(info_app) as c:
        await login(c, ADMIN_USERNAME, ADMIN_PASSWORD)
        yield c


async def bot_answer(app: FastAPI, text: str) -> str:
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {SANDBOX_INTERNAL_TOKEN}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver", headers=headers) as bot:
        return (await bot.post("/internal/bot/hospital-info", json={"text": text})).json()["answer"]


async def test_staff_read_the_seeded_topics_and_agents_may_not_edit(
    info_app: FastAPI, admin: httpx.AsyncClient
) -> None:
    listed = await admin.get("/api/console/hospital-info")
    assert listed.status_code == 200
    keys = [e["key"] for e in listed.json()]
    assert keys[:6] == ["opening_hours", "address", "parking", "visiting_hours", "service_phone", "locations"]
    async with staff_client(info_app, admin, "agent", []) as (_, agent):
        assert (await agent.get("/api/console/hospital-info")).status_code == 200
        response = await agent.put("/api/console/hospital-info/parking", json={"answer": "改一下"})
        assert response.status_code == 403
    async with new_client(info_app) as anonymous:
        assert (await anonymous.get("/api/console/hospital-info")).status_code == 401


async def test_an_edit_is_audited_and_the_bot_answers_with_it(
    info_app: FastAPI, runtime: Runtime, admin: httpx.AsyncClient
) -> None:
    assert "地下停车场" in await bot_answer(info_app, "停车场在哪")
    new_answer = "停车场已搬到住院部西侧的立体车库，每小时4元。"
    async with staff_client(info_app, admin, "supervisor", []) as (supervisor_staff, supervisor):
        response = await supervisor.put("/api/console/hospital-info/parking", json={"answer": new_answer})
        assert response.status_code == 200, response.text
        assert response.json()["answer"] == new_answer
    assert await bot_answer(info_app, "停车场在哪") == new_answer
    async with runtime.db.sessions() as session:
        entry = (
            await session.scalars(
                sa.select(AuditEntry).where(
                    AuditEntry.action == "hospital_info.update", AuditEntry.object_id == "parking"
                )
            )
        ).one()
    assert entry.staff_id == supervisor_staff["id"]
    assert entry.detail["changes"]["answer"]["after"] == new_answer


@pytest.mark.parametrize(
    "body",
    [{}, {"answer": ""}, {"answer": None}, {"keywords": []}, {"answer": "x" * 1001}, {"colour": "red"}],
)
async def test_bad_edits_are_400_and_change_nothing(admin: httpx.AsyncClient, body: object) -> None:
    before = (await admin.get("/api/console/hospital-info")).json()
    response = await admin.put("/api/console/hospital-info/opening_hours", json=body)
    assert response.status_code == 400
    assert (await admin.get("/api/console/hospital-info")).json() == before


async def test_an_unknown_topic_is_404(admin: httpx.AsyncClient) -> None:
    assert (await admin.put("/api/console/hospital-info/canteen", json={"answer": "有"})).status_code == 404
