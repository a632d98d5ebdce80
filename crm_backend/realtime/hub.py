"""One Redis pub/sub subscription per web process, fanned out to that process's WebSockets."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from crm_backend.background import BackgroundLoop

log = logging.getLogger(__name__)

QUEUE_SIZE = 1000


class Hub(BackgroundLoop):
    def __init__(self, redis: Redis, channel: str) -> None:
        self.redis = redis
        self.channel = channel
        self.listeners: set[asyncio.Queue[dict[str, Any]]] = set()

    def listen(self) -> asyncio.Queue[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_SIZE)
        self.listeners.add(queue)
        return queue

    def forget(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        self.listeners.discard(queue)

    async def _run(self) -> None:
        while True:
            try:
                async with self.redis.pubsub() as pubsub:
                    await pubsub.subscribe(self.channel)
                    async for message in pubsub.listen():
                        if message.get("type") != "message":
                            continue
                        event = json.loads(message["data"])
                        for queue in list(self.listeners):
                            try:
                                queue.put_nowait(event)
                            except asyncio.QueueFull:
                                # A stuck page: it will catch up from the stream when it reconnects.
                                log.warning("console listener is full; dropping its live feed")
                                self.listeners.discard(queue)
            except RedisError as exc:
                log.warning("console hub lost Redis (%s); resubscribing", exc)
                await asyncio.sleep(1)
