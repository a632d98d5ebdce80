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
    problems = await asyncio.gather(*(_one_rasa(runtime, url) for url in runtime.settings.rasa_urls))
    return _each(runtime.settings.rasa_urls, problems)


async def _one_rasa(runtime: Runtime, url: str) -> str | None:
    try:
        response = await runtime.http.get(f"{url}/status", timeout=CHECK_TIMEOUT_SECONDS)
    except Exception as exc:
        return _failure(exc)
    if response.status_code != 200:
        return f"HTTP {response.status_code}"
    if not response.json().get("model_file"):
        return "no model loaded"
    return None


async def _action_server(runtime: Runtime) -> str | None:
    urls = runtime.settings.action_server_urls
    problems = await asyncio.gather(*(_one_action_server(runtime, url) for url in urls))
    return _each(urls, problems)


async def _one_action_server(runtime: Runtime, url: str) -> str | None:
    try:
        response = await runtime.http.get(f"{url}/health", timeout=CHECK_TIMEOUT_SECONDS)
    except Exception as exc:
        return _failure(exc)
    return None if response.status_code == 200 else f"HTTP {response.status_code}"


def _each(urls: list[str], problems: list[str | None]) -> str | None:
    """One server's problem as it is; with several, which of them is down."""
    if len(urls) == 1:
        return problems[0]
    down = [f"{url}: {problem}" for url, problem in zip(urls, problems, strict=True) if problem]
    return "; ".join(down) or None


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
        return _failure(exc)


def _failure(exc: Exception) -> str:
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
