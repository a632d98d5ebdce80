"""A patient's processing lock, which the webhook takes on the worker's behalf when it is free.

One worker at a time processes a patient's pushes, so they are answered in order. Taking that lock
in the worker costs a Redis round trip between picking a push up and asking Rasa. Instead the
webhook queues the push with one Lua script that sets the de-duplication key, takes the patient's
lock if nobody holds it, and adds the stream entry carrying the lock's token; the worker that
picks the entry up holds the lock without asking Redis again.

The webhook's hold is short (`handover_ms`, under the stream's reclaim time), so if the worker
that picked the entry up dies, the lock is free again before another worker reclaims the entry.
The adopting worker extends it to the full time once Rasa has the patient's question. An entry
picked up late does not adopt blindly: its worker first checks the token is still the lock's. A
reclaimed entry never adopts (its first worker may still be running); it takes the lock the
ordinary way. Pushes queued while the lock is held carry no token; their workers wait for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import secrets
import time

from redis.asyncio import Redis
from redis.asyncio.lock import Lock
from redis.commands.core import AsyncScript
from redis.exceptions import LockError, LockNotOwnedError

from crm_backend.config import Settings
from crm_backend.queue.streams import REDELIVERED
from crm_backend.runtime import Runtime

log = logging.getLogger(__name__)

#: KEYS: de-duplication key, patient lock, inbound stream.
#: ARGV: inbound id, de-duplication seconds, app id, openid, token, hand-over ms, now ms.
_QUEUE_PUSH = """
redis.call('set', KEYS[1], ARGV[1], 'EX', ARGV[2])
if redis.call('set', KEYS[2], ARGV[5], 'NX', 'PX', ARGV[6]) then
    return redis.call('xadd', KEYS[3], 'MAXLEN', '~', '100000', '*', 'inbound_id', ARGV[1],
        'app_id', ARGV[3], 'openid', ARGV[4], 'lock', ARGV[5], 'locked_at', ARGV[7])
end
return redis.call('xadd', KEYS[3], 'MAXLEN', '~', '100000', '*', 'inbound_id', ARGV[1],
    'app_id', ARGV[3], 'openid', ARGV[4])
"""


@functools.cache
def _queue_script(redis: Redis) -> AsyncScript:
    return redis.register_script(_QUEUE_PUSH)


def lock_key(settings: Settings, app_id: str, openid: str) -> str:
    return settings.key("lock", "patient", app_id, openid)


def lock_seconds(settings: Settings) -> float:
    """How long a worker may hold a patient: longer than a turn whose Rasa call times out."""
    return settings.rasa_timeout_seconds * 3 + 30


def handover_ms(settings: Settings) -> int:
    """How long the webhook's hold lasts before the worker extends it: well under the time after
    which another worker reclaims an entry whose worker died."""
    return max(1000, min(15_000, settings.stream_reclaim_idle_ms // 2))


async def queue_push(
    runtime: Runtime, inbound_id: int, app_id: str, openid: str, dedupe_key: str, dedupe_seconds: int
) -> None:
    """Hand a stored push to the inbound stream, with the patient's lock if it is free."""
    settings = runtime.settings
    await _queue_script(runtime.redis)(
        keys=[dedupe_key, lock_key(settings, app_id, openid), runtime.inbound.stream],
        args=[
            inbound_id,
            dedupe_seconds,
            app_id,
            openid,
            secrets.token_hex(16),
            handover_ms(settings),
            int(time.time() * 1000),
        ],
    )


#: When an adopted hold is extended: once the patient's question is with Rasa, so the extension's
#: own work does not delay the pending read before it (the hold lasts at least a second).
EXTEND_AFTER_SECONDS = 0.01


class PatientLock(Lock):
    """redis-py's lock (token, release script, waiting), which can also adopt the webhook's hold."""

    _extend_later: asyncio.TimerHandle | None = None
    _extending: asyncio.Task[object] | None = None

    def adopt(self, token: str) -> None:
        """Hold the lock under the token the webhook took it with."""
        self.local.token = token.encode()

    def extend_soon(self) -> None:
        """Give the adopted hold its full time, a moment from now."""
        self._extend_later = asyncio.get_running_loop().call_later(EXTEND_AFTER_SECONDS, self._extend)

    def _extend(self) -> None:
        self._extending = asyncio.ensure_future(self.reacquire())
        self._extending.add_done_callback(_report)

    async def release(self) -> None:
        if self._extend_later is not None:
            self._extend_later.cancel()  # done before it was due: the webhook's hold still stands
        if self._extending is not None:
            with contextlib.suppress(Exception):
                await self._extending
        await super().release()


def _report(extending: asyncio.Task[object]) -> None:
    if not extending.cancelled() and extending.exception() is not None:
        log.error("adopted patient lock could not be extended: %r", extending.exception())


async def hold_patient(runtime: Runtime, app_id: str, openid: str, entry: dict[str, str]) -> PatientLock:
    """The patient's lock, held: adopted from the webhook when `entry` (the stream entry that
    brought the worker here) carries it, otherwise taken, waiting for another holder if need be."""
    settings = runtime.settings
    seconds = lock_seconds(settings)
    lock = PatientLock(
        runtime.redis,
        lock_key(settings, app_id, openid),
        timeout=seconds,
        sleep=0.01,
        blocking_timeout=seconds,
    )
    token = entry.get("lock")
    if token and not entry.get(REDELIVERED):
        lock.adopt(token)
        age_ms = time.time() * 1000 - int(entry.get("locked_at") or 0)
        if -1000 <= age_ms <= handover_ms(settings) / 3:
            lock.extend_soon()
            return lock
        try:
            await lock.reacquire()  # picked up late: only if the webhook's hold is still this one
            return lock
        except LockNotOwnedError:
            lock.local.token = None
    if not await lock.acquire():
        raise LockError(f"patient {openid} still locked after {seconds} s")
    return lock
