"""The console as a nurse uses it, in Chromium against the real web app (PostgreSQL, Redis; no Rasa or
worker needed: nothing here waits for the bot or for delivery): find a patient, read the 360 view and
reveal a phone number (audited), open a chat that was never escalated, see when WeChat's window closes
and how many messages are left, start a message, and be told in Chinese why a message is refused."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import redis
import sqlalchemy as sa
from playwright.async_api import Page, expect

from crm_backend.app import create_app
from crm_backend.audit.models import AuditEntry
from crm_backend.consent.models import ConsentRecord
from crm_backend.conversations.models import Conversation, DeliveryStatus, Direction, Message, SenderType
from crm_backend.escalations.models import Escalation
from crm_backend.patients.models import Patient, WeChatIdentity
from crm_backend.patients.records import add_managed_patient
from crm_backend.runtime import Runtime
from crm_backend.staff.models import Team
from tests.browser.conftest import PageProblems, add_staff, admin_api, log_in, serving
from tests.conftest import POSTGRES_TEST_DB, REDIS_BASE
from tests.support.api import api_settings
from tests.support.postgres import alembic, drop_postgres, recreate_postgres
from tests.support.stack import free_port

DB_NAME = f"{POSTGRES_TEST_DB}_console_patients"
REDIS_URL = f"{REDIS_BASE}/9"
SHANGHAI = ZoneInfo("Asia/Shanghai")  # the browser's time zone (conftest)
WEEKDAYS = "一二三四五六日"
PHONE = "13900001111"


@dataclass
class Console:
    url: str
    runtime: Runtime
    team_id: int


@pytest.fixture(scope="module")
async def _database() -> AsyncIterator[str]:
    url = await recreate_postgres(DB_NAME)
    alembic(url, "upgrade", "head")
    yield url
    await drop_postgres(DB_NAME)


@pytest.fixture(scope="module")
async def console(_database: str) -> AsyncIterator[Console]:
    redis.Redis.from_url(REDIS_URL).flushdb()
    settings = api_settings(_database, REDIS_URL, RASA_PORT=str(free_port()), STAFFED_HOURS="00:00-23:59:59")
    runtime = Runtime.create(settings)
    async with runtime.db.sessions() as session:
        team = Team(name="护理一组")
        session.add(team)
        await session.commit()
        team_id = team.id
    with serving(create_app(settings), "patient-console") as base:
        async with admin_api(base) as admin:
            await add_staff(admin, "nurse_wang", "王护士", "nurse", [team_id])
        yield Console(base, runtime, team_id)
    await runtime.close()


_openids = iter(range(1, 10_000))


@dataclass(frozen=True)
class Details:
    name: str
    phone: str
    id_number: str
    card_number: str
    child: bool = False


async def _patient(console: Console, *, wrote_ago: timedelta, details: Details) -> tuple[int, int]:
    """A patient whose chat with the team was escalated once, and a later chat, never escalated, in which
    they wrote `wrote_ago` before now. Returns (patient id, the never-escalated conversation)."""
    runtime = console.runtime
    at = datetime.now(UTC) - wrote_ago
    async with runtime.db.sessions() as session:
        patient = Patient()
        session.add(patient)
        await session.flush()
        identity = WeChatIdentity(
            app_id="wx_test", openid=f"openid-browser-{next(_openids):05d}", patient_id=patient.id
        )
        session.add(identity)
        await session.flush()
        earlier = Conversation(
            patient_id=patient.id, identity_id=identity.id, started_at=at - timedelta(days=9),
            last_message_at=at - timedelta(days=9), status="closed",
        )  # fmt: skip
        session.add(earlier)
        await session.flush()
        session.add(
            Escalation(
                conversation_id=earlier.id, team_id=console.team_id, reason="patient_request",
                sla_due_at=at, status="resolved",
            )
        )  # fmt: skip
        quiet = Conversation(
            patient_id=patient.id, identity_id=identity.id, started_at=at, last_message_at=at
        )
        session.add(quiet)
        await session.flush()
        session.add(
            Message(
                conversation_id=quiet.id, direction=Direction.IN, sender_type=SenderType.PATIENT,
                content="请问周末门诊开吗", delivery_status=DeliveryStatus.RECEIVED, created_at=at,
            )
        )  # fmt: skip
        identity.last_inbound_at = at
        await add_managed_patient(
            session, runtime.protector, identity, "self", name=details.name, sex=None, birth_date=None,
            phone=details.phone, id_number=details.id_number, card_number=details.card_number,
        )  # fmt: skip
        if details.child:
            await add_managed_patient(
                session, runtime.protector, identity, "child", name="孙小宝", sex=None, birth_date=None,
                phone="13512347777", id_number="230102201009095520",
            )  # fmt: skip
        session.add(
            ConsentRecord(identity_id=identity.id, patient_id=patient.id, granted=True, notice_version="v1")
        )
        await session.commit()
        return patient.id, quiet.id


async def _sent_behind_the_pages_back(console: Console, conversation_id: int, count: int) -> None:
    async with console.runtime.db.sessions() as session:
        for n in range(count):
            session.add(
                Message(
                    conversation_id=conversation_id, direction=Direction.OUT, sender_type=SenderType.BOT,
                    content=f"机器人回答 {n}", delivery_status=DeliveryStatus.SENT,
                )
            )  # fmt: skip
        await session.commit()


def _closing_times(wrote_ago: timedelta) -> list[str]:
    """The closing time as the indicator writes it, a minute either side of when the test computed it."""
    options = []
    for slack in (-1, 0, 1):
        at = (datetime.now(UTC) - wrote_ago + timedelta(hours=47, minutes=50 + slack)).astimezone(SHANGHAI)
        options.append(f"{at.month}月{at.day}日（周{WEEKDAYS[at.weekday()]}）{at:%H:%M}")
    return options


def _one_of(texts: list[str], template: str = "{}") -> re.Pattern[str]:
    return re.compile("^(" + "|".join(re.escape(template.format(t)) for t in texts) + ")$")


async def _log_in(page: Page, console: Console) -> None:
    await log_in(page, console.url, "nurse_wang", "王护士")


async def _find(page: Page, query: str, patient_id: int) -> None:
    await page.locator("#patient-query").fill(query)
    await page.locator("#patient-query").press("Enter")
    result = page.locator(f"#patient-results li[data-patient-id='{patient_id}']")
    await expect(result).to_have_count(1)
    await result.click()
    await expect(page.locator(f"#patient-panel .p360[data-patient-id='{patient_id}']")).to_be_visible()


async def _audit_actions(console: Console, patient_id: int) -> list[str]:
    async with console.runtime.db.sessions() as session:
        return list(
            (
                await session.scalars(
                    sa.select(AuditEntry.action)
                    .where(AuditEntry.patient_id == patient_id)
                    .order_by(AuditEntry.id)
                )
            ).all()
        )


def _age(born: date) -> int:
    today = datetime.now(SHANGHAI).date()
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


async def test_a_nurse_finds_a_patient_reads_the_360_view_and_reveals_the_phone(
    page: Page, page_problems: PageProblems, console: Console
) -> None:
    details = Details("周海燕", PHONE, "110105198001010024", "MZ20261205", child=True)
    patient_id, _ = await _patient(console, wrote_ago=timedelta(hours=2), details=details)
    await _log_in(page, console)
    await _find(page, "139****1111", patient_id)  # as the console shows a phone

    panel = page.locator("#patient-panel")
    await expect(panel.locator(".p-head .p-sub")).to_have_text(
        f"女 · {_age(date(1980, 1, 1))}岁 · 患者 ID {patient_id}"
    )
    phone = panel.locator(".p-field[data-field='phone']")
    await expect(phone.locator(".p-value")).to_have_text("139****1111")
    await expect(panel.locator(".p-field[data-field='id_number'] .p-value")).to_have_text(
        "1101**********0024"
    )
    await expect(panel.locator(".p-field[data-field='id_number'] .p-reveal")).to_have_count(0)  # admins only
    await expect(panel.locator(".p-field[data-field='card_number'] .p-value")).to_have_text("****1205")
    await expect(panel.get_by_text("健康信息授权：已同意")).to_be_visible()
    await expect(panel.get_by_text("本人的微信 · 公众号 wx_test")).to_be_visible()
    dependants = panel.locator(".p-section", has=page.get_by_role("heading", name="就诊人")).locator("li")
    await expect(dependants).to_have_count(2)
    await expect(dependants.nth(0)).to_contain_text("周海燕本人")
    await expect(dependants.nth(1)).to_contain_text("孙小宝子女")
    await expect(dependants.nth(1).locator(".sub")).to_contain_text("135****7777")
    await expect(panel.get_by_text("暂无就诊人")).to_have_count(0)

    assert "patient.reveal" not in await _audit_actions(console, patient_id)
    await phone.get_by_role("button", name="显示").click()
    await expect(phone.locator(".p-value")).to_have_text(PHONE)
    await expect(phone.get_by_role("button", name="显示")).to_have_count(0)
    actions = await _audit_actions(console, patient_id)
    assert actions.count("patient.reveal") == 1 and "patient.view" in actions
    assert page_problems.errors == [] and await page_problems.csp_violations(page) == []


async def test_a_chat_never_escalated_opens_from_the_history_and_a_message_is_started_in_the_window(
    page: Page, page_problems: PageProblems, console: Console
) -> None:
    wrote_ago = timedelta(hours=3)
    details = Details("吴桂兰", "13800002222", "110105197511200042", "MZ30001")
    patient_id, quiet = await _patient(console, wrote_ago=wrote_ago, details=details)
    await _log_in(page, console)
    await _find(page, "吴桂", patient_id)
    await page.locator(f"#patient-panel li[data-conversation-id='{quiet}']").click()

    await expect(page.locator("#messages .msg.patient .bubble")).to_have_text(["请问周末门诊开吗"])
    await expect(page.locator("#conv-status")).to_have_text("机器人服务")
    window = page.locator("#conv-window")
    await expect(window.locator(".closes")).to_have_text(_one_of(_closing_times(wrote_ago), "{} 关闭"))
    await expect(window.locator(".remaining")).to_have_text("剩余 5/5 条")
    await expect(page.locator("#send")).to_have_text("发起消息")

    await page.locator("#reply").fill("您好，我是王护士，周末上午门诊照常开放。")
    await page.locator("#send").click()
    await expect(page.locator("#conv-status")).to_have_text("处理中")
    await expect(page.locator("#conv-reason .reason")).to_have_text("工作人员主动发起消息")
    await expect(page.locator("#messages .msg.agent .bubble")).to_have_text(
        ["您好，我是王护士，周末上午门诊照常开放。"]
    )
    await expect(window.locator(".remaining")).to_have_text("剩余 4/5 条")
    await expect(page.locator("#send")).to_have_text("发送")
    actions = await _audit_actions(console, patient_id)
    assert "conversation.message_start" in actions and "conversation.view" in actions

    # Four more answers went out meanwhile (the page does not know, and still shows 4 left): the
    # server refuses the sixth, and the page says why in Chinese.
    await _sent_behind_the_pages_back(console, quiet, 4)
    await page.locator("#reply").fill("第六条")
    await page.locator("#reply").press("Enter")
    await expect(page.locator("#composer-hint")).to_have_text(
        "患者上次发消息后已发送 5/5 条，微信不允许再发，请等待患者回复"
    )
    await expect(window).to_have_attribute("data-state", "used_up")
    await expect(page.locator("#send")).to_be_disabled()
    await expect(page.locator("#reply")).to_have_value("第六条")  # nothing typed is lost
    await expect(page.locator("#messages .msg.agent")).to_have_count(1)
    assert page_problems.errors == [] and await page_problems.csp_violations(page) == []


async def test_outside_the_48_hours_the_window_says_when_it_closed_and_nothing_can_be_started(
    page: Page, page_problems: PageProblems, console: Console
) -> None:
    wrote_ago = timedelta(hours=50)
    details = Details("郑国强", "13700003333", "440305196603080052", "MZ40002")
    patient_id, quiet = await _patient(console, wrote_ago=wrote_ago, details=details)
    await _log_in(page, console)
    await _find(page, "mz4000-2", patient_id)
    await page.locator(f"#patient-panel li[data-conversation-id='{quiet}']").click()
    await expect(page.locator("#messages .msg.patient .bubble")).to_have_text(["请问周末门诊开吗"])
    window = page.locator("#conv-window")
    await expect(window).to_have_attribute("data-state", "expired")
    refusal = "已超过微信 48 小时回复时限（窗口已于 {} 关闭），患者再次发消息后才能回复"
    await expect(window).to_have_text(_one_of(_closing_times(wrote_ago), refusal))
    await expect(page.locator("#send")).to_be_disabled()
    await expect(page.locator("#reply")).to_be_disabled()
    assert page_problems.errors == [] and await page_problems.csp_violations(page) == []
