"""The official account's access token, kept in Redis so every process shares one.

WeChat invalidates the previous token whenever a new one is fetched, so refreshes are serialised
with a Redis lock and a sender that saw a stale token only refreshes if nobody else already has.
"""

from __future__ import annotations

import logging

from redis.asyncio import Redis

from channels.outbound.wechat_api import WeChatAPI

log = logging.getLogger(__name__)


class AccessTokenStore:
    def __init__(self, redis: Redis, api: WeChatAPI, app_id: str, secret: str, key_prefix: str) -> None:
        self.redis = redis
        self.api = api
        self.app_id = app_id
        self.secret = secret
        self.key = f"{key_prefix}:wechat:token:{app_id}"
        self.lock_key = f"{key_prefix}:wechat:token-refresh:{app_id}"

    async def get(self) -> str:
        token = await self.redis.get(self.key)
        return token if token else await self.refresh()

    async def refresh(self, stale: str | None = None) -> str:
        """Fetch a new token unless another process already replaced `stale` (or there is a valid one)."""
        async with self.redis.lock(self.lock_key, timeout=30, blocking_timeout=30):
            current = await self.redis.get(self.key)
            if current and current != stale:
                return current
            token = await self.api.fetch_token(self.app_id, self.secret)
            # Expire early so nobody uses a token in its last minute.
            await self.redis.set(self.key, token.value, ex=max(token.expires_in - 60, 60))
            log.info("access token refreshed for %s (valid %ss)", self.app_id, token.expires_in)
            return token.value

    async def refresh_if_expiring(self, margin_seconds: int) -> None:
        ttl = await self.redis.ttl(self.key)
        if ttl < margin_seconds:  # -2 missing, -1 no expiry
            current = await self.redis.get(self.key)
            await self.refresh(stale=current)
