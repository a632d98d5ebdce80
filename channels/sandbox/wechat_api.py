"""A fake of the WeChat official-account API, faithful enough that our client cannot tell the difference.

It is the project's only test double, so it reproduces WeChat's behaviour including the unpleasant
parts: error codes with HTTP 200, tokens that expire or get superseded, the customer-service window
and its reply quota, and Chinese that arrives as `\\uXXXX` escapes being shown literally. Control
endpoints under /sandbox/ let tests inspect what was sent and inject faults.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Receive, Scope, Send

from crm_backend.config import Settings, get_settings

ApiName = Literal["token", "custom_send", "template_send"]
InteractionKind = Literal["message", "subscribe", "menu", "unsubscribe"]

TOKEN_TTL_SECONDS = 7200
#: After a new token is issued, the previous one keeps working this long (WeChat's documented overlap).
SUPERSEDED_GRACE_SECONDS = 300
#: Customer-service quota granted per interaction since WeChat's June 2023 rules: (messages, seconds).
INTERACTION_QUOTAS: dict[str, tuple[int, float]] = {
    "message": (5, 48 * 3600),
    "subscribe": (3, 60),
    "menu": (3, 60),
}

ERRMSGS: dict[int, str] = {
    -1: "system error",
    40001: "invalid credential, access_token is invalid or not latest",
    40002: "invalid grant_type",
    40003: "invalid openid",
    40007: "invalid media_id",
    40008: "invalid message type",
    40013: "invalid appid",
    40037: "invalid template_id",
    40125: "invalid appsecret",
    41001: "access_token missing",
    41002: "appid missing",
    41004: "appsecret missing",
    42001: "access_token expired",
    43004: "require subscribe",
    44004: "empty content",
    45009: "reach max api daily quota limit",
    45015: "response out of time limit or subscription is canceled",
    45047: "out of response count limit",
    47001: "data format error",
}

#: Customer-service message types and the object each must carry (text is checked more closely).
_CUSTOM_MSGTYPES = {
    "text", "image", "voice", "video", "music", "news", "mpnews", "mpnewsarticle",
    "msgmenu", "wxcard", "miniprogrampage",
}  # fmt: skip
_MEDIA_MSGTYPES = {"image", "voice", "video", "mpnews"}
_OPENID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
# A backslash-u escape that is not itself escaped (odd number of backslashes before the "u").
_UNICODE_ESCAPE_RE = re.compile(r"(?<!\\)((?:\\\\)*)\\u")


def _settings(request: Request) -> Settings:
    """The hosting app's settings if it keeps them on `app.state` (ours does), else the environment's."""
    return getattr(request.app.state, "settings", None) or get_settings()


def _rid() -> str:
    return f"{secrets.token_hex(4)}-{secrets.token_hex(4)}-{secrets.token_hex(4)}"


def wechat_error(errcode: int, errmsg: str | None = None, status_code: int = 200) -> JSONResponse:
    """WeChat reports errors in the body, with HTTP 200, and tags each errmsg with a request id."""
    message = errmsg if errmsg is not None else f"{ERRMSGS.get(errcode, 'sandbox error')} rid: {_rid()}"
    return JSONResponse({"errcode": errcode, "errmsg": message}, status_code=status_code)


@dataclass
class _Token:
    expires_at: float
    #: Set when a newer token was issued; the old one dies at this time with 40001.
    superseded_until: float | None = None
    expired: bool = False


@dataclass
class _Grant:
    remaining: int
    expires_at: float


@dataclass
class _User:
    subscribed: bool = True
    grants: list[_Grant] = field(default_factory=list)


@dataclass
class Fault:
    api: ApiName
    errcode: int | None
    errmsg: str | None
    http_status: int | None
    delay_seconds: float
    remaining: int


class SandboxState:
    """Everything the fake WeChat remembers, for one process.

    Methods never await, and a lock guards each one, so they are atomic both on the event loop
    and from worker threads.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._offset = 0.0
            self._tokens: dict[str, _Token] = {}
            self._users: dict[str, _User] = {}
            self._faults: dict[str, deque[Fault]] = {}
            self._sent: list[dict[str, Any]] = []
            self._seq = 0
            self._stats = {"token_requests": 0, "send_requests": 0, "sends": 0, "faults_served": 0}

    def now(self) -> float:
        return self._clock() + self._offset

    def advance_clock(self, seconds: float) -> float:
        """Move the sandbox's clock forward, so expiry can be tested without waiting."""
        with self._lock:
            self._offset += seconds
            return self._offset

    # Tokens.

    def count_token_request(self) -> None:
        with self._lock:
            self._stats["token_requests"] += 1

    def issue_token(self) -> str:
        with self._lock:
            now = self.now()
            for old in self._tokens.values():
                if old.superseded_until is None:
                    old.superseded_until = now + SUPERSEDED_GRACE_SECONDS
            self._tokens = {k: t for k, t in self._tokens.items() if t.expires_at > now - 86400}
            value = secrets.token_urlsafe(96)
            self._tokens[value] = _Token(expires_at=now + TOKEN_TTL_SECONDS)
            return value

    def check_token(self, value: str) -> int:
        """0 if the token may be used, else WeChat's errcode for it."""
        with self._lock:
            if not value:
                return 41001
            token = self._tokens.get(value)
            now = self.now()
            if token is None or (token.superseded_until is not None and now >= token.superseded_until):
                return 40001
            if token.expired or now >= token.expires_at:
                return 42001
            return 0

    def expire_tokens(self) -> int:
        with self._lock:
            live = [t for t in self._tokens.values() if not t.expired]
            for token in live:
                token.expired = True
            return len(live)

    # Faults.

    def add_fault(self, fault: Fault) -> None:
        with self._lock:
            self._faults.setdefault(fault.api, deque()).append(fault)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def take_fault(self, api: ApiName) -> Fault | None:
        """Consume one use of the oldest queued fault for `api`."""
        with self._lock:
            queue = self._faults.get(api)
            if not queue:
                return None
            fault = queue[0]
            fault.remaining -= 1
            if fault.remaining <= 0:
                queue.popleft()
            self._stats["faults_served"] += 1
            return fault

    # Users and the customer-service window.

    def record_interaction(self, openid: str, kind: InteractionKind, at: float | None = None) -> None:
        """What WeChat learns when a patient writes, follows or unfollows; it opens or closes the window."""
        with self._lock:
            user = self._users.setdefault(openid, _User())
            if kind == "unsubscribe":
                user.subscribed = False
                user.grants.clear()
                return
            user.subscribed = True
            count, ttl = INTERACTION_QUOTAS[kind]
            start = self.now() if at is None else at
            user.grants.append(_Grant(remaining=count, expires_at=start + ttl))

    def _window_error(self, api: ApiName, openid: str) -> int:
        """Check and consume the reply quota. Patients the sandbox never heard of are not limited."""
        user = self._users.get(openid)
        if user is None:
            return 0
        if api == "template_send":
            return 0 if user.subscribed else 43004
        if not user.subscribed:
            return 45015
        now = self.now()
        user.grants = [g for g in user.grants if g.expires_at > now]
        usable = [g for g in user.grants if g.remaining > 0]
        if not usable:
            return 45047 if user.grants else 45015
        min(usable, key=lambda g: g.expires_at).remaining -= 1
        return 0

    # Sends.

    def count_send_request(self) -> None:
        with self._lock:
            self._stats["send_requests"] += 1

    def accept_send(
        self, api: ApiName, touser: str, record: dict[str, Any], arrived_at: float | None = None
    ) -> int:
        """Apply the window rules and, if they allow it, record the send (at `arrived_at`, the
        sandbox clock when the request came in, if known); returns 0 or an errcode."""
        with self._lock:
            errcode = self._window_error(api, touser)
            if errcode:
                return errcode
            self._seq += 1
            self._stats["sends"] += 1
            self._sent.append(
                {
                    "id": secrets.token_hex(8),
                    "seq": self._seq,
                    "api": api,
                    "touser": touser,
                    **record,
                    "at": datetime.fromtimestamp(
                        self.now() if arrived_at is None else arrived_at, UTC
                    ).isoformat(),
                }
            )
            return 0

    def sent(self, touser: str | None = None, api: str | None = None, after: int = 0) -> list[dict[str, Any]]:
        with self._lock:
            return [
                dict(r)
                for r in self._sent
                if r["seq"] > after
                and (touser is None or r["touser"] == touser)
                and (api is None or r["api"] == api)
            ]

    def clear_sent(self) -> None:
        with self._lock:
            self._sent.clear()

    def stats(self) -> dict[str, int]:
        with self._lock:
            return dict(self._stats)


