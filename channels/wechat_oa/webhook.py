"""`/wechat/oa`: the official account's server URL. Answers WeChat in milliseconds; work happens later."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response

from channels.wechat_oa.push import PushRejected, WeChatPush
from channels.wechat_oa.security import OfficialAccountKeys
from crm_backend.conversations.inbound import accept_push
from crm_backend.runtime import Runtime

log = logging.getLogger(__name__)

router = APIRouter()


def _keys(request: Request) -> OfficialAccountKeys:
    return request.app.state.oa_keys


def _runtime(request: Request) -> Runtime:
    return request.app.state.runtime


def _reject(exc: PushRejected, request: Request) -> Response:
    log.warning("rejected push from %s: %s", request.client.host if request.client else "?", exc.reason)
    return PlainTextResponse(exc.reason, status_code=exc.status_code)


async def _read_limited(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise PushRejected(413, f"body larger than {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise PushRejected(413, f"body larger than {limit} bytes")
    return bytes(body)


@router.get("/wechat/oa")
async def verify_server(request: Request) -> Response:
    """WeChat's one-time URL check: echo `echostr` only if the signature is ours."""
    q = request.query_params
    try:
        _keys(request).verify_plain(q.get("signature", ""), q.get("timestamp", ""), q.get("nonce", ""))
    except PushRejected as exc:
        return _reject(exc, request)
    return PlainTextResponse(q.get("echostr", ""))


@router.post("/wechat/oa")
async def receive_push(request: Request) -> Response:
    runtime = _runtime(request)
    keys = _keys(request)
    try:
        body = await _read_limited(request, runtime.settings.max_body_bytes)
        fields = await keys.open_push_async(dict(request.query_params), body)
        push = WeChatPush.from_fields(fields)
    except PushRejected as exc:
        return _reject(exc, request)
    await accept_push(runtime, request.app.state.inbound_writer, keys.app_id, push)
    # "success" tells WeChat not to retry and not to show "service unavailable" to the patient.
    return PlainTextResponse("success")
