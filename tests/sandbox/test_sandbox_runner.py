"""`python -m channels.sandbox` serves the fake API over real HTTP, as the end-to-end suites use it."""

from __future__ import annotations

import httpx

from crm_backend.config import Settings


async def test_subprocess_sandbox_issues_tokens_and_records_sends(
    sandbox_server: str, settings: Settings
) -> None:
    async with httpx.AsyncClient(base_url=sandbox_server, timeout=5) as client:
        await client.post("/sandbox/reset")
        token = (
            await client.get(
                "/cgi-bin/token",
                params={
                    "grant_type": "client_credential",
                    "appid": settings.oa_appid,
                    "secret": settings.oa_secret,
                },
            )
        ).json()["access_token"]
        payload = {"touser": "oRunnerPatient", "msgtype": "text", "text": {"content": "请按时服药。"}}
        sent = await client.post("/cgi-bin/message/custom/send", params={"access_token": token}, json=payload)
        assert sent.json() == {"errcode": 0, "errmsg": "ok"}

        await client.post("/sandbox/faults", json={"api": "custom_send", "http_status": 503})
        failed = await client.post(
            "/cgi-bin/message/custom/send", params={"access_token": token}, json=payload
        )
        assert failed.status_code == 503

        records = (await client.get("/sandbox/sent", params={"touser": "oRunnerPatient"})).json()
        assert [r["content"] for r in records] == ["请按时服药。"]
        assert (await client.get("/sandbox/stats")).json()["token_requests"] == 1
        # Only the fake WeChat API is served: no webhook, no simulator.
        assert (await client.get("/simulator")).status_code == 404
        assert (await client.post("/wechat/oa")).status_code in (404, 405)
