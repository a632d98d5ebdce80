"""A staff member's HTTP client for the console API (cookie session + CSRF header)."""

from __future__ import annotations

from typing import Any

import httpx


class ConsoleClient:
    def __init__(self, base_url: str) -> None:
        self.http = httpx.AsyncClient(base_url=base_url, timeout=15)
        self.csrf = ""
        self.me: dict[str, Any] = {}

    async def login(self, username: str, password: str) -> dict[str, Any]:
        response = await self.http.post(
            "/api/console/login", json={"username": username, "password": password}
        )
        response.raise_for_status()
        self.me = response.json()
        self.csrf = self.me["csrf_token"]
        return self.me

    async def get(self, path: str, **params: Any) -> httpx.Response:
        return await self.http.get(path, params=params or None)

    async def post(self, path: str, json: Any = None) -> httpx.Response:
        return await self.http.post(path, json=json, headers={"X-CSRF-Token": self.csrf})

    async def put(self, path: str, json: Any = None) -> httpx.Response:
        return await self.http.put(path, json=json, headers={"X-CSRF-Token": self.csrf})

    async def queue_items(self) -> list[dict[str, Any]]:
        response = await self.get("/api/console/queues")
        response.raise_for_status()
        return [item for team in response.json() for item in team["items"]]

    async def aclose(self) -> None:
        await self.http.aclose()
