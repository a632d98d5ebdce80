"""What the API gives away: its description only to admins, and nothing a cache may keep."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.support.console import ConsoleClient
from tests.support.stack import ADMIN_PASSWORD, ADMIN_USERNAME, Stack


@pytest.mark.parametrize("path", ["/api/openapi.json", "/api/docs", "/redoc", "/docs", "/openapi.json"])
async def test_the_api_description_is_not_public(stack: Stack, path: str) -> None:
    async with httpx.AsyncClient(base_url=stack.url) as anonymous:
        response = await anonymous.get(path)
    assert response.status_code in (401, 403, 404), (path, response.status_code)
    assert "/internal/bot" not in response.text


async def test_an_admin_reads_the_api_description(stack: Stack) -> None:
    admin = ConsoleClient(stack.url)
    try:
        await admin.login(ADMIN_USERNAME, ADMIN_PASSWORD)
        response = await admin.get("/api/openapi.json")
    finally:
        await admin.aclose()
    assert response.status_code == 200
    assert any(path.startswith("/api/console/") for path in response.json()["paths"])


async def test_api_answers_carrying_patient_data_are_never_cached(stack: Stack) -> None:
    patient = await stack.consented_patient()
    admin = ConsoleClient(stack.url)
    try:
        await admin.login(ADMIN_USERNAME, ADMIN_PASSWORD)
        found = await admin.get("/api/console/patients", query=patient[-6:])
        queues = await admin.get("/api/console/queues")
    finally:
        await admin.aclose()
    for response in (found, queues):
        assert response.status_code == 200, response.text
        assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    ("path", "size"),
    [
        ("/api/console/login", 50 * 1024 * 1024),
        ("/api/console/login", 5000),
        ("/internal/bot/patients", 100_000),
    ],
    ids=["login-50MB", "login-5KB", "bot-api-100KB"],
)
async def test_oversized_bodies_are_refused_before_they_are_read(stack: Stack, path: str, size: int) -> None:
    body = b'{"username": "' + b"a" * size + b'"}'
    async with httpx.AsyncClient(base_url=stack.url, timeout=30) as anonymous:
        response = await anonymous.post(path, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 413, response.text
    assert "larger than" in response.json()["detail"]


async def test_a_chunked_body_that_grows_past_the_limit_is_refused_with_413(stack: Stack) -> None:
    """No Content-Length to check up front: the limit is applied as the body streams in."""

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"username": "'
        for _ in range(10):
            yield b"a" * 1024
        yield b'"}'

    async with httpx.AsyncClient(base_url=stack.url, timeout=30) as anonymous:
        response = await anonymous.post(
            "/api/console/login", content=chunks(), headers={"Content-Type": "application/json"}
        )
    assert response.status_code == 413, response.text
    assert "larger than" in response.json()["detail"]
