"""Patient-record fixtures: our own PostgreSQL database and Redis db 15, reset at session start."""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import pytest
import redis
from fastapi import FastAPI

from crm_backend.conversations.models import Conversation
from crm_backend.escalations.message_views import router as messages_router
from crm_backend.escalations.models import Escalation
from crm_backend.escalations.views import router as escalations_router
from crm_backend.patient_record.views import router as patients_router
from crm_backend.patients.models import Patient, WeChatIdentity
from crm_backend.runtime import Runtime
from crm_backend.staff.audit_views import router as audit_router
from crm_backend.staff.models import Team
from crm_backend.staff.views import router as staff_router
from tests.support.api import (
    ADMIN_PASSWORD,
    ADMIN_USERNAME,
    api_settings,
    build_api_app,
    login,
    new_client,
)
from tests.support.postgres import alembic, drop_postgres, recreate_postgres

REDIS_URL = os.environ.get("TEST_REDIS_BASE", "redis://127.0.0.1:6379") + "/15"
#: TEST_POSTGRES_DB names this suite's database too, so two checkouts can run it side by side.
DB_NAME = f"{os.environ.get('TEST_POSTGRES_DB', 'carebridge')}_patients_test"


@pytest.fixture(scope="session")
async def database_url() -> AsyncIterator[str]:
    url = await recreate_postgres(DB_NAME)
    alembic(url, "upgrade", "head")
    yield url
    await drop_postgres(DB_NAME)


@pytest.fixture(scope="session")
async def runtime(database_url: str) -> AsyncIterator[Runtime]:
    redis.Redis.from_url(REDIS_URL).flushdb()
    runtime = Runtime.create(api_settings(database_url, REDIS_URL))
    yield runtime
    await runtime.close()


@pytest.fixture(scope="session")
async def app(runtime: Runtime) -> FastAPI:
    return await build_api_app(
        runtime, staff_router, audit_router, escalations_router, messages_router, patients_router
    )


@pytest.fixture
async def admin_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with new_client(app) as c:
        await login(c, ADMIN_USERNAME, ADMIN_PASSWORD)
        yield c


_serial = itertools.count(1)


@dataclass
class Family:
    """A WeChat account holder with a conversation escalated to `team_id`."""

    identity: WeChatIdentity
    patient_id: int
    conversation_id: int
    team_id: int


async def make_team(runtime: Runtime) -> int:
    async with runtime.db.sessions() as session:
        team = Team(name=f"team-{next(_serial)}")
        session.add(team)
        await session.commit()
        return team.id


async def make_family(runtime: Runtime, team_id: int) -> Family:
    """A first-contact patient and identity whose conversation is escalated to `team_id`."""
    n = next(_serial)
    now = datetime.now(UTC)
    async with runtime.db.sessions() as session:
        patient = Patient()
        session.add(patient)
        await session.flush()
        identity = WeChatIdentity(app_id="wx_test", openid=f"openid-family-{n:06d}", patient_id=patient.id)
        session.add(identity)
        await session.flush()
        conversation = Conversation(patient_id=patient.id, identity_id=identity.id)
        session.add(conversation)
        await session.flush()
        session.add(
            Escalation(
                conversation_id=conversation.id,
                team_id=team_id,
                reason="test",
                sla_due_at=now,
                status="resolved",
            )
        )
        await session.commit()
        return Family(identity, patient.id, conversation.id, team_id)
