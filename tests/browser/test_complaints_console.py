"""The 投诉工作台 in Chromium against the real web app (PostgreSQL, Redis; no Rasa or worker): the
complaints office finds a case the chat registered, masked in the list, opens it, assigns it to a
department and its liaison and answers it; a department's liaison sees only their department's cases,
is offered only what a liaison may do, and a refused action (the case changed meanwhile) is said in
Chinese and changes nothing; an agent holding an escalated chat registers a complaint from it
(首诉负责制) and finds it in their own 投诉工作台."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import pytest
import redis
from playwright.async_api import Page, expect

from crm_backend.app import create_app
from crm_backend.appointments.models import Department
from crm_backend.complaints.service import ComplaintIntake, register_case
from crm_backend.conversations.service import current_conversation
from crm_backend.escalations.models import Escalation, EscalationStatus
from crm_backend.patients.models import WeChatIdentity
from crm_backend.runtime import Runtime
from tests.browser.conftest import PageProblems, add_staff, admin_api, log_in, serving
from tests.conftest import POSTGRES_TEST_DB, REDIS_BASE
from tests.followups.enrolment_support import make_patient
from tests.support.api import api_settings
from tests.support.postgres import alembic, drop_postgres, recreate_postgres
from tests.support.stack import free_port

DB_NAME = f"{POSTGRES_TEST_DB}_console_complaints"
REDIS_URL = f"{REDIS_BASE}/5"
WAITING = "挂号后在门诊等了三个小时，没人说明原因"


@dataclass
class Console:
    url: str
    admin: httpx.AsyncClient
    waiting: str
    cardiology_case: str
    orthopaedics_case: str
    #: An escalated chat held by the agent agent_zhou.
    held_chat: int


async def _department(runtime: Runtime, code: str, name: str) -> int:
    async with runtime.db.sessions() as session:
        row = Department(code=code, name=name, patient_name=name, aliases=[])
        session.add(row)
        await session.commit()
        return row.id


async def _registered_in_chat(runtime: Runtime, name: str, what: str) -> str:
    """A case as the chat's intake registers it, from a patient who wrote within the hour."""
    patient_id, identity_id = await make_patient(runtime, name=name, last_inbound_at=datetime.now(UTC))
    async with runtime.db.sessions() as session:
        identity = await session.get(WeChatIdentity, identity_id)
        assert identity is not None
        conversation = await current_conversation(session, identity, datetime.now(UTC))
        intake = ComplaintIntake(kind="complaint", what=what, when_text="昨天上午", wish="希望改进")
        case = await register_case(session, patient_id, conversation.id, intake, "bot")
        await session.commit()
        return case.case_number


async def _held_chat(runtime: Runtime, name: str, team_id: int, agent_id: int) -> int:
    """A patient's chat escalated to the team and claimed by the agent."""
    _, identity_id = await make_patient(runtime, name=name, last_inbound_at=datetime.now(UTC))
    async with runtime.db.sessions() as session:
        identity = await session.get(WeChatIdentity, identity_id)
        assert identity is not None
        conversation = await current_conversation(session, identity, datetime.now(UTC))
        conversation.status = "escalated"
        now = datetime.now(UTC)
        session.add(
            Escalation(
                conversation_id=conversation.id,
                team_id=team_id,
                reason="patient_request",
                status=EscalationStatus.ASSIGNED,
                assigned_to_id=agent_id,
                assigned_at=now,
                sla_due_at=now,
            )
        )
        await session.commit()
        return conversation.id


