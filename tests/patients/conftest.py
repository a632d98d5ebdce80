"""Patient-record fixtures: our own PostgreSQL database and Redis db 15, reset at session start."""

from __future__ import annotations

import base64
import itertools
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import redis
from fastapi import FastAPI

from crm_backend.audit.views import router as audit_router
from crm_backend.config import Settings
from crm_backend.conversations.models import Conversation
from crm_backend.escalations.models import Escalation
from crm_backend.escalations.views import router as escalations_router
from crm_backend.patients.models import Patient, WeChatIdentity
from crm_backend.patients.views import router as patients_router
from crm_backend.runtime import Runtime
from crm_backend.staff.models import Team
from crm_backend.staff.service import ensure_first_admin
from crm_backend.staff.views import router as staff_router
from tests.staff.conftest import (
    ADMIN_PASSWORD,
    ADMIN_USERNAME,
    alembic,
    drop_postgres,
    login,
    new_client,
    recreate_postgres,
)

REDIS_URL = os.environ.get("TEST_REDIS_BASE", "redis://127.0.0.1:6379") + "/15"
DB_NAME = "carebridge_patients_test"
#: Deterministic test keys (never used anywhere else).
KEY_A = base64.b64encode(b"A" * 32).decode()
KEY_B = base64.b64encode(b"B" * 32).decode()
LOOKUP_KEY = base64.b64encode(b"L" * 32).decode()


def make_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "DATABASE_URL": database_url,
        "REDIS_URL": REDIS_URL,
        "ADMIN_USERNAME": ADMIN_USERNAME,
        "ADMIN_PASSWORD": ADMIN_PASSWORD,
        "PATIENT_DATA_KEYS": f"a:{KEY_A}",
        "PATIENT_LOOKUP_KEY": LOOKUP_KEY,
        **overrides,
    }
    return Settings(**values)


@pytest.fixture(scope="session")
async def database_url() -> AsyncIterator[str]:
    url = await recreate_postgres(DB_NAME)
    alembic(url, "upgrade", "head")
    yield url
    await drop_postgres(DB_NAME)


@pytest.fixture(scope="session")
async def runtime(database_url: str) -> AsyncIterator[Runtime]:
    redis.Redis.from_url(REDIS_URL).flushdb()
    runtime = Runtime.create(make_settings(database_url))
    yield runtime
    await runtime.close()


@pytest.fixture(scope="session")
async def app(runtime: Runtime) -> FastAPI:
    app = FastAPI()
    for router in (staff_router, audit_router, escalations_router, patients_router):
        app.include_router(router)
    app.state.runtime = runtime
    await ensure_first_admin(runtime.settings, runtime.db)
    return app


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


async def make_staff_in(
    admin_client: httpx.AsyncClient, role: str, team_ids: list[int]
) -> tuple[dict[str, Any], str]:
    username = f"pt{next(_serial)}"
    password = f"{username}-secret-pw"
    response = await admin_client.post(
        "/api/console/admin/staff",
        json={
            "username": username,
            "display_name": f"员工 {username}",
            "password": password,
            "role": role,
            "capacity": 3,
            "team_ids": team_ids,
        },
    )
    assert response.status_code == 200, response.text
    return response.json(), password


@asynccontextmanager
async def staff_client(
    app: FastAPI, admin_client: httpx.AsyncClient, role: str, team_ids: list[int]
) -> AsyncIterator[tuple[dict[str, Any], httpx.AsyncClient]]:
    """A new staff member of `role` in `team_ids`, and a client logged in as them."""
    staff, password = await make_staff_in(admin_client, role, team_ids)
    async with new_client(app) as client:
        await login(client, staff["username"], password)
        yield staff, client
