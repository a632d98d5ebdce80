"""Follow-up in the console, in Chromium against the real web app (PostgreSQL, Redis; no Rasa or worker):
a supervisor reads 出院患者随访比例 on the follow-up report page, with its CSV link, and a patient's
pain by day (table and sparkline) in the 360 view."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date

import pytest
import redis
from playwright.async_api import Page, expect

from crm_backend.app import create_app
from crm_backend.patients.models import Patient, WeChatIdentity
from crm_backend.patients.records import add_managed_patient
from crm_backend.runtime import Runtime
from crm_backend.staff.models import Team
from tests.browser.conftest import PageProblems, add_staff, admin_api, log_in, serving
from tests.conftest import POSTGRES_TEST_DB, REDIS_BASE
from tests.followups.report_seed import answer, checkin, enrol, make_plan, shanghai
from tests.support.api import api_settings
from tests.support.postgres import alembic, drop_postgres, recreate_postgres
from tests.support.stack import free_port

DB_NAME = f"{POSTGRES_TEST_DB}_console_followups"
REDIS_URL = f"{REDIS_BASE}/7"


@dataclass
class Console:
    url: str
    runtime: Runtime
    patient_id: int


def aug(day: int) -> date:
    return date(2026, 8, day)


async def _seed(runtime: Runtime) -> tuple[int, int]:
    """Two discharges in early August: 钱秀英 answered days 1, 3 and 7 (pain 3, 6, 2), the other
    patient missed day 1. Coverage 1 of 2. Returns 钱秀英's patient id."""
    async with runtime.db.sessions() as s:
        team = Team(name="普外科护理组")
        s.add(team)
        await s.flush()
        version = await make_plan(s, "lc", "腹腔镜胆囊切除术后随访")
        patient = Patient()
        s.add(patient)
        await s.flush()
        identity = WeChatIdentity(app_id="wx_test", openid="openid-followup-browser", patient_id=patient.id)
        s.add(identity)
        await s.flush()
        await add_managed_patient(
            s, runtime.protector, identity, "self", name="钱秀英", sex="F", birth_date=date(1968, 4, 2),
            phone="13600005555", id_number=None, card_number="MZ50001",
        )  # fmt: skip
        enrolment = await enrol(
            s, version, patient_id=patient.id, team_id=team.id, discharged_on=aug(3), doctor="李主任"
        )
        for point, (day, pain, flag) in enumerate([(1, 3, "green"), (3, 6, "amber"), (7, 2, "green")]):
            row = await checkin(
                s, enrolment, point, due_at=shanghai(aug(3 + day), 10), status="answered", started_via="chat",
                channel="chat", answered_at=shanghai(aug(3 + day), 10, 15), worst_flag=flag,
            )  # fmt: skip
            await answer(s, row, "pain", pain, flag, channel="chat")
        other = Patient()
        s.add(other)
        await s.flush()
        silent = await enrol(s, version, patient_id=other.id, team_id=team.id, discharged_on=aug(5))
        await checkin(s, silent, 0, due_at=shanghai(aug(6), 10), status="missed", started_via="template")
        await s.commit()
        return patient.id, team.id


@pytest.fixture(scope="module")
async def console() -> AsyncIterator[Console]:
    database = await recreate_postgres(DB_NAME)
    alembic(database, "upgrade", "head")
    redis.Redis.from_url(REDIS_URL).flushdb()
    settings = api_settings(database, REDIS_URL, RASA_PORT=str(free_port()))
    runtime = Runtime.create(settings)
    patient_id, team_id = await _seed(runtime)
    with serving(create_app(settings), "followup-console") as base:
        async with admin_api(base) as admin:
            await add_staff(admin, "supervisor_zhao", "赵主管", "supervisor", [])
            await add_staff(admin, "nurse_sun", "孙护士", "nurse", [team_id])
            await add_staff(admin, "agent_zhou", "周客服", "agent", [team_id])
        yield Console(base, runtime, patient_id)
    await runtime.close()
    await drop_postgres(DB_NAME)


