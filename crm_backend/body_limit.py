"""A size limit for every request body, suited to each kind of endpoint, enforced before the body
is read: a huge body is refused with 413 instead of being held in memory."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

KIB = 1024
#: Longest prefix first; the webhook checks its own limit (MAX_BODY_BYTES) as it reads.
LIMITS: tuple[tuple[str, int], ...] = (
    ("/api/console/login", 4 * KIB),
    ("/internal/", 64 * KIB),
    ("/simulator/", 64 * KIB),
    ("/sandbox/", 64 * KIB),
    ("/cgi-bin/", 64 * KIB),
    # The follow-up page posts one answer at a time (free text up to 1,000 characters).
    ("/followup/", 8 * KIB),
    # One discharge Bundle (a patient, an encounter, its procedures) is a few KiB.
    ("/api/his/", 256 * KIB),
    ("/api/", 1024 * KIB),
)
DEFAULT_LIMIT = 1024 * KIB


def limit_for(path: str) -> int:
    return next((limit for prefix, limit in LIMITS if path.startswith(prefix)), DEFAULT_LIMIT)


class BodyLimit:
    """Refuses a declared Content-Length over the limit at once, and a body that grows past it
    while it streams in; the endpoint then sees the request end, and nothing is changed."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/wechat/"):
            await self.app(scope, receive, send)
            return
        limit = limit_for(scope["path"])
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await _too_large(send, limit)
            return
        received = 0
        started = False
        overflowed = False

        async def limited_receive() -> Message:
            nonlocal received, overflowed
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    overflowed = True
                    raise _TooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start" and not started:
                started = True
                if overflowed:  # the endpoint turned our exception into its own error answer
                    await _too_large(send, limit)
                    return
            if not overflowed:
                await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except _TooLarge:
            if not started:
                await _too_large(send, limit)


class _TooLarge(Exception):
    pass


async def _too_large(send: Send, limit: int) -> None:
    body = f'{{"detail":"request body larger than {limit} bytes"}}'.encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
