"""The official account's access token, kept in Redis so every process shares one.

WeChat invalidates the previous token whenever a new one is fetched, so refreshes are serialised
with a Redis lock and a sender that saw a stale token only refreshes if nobody else already has.

Each process keeps the token it read for LOCAL_SECONDS, which spares a Redis round trip on every
message sent: WeChat accepts a replaced token for 5 more minutes, and a refused one is refreshed
at once (Outbox.call_with_token).
"""

from __future__ import annotations

import logging
import time

from redis.asyncio import Redis

from channels.outbound.wechat_api import WeChatAPI

log = logging.getLogger(__name__)


LOCAL_SECONDS = 30.0


class AccessTokenStore:
    def __init__(self, redis: Redis, api: WeChatAPI, app_id: str, secret: str, key_prefix: str) -> None:
        self.redis = redis
        self.api = api
        self.app_id = app_id
        self.secret = secret
        self.key = f"{key_prefix}:wechat:token:{app_id}"
        self.lock_key = f"{key_prefix}:wechat:token-refresh:{app_id}"
        self._local = ""
        self._local_until = 0.0

    async def get(self) -> str:
        if self._local and time.monotonic() < self._local_until:
            return self._local
        token = await self.redis.get(self.key)
        return self._keep(token) if token else await self.refresh()

    def _keep(self, token: str) -> str:
        self._local, self._local_until = token, time.monotonic() + LOCAL_SECONDS
        return token

    async def refresh(self, stale: str | None = None) -> str:
        """Fetch a new token unless another process already replaced `stale` (or there is a valid one)."""
        async with self.redis.lock(self.lock_key, timeout=30, blocking_timeout=30):
            current = await self.redis.get(self.key)
            if current and current != stale:
                return self._keep(current)
            token = await self.api.fetch_token(self.app_id, self.secret)
            # Expire early so nobody uses a token in its last minute.
            await self.redis.set(self.key, token.value, ex=max(token.expires_in - 60, 60))
            log.info("access token refreshed for %s (valid %ss)", self.app_id, token.expires_in)
            return self._keep(token.value)

    async def refresh_if_expiring(self, margin_seconds: int) -> None:
        ttl = await self.redis.ttl(self.key)
        if ttl < margin_seconds:  # -2 missing, -1 no expiry
            current = await self.redis.get(self.key)
            await self.refresh(stale=current)