async def test_a_supervisor_sees_the_coverage_and_a_patients_pain_by_day(
    page: Page, page_problems: PageProblems, console: Console
) -> None:
    await log_in(page, console.url, "supervisor_zhao", "赵主管")

    await page.locator("#tab-followup-report").click()
    form = page.locator("#followup-report-form")
    await form.locator("input[name='from']").fill("2026-08-01")
    await form.locator("input[name='to']").fill("2026-08-31")
    async with page.expect_response("**/reports/followup?from=2026-08-01&to=2026-08-31"):
        await form.locator("button[type='submit']").click()
    await expect(page.locator("#followup-coverage")).to_have_text("出院患者随访比例：50.0%（1 / 2）")
    total = page.locator("#followup-report-table tr.report-total td")
    await expect(total.nth(4)).to_have_text("50.0%")
    await expect(page.locator("#followup-report-csv")).to_have_attribute(
        "href", "/api/console/reports/followup.csv?from=2026-08-01&to=2026-08-31"
    )

    await page.locator("#view-tabs [data-view='workspace']").click()
    await page.locator("#patient-query").fill("钱秀")
    await page.locator("#patient-query").press("Enter")
    await page.locator(f"#patient-results li[data-patient-id='{console.patient_id}']").click()
    section = page.locator("#patient-panel .p-followup")
    await expect(section.locator(".fu-plan")).to_contain_text("腹腔镜胆囊切除术后随访 · 第1版")
    await expect(section.locator(".fu-enrolment .sub")).to_have_text(
        "团队 普外科护理组 · 主管医生 李主任 · 出院 2026-08-03"
    )
    await expect(section.locator(".fu-answers th")).to_have_text(["问题", "第1天", "第3天", "第7天"])
    pain = section.locator(".fu-answers tr[data-question='pain']")
    await expect(pain.locator("td.num")).to_have_text(["3分", "6分", "2分"])
    await expect(pain.locator("td.flag-amber")).to_have_text("6分")
    await expect(pain.locator("svg.fu-spark circle")).to_have_count(3)
    await expect(pain.locator("svg.fu-spark")).to_have_attribute(
        "aria-label", "第1天 3分，第3天 6分，第7天 2分"
    )
    assert page_problems.errors == [] and await page_problems.csp_violations(page) == []


async def test_a_nurse_reads_her_teams_report_and_an_agent_has_none(
    page: Page, page_problems: PageProblems, console: Console
) -> None:
    await log_in(page, console.url, "nurse_sun", "孙护士")
    await page.locator("#tab-followup-report").click()
    await expect(page.locator("#fr-team option")).to_have_text(["我的全部团队", "普外科护理组"])
    form = page.locator("#followup-report-form")
    await form.locator("input[name='from']").fill("2026-08-01")
    await form.locator("input[name='to']").fill("2026-08-31")
    await form.locator("#fr-team").select_option(label="普外科护理组")
    await form.locator("button[type='submit']").click()
    await expect(page.locator("#followup-coverage")).to_have_text("出院患者随访比例：50.0%（1 / 2）")
    await expect(page.locator("#fr-plan option")).to_have_text(["全部随访计划", "腹腔镜胆囊切除术后随访"])
    await expect(page.locator("#followup-report-csv")).to_have_attribute("href", re.compile(r"&team_id=\d+$"))

    await page.locator("#logout").click()
    await log_in(page, console.url, "agent_zhou", "周客服")
    await expect(page.locator("#tab-followup-report")).to_be_hidden()
    await page.evaluate("document.querySelector('#tab-followup-report').click()")  # even forced
    await expect(page.locator("#followup-report-view")).to_be_hidden()
    await expect(page.locator("#workspace")).to_be_visible()
    assert page_problems.errors == [] and await page_problems.csp_violations(page) == []
