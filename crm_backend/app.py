"""The web app: WeChat webhooks, health, and (without real credentials) the sandbox and simulator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from channels.wechat_oa.security import OfficialAccountKeys
from channels.wechat_oa.webhook import router as oa_router
from crm_backend import health
from crm_backend.config import Settings, get_settings
from crm_backend.logs import configure_logging
from crm_backend.runtime import Runtime


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = Runtime.create(settings)
        app.state.runtime = runtime
        await runtime.inbound.ensure_group()
        try:
            yield
        finally:
            await runtime.close()

    app = FastAPI(
        title="CareBridge", lifespan=lifespan, docs_url="/api/docs", openapi_url="/api/openapi.json"
    )
    app.state.settings = settings
    app.state.oa_keys = OfficialAccountKeys(settings.oa_appid, settings.oa_token, settings.oa_aes_key)
    app.include_router(oa_router)
    app.include_router(health.router)
    if settings.sandbox_enabled:
        from channels.sandbox.simulator import router as simulator_router
        from channels.sandbox.wechat_api import router as sandbox_router

        app.include_router(sandbox_router)
        app.include_router(simulator_router)
    return app


def build() -> FastAPI:
    """Factory for `uvicorn --factory`."""
    configure_logging(get_settings().log_level)
    return create_app()
