"""End to end through a real browser: a patient asks for a person on WeChat, the escalation appears
live in the console, a staff member claims it, replies (the patient receives it through the fake
WeChat API), writes an internal note (the patient never sees it) and resolves the chat (the patient
is asked for a rating). Runs against the whole stack (web app, worker, Rasa, fake WeChat), twice:
SQLite and PostgreSQL. The stack's environment must carry ADMIN_USERNAME / ADMIN_PASSWORD below.
"""

from __future__ import annotations

import os
import re

from playwright.async_api import Locator, Page, expect

from crm_backend.database.core import Database
from tests.browser.conftest import PageProblems
from tests.e2e.test_handoff import _conversation_id
from tests.support.stack import Stack

ADMIN_USERNAME = os.environ.get("TEST_CONSOLE_ADMIN_USERNAME", "admin")
ADMIN_PASSWORD = os.environ.get("TEST_CONSOLE_ADMIN_PASSWORD", "admin-pass-123")
#: In training_data/handoff/nlu.yml (intent request_human).
ASK_FOR_A_PERSON = "转人工客服"
LIVE = 20_000  # ms: an event crosses webhook -> worker -> Redis Stream -> web process -> WebSocket


async def _log_in(page: Page, stack: Stack) -> None:
    await page.goto(f"{stack.url}/console")
    login = page.locator("#login-form")
    await expect(login).to_be_visible()
    await login.get_by_label("用户名").fill(ADMIN_USERNAME)
    await login.get_by_label("密码").fill(ADMIN_PASSWORD)
    await page.locator("#login-submit").click()
    await expect(page.locator("#app")).to_be_visible()
    await expect(page.locator("#me-role")).to_contain_text("管理员")
    await expect(page.locator("#conn")).to_have_attribute("data-state", "open", timeout=LIVE)
    await expect(page.locator("#queue-list[data-loaded-at]")).to_have_count(1)


async def _said_and_queued(stack: Stack, db: Database, page: Page, text: str) -> tuple[list[str], Locator]:
    """A new patient says `text` while the console is open; their answers and the queue item the
    chat became, once it is visible."""
    openid = await stack.consented_patient()
    await _log_in(page, stack)
    answers = await stack.converse(openid, text)
    item = page.locator(f".qitem[data-conversation-id='{await _conversation_id(db, openid)}']")
    await expect(item).to_be_visible(timeout=LIVE)
    return answers, item


