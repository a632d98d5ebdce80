"""The staff console page on its own: served with a strict CSP, renders untrusted text as text, and
talks to the API the way docs/CONSOLE_API.md says (checked here against network routes in the browser,
not against the backend; the end-to-end test with the real stack is test_console_e2e.py)."""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, Request, Route, WebSocketRoute, expect

from crm_backend.console.views import STATIC_DIR
from tests.browser.conftest import PageProblems

XSS = "<img src=x onerror=window.__pwned=1>"
XSS_ALERT = "<img src=x onerror=alert(1)>"


async def _open_console(page: Page, base: str) -> None:
    await page.goto(f"{base}/console")
    await expect(page.locator("#login-form")).to_be_visible()


async def _assert_clean(page: Page, problems: PageProblems) -> None:
    assert problems.errors == []
    assert await problems.csp_violations(page) == []


# -- serving -----------------------------------------------------------------------------------------


async def test_page_and_assets_are_served_with_a_strict_csp(console_only_server: str) -> None:
    async with httpx.AsyncClient(base_url=console_only_server) as client:
        page = await client.get("/console")
        script = await client.get("/console/static/console.js")
        style = await client.get("/console/static/console.css")
        missing = [await client.get(path) for path in ("/console/static/views.py", "/console/static/x.js")]

    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = {
        part.split()[0]: part.split()[1:]
        for part in (p.strip() for p in page.headers["content-security-policy"].split(";"))
        if part
    }
    assert csp["default-src"] == ["'none'"]
    assert csp["script-src"] == ["'self'"]
    assert csp["style-src"] == ["'self'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["base-uri"] == ["'none'"]
    assert "'unsafe-inline'" not in page.headers["content-security-policy"]
    assert "'unsafe-eval'" not in page.headers["content-security-policy"]
    # Nothing from other hosts: every connect source is this origin.
    host = console_only_server.removeprefix("http://")
    assert set(csp["connect-src"]) <= {"'self'", f"ws://{host}", f"wss://{host}"}
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["cache-control"] == "no-store"
    # No inline code at all: the CSP would refuse it.
    assert "<script>" not in page.text and "<style>" not in page.text and " style=" not in page.text
    assert " on" not in page.text.replace(" one", "")  # no onclick= style handlers

    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert style.status_code == 200 and style.headers["content-type"].startswith("text/css")
    assert [r.status_code for r in missing] == [404, 404]


def _script_modules() -> list[str]:
    return sorted(path.relative_to(STATIC_DIR).as_posix() for path in STATIC_DIR.rglob("*.js"))


async def test_every_script_module_is_served_as_javascript(console_only_server: str) -> None:
    """The console is native ES modules: a browser refuses a module served as anything but JavaScript,
    and one that the server does not serve breaks the whole page. Nothing outside the list is reachable."""
    modules = _script_modules()
    imported = {
        (Path(module).parent / name).as_posix().removeprefix("./")
        for module in modules
        for name in re.findall(r'from "\./([\w/.-]+)"', (STATIC_DIR / module).read_text(encoding="utf-8"))
    }
    async with httpx.AsyncClient(base_url=console_only_server) as client:
        answers = {module: await client.get(f"/console/static/{module}") for module in modules}
        outside = [
            await client.get(path)
            for path in (
                "/console/static/js/../../views.py",
                "/console/static/%2e%2e/views.py",
                "/console/static/js/missing.js",
                "/console/static/js",
            )
        ]

    assert "console.js" in modules and len(modules) > 5
    assert imported <= set(modules), imported - set(modules)
    for module, answer in answers.items():
        assert answer.status_code == 200, module
        assert answer.headers["content-type"].startswith("text/javascript"), module
        assert answer.headers["x-content-type-options"] == "nosniff"
    assert [r.status_code for r in outside] == [404, 404, 404, 404]


@pytest.mark.parametrize("host", ["evil.example; script-src *", "evil.example", "evil.example:8000"])
async def test_the_host_header_is_never_copied_into_the_csp(console_only_server: str, host: str) -> None:
    async with httpx.AsyncClient(base_url=console_only_server) as client:
        response = await client.get("/console", headers={"Host": host})
    csp = response.headers["content-security-policy"]
    assert "evil" not in csp and "script-src 'self';" in csp


async def test_page_loads_and_shows_the_login_form(
    page: Page, page_problems: PageProblems, console_only_server: str
) -> None:
    await _open_console(page, console_only_server)
    await expect(page).to_have_title("CareBridge 坐席工作台")
    await expect(page.locator("#login-form").get_by_label("用户名")).to_be_visible()
    await expect(page.locator("#login-form").get_by_label("密码")).to_be_visible()
    await expect(page.locator("#login-submit")).to_have_text("登录")
    await expect(page.locator("#app")).to_be_hidden()
    await _assert_clean(page, page_problems)


async def test_modules_load_under_the_csp_and_staff_can_log_in(
    page: Page, page_problems: PageProblems, console_only_server: str
) -> None:
    """Every module of the page loads from this origin under the strict CSP, and logging in starts the
    console without a single error, CSP violation or failed script."""
    scripts: dict[str, int] = {}
    page.on(
        "response",
        lambda response: (
            scripts.__setitem__(response.url.split("/console/static/", 1)[1], response.status)
            if "/console/static/" in response.url and response.url.endswith(".js")
            else None
        ),
    )
    logged_in: list[bool] = []

    async def api(route: Route, request: Request) -> None:
        path = request.url.split("/api/console", 1)[1].split("?")[0]
        if path == "/me" and not logged_in:
            await route.fulfill(status=401, json={"detail": "not logged in"})
        elif path in ("/login", "/me"):
            logged_in.append(True)
            await route.fulfill(json=ME)
        elif path == "/queues":
            await route.fulfill(json=[{"team": ME["teams"][0], "items": [_item()]}])
        elif path in ("/canned-replies", "/labels"):
            await route.fulfill(json=[])
        elif path == "/directory":
            await route.fulfill(json={"teams": ME["teams"], "staff": []})
        elif path == "/complaints/scope":
            await route.fulfill(json={"office": False, "liaison_of": []})
        else:
            await route.fulfill(status=404, json={"detail": "not found"})

    await page.route("**/api/console/**", api)
    await page.route_web_socket("**/api/console/ws*", lambda ws: None)
    await _open_console(page, console_only_server)
    await page.locator("#login-form").get_by_label("用户名").fill("wang")
    await page.locator("#login-form").get_by_label("密码").fill("correct horse")
    await page.locator("#login-submit").click()

    await expect(page.locator("#me-name")).to_have_text("王护士")
    await expect(page.locator("#conn")).to_have_attribute("data-state", "open")
    await expect(page.locator(".qitem[data-escalation-id='41']")).to_contain_text("患者要求人工服务")
    assert scripts == dict.fromkeys(_script_modules(), 200)
    await _assert_clean(page, page_problems)
    # The one expected failure is the 401 of /me before logging in.
    assert [e for e in page_problems.console_errors if "status of 401" not in e] == []


# -- rendering untrusted text ------------------------------------------------------------------------


async def test_markup_in_a_patient_message_is_rendered_as_text(
    page: Page, page_problems: PageProblems, console_only_server: str
) -> None:
    await _open_console(page, console_only_server)
    page.on("dialog", lambda dialog: page_problems.errors.append(f"dialog opened: {dialog.message}"))
    result = await page.evaluate(
        """([xss, xssAlert]) => {
          const C = window.CareBridgeConsole;
          const box = document.createElement("div");
          box.id = "render-test";
          document.body.append(box);
          const message = C.renderMessage({id: 1, direction: "in", sender_type: "patient", msg_type: "text",
            content: xssAlert, created_at: new Date().toISOString(), delivery_status: "received",
            delivery_error: null, agent: null});
          const agent = C.renderMessage({id: 2, direction: "out", sender_type: "agent", msg_type: "text",
            content: xss, created_at: new Date().toISOString(), delivery_status: "sent", delivery_error: null,
            agent: {id: 7, display_name: xss}});
          const note = C.renderNote({id: 3, text: xss, author: {id: 7, display_name: xss},
            created_at: new Date().toISOString()});
          const item = C.renderQueueItem({escalation_id: 4, conversation_id: 5, patient: {id: 6, label: xss},
            reason: xss, priority: "urgent", team: {id: 1, name: xss}, status: "queued", assigned_to: null,
            created_at: new Date().toISOString(), waiting_seconds: 0, first_response_at: null,
            sla_due_at: new Date(Date.now() + 60000).toISOString(), sla_breached: false});
          const panel = C.renderPatientPanel({id: 6, label: xss,
            identities: [{app_id: xss, openid_masked: xss, subscribed: true}],
            dependants: [{id: 1, label: xss, name: xss, sex: null, birth_date: null, phone: xss,
              id_number: null, card_number: null, masked: {phone: true, id_number: true, card_number: true},
              relationship: xss, identity_id: 1}],
            conversations: [{id: 5, started_at: new Date().toISOString(), status: "escalated",
              last_message_at: new Date().toISOString()}],
            records: {appointments: [{label: xss, status: xss}]}}, 5);
          box.append(message, agent, note, item, panel);
          return {
            bubble: message.querySelector(".bubble").textContent,
            agentName: agent.querySelector(".who").textContent,
            elements: box.querySelectorAll("img, script, iframe, svg, object").length,
            text: box.textContent,
          };
        }""",
        [XSS, XSS_ALERT],
    )
    assert result["bubble"] == XSS_ALERT
    assert result["agentName"] == XSS
    assert result["elements"] == 0
    assert result["text"].count(XSS) >= 10
    # No element anywhere on the page carries an inline handler, so none can run later either.
    handlers = await page.evaluate(
        """() => [...document.querySelectorAll("*")].flatMap(
             (el) => [...el.attributes].filter((a) => a.name.startsWith("on")).map((a) => a.name))"""
    )
    assert handlers == []
    assert await page.evaluate("window.__pwned") is None
    await _assert_clean(page, page_problems)
    await expect(page.locator("#render-test .msg.patient .bubble")).to_have_text(XSS_ALERT)


async def test_csp_blocks_inline_handlers_even_if_markup_got_in(page: Page, console_only_server: str) -> None:
    """Defence in depth: were data ever parsed as markup, the page's CSP would still not run it."""
    await _open_console(page, console_only_server)
    await page.evaluate("(xss) => document.body.insertAdjacentHTML('beforeend', xss)", XSS)
    # The violation is reported at the moment the handler would have run: after it, not before.
    await page.wait_for_function(
        """() => (window.__cspViolations || []).some((v) => v.startsWith("script-src"))"""
    )
    assert await page.evaluate("window.__pwned") is None


async def test_failed_delivery_is_shown_with_the_reason(page: Page, console_only_server: str) -> None:
    await _open_console(page, console_only_server)
    texts = await page.evaluate(
        """() => {
          const base = {direction: "out", sender_type: "agent", msg_type: "text", content: "您好",
            created_at: new Date().toISOString(), agent: {id: 1, display_name: "王护士"}};
          const render = (extra) => window.CareBridgeConsole.renderMessage({...base, ...extra});
          return {
            failed: render({id: 1, delivery_status: "undeliverable",
              delivery_error: "45015 response out of time limit"}).querySelector(".delivery").textContent,
            pending: render({id: 2, delivery_status: "pending"}).querySelector(".delivery").textContent,
            sent: render({id: 3, delivery_status: "sent"}).querySelector(".delivery").textContent,
            failedClass: render({id: 4, delivery_status: "failed", delivery_error: "x"}).className,
          };
        }"""
    )
    assert texts["failed"].startswith("发送失败：45015 response out of time limit")
    assert "48 小时" in texts["failed"]
    assert texts["pending"] == "发送中…"
    assert texts["sent"] == "已发送"
    assert "failed" in texts["failedClass"]


async def test_red_flags_and_escalation_reasons_are_shown_in_words(
    page: Page, console_only_server: str
) -> None:
    await _open_console(page, console_only_server)
    shown = await page.evaluate(
        """() => {
          const C = window.CareBridgeConsole;
          const message = (extra) => C.renderMessage({id: 1, direction: "in", sender_type: "patient",
            msg_type: "text", content: "我爸胸痛，喘不上气", created_at: new Date().toISOString(),
            delivery_status: "received", delivery_error: null, agent: null, ...extra});
          const urgent = message({red_flags: ["胸痛伴出汗、气短或放射到手臂/下巴", "严重呼吸困难"]});
          const plain = message({red_flags: []});
          const item = (reason) => C.renderQueueItem({escalation_id: 4, conversation_id: 5,
            patient: {id: 6, label: "张*"}, reason, priority: "high", team: {id: 1, name: "投诉办公室"},
            status: "queued", assigned_to: null, created_at: new Date().toISOString(), waiting_seconds: 0,
            first_response_at: null, sla_due_at: new Date(Date.now() + 60000).toISOString(),
            sla_breached: false}).querySelector(".qitem-reason").textContent;
          return {
            urgentClass: urgent.classList.contains("urgent"),
            mark: urgent.querySelector(".urgent-mark")?.textContent ?? null,
            plainMark: plain.querySelector(".urgent-mark") !== null || plain.classList.contains("urgent"),
            reasons: ["complaint", "booking_help", "consent_declined", "bot_unavailable", "emergency",
              "自由文本"].map(item),
          };
        }"""
    )
    assert shown["urgentClass"] is True
    assert shown["mark"] == "⚠ 危急征象：胸痛伴出汗、气短或放射到手臂/下巴、严重呼吸困难"
    assert shown["plainMark"] is False
    assert shown["reasons"] == [
        "投诉",
        "挂号遇到困难",
        "未同意健康信息授权，需人工帮助",
        "系统繁忙，机器人未能回复",
        "危急征象：已建议拨打120",
        "自由文本",
    ]


async def test_a_conversation_s_triage_decisions_are_listed_oldest_first(
    page: Page, console_only_server: str
) -> None:
    await _open_console(page, console_only_server)
    shown = await page.evaluate(
        """() => {
          const C = window.CareBridgeConsole;
          const at = new Date().toISOString();
          const decision = (id, level, flags, departments) => ({id, level, departments, created_at: at,
            rule_version: "2026-12-05.1", red_flags: flags.map((f) => f.rule_id), screen: {flags}});
          const box = C.renderTriageDecisions([
            decision(2, "routine", [], ["GAST"]),
            decision(1, "emergency", [{rule_id: "stroke_signs", name: "中风征象"}], ["EMER"]),
          ]);
          return {
            lines: [...box.querySelectorAll(".triage-line")].map((n) => [n.className, n.textContent]),
            title: box.querySelector(".triage-title")?.textContent ?? null,
            empty: C.renderTriageDecisions([]).childNodes.length,
          };
        }"""
    )
    assert shown["title"] == "分诊记录" and shown["empty"] == 0
    [(first_class, first), (second_class, second)] = shown["lines"]
    assert "emergency" in first_class and first.endswith("急症 · 中风征象 · 规则 2026-12-05.1")
    assert "routine" in second_class and second.endswith("门诊预约 · GAST · 规则 2026-12-05.1")


async def test_durations_are_mm_ss(page: Page, console_only_server: str) -> None:
    await _open_console(page, console_only_server)
    values = await page.evaluate("[0, 5, 75, 3725, -42].map(window.CareBridgeConsole.formatDuration)")
    assert values == ["00:00", "00:05", "01:15", "62:05", "00:42"]


# -- talking to the API (browser-side routes standing in for the backend) ----------------------------

ME = {
    "id": 7,
    "username": "wang",
    "display_name": "王护士",
    "role": "nurse",
    "teams": [{"id": 1, "name": "护理咨询"}],
    "presence": "online",
    "capacity": 5,
    "csrf_token": "csrf-token-123",
}


def _item(status: str = "queued", assigned: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "escalation_id": 41,
        "conversation_id": 51,
        "patient": {"id": 61, "label": "张** " + XSS},
        "reason": "患者要求人工服务",
        "priority": "urgent",
        "team": {"id": 1, "name": "护理咨询"},
        "status": status,
        "assigned_to": assigned,
        "created_at": "2026-01-01T00:00:00Z",
        "waiting_seconds": 10,
        "first_response_at": None,
        "sla_due_at": "2026-01-01T00:02:00Z",
        "sla_breached": True,
    }


async def test_login_errors_are_explained(page: Page, console_only_server: str) -> None:
    answers = iter(
        [
            (401, {"detail": "wrong username or password"}, {}),
            (429, {"detail": "throttled"}, {"Retry-After": "300"}),
        ]
    )

    async def login(route: Route) -> None:
        status, body, headers = next(answers)
        await route.fulfill(status=status, json=body, headers=headers)

    await page.route("**/api/console/me", lambda route: route.fulfill(status=401, json={"detail": "no"}))
    await page.route("**/api/console/login", login)
    await _open_console(page, console_only_server)
    await page.locator("#login-form").get_by_label("用户名").fill("wang")
    await page.locator("#login-form").get_by_label("密码").fill("wrong")
    await page.locator("#login-submit").click()
    await expect(page.locator("#login-error")).to_have_text("用户名或密码错误")
    await page.locator("#login-submit").click()
    await expect(page.locator("#login-error")).to_contain_text("登录失败次数过多")
    await expect(page.locator("#login-error")).to_contain_text("5 分钟")
    await expect(page.locator("#login-error")).to_have_class("login-error throttled")


async def test_live_queue_claim_reply_and_reconnect_with_since(
    page: Page, page_problems: PageProblems, console_only_server: str
) -> None:
    """Events over the WebSocket update the queue; unsafe requests carry the CSRF token; a dropped
    socket reconnects with ?since=<last event id> and the queue is fetched again."""
    unsafe: list[tuple[str, str, str | None]] = []
    queue_fetches: list[int] = []
    sockets: list[WebSocketRoute] = []
    claimed = _item("assigned", {"id": 7, "display_name": "王护士"})
    colleague = {"kind": "agent", "id": 8, "display_name": "李晓燕"}

    async def api(route: Route, request: Request) -> None:
        path = request.url.split("/api/console", 1)[1].split("?")[0]
        if request.method not in ("GET", "HEAD"):
            unsafe.append((request.method, path, await request.header_value("x-csrf-token")))
        if path == "/me":
            await route.fulfill(json=ME)
        elif path == "/queues":
            queue_fetches.append(1)
            items = [claimed] if len(unsafe) else []
            await route.fulfill(json=[{"team": ME["teams"][0], "items": items}])
        elif path == "/canned-replies":
            await route.fulfill(json=[{"id": 1, "title": "问候", "text": "您好，我是王护士"}])
        elif path == "/complaints/scope":  # a nurse who is no department's complaint liaison
            await route.fulfill(json={"office": False, "liaison_of": []})
        elif path == "/escalations/41/claim":
            await route.fulfill(json=claimed)
        elif path == "/conversations/51":
            await route.fulfill(
                json={
                    "conversation": {"id": 51, "status": "escalated", "started_at": "2026-01-01T00:00:00Z"},
                    "escalation": claimed,
                    "messages": [
                        {
                            "id": 1,
                            "direction": "in",
                            "sender_type": "patient",
                            "msg_type": "text",
                            "content": XSS,
                            "created_at": "2026-01-01T00:00:00Z",
                            "delivery_status": "received",
                            "delivery_error": None,
                            "agent": None,
                        }
                    ],
                    "notes": [],
                    "patient": {
                        "id": 61,
                        "label": "张**",
                        "identities": [{"app_id": "wx1", "openid_masked": "oAb…xyz", "subscribed": True}],
                        "dependants": [],
                        "conversations": [],
                        "records": {"appointments": []},
                    },
                }
            )
        elif path == "/conversations/51/messages":
            body = json.loads(request.post_data or "{}")
            await route.fulfill(
                status=201,
                json={
                    "id": 2,
                    "direction": "out",
                    "sender_type": "agent",
                    "msg_type": "text",
                    "content": body["text"],
                    "created_at": "2026-01-01T00:01:00Z",
                    "delivery_status": "pending",
                    "delivery_error": None,
                    "agent": {"id": 7, "display_name": "王护士"},
                },
            )
        elif path == "/conversations/51/typing":
            await route.fulfill(status=204)
        else:
            await route.fulfill(status=404, json={"detail": "not found"})

    await page.route("**/api/console/**", api)

    def accept_socket(ws: WebSocketRoute) -> None:
        sockets.append(ws)  # not connected to any server: the test plays the server

    await page.route_web_socket("**/api/console/ws*", accept_socket)
    await page.goto(f"{console_only_server}/console")

    await expect(page.locator("#app")).to_be_visible()
    await expect(page.locator("#me-name")).to_have_text("王护士")
    await expect(page.locator("#conn")).to_have_attribute("data-state", "open")
    await expect(page.locator(".queue-empty")).to_be_visible()

    sockets[0].send(json.dumps({"id": "1-0", "type": "escalation.created", "escalation": _item()}))
    card = page.locator(".qitem[data-escalation-id='41']")
    await expect(card).to_contain_text("张** " + XSS)
    await expect(card.locator(".badge")).to_have_text("紧急")
    await expect(card.locator(".sla")).to_have_class("sla breached")
    await expect(card.locator(".wait")).to_have_text(re.compile(r"^等待 \d{2,}:\d{2}$"))

    await card.get_by_role("button", name="领取").click()
    await expect(page.locator("#conv-patient")).to_have_text("张**")
    await expect(page.locator("#messages .msg.patient .bubble")).to_have_text(XSS)
    await expect(page.locator("#conv-reason")).to_contain_text("患者要求人工服务")

    await page.locator("#reply").fill("您好，请问哪里不舒服？")
    await page.locator("#reply").press("Enter")
    await expect(page.locator(".msg.agent .bubble")).to_have_text("您好，请问哪里不舒服？")
    await expect(page.locator(".msg.agent .delivery")).to_have_text("发送中…")
    # The delivery result arrives later as a message event and updates the same bubble.
    sockets[0].send(
        json.dumps(
            {
                "id": "2-0",
                "type": "message.created",
                "conversation_id": 51,
                "message": {
                    "id": 2,
                    "direction": "out",
                    "sender_type": "agent",
                    "msg_type": "text",
                    "content": "您好，请问哪里不舒服？",
                    "created_at": "2026-01-01T00:01:00Z",
                    "delivery_status": "undeliverable",
                    "delivery_error": "45015 response out of time limit",
                    "agent": {"id": 7, "display_name": "王护士"},
                },
            }
        )
    )
    await expect(page.locator(".msg.agent .delivery")).to_contain_text("发送失败：45015")
    await expect(page.locator(".msg.agent")).to_have_count(1)

    sockets[0].send(
        json.dumps({"id": "3-0", "type": "typing", "conversation_id": 51, "who": {"kind": "patient"}})
    )
    await expect(page.locator("#typing")).to_have_text("患者正在输入…")
    for event_id, who in (("4-0", {"kind": "agent", "id": 7, "display_name": "王护士"}), ("5-0", colleague)):
        typing = {"id": event_id, "type": "typing", "conversation_id": 51, "team_id": 1, "who": who}
        sockets[0].send(json.dumps(typing))
    await expect(page.locator("#typing")).to_have_text("患者正在输入…  李晓燕 正在输入…")  # not my own
    sockets[0].send(json.dumps({"id": "6-0", "type": "ready"}))  # what the server sends after a replay

    fetches_before = len(queue_fetches)
    await sockets[0].close(code=1012)
    await expect(page.locator("#conn")).to_have_attribute("data-state", "closed")
    await expect(page.locator("#conn")).to_have_attribute("data-state", "open", timeout=5000)
    assert len(sockets) == 2
    assert sockets[1].url.endswith("/api/console/ws?since=6-0")
    # Reconnected, the page fetches the queue again (what it may have missed while closed).
    deadline = time.monotonic() + 5
    while len(queue_fetches) <= fetches_before:
        assert time.monotonic() < deadline, "the queue was not fetched again after reconnecting"
        await asyncio.sleep(0.05)

    methods = {(method, path) for method, path, _ in unsafe}
    assert ("POST", "/escalations/41/claim") in methods
    assert ("POST", "/conversations/51/messages") in methods
    assert all(token == ME["csrf_token"] for _, _, token in unsafe), unsafe
    assert await page.evaluate("window.__pwned") is None
    await _assert_clean(page, page_problems)


def _message(message_id: int, sender: str, content: str, at: str) -> dict[str, Any]:
    return {
        "id": message_id,
        "direction": "in" if sender == "patient" else "out",
        "sender_type": sender,
        "msg_type": "text",
        "content": content,
        "created_at": at,
        "delivery_status": "received" if sender == "patient" else "sent",
        "delivery_error": None,
        "agent": None,
    }


async def test_an_escalation_that_arrives_while_the_queue_is_fetched_stays_in_the_queue(
    page: Page, page_problems: PageProblems, console_only_server: str
) -> None:
    """The queue's answer was read before the event happened: it must not wipe the new card."""
    release = asyncio.Event()
    sockets: list[WebSocketRoute] = []

    async def api(route: Route, request: Request) -> None:
        path = request.url.split("/api/console", 1)[1].split("?")[0]
        if path == "/me":
            await route.fulfill(json=ME)
        elif path == "/queues":
            await release.wait()
            await route.fulfill(json=[{"team": ME["teams"][0], "items": []}])
        else:
            await route.fulfill(json=[])

    def accept_socket(ws: WebSocketRoute) -> None:
        sockets.append(ws)

    await page.route("**/api/console/**", api)
    await page.route_web_socket("**/api/console/ws*", accept_socket)
    await page.goto(f"{console_only_server}/console")
    await expect(page.locator("#conn")).to_have_attribute("data-state", "open")

    sockets[0].send(json.dumps({"id": "1-0", "type": "escalation.created", "escalation": _item()}))
    card = page.locator(".qitem[data-escalation-id='41']")
    await expect(card).to_be_visible()
    release.set()
    await expect(page.locator("#queue-list")).to_have_attribute("data-loaded-at", re.compile(r"\d+"))
    await expect(card).to_be_visible()
    await expect(page.locator(".queue-tab[data-tab='all'] .count")).to_have_text("1")
    await _assert_clean(page, page_problems)


async def test_history_keeps_the_servers_order_though_patient_times_are_whole_seconds(
    page: Page, page_problems: PageProblems, console_only_server: str
) -> None:
    """WeChat stamps a patient's message with a whole second, so it can carry an earlier time than the
    bot's answer to the message before it. The page shows what the server says happened, in id order."""
    claimed = _item("assigned", {"id": 7, "display_name": "王护士"})
    view = {
        "conversation": {"id": 51, "status": "escalated", "started_at": "2026-01-01T00:00:00Z"},
        "escalation": claimed,
        "messages": [
            _message(1, "patient", "你好", "2026-01-01T00:00:05Z"),
            _message(2, "bot", "您好！请问有什么可以帮您？", "2026-01-01T00:00:05.600Z"),
            _message(3, "patient", "我想找护士", "2026-01-01T00:00:05Z"),
            _message(4, "system", "已为您转接人工服务", "2026-01-01T00:00:05.900Z"),
        ],
        "notes": [
            {
                "id": 1,
                "text": "备注",
                "author": {"id": 7, "display_name": "王护士"},
                "created_at": "2026-01-01T00:00:06Z",
            }
        ],
        "patient": {
            "id": 61,
            "label": "张**",
            "identities": [],
            "dependants": [],
            "conversations": [],
            "records": {"appointments": []},
        },
    }
    sockets: list[WebSocketRoute] = []

    async def api(route: Route, request: Request) -> None:
        path = request.url.split("/api/console", 1)[1].split("?")[0]
        if path == "/me":
            await route.fulfill(json=ME)
        elif path == "/queues":
            await route.fulfill(json=[{"team": ME["teams"][0], "items": [claimed]}])
        elif path == "/conversations/51":
            await route.fulfill(json=view)
        else:
            await route.fulfill(status=404, json={"detail": "not found"})

    await page.route("**/api/console/**", api)
    await page.route_web_socket("**/api/console/ws*", lambda ws: sockets.append(ws))
    await page.goto(f"{console_only_server}/console")
    await page.locator(".qitem[data-escalation-id='41']").click()
    await expect(page.locator("#messages .msg")).to_have_count(4)

    # A live message from the patient, stamped with the same whole second, goes after the others.
    live = _message(5, "patient", "伤口有点红", "2026-01-01T00:00:05Z")
    sockets[0].send(
        json.dumps({"id": "1-0", "type": "message.created", "conversation_id": 51, "message": live})
    )
    await expect(page.locator("#messages .msg")).to_have_count(5)
    texts = await page.locator("#messages .msg .bubble, #messages .note .text").all_inner_texts()
    assert texts == [
        "你好",
        "您好！请问有什么可以帮您？",
        "我想找护士",
        "已为您转接人工服务",
        "伤口有点红",
        "备注",  # written at 00:00:06, after all of the above
    ]
    await _assert_clean(page, page_problems)


async def test_an_admin_creates_staff_and_teams_and_is_told_what_happened(
    page: Page, page_problems: PageProblems, console_only_server: str
) -> None:
    admin = {**ME, "id": 1, "username": "admin", "display_name": "管理员", "role": "admin"}
    created: list[dict[str, Any]] = []

    async def api(route: Route, request: Request) -> None:
        path = request.url.split("/api/console", 1)[1].split("?")[0]
        if path == "/me":
            await route.fulfill(json=admin)
        elif path == "/admin/teams" and request.method == "POST":
            name = json.loads(request.post_data or "{}")["name"]
            if name == "护理咨询":
                await route.fulfill(status=409, json={"detail": "team name already exists"})
            else:
                await route.fulfill(json={"id": 2, "name": name, "members": []})
        elif path == "/admin/teams":
            await route.fulfill(json=[{"id": 1, "name": "护理咨询", "members": []}])
        elif path == "/admin/staff" and request.method == "POST":
            created.append(json.loads(request.post_data or "{}"))
            await route.fulfill(
                json={**created[-1], "id": 9, "active": True, "presence": "offline", "teams": []}
            )
        elif path == "/queues":
            await route.fulfill(json=[])
        else:
            await route.fulfill(json=[])

    await page.route("**/api/console/**", api)
    await page.goto(f"{console_only_server}/console")
    await page.locator("#tab-staff").click()

    form = page.locator("#staff-form")
    await form.get_by_label("用户名").fill("li")
    await form.get_by_label("姓名").fill("李晓燕")
    await form.get_by_label("初始密码").fill("a-long-password")
    await form.get_by_label("护理咨询").check()
    await form.get_by_role("button", name="创建").click()
    await expect(page.locator("#staff-form-msg")).to_have_text("已创建：李晓燕")
    await expect(page.locator("#staff-form-msg")).to_have_class("form-msg ok")
    assert created[0]["team_ids"] == [1]

    teams = page.locator("#team-form")
    await teams.get_by_label("新团队名称").fill("护理咨询")
    await teams.get_by_role("button", name="创建团队").click()
    await expect(page.locator("#team-form-msg")).to_have_class("form-msg error")
    await teams.get_by_label("新团队名称").fill("药学咨询")
    await teams.get_by_role("button", name="创建团队").click()
    await expect(page.locator("#team-form-msg")).to_have_text("已创建团队：药学咨询")
    await expect(page.locator("#team-form-msg")).to_have_class("form-msg ok")
    await _assert_clean(page, page_problems)


async def test_audit_view_shows_the_anchor_and_a_verification_result(
    page: Page, page_problems: PageProblems, console_only_server: str
) -> None:
    anchor = {"entry_id": 812, "entry_hash": "ab" * 32, "at": "2026-12-05T01:02:03Z"}
    verifications: list[str] = []

    async def api(route: Route, request: Request) -> None:
        path = request.url.split("/api/console", 1)[1].split("?")[0]
        if path == "/me":
            await route.fulfill(json={**ME, "role": "supervisor"})
        elif path == "/queues":
            await route.fulfill(json=[])
        elif path == "/audit":
            await route.fulfill(json=[])
        elif path == "/audit/anchor":
            await route.fulfill(json=anchor)
        elif path == "/audit/verify":
            verifications.append(request.url)
            broken = {"entry_id": 57, "problem": "content_changed", "message": "changed"}
            await route.fulfill(
                json={
                    "ok": False,
                    "checked": 56,
                    "last_id": 56,
                    "last_hash": "cd" * 32,
                    "anchor": None,
                    "broken": broken,
                }
            )
        else:
            await route.fulfill(status=404, json={"detail": "not found"})

    await page.route("**/api/console/**", api)
    await page.route_web_socket("**/api/console/ws*", lambda ws: None)
    await page.goto(f"{console_only_server}/console")
    await expect(page.locator("#app")).to_be_visible()
    await page.locator("#tab-audit").click()
    await expect(page.locator("#audit-anchor-value")).to_contain_text(f"#812 {'ab' * 32}")
    await page.locator("#audit-verify").click()
    await expect(page.locator("#audit-verify-result")).to_have_text("已被篡改，条目 #57：条目内容被改动")
    assert len(verifications) == 1
    await _assert_clean(page, page_problems)
