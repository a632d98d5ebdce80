"""The few WeChat server APIs we call, over httpx, all under `{WECHAT_API_BASE}/cgi-bin/`.

wechatpy's client is synchronous (requests), so calls that sit on the worker's event loop use this
small async client instead; wechatpy still does all signing and crypto.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

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


@dataclass(frozen=True)
class AccessToken:
    value: str
    expires_in: int


class WeChatAPI:
    def __init__(self, base_url: str, http: httpx.AsyncClient) -> None:
        self.base = base_url.rstrip("/") + "/cgi-bin"
        self.http = http

    async def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = await self.http.request(method, f"{self.base}{path}", **kwargs)
        except httpx.HTTPError as exc:
            raise WeChatUnavailable(f"{type(exc).__name__}: {exc}") from exc
        if response.status_code >= 500:
            raise WeChatUnavailable(f"HTTP {response.status_code}")
        try:
            data = response.json()
        except ValueError as exc:
            raise WeChatUnavailable(f"HTTP {response.status_code}, not JSON") from exc
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
        return AccessToken(str(data["access_token"]), int(data.get("expires_in", 7200)))

    async def send_custom_message(self, token: str, payload: dict[str, Any]) -> dict[str, Any]:
        return await self._call(
            "POST", "/message/custom/send", params={"access_token": token}, content=_json(payload)
        )

    async def send_template_message(self, token: str, payload: dict[str, Any]) -> dict[str, Any]:
        return await self._call(
            "POST", "/message/template/send", params={"access_token": token}, content=_json(payload)
        )


def _json(payload: dict[str, Any]) -> bytes:
    import json

    # WeChat shows \uXXXX escapes literally, so Chinese must go out as UTF-8.
    return json.dumps(payload, ensure_ascii=False).encode("utf-8")
