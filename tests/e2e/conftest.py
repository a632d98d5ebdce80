"""Fixtures of the end-to-end tests beside the stack (tests/conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from crm_backend.domains import subscribe_listeners
from crm_backend.runtime import Runtime
from tests.support.api import api_settings
from tests.support.stack import Stack


@pytest.fixture
async def crm(stack: Stack) -> AsyncIterator[Runtime]:
    """The CRM as its jobs and staff use it (a dispatcher, an answer to a complaint), on the stack's
    database and Redis, with every domain's listeners."""
    settings = api_settings(
        stack.database_url,
        stack.redis_url,
        RASA_PORT=str(stack.rasa.rasa_port),
        WECHAT_API_BASE=stack.wechat.base,
    )
    runtime = Runtime.create(settings)
    subscribe_listeners(runtime)
    yield runtime
    await runtime.close()
