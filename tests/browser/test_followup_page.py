"""The follow-up questionnaire page on a phone screen, in Chromium against the real web app
(PostgreSQL, Redis; Rasa out of reach, which only the escalation's bot pause notices): a patient
answers one question at a time, a conditional question appears only when its condition is met, an
out-of-range temperature is refused with the hint, the outcome is shown, red answers reach the team
as an urgent escalation, and forged or expired links are refused."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import redis
from itsdangerous import TimestampSigner
from playwright.async_api import Browser, Page, expect
from sqlalchemy import select

from crm_backend.app import create_app
from crm_backend.conversations.models import Conversation
from crm_backend.escalations.models import Escalation
from crm_backend.followups import links
from crm_backend.followups.models import FollowupPlan, FollowupPlanVersion
from crm_backend.runtime import Runtime
from tests.browser.conftest import _WATCH_CSP, PageProblems, serving
from tests.conftest import POSTGRES_TEST_DB, REDIS_BASE
from tests.followups.page_support import PLAN, enrol, make_team
from tests.support.api import api_settings
from tests.support.postgres import alembic, drop_postgres, recreate_postgres
from tests.support.stack import free_port

DB_NAME = f"{POSTGRES_TEST_DB}_followup_page_browser"
REDIS_URL = f"{REDIS_BASE}/6"
#: A common phone's CSS viewport.
PHONE = {"width": 390, "height": 844}


@dataclass
class Site:
    url: str
    runtime: Runtime


@pytest.fixture(scope="module")
async def site() -> AsyncIterator[Site]:
    database = await recreate_postgres(DB_NAME)
    alembic(database, "upgrade", "head")
    redis.Redis.from_url(REDIS_URL).flushdb()
    settings = api_settings(database, REDIS_URL, RASA_PORT=str(free_port()))
    runtime = Runtime.create(settings)
    async with runtime.db.sessions() as session:
        plan = FollowupPlan(code=PLAN["code"], name=PLAN["name"])
        session.add(plan)
        await session.flush()
        session.add(FollowupPlanVersion(plan_id=plan.id, version=1, definition=PLAN))
        await session.commit()
    with serving(create_app(settings), "followup-page") as url:
        yield Site(url, runtime)
    await runtime.close()
    await drop_postgres(DB_NAME)


@pytest.fixture
async def phone(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(
        viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2, locale="zh-CN",
        timezone_id="Asia/Shanghai",
    )  # fmt: skip
    context.set_default_timeout(10_000)
    await context.add_init_script(_WATCH_CSP)
    page = await context.new_page()
    yield page
    await context.close()


@pytest.fixture
def problems(phone: Page) -> PageProblems:
    found = PageProblems()
    phone.on("pageerror", lambda error: found.errors.append(str(error)))
    phone.on("console", lambda m: found.console_errors.append(m.text) if m.type == "error" else None)
    return found


def _link(site: Site, checkin_id: int) -> str:
    return site.url + links.PAGE_PATH + links.checkin_token(site.runtime.settings, checkin_id)


async def _question(phone: Page, text: str) -> None:
    await expect(phone.locator("#question-text")).to_have_text(text)


async def _fits_the_screen(phone: Page) -> None:
    width = await phone.evaluate("document.scrollingElement.scrollWidth")
    assert width <= PHONE["width"], f"the page scrolls sideways ({width}px)"


async def test_a_patient_answers_on_a_phone_and_red_answers_reach_the_team(
    site: Site, phone: Page, problems: PageProblems
) -> None:
    team_id = await make_team(site.runtime)
    enrolled = await enrol(site.runtime, team_id, name="王秀英")
    await phone.goto(_link(site, enrolled.checkin_id))
    await expect(phone.locator("#who")).to_have_text("王** 的术后随访")
    await expect(phone.locator("#plan")).to_have_text("腹腔镜胆囊切除术后随访 · 出院后第 1 天")

    await _question(phone, "今天伤口疼痛打几分？")
    three = phone.get_by_role("button", name="3", exact=True)
    box = await three.bounding_box()
    assert box is not None and box["height"] >= 44  # a finger's target
    await _fits_the_screen(phone)
    await three.tap()

    await _question(phone, "今天最高体温是多少？")
    await phone.locator("#number-input").fill("43")
    await phone.locator("#next").tap()
    await expect(phone.locator("#error")).to_have_text("请填写 35 到 42 之间的数字（单位：°C）")
    await _question(phone, "今天最高体温是多少？")  # asked again, nothing stored
    await phone.locator("#number-input").fill("37.5")
    await phone.locator("#next").tap()

    await _question(phone, "伤口周围有没有发红？")
    await phone.get_by_role("button", name="是", exact=True).tap()
    await _question(phone, "伤口有没有流液或流脓？")  # asked only because the wound is red
    await phone.get_by_role("button", name="是", exact=True).tap()

    await _question(phone, "有没有下面这些情况？")
    await expect(phone.locator("#next")).to_have_text("以上都没有")
    await phone.locator("#next").tap()

    outcome = phone.locator("#outcome")
    await expect(outcome).to_have_attribute("data-flag", "red")
    await expect(phone.locator("#outcome-text")).to_contain_text("伤口可能感染，请今天到医院换药复查。")
    await expect(phone.locator("#done-message")).to_have_text("本次随访已完成，感谢您的配合。")
    await _fits_the_screen(phone)

    async with site.runtime.db.sessions() as session:
        escalation = await session.scalar(
            select(Escalation)
            .join(Conversation, Conversation.id == Escalation.conversation_id)
            .where(Conversation.identity_id == enrolled.identity_id)
        )
    assert escalation is not None and (escalation.team_id, escalation.priority) == (team_id, "urgent")

    await phone.reload()  # opened again later: the outcome, no questions
    await expect(phone.locator("#outcome")).to_have_attribute("data-flag", "red")
    await expect(phone.locator("#question")).to_be_hidden()
    # (The console lists the refused 422 and the favicon's 404 as failed loads: expected.)
    assert problems.errors == [] and await problems.csp_violations(phone) == []


async def test_a_wound_that_is_not_red_skips_its_question_and_a_correction_goes_back(
    site: Site, phone: Page, problems: PageProblems
) -> None:
    enrolled = await enrol(site.runtime, await make_team(site.runtime))
    await phone.goto(_link(site, enrolled.checkin_id))
    await _question(phone, "今天伤口疼痛打几分？")
    await phone.get_by_role("button", name="1", exact=True).tap()
    await phone.locator("#number-input").fill("36.8")
    await phone.locator("#next").tap()
    await _question(phone, "伤口周围有没有发红？")
    await phone.get_by_role("button", name="否", exact=True).tap()
    await _question(phone, "有没有下面这些情况？")  # no question about discharge

    await phone.locator("#back").tap()  # 上一题: the wound question with the answer given
    await _question(phone, "伤口周围有没有发红？")
    await expect(phone.get_by_role("button", name="否", exact=True)).to_have_attribute("aria-pressed", "true")
    await phone.get_by_role("button", name="否", exact=True).tap()
    await _question(phone, "有没有下面这些情况？")
    await phone.get_by_text("恶心呕吐").tap()
    await expect(phone.locator("#next")).to_have_text("下一题")
    await phone.locator("#next").tap()
    await expect(phone.locator("#outcome")).to_have_attribute("data-flag", "amber")
    await expect(phone.locator("#outcome-text")).to_contain_text("护士会在 24 小时内与您联系")
    assert problems.errors == [] and await problems.csp_violations(phone) == []


async def test_forged_and_expired_links_are_refused(site: Site, phone: Page, problems: PageProblems) -> None:
    enrolled = await enrol(site.runtime, await make_team(site.runtime))
    token = links.checkin_token(site.runtime.settings, enrolled.checkin_id)
    forged = site.url + links.PAGE_PATH + token[:-2] + ("xy" if not token.endswith("xy") else "yz")
    response = await phone.goto(forged)
    assert response is not None and response.status == 404
    await expect(phone.locator("#refused")).to_contain_text("链接无效")

    hours = site.runtime.settings.followup_link_hours

    class SignedLongAgo(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time() - hours * 3600 - 60)

    old = links._serializer(site.runtime.settings)
    old.signer = SignedLongAgo
    response = await phone.goto(site.url + links.PAGE_PATH + old.dumps({"checkin": enrolled.checkin_id}))
    assert response is not None and response.status == 410
    await expect(phone.locator("#refused")).to_have_text("链接已过期，请在公众号里回复任意消息继续随访")
    assert problems.errors == [] and await problems.csp_violations(phone) == []
