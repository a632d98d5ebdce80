"""Hostile or broken pushes get a clear 4xx and change nothing: nothing stored, nothing sent."""

from __future__ import annotations

import base64
import os

import httpx
import pytest
from sqlalchemy import func, select

from channels.sandbox.pushes import build_push
from crm_backend.config import SANDBOX_AES_KEY, SANDBOX_APPID, SANDBOX_TOKEN
from crm_backend.conversations.models import InboundMessage
from crm_backend.database.core import Database
from tests.support.settle import send_marker_and_wait
from tests.support.stack import Stack, new_openid


async def _inbound_count(db: Database) -> int:
    async with db.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(InboundMessage)) or 0)


def _signed(stack: Stack, body: bytes) -> dict[str, object]:
    """A correctly signed plain-mode request around an arbitrary body."""
    params = stack.build("text", new_openid(), content="x").params
    return {"params": params, "content": body, "headers": {"Content-Type": "text/xml"}}


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<xml><ToUserName>gh</ToUserName><FromUserName>oX</FromUserName><CreateTime>1</CreateTime>
<MsgType>text</MsgType><Content>&lol2;</Content><MsgId>1</MsgId></xml>"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<xml><FromUserName>oX</FromUserName><CreateTime>1</CreateTime><MsgType>text</MsgType>
<Content>&xxe;</Content><MsgId>2</MsgId></xml>"""
DOCTYPE_ONLY = b"""<!DOCTYPE xml><xml><FromUserName>oX</FromUserName><CreateTime>1</CreateTime>
<MsgType>text</MsgType><Content>hi</Content><MsgId>3</MsgId></xml>"""


def _text_push(*, msg_id: str = "7", create_time: str = "1700000000") -> bytes:
    return (
        f"<xml><FromUserName>oX</FromUserName><CreateTime>{create_time}</CreateTime>"
        f"<MsgType>text</MsgType><Content>hi</Content><MsgId>{msg_id}</MsgId></xml>"
    ).encode()


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"<xml><FromUserName>oX</FromUserName>", 400),  # truncated
        (b"not xml at all", 400),
        (BILLION_LAUGHS, 400),
        (EXTERNAL_ENTITY, 400),
        (DOCTYPE_ONLY, 400),
        (b"<root><FromUserName>a</FromUserName></root>", 400),  # wrong root
        (b"<xml><FromUserName>oX</FromUserName><CreateTime>1</CreateTime><MsgType>text</MsgType></xml>", 400),
        (
            b"<xml><FromUserName>oX</FromUserName><CreateTime>x</CreateTime><MsgType>text</MsgType>"
            b"<MsgId>5</MsgId></xml>",
            400,
        ),
        (b"<xml>" + b"<Content>" + b"A" * 70_000 + b"</Content></xml>", 413),
        (_text_push(msg_id="1" * 40), 400),
        (_text_push(msg_id=str(2**63)), 400),
        (_text_push(msg_id="²"), 400),
        (_text_push(create_time="9" * 40), 400),
        (_text_push(create_time=str(2**63)), 400),
        (_text_push(create_time="١٢٣"), 400),  # Arabic-Indic digits: isdigit, yet not ours
    ],
    ids=[
        "truncated",
        "not-xml",
        "billion-laughs",
        "external-entity",
        "doctype",
        "wrong-root",
        "no-msgid",
        "bad-createtime",
        "oversized",
        "msgid-40-digits",
        "msgid-2^63",
        "msgid-superscript",
        "createtime-40-digits",
        "createtime-2^63",
        "createtime-arabic-digits",
    ],
)
async def test_broken_or_hostile_bodies_are_refused(
    stack: Stack, db: Database, body: bytes, status: int
) -> None:
    before = await _inbound_count(db)
    sent_before = len(stack.wechat.sent())
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{stack.url}/wechat/oa", **_signed(stack, body))  # type: ignore[arg-type]
    assert response.status_code == status
    assert response.text and response.text != "success"
    # The webhook stores a push before it answers: a refusal is final, and what is not stored is
    # never queued, so no later moment could differ from this one.
    assert await _inbound_count(db) == before
    assert len(stack.wechat.sent()) == sent_before


async def test_bad_signatures_are_forbidden(stack: Stack, db: Database) -> None:
    before = await _inbound_count(db)
    openid = new_openid()
    push = stack.build("text", openid, content="你好")
    async with httpx.AsyncClient() as client:
        forged = {**push.params, "signature": "0" * 40}
        r1 = await client.post(f"{stack.url}/wechat/oa", params=forged, content=push.body)
        unsigned = {k: v for k, v in push.params.items() if k != "signature"}
        r2 = await client.post(f"{stack.url}/wechat/oa", params=unsigned, content=push.body)
        wrong_token = build_push("text", openid, content="你好", token="not-our-token", appid=SANDBOX_APPID)
        r3 = await client.post(f"{stack.url}/wechat/oa", params=wrong_token.params, content=wrong_token.body)
        safe = stack.build("text", openid, content="你好", mode="safe")
        r4 = await client.post(
            f"{stack.url}/wechat/oa", params={**safe.params, "msg_signature": "1" * 40}, content=safe.body
        )
    assert [r.status_code for r in (r1, r2, r3, r4)] == [403, 403, 403, 403]
    assert await _inbound_count(db) == before  # stored before answering: a refusal is final
    # The same patient's next, genuine push is answered; nothing came before its answer.
    marked = await send_marker_and_wait(stack, openid, db=db)
    assert marked.answers and marked.others == []


async def test_encrypted_push_for_another_app_is_refused(stack: Stack, db: Database) -> None:
    before = await _inbound_count(db)
    openid = new_openid()
    push = build_push(
        "text",
        openid,
        content="你好",
        mode="safe",
        token=SANDBOX_TOKEN,
        appid="wx_someone_else",
        aes_key=SANDBOX_AES_KEY,
    )
    other_key = base64.b64encode(os.urandom(32)).decode().rstrip("=")
    garbled = build_push(
        "text",
        openid,
        content="你好",
        mode="safe",
        token=SANDBOX_TOKEN,
        appid=SANDBOX_APPID,
        aes_key=other_key,
    )
    async with httpx.AsyncClient() as client:
        r1 = await client.post(f"{stack.url}/wechat/oa", params=push.params, content=push.body)
        r2 = await client.post(f"{stack.url}/wechat/oa", params=garbled.params, content=garbled.body)
    assert r1.status_code == 403 and "another app" in r1.text
    assert r2.status_code in (400, 403)
    assert await _inbound_count(db) == before  # stored before answering: a refusal is final
    marked = await send_marker_and_wait(stack, openid, db=db)
    assert marked.answers and marked.others == []


async def test_url_verification(stack: Stack) -> None:
    from channels.sandbox.pushes import verification_params

    params = verification_params(SANDBOX_TOKEN, "echo-123")
    async with httpx.AsyncClient() as client:
        ok = await client.get(f"{stack.url}/wechat/oa", params=params)
        bad = await client.get(f"{stack.url}/wechat/oa", params={**params, "signature": "f" * 40})
    assert (ok.status_code, ok.text) == (200, "echo-123")
    assert bad.status_code == 403 and "echo-123" not in bad.text
