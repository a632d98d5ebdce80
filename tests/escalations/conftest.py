"""Escalation API fixtures: our own PostgreSQL database and Redis db 10, a clock the test sets, and
Rasa out of reach (pausing the bot fails softly; these tests are about queues and reports)."""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

import httpx
import pytest
import redis
from fastapi import FastAPI

from crm_backend.conversations.models import Conversation, DeliveryStatus, Direction, Message, SenderType
from crm_backend.escalations.report_views import router as report_router
from crm_backend.escalations.views import router as escalations_router
from crm_backend.patients.models import Patient, WeChatIdentity
from crm_backend.runtime import Runtime
from crm_backend.staff.views import router as staff_router
from tests.support.api import ADMIN_PASSWORD, ADMIN_USERNAME, api_settings, build_api_app, login, new_client
from tests.support.postgres import alembic, drop_postgres, recreate_postgres
from tests.support.stack import free_port

REDIS_URL = os.environ.get("TEST_REDIS_BASE", "redis://127.0.0.1:6379") + "/10"
DB_NAME = os.environ.get("TEST_POSTGRES_DB", "carebridge_test") + "_escalations"

_serial = itertools.count(1)


class Clock:
    """The runtime's "now", set by the test (the real time until it does)."""

    def __init__(self) -> None:
        self.now: datetime | None = None

    def __call__(self) -> datetime:
        return self.now or datetime.now(UTC)


@pytest.fixture(scope="session")
async def database_url() -> AsyncIterator[str]:
    url = await recreate_postgres(DB_NAME)
    alembic(url, "upgrade", "head")
    yield url
    await drop_postgres(DB_NAME)


@pytest.fixture(scope="session")
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="session")
async def runtime(database_url: str, clock: Clock) -> AsyncIterator[Runtime]:
    redis.Redis.from_url(REDIS_URL).flushdb()
    settings = api_settings(
        database_url,
        REDIS_URL,
        RASA_URLS=f"http://127.0.0.1:{free_port()}",  # nothing listens: pausing the bot fails softly
        STAFFED_HOURS="08:00-20:00",
        STAFFED_DAYS="1,2,3,4,5,6,7",
        SLA_NORMAL_SECONDS=900,
        SLA_URGENT_SECONDS=120,
    )
    runtime = Runtime.create(settings)
    runtime.clock = clock
    yield runtime
    await runtime.close()


@pytest.fixture(scope="session")
async def app(runtime: Runtime) -> FastAPI:
    return await build_api_app(runtime, staff_router, escalations_router, report_router)


@pytest.fixture
async def admin_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with new_client(app) as c:
        await login(c, ADMIN_USERNAME, ADMIN_PASSWORD)
        yield c


@pytest.fixture(scope="session")
def new_conversation(runtime: Runtime, clock: Clock) -> Callable[[], Awaitable[int]]:
    """Makes a patient, their WeChat identity and a conversation still with the bot, in which the
    patient has just written (so WeChat's reply window is open)."""

    async def make() -> int:
        n = next(_serial)
        async with runtime.db.sessions() as session:
            patient = Patient(display_name=f"患者{n}")
            session.add(patient)
            await session.flush()
            identity = WeChatIdentity(
                app_id="wx_test", openid=f"openid-esc-{n:06d}", patient_id=patient.id, last_inbound_at=clock()
            )
            session.add(identity)
            await session.flush()
            conversation = Conversation(patient_id=patient.id, identity_id=identity.id)
            session.add(conversation)
            await session.flush()
            session.add(
                Message(
                    conversation_id=conversation.id,
                    direction=Direction.IN,
                    sender_type=SenderType.PATIENT,
                    content="你好，我想咨询一下",
                    delivery_status=DeliveryStatus.RECEIVED,
                    created_at=clock(),
                )
            )
            await session.commit()
            return conversation.id

    return make