def _parse_body(raw: bytes) -> dict[str, Any] | None:
    """Parse a request body the way WeChat does: strict JSON object, `\\uXXXX` kept as literal text."""
    try:
        text = raw.decode("utf-8")
        data = json.loads(_UNICODE_ESCAPE_RE.sub(r"\1\\\\u", text))
    except (UnicodeDecodeError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _valid_openid(value: object) -> bool:
    return isinstance(value, str) and _OPENID_RE.fullmatch(value) is not None


def _check_custom(payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """Validate a customer-service message; returns (errcode, fields to record)."""
    if not _valid_openid(payload.get("touser")):
        return 40003, {}
    msgtype = payload.get("msgtype")
    if msgtype not in _CUSTOM_MSGTYPES:
        return 40008, {}
    body = payload.get(msgtype)
    if not isinstance(body, dict):
        return (44004 if msgtype == "text" else 47001), {}
    content: str | None = None
    if msgtype == "text":
        content = body.get("content")
        if not isinstance(content, str) or not content:
            return 44004, {}
    elif msgtype in _MEDIA_MSGTYPES and not isinstance(body.get("media_id"), str):
        return 40007, {}
    return 0, {
        "msgtype": msgtype,
        "content": content,
        "template_id": None,
        "data": None,
        "url": None,
        "msgid": None,
        "payload": payload,
    }


def _check_template(payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    if not _valid_openid(payload.get("touser")):
        return 40003, {}
    template_id = payload.get("template_id")
    if not isinstance(template_id, str) or not template_id.strip():
        return 40037, {}
    data = payload.get("data")
    if not isinstance(data, dict) or not all(
        isinstance(item, dict) and isinstance(item.get("value"), str) for item in data.values()
    ):
        return 47001, {}
    url = payload.get("url")
    if url is not None and not isinstance(url, str):
        return 47001, {}
    miniprogram = payload.get("miniprogram")
    if miniprogram is not None and not (
        isinstance(miniprogram, dict) and isinstance(miniprogram.get("appid"), str)
    ):
        return 47001, {}
    return 0, {
        "msgtype": "template",
        "content": None,
        "template_id": template_id,
        "data": data,
        "url": url,
        "msgid": secrets.randbelow(2**62) + 2**40,
        "payload": payload,
    }


class FaultSpec(BaseModel):
    api: ApiName
    errcode: int | None = None
    errmsg: str | None = None
    http_status: int | None = Field(None, ge=100, le=599)
    delay_seconds: float = Field(0.0, ge=0, le=120)
    times: int = Field(1, ge=1, le=10_000)


class InteractionSpec(BaseModel):
    openid: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    kind: InteractionKind = "message"
    #: Unix time of the interaction; defaults to the sandbox's now. Use a past time to age a window.
    at: float | None = None


class ClockSpec(BaseModel):
    seconds: float = Field(ge=0)


class _Arrivals:
    """Wakes readers long-polling /sandbox/sent when a send is recorded, so tests and benchmarks
    learn of an answer the moment it arrives without polling the sandbox in a tight loop."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        #: Readers held right now: a test can see that its long poll is parked before it sends.
        self.waiting = 0

    def notify(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, timeout: float) -> None:
        self.waiting += 1
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._event.wait(), timeout)
        finally:
            self.waiting -= 1


def create_wechat_router(state: SandboxState) -> APIRouter:
    """The fake `/cgi-bin/...` API plus the `/sandbox/...` control endpoints, bound to `state`."""
    router = APIRouter()
    arrivals = _Arrivals()

    async def apply_fault(api: ApiName) -> Response | None:
        fault = state.take_fault(api)
        if fault is None:
            return None
        if fault.delay_seconds:
            await asyncio.sleep(fault.delay_seconds)
        if fault.http_status is not None and fault.http_status != 200:
            if fault.errcode is None:
                return Response(f"{fault.http_status} sandbox fault", status_code=fault.http_status)
            return wechat_error(fault.errcode, fault.errmsg, status_code=fault.http_status)
        if fault.errcode is not None:
            return wechat_error(fault.errcode, fault.errmsg)
        return None  # A delay-only fault: a slow but otherwise normal answer.

    @router.get("/cgi-bin/token", include_in_schema=False)
    async def token(request: Request) -> Response:
        state.count_token_request()
        if (faulted := await apply_fault("token")) is not None:
            return faulted
        q = request.query_params
        settings = _settings(request)
        if q.get("grant_type") != "client_credential":
            return wechat_error(40002)
        if not q.get("appid"):
            return wechat_error(41002)
        if not q.get("secret"):
            return wechat_error(41004)
        if q["appid"] != settings.oa_appid:
            return wechat_error(40013)
        if not secrets.compare_digest(q["secret"].encode(), settings.oa_secret.encode()):
            return wechat_error(40125)
        return JSONResponse({"access_token": state.issue_token(), "expires_in": TOKEN_TTL_SECONDS})

    async def send(api: ApiName, request: Request) -> Response:
        state.count_send_request()
        if (faulted := await apply_fault(api)) is not None:
            return faulted
        if errcode := state.check_token(request.query_params.get("access_token", "")):
            return wechat_error(errcode)
        payload = _parse_body(await request.body())
        if payload is None:
            return wechat_error(47001)
        errcode, record = (_check_custom if api == "custom_send" else _check_template)(payload)
        if not errcode:
            errcode = state.accept_send(api, payload["touser"], record, request.scope.get(ARRIVED_AT))
        if errcode:
            return wechat_error(errcode)
        arrivals.notify()
        if api == "template_send":
            return JSONResponse({"errcode": 0, "errmsg": "ok", "msgid": record["msgid"]})
        return JSONResponse({"errcode": 0, "errmsg": "ok"})

    @router.post("/cgi-bin/message/custom/send", include_in_schema=False)
    async def custom_send(request: Request) -> Response:
        return await send("custom_send", request)

    @router.post("/cgi-bin/message/template/send", include_in_schema=False)
    async def template_send(request: Request) -> Response:
        return await send("template_send", request)

    @router.get("/sandbox/sent", tags=["sandbox"])
    async def list_sent(
        touser: str | None = None,
        api: str | None = None,
        after: int = 0,
        wait: float = Query(0.0, ge=0, le=30),
    ) -> list[dict[str, Any]]:
        """Accepted sends in order; `after` skips those with seq <= after. With `wait` (seconds),
        an empty answer is held until a matching send arrives or the time is up."""
        deadline = time.monotonic() + wait
        while True:
            found = state.sent(touser=touser, api=api, after=after)
            left = deadline - time.monotonic()
            if found or left <= 0:
                return found
            await arrivals.wait(left)

    @router.delete("/sandbox/sent", tags=["sandbox"])
    async def clear_sent() -> dict[str, bool]:
        state.clear_sent()
        return {"ok": True}

    @router.post("/sandbox/faults", tags=["sandbox"])
    async def add_fault(spec: FaultSpec) -> dict[str, bool]:
        state.add_fault(
            Fault(
                api=spec.api,
                errcode=spec.errcode,
                errmsg=spec.errmsg,
                http_status=spec.http_status,
                delay_seconds=spec.delay_seconds,
                remaining=spec.times,
            )
        )
        return {"ok": True}

    @router.delete("/sandbox/faults", tags=["sandbox"])
    async def clear_faults() -> dict[str, bool]:
        state.clear_faults()
        return {"ok": True}

    @router.post("/sandbox/expire-tokens", tags=["sandbox"])
    async def expire_tokens() -> dict[str, int]:
        return {"expired": state.expire_tokens()}

    @router.post("/sandbox/interactions", tags=["sandbox"])
    async def interaction(spec: InteractionSpec) -> dict[str, bool]:
        """Tell the sandbox a patient wrote, followed or unfollowed (the simulator does this for you)."""
        state.record_interaction(spec.openid, spec.kind, spec.at)
        return {"ok": True}

    @router.post("/sandbox/advance-clock", tags=["sandbox"])
    async def advance_clock(spec: ClockSpec) -> dict[str, float]:
        return {"offset_seconds": state.advance_clock(spec.seconds), "now": state.now()}

    @router.get("/sandbox/stats", tags=["sandbox"])
    async def stats() -> dict[str, int]:
        return {**state.stats(), "readers_waiting": arrivals.waiting}

    @router.post("/sandbox/reset", tags=["sandbox"])
    async def reset() -> dict[str, bool]:
        """Forget tokens, sends, faults, patients, stats and clock offset."""
        state.reset()
        return {"ok": True}

    return router


#: The process-wide sandbox: include `router` in the web app when `settings.sandbox_enabled`.
state = SandboxState()
router = create_wechat_router(state)


#: ASGI scope key: the sandbox clock when the request reached the standalone fake.
ARRIVED_AT = "sandbox.arrived_at"


class _StampArrival:
    """Notes when each request reaches the fake, before its routing and checks, so a send is
    recorded at the moment it arrived (as WeChat would log it) and what the stand-in itself
    spends is not counted against the sender (bench/webhook_latency.py times answers by it)."""

    def __init__(self, app: ASGIApp, state: SandboxState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope[ARRIVED_AT] = self.state.now()
        await self.app(scope, receive, send)


def create_app(sandbox_state: SandboxState | None = None) -> FastAPI:
    """A web app serving only the fake WeChat API, for `python -m channels.sandbox` and tests."""
    app = FastAPI(title="CareBridge WeChat sandbox", docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(router if sandbox_state is None else create_wechat_router(sandbox_state))
    app.add_middleware(_StampArrival, state=state if sandbox_state is None else sandbox_state)
    return app