@pytest.fixture(scope="module")
async def console() -> AsyncIterator[Console]:
    database = await recreate_postgres(DB_NAME)
    alembic(database, "upgrade", "head")
    redis.Redis.from_url(REDIS_URL).flushdb()
    settings = api_settings(database, REDIS_URL, RASA_URLS=f"http://127.0.0.1:{free_port()}")
    runtime = Runtime.create(settings)
    cardiology = await _department(runtime, "CMPB1", "心血管内科")
    orthopaedics = await _department(runtime, "CMPB2", "骨科")
    waiting = await _registered_in_chat(runtime, "王建国", WAITING)
    ours = await _registered_in_chat(runtime, "李红", "夜里按呼叫铃二十分钟没有护士来")
    theirs = await _registered_in_chat(runtime, "赵强", "骨科病房晚上太吵")
    with serving(create_app(settings), "complaints-console") as url:
        async with admin_api(url) as admin:
            await add_staff(admin, "office_qian", "钱投诉办", "complaints_office", [])
            liaison = await add_staff(admin, "nurse_sun", "孙护士长", "nurse", [])
            put = await admin.put(
                f"/api/console/complaints/liaisons/departments/{cardiology}", json={"staff_ids": [liaison]}
            )
            put.raise_for_status()
            for number, department in ((ours, cardiology), (theirs, orthopaedics)):
                assigned = await admin.post(
                    f"/api/console/complaints/{number}/assign", json={"department_id": department}
                )
                assigned.raise_for_status()
            team = await admin.post("/api/console/admin/teams", json={"name": "投诉登记组"})
            team.raise_for_status()
            agent = await add_staff(admin, "agent_zhou", "周坐席", "agent", [team.json()["id"]])
            held = await _held_chat(runtime, "陈梅", team.json()["id"], agent)
            yield Console(url, admin, waiting, ours, theirs, held)
    await runtime.close()
    await drop_postgres(DB_NAME)


async def _open_workspace(page: Page, console: Console, username: str, name: str) -> None:
    await log_in(page, console.url, username, name)
    await page.locator("#tab-complaints").click()


async def test_the_office_assigns_and_answers_a_case_from_the_chat(
    page: Page, page_problems: PageProblems, console: Console
) -> None:
    await _open_workspace(page, console, "office_qian", "钱投诉办")
    row = page.locator(f"#complaints-table tr[data-case='{console.waiting}']")
    await expect(row.locator("td")).to_have_text(
        [
            console.waiting,
            "投诉",
            "王**",
            "—",
            "未分派",
            "已登记",
            re.compile("剩 5 个工作日$"),
            re.compile("机器人"),
        ]
    )
    # The list carries no word of what the patient said.
    await expect(page.locator("#complaints-table tbody tr")).to_have_count(3)
    await expect(page.locator("#complaints-table")).not_to_contain_text("三个小时")

    await row.click()
    case = page.locator("#complaint-case")
    await expect(case.locator(".complaint-what")).to_have_text(WAITING)
    await expect(case.locator(".complaint-actions button")).to_have_text(
        ["分派", "答复患者", "发送进展消息", "添加备注", "转出"]
    )

    await case.get_by_role("button", name="分派", exact=True).click()
    form = case.locator("form[data-action='assign']")
    await form.get_by_label("处理科室").select_option(label="心血管内科")
    await form.get_by_label("联络员").select_option(label="孙护士长")
    await form.get_by_label("类别").select_option(label="等候时间")
    await form.locator("button[type='submit']").click()
    await expect(case.locator(".card-head .complaint-status")).to_have_text("已分派")
    await expect(case.locator(".complaint-entry").last).to_contain_text("分派至 心血管内科")
    await expect(row.locator("td").nth(4)).to_have_text("心血管内科 · 孙护士长")

    await case.get_by_role("button", name="答复患者").click()
    await case.locator("form[data-action='answer'] textarea").fill(
        "经核实，当日叫号系统故障，已修复，向您致歉。"
    )
    await case.locator("form[data-action='answer'] button[type='submit']").click()
    await page.locator("#confirm-ok").click()
    await expect(case.locator("#complaint-msg")).to_contain_text("已通过微信客服消息发送给患者")
    await expect(case.locator(".card-head .complaint-status")).to_have_text("已答复")
    answered = case.locator(".complaint-entry[data-to-status='answered']")
    await expect(answered).to_contain_text("答复患者 · 状态改为已答复")
    await expect(answered).to_contain_text("叫号系统故障")
    await expect(case.locator(".complaint-entry[data-kind='message']")).to_contain_text("【投诉处理结果】")
    # Answered: no second answer, assignment or investigation is offered.
    await expect(case.locator(".complaint-actions button")).to_have_text(
        ["发送进展消息", "添加备注", "转出", "办结"]
    )
    await expect(row.locator("td").nth(5)).to_have_text("已答复")
    assert page_problems.errors == [] and await page_problems.csp_violations(page) == []


