"""Times in the console are the hospital's (Asia/Shanghai) with their day, on a computer set to
another zone; supervisors get the service report table and its CSV download, agents do not.
The API is played by browser-side routes, as in test_console_page.py."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import pytest
from fastapi import FastAPI, Query, Response
from playwright.async_api import Browser, Page, Request, Route, expect

from crm_backend.console.views import router as console_router
from crm_backend.escalations.report import ServiceReport
from crm_backend.escalations.report_csv import csv_filename, service_report_csv
from tests.browser.conftest import VIEWPORT, PageProblems, serving

SHANGHAI = ZoneInfo("Asia/Shanghai")
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
SUPERVISOR = {**ME, "id": 9, "display_name": "赵主管", "role": "supervisor"}


@pytest.fixture
async def new_york_page(browser: Browser) -> AsyncIterator[Page]:
    """A staff computer whose clock is set to New York (13 hours behind the hospital in winter)."""
    context = await browser.new_context(viewport=VIEWPORT, locale="zh-CN", timezone_id="America/New_York")
    page = await context.new_page()
    yield page
    await context.close()


def _hospital(day: date, hour: int, minute: int) -> str:
    return datetime.combine(day, time(hour, minute), tzinfo=SHANGHAI).astimezone(UTC).isoformat()


def _message(message_id: int, at: str, content: str) -> dict[str, Any]:
    return {
        "id": message_id,
        "direction": "in",
        "sender_type": "patient",
        "msg_type": "text",
        "content": content,
        "created_at": at,
        "delivery_status": "received",
        "delivery_error": None,
        "agent": None,
    }


async def _serve(page: Page, answers: dict[str, Any], me: dict[str, Any]) -> list[str]:
    """Routes /api/console/<path> to answers[path]; returns the list of paths+queries asked for."""
    asked: list[str] = []

    async def api(route: Route, request: Request) -> None:
        rest = request.url.split("/api/console", 1)[1]
        asked.append(rest)
        path = rest.split("?")[0]
        if path.endswith(".csv"):
            await route.continue_()  # a download: the server answers it
        elif path == "/me":
            await route.fulfill(json=me)
        elif path in answers:
            await route.fulfill(json=answers[path])
        else:
            await route.fulfill(status=404, json={"detail": "not found"})

    await page.route("**/api/console/**", api)
    await page.route_web_socket("**/api/console/ws*", lambda ws: None)
    return asked


async def test_queue_and_message_times_are_hospital_time_with_the_day(
    new_york_page: Page, console_only_server: str
) -> None:
    page = new_york_page
    problems = PageProblems()
    page.on("pageerror", lambda error: problems.errors.append(str(error)))
    today = datetime.now(SHANGHAI).date()
    yesterday = today - timedelta(days=1)
    older = today - timedelta(days=40)
    last_year = date(today.year - 1, 1, 15)
    older_label = (
        f"{older.month}月{older.day}日"
        if older.year == today.year
        else (f"{older.year}年{older.month}月{older.day}日")
    )
    item = {
        "escalation_id": 41,
        "conversation_id": 51,
        "patient": {"id": 61, "label": "张**"},
        "reason": "患者要求人工服务",
        "priority": "normal",
        "team": ME["teams"][0],
        "status": "queued",
        "assigned_to": None,
        "created_at": _hospital(today, 3, 25),
        "waiting_seconds": 0,
        "first_response_at": None,
        "sla_due_at": _hospital(today + timedelta(days=1), 8, 15),
        "sla_breached": False,
        "satisfaction": None,
    }
    messages = [
        _message(1, _hospital(last_year, 9, 0), "去年的问题"),
        _message(2, _hospital(older, 9, 0), "上个月的问题"),
        _message(3, _hospital(yesterday, 22, 10), "昨晚的问题"),
        _message(4, _hospital(today, 0, 5), "今天凌晨的问题"),
    ]
    await _serve(
        page,
        {
            "/queues": [{"team": ME["teams"][0], "items": [item]}],
            "/canned-replies": [],
            "/directory": {"teams": ME["teams"], "staff": []},
            "/conversations/51": {
                "conversation": {"id": 51, "status": "escalated", "started_at": messages[0]["created_at"]},
                "escalation": item,
                "messages": messages,
                "notes": [],
                "patient": {
                    "id": 61,
                    "label": "张**",
                    "identities": [],
                    "dependants": [],
                    "conversations": [],
                    "records": {"appointments": []},
                },
            },
        },
        ME,
    )
    await page.goto(f"{console_only_server}/console")
    card = page.locator(".qitem[data-escalation-id='41']")
    # Tomorrow 08:15 in Shanghai is tomorrow 19:15 in New York: the hospital's is shown.
    await expect(card.locator(".sla")).to_have_text("SLA 明天 08:15 到期")
    await expect(card).to_have_attribute("title", "转入 今天 03:25")

    await card.click()
    times = page.locator("#messages .msg .time")
    await expect(times).to_have_text(
        [f"{last_year.year}年1月15日 09:00", f"{older_label} 09:00", "昨天 22:10", "今天 00:05"]
    )
    await expect(page.locator("#messages .day")).to_have_text(
        [f"{last_year.year}年1月15日", older_label, "昨天", "今天"]
    )
    await expect(page.locator("#conv-reason")).to_contain_text("今天 03:25 转入")
    assert problems.errors == []


REPORT = {
    "date_from": "2026-10-12",
    "date_to": "2026-10-18",
    "time_zone": "Asia/Shanghai",
    "time_basis": "staffed",
    "total": {
        "escalations": 4,
        "responded": 3,
        "resolved": 3,
        "sla_breached": 2,
        "rated": 3,
        "csat_average": 4.0,
        "csat_satisfied_share": 0.667,
        "response_seconds_average": 640,
        "resolution_seconds_average": 2000,
    },
    "teams": [
        {
            "team": {"id": 1, "name": "护理咨询"},
            "escalations": 4,
            "responded": 3,
            "resolved": 3,
            "sla_breached": 2,
            "rated": 3,
            "csat_average": 4.0,
            "csat_satisfied_share": 0.667,
            "response_seconds_average": 640,
            "resolution_seconds_average": 2000,
        }
    ],
    "agents": [
        {
            "agent": {"id": 7, "display_name": "<b>王护士</b>"},
            "teams": [{"id": 1, "name": "护理咨询"}],
            "escalations": 3,
            "responded": 3,
            "resolved": 3,
            "sla_breached": 1,
            "rated": 3,
            "csat_average": 4.0,
            "csat_satisfied_share": 0.667,
            "response_seconds_average": 640,
            "resolution_seconds_average": 2000,
        }
    ],
}


@pytest.fixture(scope="module")
def report_server() -> Iterator[str]:
    """The console page plus a CSV download that answers as the real endpoint does, from REPORT
    (Chromium does not let a test route fulfil a download, so a server must)."""
    app = FastAPI()
    app.include_router(console_router)

    @app.get("/api/console/reports/service.csv")
    def csv_download(
        date_from: Annotated[date, Query(alias="from")], date_to: Annotated[date, Query(alias="to")]
    ):
        report = ServiceReport.model_validate({**REPORT, "date_from": date_from, "date_to": date_to})
        return Response(
            service_report_csv(report),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{csv_filename(report)}"'},
        )

    with serving(app, "report-server") as url:
        yield url


async def test_supervisor_sees_the_report_table_and_downloads_the_csv(
    page: Page, page_problems: PageProblems, report_server: str
) -> None:
    await _serve(
        page,
        {
            "/queues": [],
            "/canned-replies": [],
            "/directory": {"teams": [], "staff": []},
            "/reports/service": REPORT,
        },
        SUPERVISOR,
    )
    await page.goto(f"{report_server}/console")
    await page.locator("#tab-report").click()
    await expect(page.locator("#report-view")).to_be_visible()
    rows = page.locator("#report-table tbody tr")
    await expect(rows).to_have_count(3)
    await expect(rows.nth(0)).to_contain_text("合计")
    await expect(rows.nth(0).locator("td")).to_have_text(
        ["合计", "", "", "4", "3", "3", "2", "3", "4.00", "66.7%", "10 分 40 秒", "33 分 20 秒"]
    )
    await expect(rows.nth(1).locator("td").nth(1)).to_have_text("护理咨询")
    await expect(rows.nth(2).locator("td").nth(2)).to_have_text("<b>王护士</b>")  # text, never markup

    # A new range: the table and the download link both follow it.
    await page.locator("#report-form input[name='from']").fill("2026-10-12")
    await page.locator("#report-form input[name='to']").fill("2026-10-18")
    async with page.expect_request("**/reports/service?from=2026-10-12&to=2026-10-18"):
        await page.locator("#report-form button[type='submit']").click()
    link = page.locator("#report-csv")
    await expect(link).to_have_attribute(
        "href", "/api/console/reports/service.csv?from=2026-10-12&to=2026-10-18"
    )
    async with page.expect_download() as download_info:
        await link.click()
    download = await download_info.value
    assert await download.failure() is None
    assert download.suggested_filename == "service-report_2026-10-12_2026-10-18.csv"
    content = (await download.path()).read_bytes()
    assert content.startswith("\ufeff范围,团队,坐席".encode())
    assert "坐席,护理咨询,<b>王护士</b>,3,3,3,1,3,4.00,66.7%,10.7,33.3" in content.decode("utf-8")
    assert page_problems.errors == []
    assert await page_problems.csp_violations(page) == []


async def test_agents_have_no_report_view(page: Page, console_only_server: str) -> None:
    asked = await _serve(
        page, {"/queues": [], "/canned-replies": [], "/directory": {"teams": [], "staff": []}}, ME
    )
    await page.goto(f"{console_only_server}/console")
    await expect(page.locator("#me-name")).to_have_text("王护士")
    await expect(page.locator("#tab-report")).to_be_hidden()
    await page.evaluate("document.querySelector('#tab-report').click()")  # even forced, nothing opens
    await expect(page.locator("#workspace")).to_be_visible()
    await expect(page.locator("#report-view")).to_be_hidden()
    assert not any(path.startswith("/reports") for path in asked)
    assert "/queues" in asked  # the page did talk to the API, just not about reports
