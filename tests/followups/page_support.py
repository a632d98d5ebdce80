"""Fixtures of the follow-up page and work-list tests: our own PostgreSQL database and a SQLite file
(every test runs on both), Redis db 7, the whole web app (its middleware: CSP, no-store, body
limits) with every domain's listeners, a plan with a conditional question, and enrolments with
check-ins made directly in the database.

Test modules import the fixtures they use from here (`from tests.followups.page_support import ...`).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
import redis
from fastapi import FastAPI
from sqlalchemy import select

from crm_backend import domains
from crm_backend.app import create_app
from crm_backend.followups.models import (
    FollowupCheckin,
    FollowupEnrolment,
    FollowupPlan,
    FollowupPlanVersion,
)
from crm_backend.followups.plans import PlanDefinition
from crm_backend.patients.models import Patient, WeChatIdentity
from crm_backend.patients.records import add_managed_patient
from crm_backend.runtime import Runtime
from crm_backend.staff.models import Team
from crm_backend.staff.service import ensure_first_admin
from tests.support.api import ADMIN_PASSWORD, ADMIN_USERNAME, api_settings, login, new_client
from tests.support.postgres import database_at_head
from tests.support.stack import free_port

REDIS_URL = os.environ.get("TEST_REDIS_BASE", "redis://127.0.0.1:6379") + "/7"
DB_NAME = os.environ.get("TEST_POSTGRES_DB", "carebridge_test") + "_followup_page"

#: A small plan in the shape clinicians write: a pain scale, a temperature with a range, a wound
#: question whose follow-up is asked only when the wound is red, and symptoms with an emergency.
PLAN: dict[str, Any] = {
    "code": "test_lc",
    "name": "腹腔镜胆囊切除术后随访",
    "procedures": [{"text": "腹腔镜胆囊切除术", "codes": ["51.23"]}],
    "time_points": [
        {
            "day": 1,
            "hour": 10,
            "questionnaire": {
                "questions": [
                    {
                        "code": "pain",
                        "text": "今天伤口疼痛打几分？",
                        "type": "scale",
                        "flags": [
                            {"flag": "amber", "at_least": 4},
                            {
                                "flag": "red",
                                "at_least": 7,
                                "advice": "疼痛较重，请按医嘱服止痛药并联系护士。",
                            },
                        ],
                    },
                    {
                        "code": "temperature",
                        "text": "今天最高体温是多少？",
                        "type": "number",
                        "unit": "°C",
                        "minimum": 35,
                        "maximum": 42,
                        "flags": [
                            {"flag": "red", "at_least": 38.5, "advice": "体温偏高，请今天到医院复诊。"}
                        ],
                    },
                    {
                        "code": "wound_red",
                        "text": "伤口周围有没有发红？",
                        "type": "yes_no",
                        "flags": [{"flag": "amber", "equals": True}],
                    },
                    {
                        "code": "wound_discharge",
                        "text": "伤口有没有流液或流脓？",
                        "type": "yes_no",
                        "enable_when": {"question": "wound_red", "equals": True},
                        "flags": [
                            {"flag": "red", "equals": True, "advice": "伤口可能感染，请今天到医院换药复查。"}
                        ],
                    },
                    {
                        "code": "symptoms",
                        "text": "有没有下面这些情况？",
                        "type": "multiple_choice",
                        "choices": [
                            {"code": "nausea", "text": "恶心呕吐"},
                            {"code": "chest_pain", "text": "胸痛或突然气短"},
                        ],
                        "flags": [
                            {"flag": "amber", "any_of": ["nausea"]},
                            {"flag": "emergency", "any_of": ["chest_pain"], "advice": "请立即拨打 120。"},
                        ],
                    },
                ]
            },
        },
        {
            "day": 7,
            "hour": 10,
            "questionnaire": {
                "questions": [{"code": "pain", "text": "今天伤口疼痛打几分？", "type": "scale", "flags": []}]
            },
        },
    ],
}
PLAN_DEFINITION = PlanDefinition.model_validate(PLAN)
#: The same day-1 questions with a free-text question last, as the shipped plans have: the symptoms'
#: emergency is no longer the last question.
PLAN_WITH_CONCERNS: dict[str, Any] = {
    **PLAN,
    "code": "test_lc_concerns",
    "time_points": [
        {
            **PLAN["time_points"][0],
            "questionnaire": {
                "questions": [
                    *PLAN["time_points"][0]["questionnaire"]["questions"],
                    {"code": "concerns", "text": "还有什么想告诉护士的吗？", "type": "free_text"},
                ]
            },
        },
        PLAN["time_points"][1],
    ],
}

_serial = itertools.count(1)


@pytest.fixture(scope="session", params=["postgresql", "sqlite"])
async def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    """Both databases the web app runs on (PostgreSQL in production, SQLite embedded)."""
    async with database_at_head(request.param, DB_NAME, tmp_path_factory.mktemp("followup_page")) as url:
        yield url


@pytest.fixture(scope="session")
async def runtime(database_url: str) -> AsyncIterator[Runtime]:
    redis.Redis.from_url(REDIS_URL).flushdb()
    # Rasa out of reach: pausing the bot on escalation fails softly (these tests are about records).
    settings = api_settings(database_url, REDIS_URL, RASA_PORT=str(free_port()))
    runtime = Runtime.create(settings)
    domains.subscribe_listeners(runtime)
    async with runtime.db.sessions() as session:
        for definition in (PLAN, PLAN_WITH_CONCERNS):
            plan = FollowupPlan(code=definition["code"], name=definition["name"])
            session.add(plan)
            await session.flush()
            session.add(FollowupPlanVersion(plan_id=plan.id, version=1, definition=definition))
        await session.commit()
    yield runtime
    await runtime.close()


@pytest.fixture(scope="session")
async def app(runtime: Runtime) -> FastAPI:
    """The web app as deployed (middleware included), sharing the test's runtime."""
    web = create_app(runtime.settings)
    web.state.runtime = runtime
    await ensure_first_admin(runtime.settings, runtime.db)
    return web


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with new_client(app) as c:
        yield c


