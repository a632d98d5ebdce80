"""The conversations data layer on both databases (PostgreSQL in its own database, SQLite), Redis db 9."""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import redis

from crm_backend.conversations.models import Conversation, InboundMessage
from crm_backend.database.core import Database
from crm_backend.domains import subscribe_listeners
from crm_backend.patients.models import Patient, WeChatIdentity
from crm_backend.runtime import Runtime
from tests.support.api import api_settings
from tests.support.postgres import alembic, drop_postgres, recreate_postgres

#: Overridable so two copies of this suite can run side by side.
DB_NAME = os.environ.get("TEST_CONVERSATIONS_DB", "carebridge_conversations_test")
REDIS_URL = (
    os.environ.get("TEST_REDIS_BASE", "redis://127.0.0.1:6379")
    + "/"
    + os.environ.get("TEST_CONVERSATIONS_REDIS_DB", "9")
)
_serial = itertools.count(1)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
async def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    if request.param == "postgresql":
        url = await recreate_postgres(DB_NAME)
    else:
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('conversations') / 'conversations.db'}"
    alembic(url, "upgrade", "head")
    yield url
    if request.param == "postgresql":
        await drop_postgres(DB_NAME)


@pytest.fixture(scope="module")
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    yield database
    await database.dispose()


@pytest.fixture(scope="module")
async def runtime(database_url: str) -> AsyncIterator[Runtime]:
    redis.Redis.from_url(REDIS_URL).flushdb()
    runtime = Runtime.create(api_settings(database_url, REDIS_URL))
    subscribe_listeners(runtime)
    yield runtime
    await runtime.close()


async def new_push(db: Database, *, text: str = "你好") -> tuple[int, int]:
    """A received push of a new patient with an open conversation: (inbound id, conversation id)."""
    n = next(_serial)
    earlier = datetime.now(UTC) - timedelta(minutes=1)
    async with db.sessions() as session:
        patient = Patient()
        session.add(patient)
        await session.flush()
        identity = WeChatIdentity(app_id="wx-test", openid=f"o-conversations-{n}", patient_id=patient.id)
        session.add(identity)
        await session.flush()
        conversation = Conversation(
            patient_id=patient.id, identity_id=identity.id, started_at=earlier, last_message_at=earlier
        )
        inbound = InboundMessage(
            dedupe_key=f"conversations-{n}",
            app_id="wx-test",
            openid=identity.openid,
            msg_type="text",
            create_time=int(earlier.timestamp()),
            payload={"Content": text},
        )
        session.add_all([conversation, inbound])
        await session.commit()
        return inbound.id, conversation.id
