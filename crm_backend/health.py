"""`GET /healthz`: 200 only when every part a patient's message passes through is up."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from crm_backend.heartbeat import live_workers
from crm_backend.runtime import Runtime

router = APIRouter()

CHECK_TIMEOUT_SECONDS = 2.0


async def _database(runtime: Runtime) -> str | None:
    async with runtime.db.sessions() as session:
        await session.execute(text("SELECT 1"))
    return None


async def _redis(runtime: Runtime) -> str | None:
    await runtime.redis.ping()
    return None


async def _rasa(runtime: Runtime) -> str | None:
    response = await runtime.http.get(f"{runtime.settings.rasa_url}/status", timeout=CHECK_TIMEOUT_SECONDS)
    if response.status_code != 200:
        return f"HTTP {response.status_code}"
    if not response.json().get("model_file"):
        return "no model loaded"
    return None


async def _action_server(runtime: Runtime) -> str | None:
    url = f"{runtime.settings.action_server_url}/health"
    response = await runtime.http.get(url, timeout=CHECK_TIMEOUT_SECONDS)
    return None if response.status_code == 200 else f"HTTP {response.status_code}"


async def _worker(runtime: Runtime) -> str | None:
    return None if await live_workers(runtime.redis, runtime.settings) else "no worker heartbeat"


CHECKS = {
    "database": _database,
    "redis": _redis,
    "rasa": _rasa,
    "action_server": _action_server,
    "worker": _worker,
}


async def _run(check: Any, runtime: Runtime) -> str | None:
    try:
        return await asyncio.wait_for(check(runtime), CHECK_TIMEOUT_SECONDS)
    except TimeoutError:
        return "timed out"
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


@router.get("/healthz")
async def healthz(request: Request) -> JSONResponse:
    runtime: Runtime = request.app.state.runtime
    results = await asyncio.gather(*(_run(check, runtime) for check in CHECKS.values()))
    components = {
        name: {"status": "ok"} if problem is None else {"status": "down", "reason": problem}
        for name, problem in zip(CHECKS, results, strict=True)
    }
    healthy = all(problem is None for problem in results)
    return JSONResponse(
        {"status": "ok" if healthy else "unavailable", "components": components},
        status_code=200 if healthy else 503,
    )
