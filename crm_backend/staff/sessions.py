"""Server-side console sessions in Redis, so logout and disabling an account take effect at once.

The cookie holds a random token; Redis holds only its SHA-256 (a leaked Redis dump holds no usable
cookie) mapped to the staff id and the session's CSRF token. Every authenticated request pushes the
expiry back by SESSION_TTL_SECONDS (sliding). A per-staff set of session keys lets an admin revoke
every session of an account.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from redis.asyncio import Redis
from starlette.responses import Response

from crm_backend.config import Settings

COOKIE_NAME = "cb_session"


@dataclass(frozen=True, slots=True)
class SessionData:
    staff_id: int
    csrf_token: str


class SessionStore:
    def __init__(self, redis: Redis, settings: Settings) -> None:
        self.redis = redis
        self.settings = settings

    def _digest(self, token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    def _key(self, digest: str) -> str:
        return self.settings.key("console", "session", digest)

    def _index(self, staff_id: int) -> str:
        return self.settings.key("console", "staff-sessions", staff_id)

    async def create(self, staff_id: int) -> tuple[str, SessionData]:
        """A new session; returns the cookie token and the data (with a fresh CSRF token)."""
        token = secrets.token_urlsafe(32)
        data = SessionData(staff_id=staff_id, csrf_token=secrets.token_urlsafe(32))
        digest = self._digest(token)
        ttl = self.settings.session_ttl_seconds
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self._key(digest), mapping={"staff_id": staff_id, "csrf": data.csrf_token})
            pipe.expire(self._key(digest), ttl)
            pipe.sadd(self._index(staff_id), digest)
            pipe.expire(self._index(staff_id), ttl)
            await pipe.execute()
        return token, data

    async def load(self, token: str | None) -> SessionData | None:
        """The live session for a cookie token, its expiry pushed back; None if unknown or expired."""
        if not token or len(token) > 128:
            return None
        key = self._key(self._digest(token))
        ttl = self.settings.session_ttl_seconds
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hgetall(key)
            pipe.expire(key, ttl)
            fields, _ = await pipe.execute()
        if not fields or "staff_id" not in fields or "csrf" not in fields:
            return None
        staff_id = int(fields["staff_id"])
        await self.redis.expire(self._index(staff_id), ttl)
        return SessionData(staff_id=staff_id, csrf_token=fields["csrf"])

    async def delete(self, token: str | None) -> None:
        if not token or len(token) > 128:
            return
        digest = self._digest(token)
        staff_id = await self.redis.hget(self._key(digest), "staff_id")
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(self._key(digest))
            if staff_id is not None:
                pipe.srem(self._index(int(staff_id)), digest)
            await pipe.execute()

    async def revoke_all(self, staff_id: int) -> None:
        """End every session of a staff member (disabled account, password changed)."""
        digests = await self.redis.smembers(self._index(staff_id))
        keys = [self._key(d) for d in digests]
        await self.redis.delete(*keys, self._index(staff_id))

    def set_cookie(self, response: Response, token: str) -> None:
        # No Max-Age: a browser session cookie; the server-side TTL is what bounds the session.
        response.set_cookie(
            COOKIE_NAME,
            token,
            httponly=True,
            samesite="strict",
            secure=self.settings.session_cookie_secure,
            path="/",
        )

    def clear_cookie(self, response: Response) -> None:
        response.delete_cookie(
            COOKIE_NAME,
            httponly=True,
            samesite="strict",
            secure=self.settings.session_cookie_secure,
            path="/",
        )
