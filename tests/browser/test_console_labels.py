"""Labels and conversation search in the console, in Chromium, against the real web process (its
database and Redis; no Rasa needed: the chats are stored escalated). Two agents of one team: what
one does with labels reaches the other's console live."""

from __future__ import annotations

import itertools
import os
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import redis
from playwright.async_api import Browser, Page, expect

from crm_backend.conversations.models import Conversation, Direction, Message, SenderType
from crm_backend.database.core import Database
from crm_backend.escalations.models import Escalation
from crm_backend.patients.models import Patient, WeChatIdentity
from tests.browser.conftest import VIEWPORT, PageProblems
from tests.support.api import login
from tests.support.stack import ROOT, Process, base_env, free_port, wait_until, web_argv

ADMIN = ("admin", "admin-pass-123")
REDIS_URL = os.environ.get("TEST_REDIS_BASE", "redis://127.0.0.1:6379") + "/7"
LIVE = 10_000  # ms
_serial = itertools.count(1)


@dataclass
class Web:
    url: str
    database_url: str


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Web]:
    redis.Redis.from_url(REDIS_URL).flushdb()
    database_url = f"sqlite+aiosqlite:///{Path(tmp_path_factory.mktemp('labels-web')) / 'carebridge.db'}"
    port = free_port()
    env = base_env(
        DATABASE_URL=database_url,
        REDIS_URL=REDIS_URL,
        ADMIN_USERNAME=ADMIN[0],
        ADMIN_PASSWORD=ADMIN[1],
        PORT=str(port),
        WECHAT_API_BASE=f"http://127.0.0.1:{port}",
    )
    alembic = str(ROOT / ".venv" / "bin" / "alembic")
    subprocess.run(
        [alembic, "-c", "crm_backend/alembic.ini", "upgrade", "head"], cwd=ROOT, env=env, check=True
    )
    process = Process("web-labels", web_argv(port), env).start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: httpx.get(f"{url}/healthz", timeout=5).status_code in (200, 503), 60, "web app")
        yield Web(url, database_url)
    finally:
        process.stop()


async def _team_with_agents(web: Web, count: int) -> tuple[int, list[tuple[str, str]]]:
    async with httpx.AsyncClient(base_url=web.url) as admin:
        await login(admin, *ADMIN)
        team = await admin.post("/api/console/admin/teams", json={"name": f"标签组{next(_serial)}"})
        team_id = team.json()["id"]
        agents = []
        for _ in range(count):
            username = f"agent{next(_serial)}"
            answer = await admin.post(
                "/api/console/admin/staff",
                json={
                    "username": username,
                    "display_name": f"客服{username}",
                    "password": f"{username}-secret-pw",
                    "role": "agent",
                    "capacity": 3,
                    "team_ids": [team_id],
                },
            )
            assert answer.status_code == 200, answer.text
            agents.append((username, f"{username}-secret-pw"))
        return team_id, agents


async def _chat(web: Web, team_id: int, name: str, text: str) -> int:
    """A patient's conversation with one message, escalated to the team and waiting."""
    database = Database(web.database_url)
    try:
        async with database.sessions() as session:
            patient = Patient(display_name=name)
            session.add(patient)
            await session.flush()
            identity = WeChatIdentity(
                app_id="wx_test", openid=f"openid-web-{next(_serial):06d}", patient_id=patient.id
            )
            session.add(identity)
            await session.flush()
            conversation = Conversation(patient_id=patient.id, identity_id=identity.id, status="escalated")
            session.add(conversation)
            await session.flush()
            session.add(
                Message(
                    conversation_id=conversation.id,
                    direction=Direction.IN,
                    sender_type=SenderType.PATIENT,
                    content=text,
                    delivery_status="received",
                )
            )
            session.add(
                Escalation(
                    conversation_id=conversation.id,
                    team_id=team_id,
                    reason="test",
                    sla_due_at=datetime.now(UTC),
                )
            )
            await session.commit()
            return conversation.id
    finally:
        await database.dispose()


async def _log_in(page: Page, web: Web, username: str, password: str) -> None:
    await page.goto(f"{web.url}/console")
    form = page.locator("#login-form")
    await form.get_by_label("用户名").fill(username)
    await form.get_by_label("密码").fill(password)
    await page.locator("#login-submit").click()
    await expect(page.locator("#conn")).to_have_attribute("data-state", "open", timeout=LIVE)
    await expect(page.locator("#queue-list[data-loaded-at]")).to_have_count(1)


