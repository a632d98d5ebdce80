"""The patient's processing lock, taken by the webhook when it queues a push and adopted by the
worker that picks the entry up; on real Redis, through the real stream queue."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis

from crm_backend.conversations.patient_lock import (
    EXTEND_AFTER_SECONDS,
    handover_ms,
    hold_patient,
    lock_key,
    lock_seconds,
    queue_push,
)
from crm_backend.queue.streams import GROUP, REDELIVERED
from crm_backend.runtime import Runtime
from tests.conversations.conftest import REDIS_URL
from tests.support.api import api_settings

APP_ID = "wx-lock-test"
_serial = itertools.count(1)


@pytest.fixture(scope="module")
async def runtime(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Runtime]:
    redis.Redis.from_url(REDIS_URL).flushdb()
    database = Path(tmp_path_factory.mktemp("lock")) / "unused.db"
    # A short reclaim time, as in the end-to-end tests: the webhook's hold is then one second.
    settings = api_settings(
        f"sqlite+aiosqlite:///{database}", REDIS_URL, STREAM_RECLAIM_IDLE_MS="2000", REDIS_PREFIX="locktest"
    )
    runtime = Runtime.create(settings)
    await runtime.inbound.ensure_group()
    yield runtime
    await runtime.close()


def new_openid() -> str:
    return f"o-lock-{next(_serial)}-{time.time_ns()}"


async def queued(runtime: Runtime, openid: str) -> dict[str, str]:
    """Queue a push as the webhook does, and pick its entry up as a worker does."""
    await queue_push(runtime, next(_serial), APP_ID, openid, runtime.settings.key("dedupe", openid), 60)
    response = await runtime.redis.xreadgroup(GROUP, "test-worker", {runtime.inbound.stream: ">"}, count=1)
    [[_stream, [(entry_id, fields)]]] = response
    await runtime.redis.xack(runtime.inbound.stream, GROUP, entry_id)
    return fields


async def ttl_ms(runtime: Runtime, openid: str) -> int:
    return await runtime.redis.pttl(lock_key(runtime.settings, APP_ID, openid))


async def test_a_push_for_a_free_patient_is_queued_with_the_lock(runtime: Runtime) -> None:
    openid = new_openid()
    entry = await queued(runtime, openid)

    assert entry["app_id"] == APP_ID and entry["openid"] == openid
    assert await runtime.redis.get(lock_key(runtime.settings, APP_ID, openid)) == entry["lock"]
    assert 0 < await ttl_ms(runtime, openid) <= handover_ms(runtime.settings)
    assert await runtime.redis.get(runtime.settings.key("dedupe", openid)) == entry["inbound_id"]


async def test_a_push_for_a_patient_being_processed_is_queued_without_it(runtime: Runtime) -> None:
    openid = new_openid()
    first = await queued(runtime, openid)
    second = await queued(runtime, openid)

    assert "lock" not in second
    assert await runtime.redis.get(lock_key(runtime.settings, APP_ID, openid)) == first["lock"]


async def test_the_worker_adopts_the_lock_at_once_and_extends_it(runtime: Runtime) -> None:
    openid = new_openid()
    entry = await queued(runtime, openid)

    lock = await asyncio.wait_for(hold_patient(runtime, APP_ID, openid, entry), timeout=0.2)
    assert await lock.owned()
    await asyncio.sleep(EXTEND_AFTER_SECONDS + 0.1)
    assert await ttl_ms(runtime, openid) > handover_ms(runtime.settings)  # now the full time
    assert await ttl_ms(runtime, openid) <= lock_seconds(runtime.settings) * 1000

    # While it is held, a second push of the patient waits for it.
    second = await queued(runtime, openid)
    waiting = asyncio.ensure_future(hold_patient(runtime, APP_ID, openid, second))
    await asyncio.sleep(0.3)
    assert not waiting.done()
    await lock.release()
    second_lock = await asyncio.wait_for(waiting, timeout=2)
    assert await second_lock.owned()
    await second_lock.release()
    assert await runtime.redis.get(lock_key(runtime.settings, APP_ID, openid)) is None


async def test_a_turn_shorter_than_the_extension_releases_the_webhooks_hold(runtime: Runtime) -> None:
    openid = new_openid()
    lock = await hold_patient(runtime, APP_ID, openid, await queued(runtime, openid))
    await lock.release()
    await asyncio.sleep(EXTEND_AFTER_SECONDS + 0.1)  # the extension, cancelled, does not bring it back
    assert await runtime.redis.get(lock_key(runtime.settings, APP_ID, openid)) is None


async def test_a_reclaimed_entry_never_adopts_the_lock(runtime: Runtime) -> None:
    """Its first worker may still be running under that token; the reclaimer waits for the hold
    to end (the webhook's is short) and takes the lock with its own token."""
    openid = new_openid()
    entry = await queued(runtime, openid)
    started = time.monotonic()

    lock = await hold_patient(runtime, APP_ID, openid, {**entry, REDELIVERED: "1"})

    assert time.monotonic() - started >= handover_ms(runtime.settings) / 1000 - 0.2
    assert await runtime.redis.get(lock_key(runtime.settings, APP_ID, openid)) != entry["lock"]
    assert await lock.owned()
    await lock.release()


async def test_an_entry_picked_up_late_adopts_only_a_hold_that_is_still_its_own(runtime: Runtime) -> None:
    late = {"locked_at": str(int(time.time() * 1000) - 60_000)}
    kept = new_openid()
    entry = await queued(runtime, kept)
    lock = await hold_patient(runtime, APP_ID, kept, {**entry, **late})
    assert await runtime.redis.get(lock_key(runtime.settings, APP_ID, kept)) == entry["lock"]
    assert await ttl_ms(runtime, kept) > handover_ms(runtime.settings)  # checked and extended
    await lock.release()

    lost = new_openid()
    entry = await queued(runtime, lost)
    key = lock_key(runtime.settings, APP_ID, lost)
    await runtime.redis.set(key, "another-worker", px=500)  # the hold expired and someone took it
    started = time.monotonic()
    lock = await hold_patient(runtime, APP_ID, lost, {**entry, **late})
    assert time.monotonic() - started >= 0.3  # it waited for the other holder
    assert await runtime.redis.get(key) not in (entry["lock"], "another-worker")
    await lock.release()


async def test_entries_reclaimed_from_a_dead_consumer_are_marked(runtime: Runtime) -> None:
    openid = new_openid()
    await queue_push(runtime, next(_serial), APP_ID, openid, runtime.settings.key("dedupe", openid), 60)
    taken = await runtime.redis.xreadgroup(GROUP, "dead-consumer", {runtime.inbound.stream: ">"}, count=1)
    assert taken
    runtime.inbound.reclaim_idle_ms = 0
    try:
        [(entry_id, fields)] = await runtime.inbound._reclaim("live-consumer")
    finally:
        runtime.inbound.reclaim_idle_ms = runtime.settings.stream_reclaim_idle_ms
    await runtime.redis.xack(runtime.inbound.stream, GROUP, entry_id)
    assert fields["openid"] == openid and fields[REDELIVERED] == "1"
