"""Our WeChat API client against the fake WeChat API: what each kind of failure becomes, since the
sender decides on it (refresh the token, keep as undeliverable, or retry with backoff)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest

from channels.outbound.wechat_api import WeChatAPI, WeChatAPIError, WeChatUnavailable
from crm_backend.config import SANDBOX_APPID, SANDBOX_SECRET
from tests.support.stack import FakeWeChat, free_port, start_fake_wechat

MESSAGE = {
    "touser": "oPatient_api_0001",
    "msgtype": "text",
    "text": {"content": "您的报告已出，请在小程序查看。"},
}


@pytest.fixture(scope="module")
def fake_wechat() -> Iterator[FakeWeChat]:
    fake = start_fake_wechat()
    yield fake
    fake.process.stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


async def test_a_send_arrives_as_utf8_json(fake_wechat: FakeWeChat, session: aiohttp.ClientSession) -> None:
    api = WeChatAPI(fake_wechat.base, session)
    token = await api.fetch_token(SANDBOX_APPID, SANDBOX_SECRET)
    assert token.expires_in > 0

    assert (await api.send_custom_message(token.value, MESSAGE))["errcode"] == 0
    assert fake_wechat.texts(MESSAGE["touser"])[-1] == "您的报告已出，请在小程序查看。"


async def test_wechat_refusals_carry_their_errcode(
    fake_wechat: FakeWeChat, session: aiohttp.ClientSession
) -> None:
    api = WeChatAPI(fake_wechat.base, session)
    with pytest.raises(WeChatAPIError) as refused:
        await api.send_custom_message("not-a-token", MESSAGE)
    assert refused.value.errcode == 40001

    with pytest.raises(WeChatAPIError) as wrong_secret:
        await api.fetch_token(SANDBOX_APPID, "wrong-secret")
    assert wrong_secret.value.errcode == 40125


async def test_server_errors_and_wrong_addresses_are_worth_retrying(
    fake_wechat: FakeWeChat, session: aiohttp.ClientSession
) -> None:
    api = WeChatAPI(fake_wechat.base, session)
    token = await api.fetch_token(SANDBOX_APPID, SANDBOX_SECRET)
    fake_wechat.fault(api="custom_send", http_status=502)
    with pytest.raises(WeChatUnavailable, match="HTTP 502"):
        await api.send_custom_message(token.value, MESSAGE)

    # A WECHAT_API_BASE that points somewhere else (here: a path the fake does not serve).
    misplaced = WeChatAPI(f"{fake_wechat.base}/not-wechat", session)
    with pytest.raises(WeChatUnavailable, match="HTTP 404"):
        await misplaced.fetch_token(SANDBOX_APPID, SANDBOX_SECRET)


async def test_unreachable_wechat_is_worth_retrying(session: aiohttp.ClientSession) -> None:
    api = WeChatAPI(f"http://127.0.0.1:{free_port()}", session)
    with pytest.raises(WeChatUnavailable, match="ClientConnectorError"):
        await api.fetch_token(SANDBOX_APPID, SANDBOX_SECRET)
