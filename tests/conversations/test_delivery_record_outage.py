"""A send that happened is recorded even when the database is cut off just then: the outcome is
known only to the worker that sent it, so it waits for the database instead of losing it (a
message left `sending` would be handed out again by the sweeper and reach the patient twice)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis

from bench.fault_rig import Relay, postgres_address
from channels.outbound.delivery import Outbox
from crm_backend.conversations.answers import store_answers
from crm_backend.conversations.bot_gateway import BotReply
from crm_backend.conversations.models import DeliveryStatus, Message, SenderType
from crm_backend.database.core import Database
from crm_backend.runtime import Runtime
from tests.conversations.conftest import REDIS_URL, new_push
from tests.support.api import api_settings
from tests.support.postgres import database_at_head

DB_NAME = os.environ.get("TEST_POSTGRES_DB", "carebridge_test") + "_record_outage"


@pytest.fixture(scope="module")
async def direct_url(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    async with database_at_head("postgresql", DB_NAME, Path(tmp_path_factory.mktemp("outage"))) as url:
        yield url


async def test_a_sends_outcome_waits_for_the_database_and_is_recorded(direct_url: str) -> None:
    host, port = postgres_address()
    relay = Relay("postgresql", [(host, port)]).start()
    relayed_url = direct_url.replace(f"{host}:{port}", f"127.0.0.1:{relay.port}")
    assert relayed_url != direct_url
    redis.Redis.from_url(REDIS_URL).flushdb()
    runtime = Runtime.create(api_settings(relayed_url, REDIS_URL))
    direct = Database(direct_url)
    try:
        inbound_id, conversation_id = await new_push(direct)
        stored = await store_answers(
            direct, inbound_id, conversation_id, [BotReply("您好")], SenderType.BOT, claim=True
        )
        assert stored is not None
        message_id = stored[0].message_id
        assert message_id is not None
        outbox = Outbox(runtime)
        async with runtime.db.single_statements.connect() as connection:  # a pooled connection to cut
            await connection.exec_driver_sql("SELECT 1")

        relay.cut(2.0)
        await asyncio.wait_for(outbox._settle(message_id, DeliveryStatus.SENT, None, 1), timeout=30)

        async with direct.sessions() as session:
            message = await session.get(Message, message_id)
            assert message is not None
            assert (message.delivery_status, message.attempts) == (DeliveryStatus.SENT, 1)
            assert message.sent_at is not None
    finally:
        await runtime.close()
        await direct.dispose()
        relay.stop()