async def test_a_liaison_sees_their_departments_cases_and_a_refusal_changes_nothing(
    page: Page, page_problems: PageProblems, console: Console
) -> None:
    await _open_workspace(page, console, "nurse_sun", "孙护士长")
    rows = page.locator("#complaints-table tbody tr")
    await expect(rows.filter(has_text=console.cardiology_case)).to_have_count(1)
    await expect(rows.filter(has_text=console.orthopaedics_case)).to_have_count(0)
    await expect(rows.locator("td:nth-child(5)")).to_contain_text(
        [re.compile("^心血管内科")] * await rows.count()
    )
    await expect(page.locator("#complaints-department-filter")).to_be_hidden()
    await expect(page.locator("#complaints-liaisons-open")).to_be_hidden()
    # A nurse by role, but a liaison: the report answers them for their department, so it is offered.
    await expect(page.locator("#tab-complaints-report")).to_be_visible()

    await rows.filter(has_text=console.cardiology_case).click()
    case = page.locator("#complaint-case")
    await expect(case.locator(".complaint-what")).to_have_text("夜里按呼叫铃二十分钟没有护士来")
    await expect(case.locator(".complaint-actions button")).to_have_text(["开始调查", "添加备注"])

    # Meanwhile the office refers the case to mediation: starting the investigation is refused.
    referred = await console.admin.post(
        f"/api/console/complaints/{console.cardiology_case}/referral", json={"to": "mediation"}
    )
    referred.raise_for_status()
    await case.get_by_role("button", name="开始调查").click()
    await expect(case.locator("#complaint-msg")).to_have_text(
        "案件状态已变化，当前状态下不能执行此操作（未做任何更改），已显示最新状态"
    )
    await expect(case.locator(".card-head .complaint-status")).to_have_text("已转出")
    await expect(case.locator(".complaint-entry[data-to-status='investigating']")).to_have_count(0)
    await expect(case.locator(".complaint-actions button")).to_have_text(["添加备注"])
    await expect(rows.filter(has_text=console.cardiology_case).locator(".complaint-status")).to_have_text(
        "已转出"
    )
    assert page_problems.errors == [] and await page_problems.csp_violations(page) == []


async def test_an_agent_registers_a_complaint_from_the_chat_they_hold(
    page: Page, page_problems: PageProblems, console: Console
) -> None:
    await log_in(page, console.url, "agent_zhou", "周坐席")
    await page.locator(f".qitem[data-conversation-id='{console.held_chat}']").click()
    await page.locator("#conv-complaint").click()
    dialog = page.locator("#complaint-register-dialog")
    await dialog.get_by_label("经过").fill("输液时护士没有核对姓名，差点用错药")
    await dialog.locator("select[name=where_department]").select_option(label="骨科")
    await dialog.get_by_label("涉及多个科室").check()
    await dialog.get_by_role("button", name="登记").click()
    number = dialog.locator("#complaint-register-number")
    await expect(number).to_have_text(re.compile(r"^TS-\d{8}-\d{4}$"))
    await expect(dialog.locator(".complaint-register-due")).to_have_text(re.compile("剩 10 个工作日$"))
    case_number = await number.inner_text()
    await dialog.get_by_role("button", name="关闭").click()

    # Agents see what they registered: the case, and only it, with its number.
    await page.locator("#tab-complaints").click()
    rows = page.locator("#complaints-table tbody tr")
    await expect(rows).to_have_count(1)
    await expect(rows.first.locator("td").first).to_have_text(case_number)
    await expect(rows.first).to_contain_text("陈*")
    await expect(page.locator("#complaints-register-open")).to_be_hidden()
    await expect(page.locator("#tab-complaints-report")).to_be_hidden()
    assert page_problems.errors == [] and await page_problems.csp_violations(page) == []
