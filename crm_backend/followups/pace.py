"""Check-ins start at a steady pace shared by every worker (FOLLOWUP_STARTS_PER_MINUTE).

Thousands of check-ins fall due at the same morning hour. Started as fast as the workers can, they
take every core for minutes, and the patients who write in meanwhile wait for the webhook and the
bot. Paced, the same morning's check-ins go out over a few more minutes while patients writing in
are answered as fast as on a quiet day (figures in docs/PERFORMANCE.md).

Each start reserves the next free moment in Redis (one atomic step shared by all workers: the
moment is max(now, next free), and next free moves on by 60 / FOLLOWUP_STARTS_PER_MINUTE seconds)
and waits for it. Starts go in the order they asked, evenly spaced: none waits longer than the
starts reserved before it, so a claimed check-in never waits long enough to look abandoned. Redis
losing its data only forgets the next free moment; Redis out of reach does not stop follow-up: the
start goes ahead.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from redis.exceptions import RedisError

from crm_backend.runtime import Runtime

log = logging.getLogger(__name__)

#: KEYS[1]: the next free moment; ARGV: now, the spacing (seconds). Returns the moment reserved.
RESERVE = """
local now = tonumber(ARGV[1])
local spacing = tonumber(ARGV[2])
local slot = math.max(now, tonumber(redis.call('GET', KEYS[1]) or '0'))
redis.call('SET', KEYS[1], string.format('%.6f', slot + spacing), 'EX', math.ceil(slot + spacing - now) + 60)
return string.format('%.6f', slot)
"""


def spacing_of(per_minute: int) -> float:
    """Seconds between two starts."""
    return 60 / per_minute


async def wait_for_start(
    runtime: Runtime,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Return at this start's moment in the shared pace (at once when the pace is off)."""
    per_minute = runtime.settings.followup_starts_per_minute
    if per_minute <= 0:
        return
    now = clock()
    key = runtime.settings.key("followup", "pace", per_minute)
    try:
        reserved = await runtime.redis.eval(RESERVE, 1, key, f"{now:.6f}", f"{spacing_of(per_minute):.6f}")
    except RedisError:
        log.warning("follow-up pace: Redis out of reach, starting without it", exc_info=True)
        return
    await sleep(max(0.0, float(reserved) - now))
