"""Console events: appended to a Redis Stream (so a reconnecting page can catch up) and published on
Redis pub/sub (so every web process behind a load balancer pushes them to its own WebSockets)."""

from __future__ import annotations

import json
import re
from typing import Any

from redis.asyncio import Redis

from crm_backend.config import Settings

HISTORY_LENGTH = 10_000


STREAM_ID = re.compile(r"^\d{1,20}(-\d{1,20})?$")


def stream_id_key(event_id: str) -> tuple[int, int]:
    """Stream ids order as (milliseconds, sequence)."""
    ms, _, seq = event_id.partition("-")
    return int(ms), int(seq or 0)


class ConsoleEvents:
    def __init__(self, redis: Redis, settings: Settings) -> None:
        self.redis = redis
        self.stream = settings.key("console", "events")
        self.channel = settings.key("console", "live")

    async def publish(self, event: dict[str, Any]) -> str:
        data = json.dumps(event, ensure_ascii=False, default=str)
        event_id = await self.redis.xadd(self.stream, {"data": data}, maxlen=HISTORY_LENGTH, approximate=True)
        await self.redis.publish(
            self.channel, json.dumps({**json.loads(data), "id": event_id}, ensure_ascii=False)
        )
        return event_id

    async def since(self, last_id: str, page: int = 1000) -> list[dict[str, Any]]:
        """Every event after `last_id` (exclusive) still in the stream, oldest first."""
        events: list[dict[str, Any]] = []
        while True:
            entries = await self.redis.xrange(self.stream, min=f"({last_id}", max="+", count=page)
            events += [{**json.loads(fields["data"]), "id": entry_id} for entry_id, fields in entries]
            if len(entries) < page:
                return events
            last_id = entries[-1][0]

    async def last_id(self) -> str:
        entries = await self.redis.xrevrange(self.stream, count=1)
        return entries[0][0] if entries else "0-0"
