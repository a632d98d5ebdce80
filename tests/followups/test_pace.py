"""The pace of check-in starts is shared by all workers through Redis: at FOLLOWUP_STARTS_PER_MINUTE
the starts go evenly spaced in the order they asked, whichever worker takes them, and a pace of 0 is
off. Time is a fake clock that a start's wait moves on, so the test reads when each start went."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from crm_backend.followups.pace import spacing_of, wait_for_start
from crm_backend.runtime import Runtime
from tests.followups.conftest import REDIS_URL
from tests.support.api import api_settings


class FakeClock:
    """Frozen time that moves on only when a start waits: to the moment that start reserved, never
    back (several starts waiting move it to the latest of their moments)."""

    def __init__(self, start: float) -> None:
        self.now = start
        self.went: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.went.append(self.now + seconds)
        await asyncio.sleep(0)


@asynccontextmanager
async def _worker(database_url: str, per_minute: int) -> AsyncIterator[Runtime]:
    # Its own prefix: a pace reserved on the fake clock, far in the future, must not hold up the
    # real-time starts of other tests on the same Redis.
    settings = api_settings(
        database_url, REDIS_URL, FOLLOWUP_STARTS_PER_MINUTE=str(per_minute), REDIS_PREFIX="cb-pace-test"
    )
    runtime = Runtime.create(settings)
    try:
        yield runtime
    finally:
        await runtime.close()


def test_the_spacing_is_the_minute_shared_out():
    assert spacing_of(1200) == 0.05
    assert spacing_of(60) == 1.0


async def test_two_workers_share_one_evenly_spaced_pace(database_url: str):
    # Far in the future: no earlier test's reservation is still ahead of it.
    clock = FakeClock(4_000_000_000.0 + (id(object()) % 100_000) * 1000)
    start = clock.now
    async with _worker(database_url, 600) as one, _worker(database_url, 600) as two:
        await one.redis.delete(one.settings.key("followup", "pace", 600))
        await asyncio.gather(*(wait_for_start(runtime, clock, clock.sleep) for runtime in [one, two] * 5))
    # All ten asked at the same moment: each went 0.1 s after the one before it, none together.
    assert sorted(clock.went) == pytest.approx([start + n * spacing_of(600) for n in range(10)])


async def test_a_pace_of_zero_starts_at_once(database_url: str):
    clock = FakeClock(4_100_000_000.0)

    async def never(seconds: float) -> None:
        raise AssertionError(f"waited {seconds} s with the pace off")

    async with _worker(database_url, 0) as runtime:
        for _ in range(20):
            await wait_for_start(runtime, clock, never)
