"""Browser fixtures: Debian's Chromium driven by Playwright (no downloaded browser builds).

`browser` is one Chromium for the whole session; `page` is a fresh context (cookies, storage) per
test at the console's design size, 1366x768. `page_problems` collects what must never happen on our
pages: uncaught errors and Content-Security-Policy violations. `console_only_server` serves the
console page alone (no database, no API) for tests of the page itself.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import pytest
import uvicorn
from fastapi import FastAPI
from playwright.async_api import Browser, Page, async_playwright, expect

from crm_backend.console.views import router as console_router
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


@pytest.fixture(scope="session")
def console_only_server() -> Iterator[str]:
    """The console router alone in a FastAPI app on a free port; yields its base URL."""
    app = FastAPI()
    app.include_router(console_router)
    port = free_port()
    server = _ThreadedServer(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="console-only-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the console-only server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)
