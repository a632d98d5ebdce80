"""Login throttling: failed attempts counted per username and per client address in Redis.

Once either count reaches LOGIN_MAX_FAILURES within LOGIN_WINDOW_SECONDS (counted from the first
failure), every attempt is refused with 429 until the window ends, even with the right password,
so guessing cannot continue by watching for a success. A success clears the username's count only;
the address count stays, so one address cannot probe many accounts.
"""

from __future__ import annotations

from redis.asyncio import Redis

from crm_backend.config import Settings


class LoginThrottle:
    def __init__(self, redis: Redis, settings: Settings) -> None:
        self.redis = redis
        self.max_failures = settings.login_max_failures
        self.window = settings.login_window_seconds
        self._key = settings.key

    def _keys(self, username: str, ip: str) -> tuple[str, str]:
        return (
            self._key("console", "login-fail", "user", username.casefold()[:128]),
            self._key("console", "login-fail", "ip", ip),
        )

    async def retry_after(self, username: str, ip: str) -> int | None:
        """Seconds until another attempt is allowed, or None when attempts are allowed now."""
        keys = self._keys(username, ip)
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.get(key)
                pipe.ttl(key)
            user_count, user_ttl, ip_count, ip_ttl = await pipe.execute()
        waits = [
            max(int(ttl), 1)
            for count, ttl in ((user_count, user_ttl), (ip_count, ip_ttl))
            if count is not None and int(count) >= self.max_failures
        ]
        return max(waits) if waits else None

    async def failed(self, username: str, ip: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            for key in self._keys(username, ip):
                pipe.set(key, 0, ex=self.window, nx=True)  # the window starts at the first failure
                pipe.incr(key)
            await pipe.execute()

    async def succeeded(self, username: str) -> None:
        await self.redis.delete(self._keys(username, "")[0])