async def test_escalation_appears_live_is_answered_noted_and_resolved(
    stack: Stack, page: Page, page_problems: PageProblems
) -> None:
    openid = await stack.consented_patient()
    await _log_in(page, stack)
    known = set(await page.locator(".qitem").evaluate_all("nodes => nodes.map(n => n.dataset.escalationId)"))

    # The patient asks for a person; nobody reloads the console.
    before = len(await stack.wait_answers(openid, 0))
    await stack.say(openid, ASK_FOR_A_PERSON)
    await stack.wait_answers(openid, before + 1)  # the patient is told someone will come
    item = None
    for _ in range(LIVE // 250):
        ids = await page.locator(".qitem").evaluate_all("nodes => nodes.map(n => n.dataset.escalationId)")
        fresh = [i for i in ids if i not in known]
        if fresh:
            item = page.locator(f".qitem[data-escalation-id='{fresh[0]}']")
            break
        await page.wait_for_timeout(250)
    assert item is not None, "the escalation did not appear in the console without a reload"
    await expect(item.locator(".badge")).to_have_text(re.compile("^(紧急|高|普通)$"))
    await expect(item.locator(".wait")).to_have_text(re.compile(r"^等待 \d{2,}:\d{2}$"))
    await expect(item.locator(".qitem-agent")).to_contain_text("未分配")

    # Claim: the conversation opens with the whole history, bot turns included.
    await item.get_by_role("button", name="领取").click()
    await expect(page.locator("#conv-body")).to_be_visible()
    await expect(page.locator("#conv-status")).to_have_text("处理中")
    await expect(page.locator("#conv-reason")).to_be_visible()
    await expect(page.locator("#messages .msg.patient .bubble", has_text=ASK_FOR_A_PERSON)).to_have_count(1)
    await expect(page.locator("#messages .msg.bot, #messages .msg.system").first).to_be_visible()
    await expect(item.locator(".qitem-agent")).to_contain_text("我")

    # Reply: Enter sends; the patient receives it through the (fake) WeChat API.
    answers_before = len(await stack.wait_answers(openid, 0))
    reply = "您好，我是人工客服，请问有什么可以帮您？"
    await page.locator("#reply").fill(reply)
    await page.locator("#reply").press("Enter")
    mine = page.locator("#messages .msg.agent", has_text=reply)
    await expect(mine).to_have_count(1)
    await expect(mine.locator(".delivery")).to_have_text("已发送", timeout=LIVE)
    answers = await stack.wait_answers(openid, answers_before + 1)
    assert reply in answers[answers_before:]

    # The patient answers; it shows up live in the open conversation.
    await stack.say(openid, "我想问一下明天的门诊几点开始")
    await expect(
        page.locator("#messages .msg.patient .bubble", has_text="我想问一下明天的门诊几点开始")
    ).to_be_visible(timeout=LIVE)

    # An internal note is shown to staff (yellow) and never sent to the patient.
    note = "内部备注：患者问门诊时间，已核实"
    await page.locator(".composer .mode[data-mode='note']").click()
    await expect(page.locator("#composer")).to_have_class(re.compile(r"\bnote-mode\b"))
    await page.locator("#reply").fill(note)
    await page.locator("#reply").press("Enter")
    await expect(page.locator("#messages .note .text", has_text=note)).to_have_count(1)
    await page.locator(".composer .mode[data-mode='reply']").click()

    # Resolve: the queue item goes away and the bot asks the patient for a rating.
    answers_before = len(await stack.wait_answers(openid, 0))
    await page.locator("#conv-resolve").click()
    await page.locator("#confirm-ok").click()
    await expect(page.locator("#conv-status")).to_have_text("已解决")
    await expect(item).to_have_count(0, timeout=LIVE)
    answers = await stack.wait_answers(openid, answers_before + 1)
    assert all(note not in text for text in answers)
    after_resolve = answers[answers_before:]
    assert any(re.search(r"[1１].*[5５]", text) for text in after_resolve), after_resolve

    # The bot has the chat again: the patient's next message gets the bot's answer.
    next_answers = await stack.converse(openid, "你好")
    assert any("挂号" in text for text in next_answers), next_answers

    assert page_problems.errors == []
    assert await page_problems.csp_violations(page) == []


async def test_an_emergency_appears_urgent_with_its_red_flags_and_triage_decision(
    stack: Stack, db: Database, page: Page, page_problems: PageProblems
) -> None:
    emergency = "我爸胸口疼得厉害还出冷汗"
    answers, item = await _said_and_queued(stack, db, page, emergency)
    assert answers[0].startswith("这可能是急症，请立即拨打120"), answers
    await expect(item.locator(".qitem-reason")).to_have_text("危急征象：已建议拨打120")
    await expect(item.locator(".badge")).to_have_text("紧急")
    await item.click()
    await expect(page.locator("#conv-body")).to_be_visible()
    said = page.locator("#messages .msg.patient.urgent", has_text=emergency)
    await expect(said.locator(".urgent-mark")).to_have_text("⚠ 危急征象：胸痛伴出汗、气短或放射到手臂/下巴")
    decision = page.locator("#conv-triage .triage-line.emergency")
    await expect(decision).to_have_count(1)
    await expect(decision).to_contain_text("急症 · 胸痛伴出汗、气短或放射到手臂/下巴 · 规则 ")

    assert page_problems.errors == []
    assert await page_problems.csp_violations(page) == []


async def test_a_safety_risk_in_a_complaint_shows_the_patients_words_on_the_queue_and_the_chat(
    stack: Stack, db: Database, page: Page, page_problems: PageProblems
) -> None:
    """Told before anything was confirmed: the case recorded with the words so far, and the
    escalation shows its number and the words."""
    answers, item = await _said_and_queued(stack, db, page, "我要投诉，护士给我爸发错药了，吃了才发现")
    said = "\n".join(answers)
    assert "涉及患者安全" in said, answers
    number = re.search(r"TS-\d{8}-\d{4}", said)
    assert number is not None, answers
    await expect(item.locator(".badge")).to_have_text("紧急")
    await expect(item.locator(".qitem-summary")).to_contain_text("护士给我爸发错药了")
    await item.click()
    await expect(page.locator("#conv-reason .summary")).to_have_text(
        f"患者原话：{number.group(0)}：我要投诉，护士给我爸发错药了，吃了才发现"
    )

    assert page_problems.errors == []
    assert await page_problems.csp_violations(page) == []
