"""The patient simulator: a phone-like chat page whose messages reach our webhook exactly as WeChat's would.

The browser never signs or encrypts anything; it asks this router, which builds the push with
`pushes.build_push` and POSTs it over real HTTP to `/wechat/oa`, retrying on timeouts the way WeChat
does. Replies sent through the (fake) WeChat API are read back from the sandbox's record of sends.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import logging
import re
from pathlib import Path
from typing import Any

import anyio
import httpx
from defusedxml.ElementTree import fromstring
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, Field
from wechatpy.crypto import WeChatCrypto

from channels.sandbox.pushes import Push, PushKind, PushMode, build_push
from crm_backend.config import Settings, get_settings

log = logging.getLogger(__name__)

PAGE_PATH = Path(__file__).parent / "static" / "simulator.html"
#: What WeChat shows the patient when the server URL fails to answer properly.
SERVICE_UNAVAILABLE = "该公众号暂时无法提供服务，请稍后再试"
#: WeChat waits five seconds for the server URL, then tries again; three tries in all.
WEBHOOK_TIMEOUT_SECONDS = 5.0
WEBHOOK_ATTEMPTS = 3

_OPENID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
_INTERACTION = {"text": "message", "voice": "message", "image": "message"}


class PushRequest(BaseModel):
    openid: str = Field(pattern=_OPENID_PATTERN)
    kind: PushKind
    #: Text for "text", the recognised speech for "voice"; ignored otherwise.
    content: str = Field("", max_length=2000)
    mode: PushMode = "plain"


def _inline_hashes(html: str, tag: str) -> list[str]:
    blocks = re.findall(rf"<{tag}>(.*?)</{tag}>", html, flags=re.DOTALL)
    return [f"'sha256-{base64.b64encode(hashlib.sha256(b.encode()).digest()).decode()}'" for b in blocks]


def page_headers(html: str) -> dict[str, str]:
    """A CSP that admits only the page's own inline script and style, so injected markup cannot run."""
    csp = "; ".join(
        [
            "default-src 'none'",
            f"script-src {' '.join(_inline_hashes(html, 'script'))}",
            f"style-src {' '.join(_inline_hashes(html, 'style'))}",
            "connect-src 'self'",
            "img-src 'self' data:",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )
    return {
        "Content-Security-Policy": csp,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
    }


def read_passive_reply(
    status: int, body: str, *, token: str, appid: str, aes_key: str
) -> tuple[str | None, str | None]:
    """Interpret the webhook's answer as WeChat does: (text shown as the account's reply, notice instead).

    "success" or an empty body means "no reply"; an XML reply (encrypted or not) is shown; anything
    else makes WeChat tell the patient the service is unavailable.
    """
    if status != 200:
        return None, SERVICE_UNAVAILABLE
    if body.strip() in ("", "success"):
        return None, None
    try:
        root = fromstring(body)
        encrypt = root.findtext("Encrypt")
        if encrypt:
            inner = WeChatCrypto(token, aes_key, appid).decrypt_message(
                {"Encrypt": encrypt},
                root.findtext("MsgSignature") or "",
                root.findtext("TimeStamp") or "",
                root.findtext("Nonce") or "",
            )
            root = fromstring(inner)
    except Exception:  # malformed XML, bad signature, wrong key: all look the same to the patient
        log.warning("webhook reply is not a valid passive reply: %.200r", body)
        return None, SERVICE_UNAVAILABLE
    msg_type = (root.findtext("MsgType") or "").strip()
    if msg_type == "text":
        return root.findtext("Content") or "", None
    return f"[{msg_type or '未知'}消息]", None


async def _deliver(
    client: httpx.AsyncClient, url: str, push: Push, wait_seconds: float, attempts: int
) -> tuple[httpx.Response | None, int, str]:
    """POST the push, retrying the identical request on timeouts and connection failures as WeChat does."""
    error = ""
    for attempt in range(1, attempts + 1):
        try:
            response = await client.post(
                url, params=push.params, content=push.body, headers=push.headers, timeout=wait_seconds
            )
            return response, attempt, ""
        except httpx.TimeoutException:
            error = f"no answer within {wait_seconds:g}s"
        except httpx.TransportError as exc:
            error = f"{type(exc).__name__}: {exc}"
    return None, attempts, error


def create_simulator_router(
    *,
    webhook_url: str | None = None,
    api_base: str | None = None,
    webhook_timeout: float = WEBHOOK_TIMEOUT_SECONDS,
    attempts: int = WEBHOOK_ATTEMPTS,
) -> APIRouter:
    """The simulator page and its JSON API. URLs default to our own webhook and `settings.wechat_api_base`."""
    router = APIRouter()

    def settings_of(request: Request) -> Settings:
        # The hosting app's settings if it keeps them on `app.state` (ours does), else the environment's.
        return getattr(request.app.state, "settings", None) or get_settings()

    def target_webhook(request: Request) -> str:
        return webhook_url or f"http://127.0.0.1:{settings_of(request).port}/wechat/oa"

    def sandbox_base(request: Request) -> str:
        return (api_base or settings_of(request).wechat_api_base).rstrip("/")

    @router.get("/simulator", response_class=HTMLResponse, include_in_schema=False)
    def page() -> HTMLResponse:
        html = PAGE_PATH.read_text(encoding="utf-8")
        return HTMLResponse(html, headers=page_headers(html))

    @router.post("/simulator/api/push", tags=["simulator"])
    async def push(body: PushRequest, request: Request) -> JSONResponse:
        """Send one patient action to the webhook; returns its status and body and what WeChat would show."""
        settings = settings_of(request)
        build = functools.partial(
            build_push,
            body.kind,
            body.openid,
            content=body.content if body.kind == "text" else "",
            recognition=body.content if body.kind == "voice" else None,
            mode=body.mode,
            token=settings.oa_token,
            appid=settings.oa_appid,
            aes_key=settings.oa_aes_key,
        )
        try:
            wechat_push = await anyio.to_thread.run_sync(build)
        except ValueError as exc:
            return JSONResponse({"detail": str(exc)}, status_code=400)

        async with httpx.AsyncClient() as client:
            # WeChat knows about the interaction before our server does; tell the sandbox first.
            kind = _INTERACTION.get(body.kind, body.kind)
            try:
                await client.post(
                    f"{sandbox_base(request)}/sandbox/interactions",
                    json={"openid": body.openid, "kind": kind},
                    timeout=2.0,
                )
            except httpx.HTTPError as exc:
                log.warning("could not tell the sandbox about %s: %s", body.openid, exc)
            response, tries, error = await _deliver(
                client, target_webhook(request), wechat_push, webhook_timeout, attempts
            )

        result: dict[str, Any] = {
            "attempts": tries,
            # As a string: MsgId is a 63-bit integer and JavaScript numbers are not.
            "msg_id": None if wechat_push.msg_id is None else str(wechat_push.msg_id),
        }
        if response is None:
            result |= {
                "status": None,
                "body": "",
                "error": error,
                "reply": None,
                "notice": SERVICE_UNAVAILABLE,
            }
            return JSONResponse(result, status_code=502)
        reply, notice = await anyio.to_thread.run_sync(
            functools.partial(
                read_passive_reply,
                response.status_code,
                response.text,
                token=settings.oa_token,
                appid=settings.oa_appid,
                aes_key=settings.oa_aes_key,
            )
        )
        result |= {
            "status": response.status_code,
            "body": response.text[:4000],
            "reply": reply,
            "notice": notice,
        }
        return JSONResponse(result)

    @router.get("/simulator/api/messages", tags=["simulator"])
    async def messages(request: Request, openid: str = Query(pattern=_OPENID_PATTERN)) -> JSONResponse:
        """Everything the account sent this patient through the (fake) WeChat API, in order."""
        try:
            async with httpx.AsyncClient() as client:
                response = await client.get(
                    f"{sandbox_base(request)}/sandbox/sent", params={"touser": openid}, timeout=5.0
                )
            response.raise_for_status()
            return JSONResponse(response.json())
        except (httpx.HTTPError, ValueError) as exc:
            return JSONResponse({"detail": f"sandbox unreachable: {exc}"}, status_code=502)

    return router


#: Include in the web app when `settings.sandbox_enabled`.
router = create_simulator_router()
