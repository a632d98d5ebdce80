"""Workers announce themselves in a Redis sorted set; /healthz reads it (so both import it from here)."""

from __future__ import annotations

import time

from redis.asyncio import Redis

from crm_backend.config import Settings

HEARTBEAT_EVERY_SECONDS = 5
ALIVE_WITHIN_SECONDS = 20


def _key(settings: Settings) -> str:
    return settings.key("workers")


async def beat(redis: Redis, settings: Settings, worker_id: str) -> None:
    now = time.time()
    async with redis.pipeline(transaction=False) as pipe:
        pipe.zadd(_key(settings), {worker_id: now})
        pipe.zremrangebyscore(_key(settings), 0, now - 3600)
        await pipe.execute()


async def live_workers(redis: Redis, settings: Settings) -> list[str]:
    return list(await redis.zrangebyscore(_key(settings), time.time() - ALIVE_WITHIN_SECONDS, "+inf"))


async def leave(redis: Redis, settings: Settings, worker_id: str) -> None:
    await redis.zrem(_key(settings), worker_id)
