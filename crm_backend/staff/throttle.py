"""Login throttling that slows guessing without letting a stranger lock staff out (OWASP's
device-cookie design), with failures counted in Redis for LOGIN_WINDOW_SECONDS from the first.

- A browser that has logged in as the user before (a known-device cookie, staff/devices.py)
  counts its failures for that user on its own: LOGIN_MAX_FAILURES, then 429 for that browser.
- Any other attempt counts against the username (LOGIN_MAX_FAILURES) and the client address
  (LOGIN_MAX_FAILURES_PER_ADDRESS, across usernames, high enough for a hospital's NAT).

Once a count is reached, those attempts are refused with 429 until the window ends, even with the
right password, so guessing cannot go on by watching for a success. A stranger can thus lock a
username only for new browsers: staff keep logging in from the browsers they work in, and a
colleague behind the same address is not held up by someone else's typos. A success clears the
count it was checked against (the device's, or the username's), never the address's.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from crm_backend.config import Settings


@dataclass(frozen=True, slots=True)
class LoginAttempt:
    username: str
    ip: str
    #: The known-device id this browser presented for `username`, if any.
    device_id: str | None = None


class LoginThrottle:
    def __init__(self, redis: Redis, settings: Settings) -> None:
        self.redis = redis
        self.per_user = settings.login_max_failures
        self.per_address = settings.login_max_failures_per_address
        self.window = settings.login_window_seconds
        self._key = settings.key

    def _counters(self, attempt: LoginAttempt) -> list[tuple[str, int]]:
        """The (key, limit) pairs this attempt is checked against and counted in; the first is
        the one a success clears."""
        user = attempt.username.casefold()[:128]
        if attempt.device_id is not None:
            return [(self._key("console", "login-fail", "device", user, attempt.device_id), self.per_user)]
        return [
            (self._key("console", "login-fail", "user", user), self.per_user),
            (self._key("console", "login-fail", "ip", attempt.ip), self.per_address),
        ]

    async def retry_after(self, attempt: LoginAttempt) -> int | None:
        """Seconds until another attempt is allowed, or None when attempts are allowed now."""
        counters = self._counters(attempt)
        async with self.redis.pipeline(transaction=False) as pipe:
            for key, _ in counters:
                pipe.get(key)
                pipe.ttl(key)
            values = await pipe.execute()
        waits = [
            max(int(ttl), 1)
            for (_, limit), count, ttl in zip(counters, values[::2], values[1::2], strict=True)
            if count is not None and int(count) >= limit
        ]
        return max(waits) if waits else None

    async def failed(self, attempt: LoginAttempt) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            for key, _ in self._counters(attempt):
                pipe.set(key, 0, ex=self.window, nx=True)  # the window starts at the first failure
                pipe.incr(key)
            await pipe.execute()

    async def succeeded(self, attempt: LoginAttempt) -> None:
        await self.redis.delete(self._counters(attempt)[0][0])
