"""Fixtures of the end-to-end tests beside the stack (tests/conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from crm_backend.runtime import Runtime
from tests.support.api import crm_runtime
from tests.support.stack import Stack


@pytest.fixture
async def crm(stack: Stack) -> AsyncIterator[Runtime]:
    """The CRM as its jobs and staff use it (a dispatcher, an answer to a complaint), on the stack's
    database and Redis, with every domain's listeners."""
    async with crm_runtime(stack) as runtime:
        yield runtime