@pytest.fixture
async def admin_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with new_client(app) as c:
        await login(c, ADMIN_USERNAME, ADMIN_PASSWORD)
        yield c


@dataclass
class Enrolled:
    checkin_id: int
    enrolment_id: int
    patient_id: int
    identity_id: int | None
    team_id: int


async def make_team(runtime: Runtime) -> int:
    async with runtime.db.sessions() as session:
        team = Team(name=f"随访组-{next(_serial)}")
        session.add(team)
        await session.commit()
        return team.id


async def enrol(
    runtime: Runtime,
    team_id: int,
    *,
    name: str = "张三",
    phone: str | None = None,
    status: str = "started",
    due_at: datetime | None = None,
    started_at: datetime | None = None,
    with_identity: bool = True,
    plan_code: str = PLAN["code"],
    **checkin: Any,
) -> Enrolled:
    """A discharged patient enrolled in the test plan (or `plan_code`'s) with its day-1 check-in (in
    `status`) and a scheduled day-7 one; extra keyword arguments set the day-1 check-in's columns."""
    now = datetime.now(UTC)
    n = next(_serial)
    async with runtime.db.sessions() as session:
        version_id = await session.scalar(
            select(FollowupPlanVersion.id)
            .join(FollowupPlan, FollowupPlan.id == FollowupPlanVersion.plan_id)
            .where(FollowupPlan.code == plan_code)
            .order_by(FollowupPlanVersion.id)
            .limit(1)
        )
        patient = Patient(display_name=name)
        session.add(patient)
        await session.flush()
        identity_id = None
        if with_identity:
            identity = WeChatIdentity(
                app_id="wx_test", openid=f"openid-followup-{n:05d}", patient_id=patient.id
            )
            session.add(identity)
            await session.flush()
            identity_id = identity.id
            if phone is not None:
                await add_managed_patient(
                    session, runtime.protector, identity, "self", name=name, sex="M",
                    birth_date=date(1960, 5, 1), phone=phone, id_number=None, card_number=f"C{n:08d}",
                )  # fmt: skip
        enrolment = FollowupEnrolment(
            patient_id=patient.id,
            plan_version_id=version_id,
            anchor_date=date.today(),
            discharged_on=date.today(),
            team_id=team_id,
            procedure="腹腔镜胆囊切除术",
            attending_doctor="李医生",
            source="console",
        )
        session.add(enrolment)
        await session.flush()
        due = due_at or now - timedelta(hours=1)
        first = FollowupCheckin(
            enrolment_id=enrolment.id,
            time_point=0,
            day=1,
            due_at=due,
            window_ends_at=due + timedelta(days=3),
            status=status,
            identity_id=identity_id,
            started_via="template" if status != "scheduled" else None,
            started_at=started_at or (due if status != "scheduled" else None),
            **checkin,
        )
        session.add(first)
        session.add(
            FollowupCheckin(
                enrolment_id=enrolment.id,
                time_point=1,
                day=7,
                due_at=due + timedelta(days=6),
                window_ends_at=due + timedelta(days=9),
                status="scheduled",
                identity_id=identity_id,
            )
        )
        await session.commit()
        return Enrolled(first.id, enrolment.id, patient.id, identity_id, team_id)
