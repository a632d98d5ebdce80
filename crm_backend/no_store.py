"""`Cache-Control: no-store` on every API answer: they carry patient data, which no browser or
proxy cache may keep (PIPL: sensitive personal information)."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: Paths whose answers may carry patient data (the console's API, the bot API, the follow-up page).
PRIVATE_PREFIXES = ("/api/", "/internal/", "/followup/q/")


class NoStore:
    """A plain ASGI wrapper, so the webhook's path pays nothing for it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PRIVATE_PREFIXES):
            await self.app(scope, receive, send)
            return

        async def send_no_store(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"cache-control"]
                headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_no_store)
