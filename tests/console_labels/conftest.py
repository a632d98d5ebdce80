"""Labels and conversation search: the console API on SQLite and on PostgreSQL (migrated by Alembic),
with Redis db 6 for sessions and console events."""

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

from crm_backend.conversations.models import Conversation, Direction, Message, SenderType
from crm_backend.escalations.label_views import router as labels_router
from crm_backend.escalations.models import Escalation
from crm_backend.escalations.search_views import router as search_router
from crm_backend.escalations.views import router as escalations_router
from crm_backend.patients.models import Patient, WeChatIdentity
from crm_backend.runtime import Runtime
from crm_backend.staff.models import Team
from crm_backend.staff.views import router as staff_router
from tests.support.api import ADMIN_PASSWORD, ADMIN_USERNAME, api_settings, build_api_app, login, new_client
from tests.support.postgres import database_at_head

REDIS_URL = os.environ.get("TEST_REDIS_BASE", "redis://127.0.0.1:6379") + "/6"
DB_NAME = os.environ.get("TEST_POSTGRES_DB", "carebridge_test") + "_labels"


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path_factory) -> AsyncIterator[str]:
    async with database_at_head(request.param, DB_NAME, tmp_path_factory.mktemp("labels")) as url:
        yield url


@pytest.fixture(scope="session")
async def runtime(database_url: str) -> AsyncIterator[Runtime]:
    redis.Redis.from_url(REDIS_URL).flushdb()
    runtime = Runtime.create(api_settings(database_url, REDIS_URL))
    yield runtime
    await runtime.close()


@pytest.fixture(scope="session")
async def app(runtime: Runtime) -> FastAPI:
    return await build_api_app(runtime, staff_router, escalations_router, labels_router, search_router)


@pytest.fixture
async def admin_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with new_client(app) as client:
        await login(client, ADMIN_USERNAME, ADMIN_PASSWORD)
        yield client


_serial = itertools.count(1)


@dataclass
class Chat:
    patient_id: int
    conversation_id: int
    escalation_id: int
    team_id: int


async def make_team(runtime: Runtime) -> int:
    async with runtime.db.sessions() as session:
        team = Team(name=f"labels-team-{next(_serial)}")
        session.add(team)
        await session.commit()
        return team.id


async def make_chat(runtime: Runtime, team_id: int, *texts: tuple[SenderType, str], name: str = "") -> Chat:
    """A patient's conversation, escalated to `team_id` (still queued), with these messages."""
    n = next(_serial)
    now = datetime.now(UTC)
    async with runtime.db.sessions() as session:
        patient = Patient(display_name=name or None)
        session.add(patient)
        await session.flush()
        identity = WeChatIdentity(app_id="wx_test", openid=f"openid-labels-{n:06d}", patient_id=patient.id)
        session.add(identity)
        await session.flush()
        conversation = Conversation(patient_id=patient.id, identity_id=identity.id, status="escalated")
        session.add(conversation)
        await session.flush()
        for sender, text in texts:
            direction = Direction.IN if sender == SenderType.PATIENT else Direction.OUT
            session.add(
                Message(
                    conversation_id=conversation.id,
                    direction=direction,
                    sender_type=sender,
                    content=text,
                    delivery_status="sent" if direction == Direction.OUT else "received",
                )
            )
        escalation = Escalation(
            conversation_id=conversation.id, team_id=team_id, reason="test", sla_due_at=now
        )
        session.add(escalation)
        await session.commit()
        return Chat(patient.id, conversation.id, escalation.id, team_id)
