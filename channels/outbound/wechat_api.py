"""The few WeChat server APIs we call, all under `{WECHAT_API_BASE}/cgi-bin/`, over aiohttp.

wechatpy's client is synchronous (requests), so calls that sit on the worker's event loop use this
small async client instead; wechatpy still does all signing and crypto. It is aiohttp rather than
httpx (which the Rasa calls use): an answer's send is the last step the patient waits on, and
aiohttp's own client spends less time on it than httpx's interface on the same connections
(measured; docs/PERFORMANCE.md).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import aiohttp

#: Token invalid or expired: refresh once and retry.
TOKEN_ERRORS = frozenset({40001, 40014, 42001})
#: Outside the 48-hour customer-service window, or over the reply count: retrying cannot help.
WINDOW_ERRORS = frozenset({45015, 45047})
#: The patient unfollowed or blocked the account.
RECIPIENT_ERRORS = frozenset({43004, 40003})


class WeChatAPIError(Exception):
    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(f"{errcode} {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg


class WeChatUnavailable(Exception):
    """Network failure or a 5xx: worth retrying with backoff."""


class WeChatUncertain(WeChatUnavailable):
    """The request went out but no answer came back: WeChat may have acted on it. A message sent
    again after this could reach the patient twice."""


@dataclass(frozen=True)
class AccessToken:
    value: str
    expires_in: int


class WeChatAPI:
    def __init__(self, base_url: str, session: aiohttp.ClientSession) -> None:
        self.base = base_url.rstrip("/") + "/cgi-bin"
        self.session = session

    async def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            async with self.session.request(method, f"{self.base}{path}", **kwargs) as response:
                status = response.status
                body = await response.read()
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            raise WeChatUnavailable(f"{type(exc).__name__}: {exc}") from exc  # never reached WeChat
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise WeChatUncertain(f"{type(exc).__name__}: {exc}") from exc
        if status >= 400:
            # WeChat reports its own errors with HTTP 200; anything else is a proxy, an outage or a
            # wrong WECHAT_API_BASE.
            raise WeChatUnavailable(f"HTTP {status}")
        try:
            data = json.loads(body)
        except ValueError as exc:
            raise WeChatUnavailable(f"HTTP {status}, not JSON") from exc
        if not isinstance(data, dict):
            raise WeChatUnavailable("unexpected response shape")
        errcode = int(data.get("errcode", 0) or 0)
        if errcode:
            raise WeChatAPIError(errcode, str(data.get("errmsg", "")))
        return data

    async def fetch_token(self, app_id: str, secret: str) -> AccessToken:
        data = await self._call(
            "GET", "/token", params={"grant_type": "client_credential", "appid": app_id, "secret": secret}
        )
        if not data.get("access_token"):
            raise WeChatUnavailable("token answer without access_token")
        return AccessToken(str(data["access_token"]), int(data.get("expires_in", 7200)))

    async def send_custom_message(self, token: str, payload: dict[str, Any]) -> dict[str, Any]:
        return await self._call(
            "POST", "/message/custom/send", params={"access_token": token}, data=_json(payload), headers=_JSON
        )

    async def send_template_message(self, token: str, payload: dict[str, Any]) -> dict[str, Any]:
        return await self._call(
            "POST",
            "/message/template/send",
            params={"access_token": token},
            data=_json(payload),
            headers=_JSON,
        )


_JSON = {"Content-Type": "application/json; charset=utf-8"}


def _json(payload: dict[str, Any]) -> bytes:
    # WeChat shows \uXXXX escapes literally, so Chinese must go out as UTF-8.
    return json.dumps(payload, ensure_ascii=False).encode("utf-8")
