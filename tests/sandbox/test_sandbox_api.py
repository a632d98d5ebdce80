"""The fake WeChat API must answer as WeChat does, errors included."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from channels.sandbox.wechat_api import SandboxState, create_app, create_wechat_router
from crm_backend.config import SANDBOX_APPID, SANDBOX_SECRET, Settings

OPENID = "oPatient_0000000000000000001"


def text_message(
    content: str = "您好，已为您预约明天上午9点的门诊。", touser: str = OPENID
) -> dict[str, Any]:
    return {"touser": touser, "msgtype": "text", "text": {"content": content}}


async def custom_send(client: httpx.AsyncClient, token: str, payload: Any) -> httpx.Response:
    body = payload if isinstance(payload, bytes) else json.dumps(payload, ensure_ascii=False).encode()
    return await client.post("/cgi-bin/message/custom/send", params={"access_token": token}, content=body)


async def template_send(client: httpx.AsyncClient, token: str, payload: dict[str, Any]) -> httpx.Response:
    body = json.dumps(payload, ensure_ascii=False).encode()
    return await client.post("/cgi-bin/message/template/send", params={"access_token": token}, content=body)


async def fetch_token(client: httpx.AsyncClient, settings: Settings) -> str:
    response = await client.get(
        "/cgi-bin/token",
        params={"grant_type": "client_credential", "appid": settings.oa_appid, "secret": settings.oa_secret},
    )
    assert response.status_code == 200
    return response.json()["access_token"]


def errcode(response: httpx.Response) -> int:
    assert response.status_code == 200, response.text
    return response.json()["errcode"]


# Tokens.


async def test_token_is_issued_for_the_configured_credentials(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    response = await client.get(
        "/cgi-bin/token",
        params={"grant_type": "client_credential", "appid": settings.oa_appid, "secret": settings.oa_secret},
    )
    data = response.json()
    assert response.status_code == 200
    assert set(data) == {"access_token", "expires_in"}
    assert data["expires_in"] == 7200
    assert len(data["access_token"]) >= 64
    assert data["access_token"] != await fetch_token(client, settings)
    assert (await client.get("/sandbox/stats")).json()["token_requests"] == 2


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"appid": "APPID", "secret": "SECRET"}, 40125),
        ({"appid": "wx_someone_else", "secret": "SECRET"}, 40013),
        ({"secret": "SECRET"}, 41002),
        ({"appid": "APPID"}, 41004),
        ({"appid": "APPID", "secret": "SECRET", "grant_type": "password"}, 40002),
    ],
)
async def test_token_errors(
    client: httpx.AsyncClient, settings: Settings, params: dict[str, str], expected: int
) -> None:
    query = {"grant_type": "client_credential"} | {
        k: settings.oa_appid if v == "APPID" else "wrong-secret" if v == "SECRET" else v
        for k, v in params.items()
    }
    response = await client.get("/cgi-bin/token", params=query)
    assert errcode(response) == expected
    assert "access_token" not in response.json()
    assert response.json()["errmsg"]


# Customer-service messages.


async def test_custom_send_is_recorded(client: httpx.AsyncClient, settings: Settings) -> None:
    token = await fetch_token(client, settings)
    content = "第一行\n第二行 <b>&amp;</b>"
    response = await custom_send(client, token, text_message(content))
    assert response.json() == {"errcode": 0, "errmsg": "ok"}
    await custom_send(client, token, text_message("给别人", touser="oOtherPatient"))

    sent = (await client.get("/sandbox/sent", params={"touser": OPENID})).json()
    assert len(sent) == 1
    record = sent[0]
    assert record["api"] == "custom_send"
    assert record["touser"] == OPENID
    assert record["msgtype"] == "text"
    assert record["content"] == content
    assert record["template_id"] is None
    assert record["data"] is None
    assert record["at"].endswith("+00:00")
    assert abs(time.time() - datetime.fromisoformat(record["at"]).timestamp()) < 60

    everything = (await client.get("/sandbox/sent")).json()
    assert [r["content"] for r in everything] == [content, "给别人"]
    assert [r["seq"] for r in everything] == sorted(r["seq"] for r in everything)
    assert (await client.get("/sandbox/sent", params={"api": "template_send"})).json() == []
    after_first = (await client.get("/sandbox/sent", params={"after": everything[0]["seq"]})).json()
    assert [r["content"] for r in after_first] == ["给别人"]

    assert (await client.get("/sandbox/stats")).json()["sends"] == 2
    await client.delete("/sandbox/sent")
    assert (await client.get("/sandbox/sent")).json() == []


async def _until_readers_waiting(client: httpx.AsyncClient, count: int, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while (await client.get("/sandbox/stats")).json()["readers_waiting"] != count:
        assert time.monotonic() < deadline, f"never {count} readers held"
        await asyncio.sleep(0.01)


async def test_a_waiting_reader_gets_a_send_the_moment_it_arrives(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    token = await fetch_token(client, settings)
    started = time.monotonic()
    waiting = asyncio.create_task(client.get("/sandbox/sent", params={"touser": OPENID, "wait": 10}))
    await _until_readers_waiting(client, 1)
    assert not waiting.done()  # held: nothing was sent to this patient yet
    await custom_send(client, token, text_message("给别人", touser="oOtherPatient"))
    # A send to someone else wakes the reader, which finds nothing for it and is held again.
    await _until_readers_waiting(client, 1)
    assert not waiting.done()
    await custom_send(client, token, text_message("您好"))
    sent = (await waiting).json()
    # Only the send to this patient answered it: had the other one, it would be in the answer.
    assert [r["content"] for r in sent] == ["您好"]
    assert time.monotonic() - started < 5


async def test_a_waiting_reader_gets_nothing_when_the_wait_ends(client: httpx.AsyncClient) -> None:
    started = time.monotonic()
    response = await client.get("/sandbox/sent", params={"touser": OPENID, "wait": 0.3})
    assert response.json() == []
    assert 0.25 < time.monotonic() - started < 5
    assert (await client.get("/sandbox/sent", params={"wait": 31})).status_code == 422


async def test_ascii_escaped_chinese_is_shown_literally_as_wechat_does(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    token = await fetch_token(client, settings)
    escaped = json.dumps(text_message("您好")).encode()  # ensure_ascii=True: "\u60a8\u597d"
    assert errcode(await custom_send(client, token, escaped)) == 0
    raw = json.dumps(text_message("C:\\temp")).encode()  # an escaped backslash must stay a backslash
    assert errcode(await custom_send(client, token, raw)) == 0
    contents = [r["content"] for r in (await client.get("/sandbox/sent")).json()]
    assert contents == ["\\u60a8\\u597d", "C:\\temp"]


async def test_unknown_and_missing_tokens(client: httpx.AsyncClient) -> None:
    assert errcode(await custom_send(client, "not-a-token", text_message())) == 40001
    response = await client.post("/cgi-bin/message/custom/send", json=text_message())
    assert errcode(response) == 41001
    assert (await client.get("/sandbox/sent")).json() == []


async def test_expired_tokens_answer_42001_until_a_new_one_is_fetched(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    token = await fetch_token(client, settings)
    assert errcode(await custom_send(client, token, text_message())) == 0
    assert (await client.post("/sandbox/expire-tokens")).json() == {"expired": 1}
    response = await custom_send(client, token, text_message())
    assert errcode(response) == 42001
    assert response.json()["errmsg"].startswith("access_token expired")
    fresh = await fetch_token(client, settings)
    assert errcode(await custom_send(client, fresh, text_message())) == 0
    assert len((await client.get("/sandbox/sent")).json()) == 2


async def test_tokens_expire_after_7200_seconds(client: httpx.AsyncClient, settings: Settings) -> None:
    token = await fetch_token(client, settings)
    await client.post("/sandbox/advance-clock", json={"seconds": 7100})
    assert errcode(await custom_send(client, token, text_message())) == 0
    await client.post("/sandbox/advance-clock", json={"seconds": 101})
    assert errcode(await custom_send(client, token, text_message())) == 42001


async def test_superseded_token_works_five_more_minutes_then_is_invalid(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    old = await fetch_token(client, settings)
    new = await fetch_token(client, settings)
    await client.post("/sandbox/advance-clock", json={"seconds": 290})
    assert errcode(await custom_send(client, old, text_message())) == 0
    await client.post("/sandbox/advance-clock", json={"seconds": 20})
    assert errcode(await custom_send(client, old, text_message())) == 40001
    assert errcode(await custom_send(client, new, text_message())) == 0


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"{not json", 47001),
        (b"[1, 2]", 47001),
        (b"\xff\xfe", 47001),
        (json.dumps({"msgtype": "text", "text": {"content": "hi"}}).encode(), 40003),
        (json.dumps(text_message(touser="")).encode(), 40003),
        (json.dumps({"touser": OPENID, "msgtype": "text", "text": {"content": ""}}).encode(), 44004),
        (json.dumps({"touser": OPENID, "msgtype": "text", "text": {}}).encode(), 44004),
        (json.dumps({"touser": OPENID, "msgtype": "text"}).encode(), 44004),
        (json.dumps({"touser": OPENID, "msgtype": "telegram", "telegram": {}}).encode(), 40008),
        (json.dumps({"touser": OPENID, "msgtype": "image", "image": {}}).encode(), 40007),
    ],
)
async def test_malformed_custom_sends_are_refused_and_not_recorded(
    client: httpx.AsyncClient, settings: Settings, body: bytes, expected: int
) -> None:
    token = await fetch_token(client, settings)
    assert errcode(await custom_send(client, token, body)) == expected
    assert (await client.get("/sandbox/sent")).json() == []
    assert (await client.get("/sandbox/stats")).json()["sends"] == 0


async def test_token_is_checked_before_the_body(client: httpx.AsyncClient) -> None:
    assert errcode(await custom_send(client, "bogus", b"{not json")) == 40001


# Templates.


async def test_template_send(client: httpx.AsyncClient, settings: Settings) -> None:
    token = await fetch_token(client, settings)
    data = {"first": {"value": "您的预约已确认"}, "keyword1": {"value": "心内科", "color": "#173177"}}
    response = await template_send(
        client,
        token,
        {"touser": OPENID, "template_id": "tmpl-appointment", "url": "https://example.org/a/1", "data": data},
    )
    body = response.json()
    assert body["errcode"] == 0 and body["errmsg"] == "ok"
    assert isinstance(body["msgid"], int) and body["msgid"] > 0

    [record] = (await client.get("/sandbox/sent", params={"api": "template_send"})).json()
    assert record["msgtype"] == "template"
    assert record["template_id"] == "tmpl-appointment"
    assert record["data"] == data
    assert record["url"] == "https://example.org/a/1"
    assert record["msgid"] == body["msgid"]
    assert record["content"] is None


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"template_id": "t", "data": {}}, 40003),
        ({"touser": OPENID, "data": {}}, 40037),
        ({"touser": OPENID, "template_id": " ", "data": {}}, 40037),
        ({"touser": OPENID, "template_id": "t", "data": {"k": "not an object"}}, 47001),
        ({"touser": OPENID, "template_id": "t"}, 47001),
        ({"touser": OPENID, "template_id": "t", "data": {}, "miniprogram": {"pagepath": "x"}}, 47001),
    ],
)
async def test_template_errors(
    client: httpx.AsyncClient, settings: Settings, payload: dict[str, Any], expected: int
) -> None:
    token = await fetch_token(client, settings)
    assert errcode(await template_send(client, token, payload)) == expected
    assert (await client.get("/sandbox/sent")).json() == []


# Fault injection.


async def test_errcode_fault_is_served_the_given_number_of_times(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    token = await fetch_token(client, settings)
    fault = {"api": "custom_send", "errcode": 45009, "times": 2}
    assert (await client.post("/sandbox/faults", json=fault)).status_code == 200
    first = await custom_send(client, token, text_message("一"))
    second = await custom_send(client, token, text_message("二"))
    third = await custom_send(client, token, text_message("三"))
    assert [errcode(first), errcode(second), errcode(third)] == [45009, 45009, 0]
    assert first.json()["errmsg"].startswith("reach max api daily quota limit")
    assert [r["content"] for r in (await client.get("/sandbox/sent")).json()] == ["三"]
    stats = (await client.get("/sandbox/stats")).json()
    assert stats["sends"] == 1 and stats["send_requests"] == 3 and stats["faults_served"] == 2


async def test_http_status_fault(client: httpx.AsyncClient, settings: Settings) -> None:
    token = await fetch_token(client, settings)
    await client.post("/sandbox/faults", json={"api": "custom_send", "http_status": 503})
    response = await custom_send(client, token, text_message())
    assert response.status_code == 503
    assert (await client.get("/sandbox/sent")).json() == []
    assert errcode(await custom_send(client, token, text_message())) == 0


async def test_faults_queue_in_order_and_only_match_their_api(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    token = await fetch_token(client, settings)
    await client.post("/sandbox/faults", json={"api": "token", "errcode": -1, "errmsg": "system error"})
    await client.post("/sandbox/faults", json={"api": "custom_send", "errcode": 42001})
    await client.post("/sandbox/faults", json={"api": "custom_send", "http_status": 502})
    template = {"touser": OPENID, "template_id": "t", "data": {}}
    assert errcode(await template_send(client, token, template)) == 0
    assert errcode(await custom_send(client, token, text_message())) == 42001
    assert (await custom_send(client, token, text_message())).status_code == 502
    assert errcode(await custom_send(client, token, text_message())) == 0
    response = await client.get(
        "/cgi-bin/token",
        params={"grant_type": "client_credential", "appid": settings.oa_appid, "secret": settings.oa_secret},
    )
    assert response.json() == {"errcode": -1, "errmsg": "system error"}


async def test_fault_with_errcode_and_http_status(client: httpx.AsyncClient, settings: Settings) -> None:
    await client.post("/sandbox/faults", json={"api": "token", "errcode": -1, "http_status": 500})
    response = await client.get(
        "/cgi-bin/token",
        params={"grant_type": "client_credential", "appid": settings.oa_appid, "secret": settings.oa_secret},
    )
    assert response.status_code == 500
    assert response.json()["errcode"] == -1


async def test_delay_only_fault_answers_slowly_but_normally(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    token = await fetch_token(client, settings)
    await client.post("/sandbox/faults", json={"api": "custom_send", "delay_seconds": 0.3})
    started = time.monotonic()
    assert errcode(await custom_send(client, token, text_message())) == 0
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    assert errcode(await custom_send(client, token, text_message())) == 0
    assert time.monotonic() - started < 0.3
    assert len((await client.get("/sandbox/sent")).json()) == 2


async def test_faults_can_be_cleared(client: httpx.AsyncClient, settings: Settings) -> None:
    token = await fetch_token(client, settings)
    await client.post("/sandbox/faults", json={"api": "custom_send", "errcode": 45009, "times": 5})
    await client.delete("/sandbox/faults")
    assert errcode(await custom_send(client, token, text_message())) == 0


@pytest.mark.parametrize(
    "fault",
    [{"api": "everything", "errcode": 1}, {"api": "token", "times": 0}, {"api": "token", "http_status": 42}],
)
async def test_invalid_fault_specs_are_refused(client: httpx.AsyncClient, fault: dict[str, Any]) -> None:
    assert (await client.post("/sandbox/faults", json=fault)).status_code == 422


# The customer-service window.


async def test_a_patient_message_allows_five_replies_within_48_hours(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    token = await fetch_token(client, settings)
    await client.post("/sandbox/interactions", json={"openid": OPENID, "kind": "message"})
    codes = [errcode(await custom_send(client, token, text_message(str(i)))) for i in range(6)]
    assert codes == [0, 0, 0, 0, 0, 45047]
    await client.post("/sandbox/interactions", json={"openid": OPENID, "kind": "message"})
    assert errcode(await custom_send(client, token, text_message())) == 0
    await client.post("/sandbox/advance-clock", json={"seconds": 48 * 3600 + 1})
    token = await fetch_token(client, settings)
    assert errcode(await custom_send(client, token, text_message())) == 45015
    # Templates are not bound to the window.
    template = {"touser": OPENID, "template_id": "t", "data": {}}
    assert errcode(await template_send(client, token, template)) == 0


async def test_an_old_interaction_has_no_window(client: httpx.AsyncClient, settings: Settings) -> None:
    token = await fetch_token(client, settings)
    at = time.time() - 49 * 3600
    await client.post("/sandbox/interactions", json={"openid": OPENID, "kind": "message", "at": at})
    assert errcode(await custom_send(client, token, text_message())) == 45015


async def test_subscribing_allows_three_replies_for_a_minute(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    token = await fetch_token(client, settings)
    await client.post("/sandbox/interactions", json={"openid": OPENID, "kind": "subscribe"})
    codes = [errcode(await custom_send(client, token, text_message())) for _ in range(4)]
    assert codes == [0, 0, 0, 45047]


async def test_unsubscribed_patients_cannot_be_messaged(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    token = await fetch_token(client, settings)
    await client.post("/sandbox/interactions", json={"openid": OPENID, "kind": "message"})
    await client.post("/sandbox/interactions", json={"openid": OPENID, "kind": "unsubscribe"})
    assert errcode(await custom_send(client, token, text_message())) == 45015
    template = {"touser": OPENID, "template_id": "t", "data": {}}
    assert errcode(await template_send(client, token, template)) == 43004
    assert (await client.get("/sandbox/sent")).json() == []


async def test_reset_forgets_everything(
    client: httpx.AsyncClient, state: SandboxState, settings: Settings
) -> None:
    token = await fetch_token(client, settings)
    await custom_send(client, token, text_message())
    await client.post("/sandbox/faults", json={"api": "custom_send", "errcode": 45009})
    await client.post("/sandbox/reset")
    assert state.stats() == {"token_requests": 0, "send_requests": 0, "sends": 0, "faults_served": 0}
    assert errcode(await custom_send(client, token, text_message())) == 40001
    assert (await client.get("/sandbox/sent")).json() == []


async def test_credentials_come_from_the_hosting_apps_settings(state: SandboxState) -> None:
    app = FastAPI()
    app.state.settings = Settings(
        WECHAT_OA_APPID="wx0123456789abcdef", WECHAT_OA_SECRET="s3cret", SANDBOX_FORCE=True
    )
    app.include_router(create_wechat_router(state))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://sandbox.test"
    ) as client:
        query = {"grant_type": "client_credential", "appid": "wx0123456789abcdef", "secret": "s3cret"}
        assert "access_token" in (await client.get("/cgi-bin/token", params=query)).json()
        query |= {"appid": SANDBOX_APPID, "secret": SANDBOX_SECRET}
        assert errcode(await client.get("/cgi-bin/token", params=query)) == 40013


async def test_the_standalone_fake_records_a_send_at_the_moment_it_arrived(settings: Settings) -> None:
    """The benchmark times an answer by this stamp: what the fake spends on a request (here, a
    slow answer) must not be counted against the worker that sent it."""
    state = SandboxState()
    transport = httpx.ASGITransport(app=create_app(state))
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox.test") as standalone:
        token = await fetch_token(standalone, settings)
        fault = {"api": "custom_send", "delay_seconds": 0.3}
        assert (await standalone.post("/sandbox/faults", json=fault)).status_code == 200
        before = time.time()
        response = await custom_send(standalone, token, text_message())
        answered = time.time()

    assert errcode(response) == 0
    [record] = state.sent(touser=OPENID)
    at = datetime.fromisoformat(record["at"]).timestamp()
    assert before <= at < before + 0.2
    assert answered - at >= 0.3
