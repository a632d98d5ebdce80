"""The fake WeChat API and the simulator exist only while no real official account is configured."""

from __future__ import annotations

from fastapi.testclient import TestClient

from crm_backend.app import create_app
from crm_backend.config import SANDBOX_APPID, SANDBOX_SECRET, Settings

TOKEN_QUERY = {"grant_type": "client_credential", "appid": SANDBOX_APPID, "secret": SANDBOX_SECRET}


def test_sandbox_served_without_credentials() -> None:
    client = TestClient(create_app(Settings(WECHAT_OA_APPID="")))  # no lifespan: no database needed
    assert client.get("/simulator").status_code == 200
    assert "access_token" in client.get("/cgi-bin/token", params=TOKEN_QUERY).json()


def test_sandbox_never_served_with_real_credentials() -> None:
    settings = Settings(
        WECHAT_OA_APPID="wx1234567890abcdef",
        WECHAT_OA_SECRET="real-secret",
        WECHAT_OA_TOKEN="real-token",
        WECHAT_OA_AES_KEY="c2FuZGJveC1hZXMta2V5LWZvci1jYXJlYnJpZGdlISE",
    )
    assert not settings.sandbox_enabled
    client = TestClient(create_app(settings))
    for path in ("/simulator", "/cgi-bin/token", "/sandbox/sent", "/sandbox/stats"):
        assert client.get(path, params=TOKEN_QUERY).status_code == 404, path
    assert client.post("/cgi-bin/message/custom/send", json={}).status_code in (404, 405)
    # Real credentials never fall back to the sandbox's secrets.
    assert (settings.oa_token, settings.oa_secret) == ("real-token", "real-secret")
