"""At-least-once work queues on Redis Streams consumer groups.

An entry stays in the group's pending list until its handler succeeds; entries a crashed consumer
held are reclaimed with XAUTOCLAIM. Handlers must therefore be idempotent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, str]], Awaitable[None]]

INBOUND = "inbound"
OUTBOUND = "outbound"
GROUP = "workers"


def _queue_lost(exc: ResponseError) -> bool:
    """NOGROUP: the group is gone; UNBLOCKED: the stream was deleted under a blocked XREADGROUP."""
    message = str(exc)
    return "NOGROUP" in message or "UNBLOCKED" in message


class StreamQueue:
    def __init__(self, redis: Redis, stream_key: str, *, reclaim_idle_ms: int = 30_000) -> None:
        self.redis = redis
        self.stream = stream_key
        self.reclaim_idle_ms = reclaim_idle_ms

    async def ensure_group(self) -> None:
        try:
            await self.redis.xgroup_create(self.stream, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def add(self, fields: dict[str, str]) -> None:
        # Trimmed approximately: acknowledged history is not needed, the database is the record.
        await self.redis.xadd(self.stream, fields, maxlen=100_000, approximate=True)

    async def consume(self, consumer: str, handler: Handler, stop: asyncio.Event) -> None:
        """Run until `stop` is set: reclaim abandoned entries, then read new ones."""
        await self.ensure_group()
        while not stop.is_set():
            try:
                entries = await self._reclaim(consumer) or await self._read(consumer)
            except ResponseError as exc:
                if not _queue_lost(exc):
                    log.warning("stream %s: redis refused %s; retrying", self.stream, exc)
                    await asyncio.sleep(1)
                    continue
                # Redis lost the stream and its group (a flush, a failover without persistence):
                # start them again. What was stored but never answered, the sweeper queues again.
                log.warning("stream %s: stream or group lost (%s); recreating it", self.stream, exc)
                await self.ensure_group()
                continue
            except RedisError as exc:
                log.warning("stream %s: redis error %s; retrying", self.stream, exc)
                await asyncio.sleep(1)
                continue
            for entry_id, fields in entries:
                try:
                    await handler(fields)
                except Exception:
                    # Left pending on purpose: it is reclaimed after the idle time and tried again.
                    log.exception("stream %s: handler failed for %s", self.stream, fields)
                    continue
                await self.redis.xack(self.stream, GROUP, entry_id)

    async def _read(self, consumer: str) -> list[tuple[str, dict[str, str]]]:
        response = await self.redis.xreadgroup(GROUP, consumer, {self.stream: ">"}, count=10, block=1000)
        return [(eid, fields) for _stream, items in response or [] for eid, fields in items]

    async def _reclaim(self, consumer: str) -> list[tuple[str, dict[str, str]]]:
        result = await self.redis.xautoclaim(
            self.stream, GROUP, consumer, min_idle_time=self.reclaim_idle_ms, start_id="0-0", count=10
        )
        # Entries deleted by trimming come back as None bodies; there is nothing left to do for them.
        claimed = [(eid, fields) for eid, fields in result[1] if fields]
        for eid, fields in result[1]:
            if not fields:
                await self.redis.xack(self.stream, GROUP, eid)
        return claimed
