"""The per-patient lock: one consumer at a time drains a patient's turns, in their order.

A consumer never waits for it. When another consumer holds it, this one leaves a note and moves on
to other patients; the holder, as it lets go, finds the note and drains again (or whoever takes the
lock next does), so nothing stored is left behind. The lock lives `PATIENT_LOCK_SECONDS` and its
holder renews it while it works, so the patients of a worker that died are free again within that
time (the stream's reclaim and the sweeper then pick their turns up).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator

from redis.asyncio import Redis

from crm_backend.config import Settings

log = logging.getLogger(__name__)

#: Leave the note, then take the lock if it is free (and clear the note: the taker drains all).
_CLAIM = """
redis.call('SET', KEYS[2], '1')
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  redis.call('DEL', KEYS[2])
  return 1
end
return 0
"""
#: Let go (if still ours), and say whether anyone left a note meanwhile.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return redis.call('GETDEL', KEYS[2])
"""
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""


class PatientLocks:
    """The lock scripts, registered once per process (their SHA is computed once, not per message)."""

    def __init__(self, redis: Redis, settings: Settings) -> None:
        self.settings = settings
        self.ttl_ms = int(settings.patient_lock_seconds * 1000)
        self.claim = redis.register_script(_CLAIM)
        self.release = redis.register_script(_RELEASE)
        self.renew = redis.register_script(_RENEW)

    def of(self, app_id: str, openid: str) -> PatientLock:
        return PatientLock(self, app_id, openid)


class PatientLock:
    def __init__(self, scripts: PatientLocks, app_id: str, openid: str) -> None:
        settings = scripts.settings
        self.keys = [settings.key("lock", "patient", app_id, openid), settings.key("again", app_id, openid)]
        self.ttl_ms = scripts.ttl_ms
        self.token = uuid.uuid4().hex
        self._claim, self._release, self._renew = scripts.claim, scripts.release, scripts.renew

    async def claim(self) -> bool:
        """True when this consumer now holds the lock; False: the holder will drain for it."""
        return bool(await self._claim(keys=self.keys, args=[self.token, self.ttl_ms]))

    async def release(self) -> bool:
        """Let go; True when a note was left meanwhile (claim again and drain again)."""
        return bool(await self._release(keys=self.keys, args=[self.token]))

    @contextlib.asynccontextmanager
    async def renewed(self) -> AsyncIterator[None]:
        """Keep the lock alive while the holder works (a Rasa turn can take its full timeout)."""
        task = asyncio.create_task(self._keep())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _keep(self) -> None:
        while True:
            await asyncio.sleep(self.ttl_ms / 3000)
            try:
                if not await self._renew(keys=self.keys, args=[self.token, self.ttl_ms]):
                    log.warning(
                        "lock %s was lost while working; another consumer may process too", self.keys[0]
                    )
                    return
            except Exception as exc:  # Redis away: the lock may expire, at-least-once covers it
                log.warning("lock %s not renewed: %s", self.keys[0], exc)