@pytest.fixture
async def second_page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport=VIEWPORT, locale="zh-CN", timezone_id="Asia/Shanghai")
    yield await context.new_page()
    await context.close()


async def test_labels_are_added_filtered_and_removed_live_across_consoles(
    web: Web, page: Page, second_page: Page, page_problems: PageProblems
) -> None:
    team_id, [(first, first_pw), (second, second_pw)] = await _team_with_agents(web, 2)
    labelled = await _chat(web, team_id, "赵丽", "请问复查需要预约吗")
    other = await _chat(web, team_id, "钱程", "药什么时候吃")
    label = f"复诊{next(_serial)}"
    await _log_in(page, web, first, first_pw)
    await _log_in(second_page, web, second, second_pw)

    # The first agent opens a chat and gives it a new label.
    await page.locator(f".qitem[data-conversation-id='{labelled}']").click()
    await expect(page.locator("#conv-body")).to_be_visible()
    await page.locator("#label-input").fill(label)
    await page.locator("#label-input").press("Enter")
    await expect(page.locator("#conv-labels .label-chip")).to_have_text([label + "×"])
    await expect(page.locator(f".qitem[data-conversation-id='{labelled}'] .label-chip")).to_have_text([label])

    # The second agent's queue shows it without a reload, and filters by it.
    second_card = second_page.locator(f".qitem[data-conversation-id='{labelled}'] .label-chip")
    await expect(second_card).to_have_text([label], timeout=LIVE)
    await second_page.locator("#label-filter").select_option(label=label)
    await expect(second_page.locator(f".qitem[data-conversation-id='{labelled}']")).to_have_count(1)
    await expect(second_page.locator(f".qitem[data-conversation-id='{other}']")).to_have_count(0)
    await second_page.locator("#label-filter").select_option(value="")
    await expect(second_page.locator(f".qitem[data-conversation-id='{other}']")).to_have_count(1)

    # The same name in full-width digits is refused by the server with a message; nothing is added.
    await page.locator("#label-input").fill(
        label.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    )
    await page.locator("#label-input").press("Enter")
    await expect(page.locator(".toast.error", has_text="已有同名标签")).to_be_visible()
    await expect(page.locator("#conv-labels .label-chip")).to_have_count(1)
    await expect(second_page.locator("#label-filter option")).to_have_count(2)  # 全部标签 and ours
    # The field takes no more than a label's 16 characters.
    await page.locator("#label-input").fill("一二三四五六七八九十一二三四五六七")
    await expect(page.locator("#label-input")).to_have_value("一二三四五六七八九十一二三四五六")

    # Taking it off reaches the other console too.
    await page.get_by_role("button", name=f"移除标签 {label}").click()
    await expect(page.locator("#conv-labels .label-chip")).to_have_count(0)
    await expect(second_card).to_have_count(0, timeout=LIVE)

    assert page_problems.errors == []
    assert await page_problems.csp_violations(page) == []


async def test_search_finds_words_in_the_teams_chats_and_opens_the_chat(
    web: Web, page: Page, page_problems: PageProblems
) -> None:
    team_id, [(agent, password)] = await _team_with_agents(web, 1)
    other_team, _ = await _team_with_agents(web, 0)
    word = f"布洛芬{next(_serial)}"
    mine = await _chat(web, team_id, "孙悦", f"孩子发烧能吃{word}吗？已经烧了两天了")
    await _chat(web, other_team, "李雷", f"{word}怎么买")
    await _log_in(page, web, agent, password)

    await page.locator("#conv-search-q").fill(word)
    await page.locator("#conv-search-q").press("Enter")
    dialog = page.locator("#search-dialog")
    await expect(dialog).to_be_visible()
    hits = dialog.locator(".search-hit")
    await expect(hits).to_have_count(1)  # the other team's chat is not found
    await expect(hits.locator("mark")).to_have_text(word)
    await expect(hits.first).to_contain_text("孙悦")
    await expect(hits.first).to_contain_text("孩子发烧能吃")

    await hits.first.click()
    await expect(dialog).to_be_hidden()
    await expect(page.locator("#conv-patient")).to_have_text("孙悦")
    assert await page.locator(".qitem.selected").get_attribute("data-conversation-id") == str(mine)

    assert page_problems.errors == []
    assert await page_problems.csp_violations(page) == []
