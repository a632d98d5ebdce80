"""The simulator page and its API: a safe page, pushes as WeChat sends them, replies read from the sandbox."""

from __future__ import annotations

import base64
import hashlib
import re
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from fastapi import FastAPI
from wechatpy.crypto import WeChatCrypto

from channels.sandbox.simulator import SERVICE_UNAVAILABLE, create_simulator_router, read_passive_reply
from crm_backend.config import SANDBOX_AES_KEY, SANDBOX_APPID, SANDBOX_TOKEN, Settings

KEYS = {"token": SANDBOX_TOKEN, "appid": SANDBOX_APPID, "aes_key": SANDBOX_AES_KEY}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def simulator_client(**router_options: object) -> httpx.AsyncClient:
    app = FastAPI()
    app.include_router(create_simulator_router(**router_options))  # type: ignore[arg-type]
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://simulator.test", timeout=30
    )


@pytest.fixture
async def page_client() -> AsyncIterator[httpx.AsyncClient]:
    async with simulator_client() as client:
        yield client


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A port that accepts connections and never answers, like a webhook stuck on a slow database."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/wechat/oa"


async def wechat_token(wechat: httpx.AsyncClient, settings: Settings) -> str:
    params = {"grant_type": "client_credential", "appid": settings.oa_appid, "secret": settings.oa_secret}
    return (await wechat.get("/cgi-bin/token", params=params)).json()["access_token"]


async def send_text(wechat: httpx.AsyncClient, token: str, touser: str, content: str) -> int:
    payload = {"touser": touser, "msgtype": "text", "text": {"content": content}}
    response = await wechat.post("/cgi-bin/message/custom/send", params={"access_token": token}, json=payload)
    return response.json()["errcode"]


def openid() -> str:
    return "oSim" + uuid.uuid4().hex[:24]


# The page.


async def test_page_is_the_chinese_chat_ui(page_client: httpx.AsyncClient) -> None:
    response = await page_client.get("/simulator")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    for label in (
        "关注公众号",
        "取消关注",
        "发送",
        "语音(带识别文字)",
        "图片",
        "明文",
        "兼容",
        "安全",
        "换一个患者",
    ):
        assert label in html
    assert 'lang="zh-CN"' in html


async def test_page_cannot_inject_markup_or_load_foreign_code(page_client: httpx.AsyncClient) -> None:
    response = await page_client.get("/simulator")
    html = response.text
    assert "innerHTML" not in html and "outerHTML" not in html and "insertAdjacentHTML" not in html
    assert "document.write" not in html and "eval(" not in html
    assert not re.search(r"<script[^>]*\bsrc=", html)
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)

    [script] = re.findall(r"<script>(.*?)</script>", html, flags=re.DOTALL)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    csp = response.headers["content-security-policy"]
    assert f"script-src 'sha256-{digest}'" in csp
    assert "default-src 'none'" in csp
    assert "unsafe-inline" not in csp


# Reading the webhook's answer.


def test_success_or_empty_means_no_reply() -> None:
    assert read_passive_reply(200, "success", **KEYS) == (None, None)
    assert read_passive_reply(200, "", **KEYS) == (None, None)


@pytest.mark.parametrize(
    ("status", "body"), [(500, "success"), (403, "bad signature"), (200, "not xml"), (200, "OK")]
)
def test_failures_show_wechats_notice(status: int, body: str) -> None:
    assert read_passive_reply(status, body, **KEYS) == (None, SERVICE_UNAVAILABLE)


def test_plain_passive_reply_is_shown() -> None:
    reply = (
        "<xml><ToUserName><![CDATA[oP]]></ToUserName><FromUserName><![CDATA[gh_carebridge]]></FromUserName>"
        "<CreateTime>1</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[您好\n请问]]></Content></xml>"
    )
    assert read_passive_reply(200, reply, **KEYS) == ("您好\n请问", None)


