"""Browser fixtures: Debian's Chromium driven by Playwright (no downloaded browser builds).

`browser` is one Chromium for the whole session; `page` is a fresh context (cookies, storage) per
test at the console's design size, 1366x768. `page_problems` collects what must never happen on our
pages: uncaught errors and Content-Security-Policy violations. `console_only_server` serves the
console page alone (no database, no API) for tests of the page itself; `serving` runs any app
(the whole web app on a test database, say) for the length of a block.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from playwright.async_api import Browser, Page, async_playwright, expect

from crm_backend.console.views import router as console_router
from tests.support.api import ADMIN_PASSWORD, ADMIN_USERNAME
from tests.support.stack import free_port

#: Debian's package; `playwright install` cannot download browsers here, and needs not.
CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1366, "height": 768}
expect.set_options(timeout=10_000)

#: Runs before any page script; records CSP violations where tests can read them.
_WATCH_CSP = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(e.violatedDirective + " " + (e.blockedURI || "") + " " + (e.sample || ""));
});
"""


@dataclass
class PageProblems:
    errors: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)

    async def csp_violations(self, page: Page) -> list[str]:
        return await page.evaluate("window.__cspViolations || []")


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    if not os.path.exists(CHROMIUM):  # noqa: ASYNC240 (once per session, before any browser)
        pytest.fail(f"Chromium not found at {CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_PATH)")
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        await chromium.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport=VIEWPORT, locale="zh-CN", timezone_id="Asia/Shanghai")
    context.set_default_timeout(10_000)
    await context.add_init_script(_WATCH_CSP)
    new_page = await context.new_page()
    yield new_page
    await context.close()


@pytest.fixture
def page_problems(page: Page) -> PageProblems:
    problems = PageProblems()
    page.on("pageerror", lambda error: problems.errors.append(str(error)))
    page.on(
        "console",
        lambda message: problems.console_errors.append(message.text) if message.type == "error" else None,
    )
    return problems


class _ThreadedServer(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # the test process keeps its own handlers
        pass


@contextmanager
def serving(app: FastAPI, name: str) -> Iterator[str]:
    """`app` on a free port, in a thread of its own, until the block ends; yields its base URL."""
    port = free_port()
    server = _ThreadedServer(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name=name, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"{name} did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture(scope="session")
def console_only_server() -> Iterator[str]:
    """The console router alone in a FastAPI app on a free port; yields its base URL."""
    app = FastAPI()
    app.include_router(console_router)
    with serving(app, "console-only-server") as url:
        yield url


# -- the real console: staff and signing in ------------------------------------------------------------

#: The password of every staff member the browser tests create.
STAFF_PASSWORD = "staff-password-123"


@asynccontextmanager
async def admin_api(url: str) -> AsyncIterator[httpx.AsyncClient]:
    """The console API as the first admin (signed in, CSRF header set)."""
    async with httpx.AsyncClient(base_url=url) as admin:
        me = await admin.post(
            "/api/console/login", json={"username": ADMIN_USERNAME, "password": ADMIN_PASSWORD}
        )
        me.raise_for_status()
        admin.headers["X-CSRF-Token"] = me.json()["csrf_token"]
        yield admin


async def add_staff(admin: httpx.AsyncClient, username: str, name: str, role: str, teams: list[int]) -> int:
    """A staff member with STAFF_PASSWORD; answers their id."""
    created = await admin.post(
        "/api/console/admin/staff",
        json={"username": username, "display_name": name, "password": STAFF_PASSWORD, "role": role,
              "capacity": 5, "team_ids": teams},
    )  # fmt: skip
    created.raise_for_status()
    return created.json()["id"]


async def log_in(page: Page, url: str, username: str, name: str) -> None:
    """Signs in on the console page as a staff member made by add_staff; waits for their name."""
    await page.goto(f"{url}/console")
    await page.locator("#login-form").get_by_label("用户名").fill(username)
    await page.locator("#login-form").get_by_label("密码").fill(STAFF_PASSWORD)
    await page.locator("#login-submit").click()
    await expect(page.locator("#me-name")).to_have_text(name)
