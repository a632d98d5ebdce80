"""The long-lived clients a process needs (database, Redis, HTTP), built once from settings."""

from __future__ import annotations

import gc
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport
from redis.asyncio import Redis

from crm_backend.config import Settings
from crm_backend.database.core import Database
from crm_backend.events import EventBus
from crm_backend.protection import AesGcmProtector, protector_for
from crm_backend.queue.streams import INBOUND, OUTBOUND, StreamQueue


@dataclass
class Runtime:
    settings: Settings
    db: Database
    redis: Redis
    http: httpx.AsyncClient
    queues: dict[str, StreamQueue] = field(default_factory=dict)
    #: Domain events of this process; crm_backend/domains.py subscribes every domain's listeners.
    events: EventBus = field(default_factory=EventBus)
    #: "Now" for rules that depend on the hour (SLA clocks); tests set a fixed time here.
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    _wechat_http: aiohttp.ClientSession | None = None

    @classmethod
    def create(cls, settings: Settings) -> Runtime:
        protector_for(settings)  # fails fast: no process runs without usable patient data keys
        if not settings.bot_api_token:
            raise RuntimeError("INTERNAL_API_TOKEN is required with real WeChat credentials (see README)")
        if not settings.sandbox_enabled and not settings.has_real_secret_key:
            raise RuntimeError(
                "SECRET_KEY must be set to a long random value with real WeChat credentials: it signs the"
                " follow-up questionnaire links patients open (the default is public). Generate one with"
                ' `python -c "import secrets;print(secrets.token_urlsafe(48))"` (see README, Configuration)'
            )
        redis = Redis.from_url(settings.redis_url, decode_responses=True, health_check_interval=30)
        runtime = cls(
            settings=settings,
            db=Database(settings.database_url, fast_path=settings.database_fast_path),
            redis=redis,
            http=http_client(),
        )
        for name in (INBOUND, OUTBOUND):
            runtime.queues[name] = StreamQueue(
                redis, settings.key("stream", name), reclaim_idle_ms=settings.stream_reclaim_idle_ms
            )
        return runtime

    @property
    def protector(self) -> AesGcmProtector:
        """Encrypts and hashes patients' ID, phone and card numbers (cached per key set)."""
        return protector_for(self.settings)

    @property
    def wechat_http(self) -> aiohttp.ClientSession:
        """The client for WeChat's API (channels/outbound/wechat_api.py), made on first use: an
        aiohttp session belongs to the event loop that makes it."""
        if self._wechat_http is None:
            self._wechat_http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10, connect=3))
        return self._wechat_http

    @property
    def inbound(self) -> StreamQueue:
        return self.queues[INBOUND]

    @property
    def outbound(self) -> StreamQueue:
        return self.queues[OUTBOUND]

    async def close(self) -> None:
        await self.http.aclose()
        if self._wechat_http is not None:
            await self._wechat_http.close()
        await self.redis.aclose()
        await self.db.dispose()


def http_client() -> httpx.AsyncClient:
    """httpx's interface on aiohttp's connection handling: each call to Rasa costs about half the
    client time of httpx's own transport (measured; docs/PERFORMANCE.md)."""
    return httpx.AsyncClient(transport=AiohttpTransport(), timeout=httpx.Timeout(10.0, connect=3.0))


def freeze_startup_objects() -> None:
    """Call once a process has started: what exists then (libraries, the model of every table, the
    date parser's dictionaries) lives as long as the process, yet each full garbage collection
    walked all of it: a stall every few seconds under load (docs/PERFORMANCE.md). Frozen, full
    passes skip it."""
    gc.collect()
    gc.freeze()