def test_encrypted_passive_reply_is_decrypted_and_checked() -> None:
    inner = "<xml><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[已收到]]></Content></xml>"
    crypto = WeChatCrypto(KEYS["token"], KEYS["aes_key"], KEYS["appid"])
    encrypted = crypto.encrypt_message(inner, "12345", str(int(time.time())))
    assert read_passive_reply(200, encrypted, **KEYS) == ("已收到", None)
    tampered = re.sub(r"<MsgSignature><!\[CDATA\[\w+", "<MsgSignature><![CDATA[0000", encrypted)
    assert read_passive_reply(200, tampered, **KEYS) == (None, SERVICE_UNAVAILABLE)


# Pushing.


async def test_push_is_refused_for_bad_input(page_client: httpx.AsyncClient) -> None:
    bad = [
        {"openid": "<script>", "kind": "text", "content": "x"},
        {"openid": "oOk", "kind": "location", "content": "x"},
        {"openid": "oOk", "kind": "text", "content": "x", "mode": "aes"},
        {"openid": "oOk", "kind": "text", "content": "长" * 2001},
    ]
    for body in bad:
        assert (await page_client.post("/simulator/api/push", json=body)).status_code == 422, body


async def test_unreachable_webhook_is_retried_and_reported(sandbox_server: str, settings: Settings) -> None:
    dead = f"http://127.0.0.1:{free_port()}/wechat/oa"
    patient = openid()
    async with simulator_client(webhook_url=dead, api_base=sandbox_server) as client:
        response = await client.post(
            "/simulator/api/push", json={"openid": patient, "kind": "subscribe", "mode": "safe"}
        )
    assert response.status_code == 502
    result = response.json()
    assert result["status"] is None
    assert result["attempts"] == 3
    assert result["notice"] == SERVICE_UNAVAILABLE
    assert result["error"]

    # WeChat learned about the subscription anyway: three replies are allowed, the fourth is not.
    async with httpx.AsyncClient(base_url=sandbox_server, timeout=5) as wechat:
        token = await wechat_token(wechat, settings)
        codes = [await send_text(wechat, token, patient, "欢迎关注") for _ in range(4)]
    assert codes == [0, 0, 0, 45047]


async def test_silent_webhook_times_out_three_times(silent_server: str, sandbox_server: str) -> None:
    async with simulator_client(
        webhook_url=silent_server, api_base=sandbox_server, webhook_timeout=0.2
    ) as client:
        started = time.monotonic()
        response = await client.post(
            "/simulator/api/push", json={"openid": openid(), "kind": "text", "content": "在吗"}
        )
    assert response.status_code == 502
    assert response.json()["attempts"] == 3
    assert "0.2s" in response.json()["error"]
    assert time.monotonic() - started >= 0.6


# Reading the account's messages.


async def test_messages_come_from_the_sandbox_record(sandbox_server: str, settings: Settings) -> None:
    patient, other = openid(), openid()
    async with httpx.AsyncClient(base_url=sandbox_server, timeout=5) as wechat:
        token = await wechat_token(wechat, settings)
        for touser, content in [
            (patient, "第一条\n第二行"),
            (other, "别人的"),
            (patient, "<img src=x onerror=alert(1)>"),
        ]:
            assert await send_text(wechat, token, touser, content) == 0

    async with simulator_client(api_base=sandbox_server) as client:
        response = await client.get("/simulator/api/messages", params={"openid": patient})
        assert response.status_code == 200
        assert [m["content"] for m in response.json()] == ["第一条\n第二行", "<img src=x onerror=alert(1)>"]
        assert all(m["touser"] == patient and m["id"] for m in response.json())
        assert (
            await client.get("/simulator/api/messages", params={"openid": "bad openid"})
        ).status_code == 422


async def test_messages_report_an_unreachable_sandbox() -> None:
    async with simulator_client(api_base=f"http://127.0.0.1:{free_port()}") as client:
        response = await client.get("/simulator/api/messages", params={"openid": openid()})
    assert response.status_code == 502
