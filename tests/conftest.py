"""Shared fixtures: real Redis and databases; Rasa, action server, web app and worker as processes."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest
import redis

from crm_backend.database.core import Database
from tests.support.postgres import recreate_postgres
from tests.support.stack import FakeWeChat, Stack, free_port, start_fake_wechat, start_rasa

#: Our own database on that server; set TEST_POSTGRES_DB to run two suites side by side.
POSTGRES_TEST_DB = os.environ.get("TEST_POSTGRES_DB", "carebridge_test")
REDIS_BASE = os.environ.get("TEST_REDIS_BASE", "redis://127.0.0.1:6379")
#: Redis databases the suite owns and flushes; db 0 (the developer's `make run`) is never touched.
REDIS_DB = {"rasa": 13, "sqlite": 11, "postgresql": 12}


def _fresh_redis(name: str) -> str:
    url = f"{REDIS_BASE}/{REDIS_DB[name]}"
    redis.Redis.from_url(url).flushdb()
    return url


async def _fresh_postgres() -> str:
    return await recreate_postgres(POSTGRES_TEST_DB)


@pytest.fixture(scope="session")
def fake_wechat() -> Iterator[FakeWeChat]:
    fake = start_fake_wechat()
    yield fake
    fake.process.stop()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
async def stack(
    request: pytest.FixtureRequest, fake_wechat: FakeWeChat, tmp_path_factory
) -> AsyncIterator[Stack]:
    """Each stack has its own Rasa and action server: the action server calls that stack's web app."""
    backend: str = request.param
    if backend == "sqlite":
        database_url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'carebridge.db'}"
    else:
        database_url = await _fresh_postgres()
    port = free_port()
    rasa = start_rasa(_fresh_redis("rasa"), crm_url=f"http://127.0.0.1:{port}")
    stack = Stack(backend, database_url, _fresh_redis(backend), rasa, fake_wechat, port=port)
    try:
        stack.migrate()
        stack.start_web()
        stack.start_worker()
        stack.wait_healthy()
        yield stack
    finally:
        stack.stop()
        rasa.stop()


@pytest.fixture
async def db(stack: Stack) -> AsyncIterator[Database]:
    database = Database(stack.database_url)
    yield database
    await database.dispose()


@pytest.fixture(autouse=True)
def _no_leftover_faults(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "stack" in request.fixturenames:
        request.getfixturevalue("fake_wechat").clear_faults()
