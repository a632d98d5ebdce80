# ruff: noqa: F811 (the `site` fixture imported from test_followup_page is a parameter here)
"""The 随访工作台 in the staff console, in Chromium against the real web app: a nurse sees her team's
phone list (not another team's check-in), opens a missed check-in, reveals the number to call,
records a call whose answers the server checks (an out-of-range temperature is refused under its
question, nothing saved), then saves it: the check-in is answered by phone, the advice to read out is
shown and it leaves the phone list; its answers download as a FHIR QuestionnaireResponse."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import httpx
from playwright.async_api import Page, expect
from sqlalchemy import select

from crm_backend.followups.models import FollowupAnswer, FollowupCheckin
from tests.browser.conftest import PageProblems
from tests.browser.test_followup_page import Site, site  # noqa: F401 (fixture)
from tests.followups.page_support import enrol, make_team
from tests.support.api import ADMIN_PASSWORD, ADMIN_USERNAME

NURSE_PASSWORD = "nurse-password-456"


async def _nurse(site: Site, username: str, team_id: int) -> None:
    async with httpx.AsyncClient(base_url=site.url) as admin:
        me = await admin.post(
            "/api/console/login", json={"username": ADMIN_USERNAME, "password": ADMIN_PASSWORD}
        )
        me.raise_for_status()
        created = await admin.post(
            "/api/console/admin/staff",
            headers={"X-CSRF-Token": me.json()["csrf_token"]},
            json={
                "username": username,
                "display_name": "赵护士",
                "password": NURSE_PASSWORD,
                "role": "nurse",
                "capacity": 5,
                "team_ids": [team_id],
            },
        )
        created.raise_for_status()


async def test_a_nurse_records_a_call_with_answers_from_the_phone_list(
    site: Site, page: Page, page_problems: PageProblems
) -> None:
    team_id, other_team = await make_team(site.runtime), await make_team(site.runtime)
    long_ago = datetime.now(UTC) - timedelta(days=4)
    missed = await enrol(
        site.runtime, team_id, name="刘德明", phone="13900003333", status="missed", due_at=long_ago
    )
    elsewhere = await enrol(site.runtime, other_team, name="陈其他", status="missed", due_at=long_ago)
    await _nurse(site, "nurse_zhao", team_id)

    await page.goto(f"{site.url}/console")
    await page.locator("#login-form").get_by_label("用户名").fill("nurse_zhao")
    await page.locator("#login-form").get_by_label("密码").fill(NURSE_PASSWORD)
    await page.locator("#login-submit").click()
    await expect(page.locator("#me-name")).to_have_text("赵护士")
    await page.locator("#tab-followups").click()

    row = page.locator(f"#followup-table tr[data-checkin-id='{missed.checkin_id}']")
    await expect(row).to_contain_text("刘德明")
    await expect(row).to_contain_text("139****3333")
    await expect(page.locator(f"#followup-table tr[data-checkin-id='{elsewhere.checkin_id}']")).to_have_count(
        0
    )
    await row.click()

    detail = page.locator("#followup-detail")
    await expect(detail).to_contain_text("腹腔镜胆囊切除术后随访 第 1 天")
    await page.locator("#followup-reveal").click()
    await expect(detail).to_contain_text("13900003333")

    form = page.locator("#followup-call-form")
    await form.get_by_text("已接通", exact=True).click()
    await form.locator("textarea[name=note]").fill("患者本人接听")
    await form.locator("select[name=pain]").select_option("8")
    await form.locator("input[name=temperature]").fill("45")
    await form.locator("select[name=wound_red]").select_option("false")
    await form.get_by_text("已问（都没有也勾选）").click()
    await form.get_by_role("button", name="保存通话记录").click()
    refused = form.locator("label[data-question=temperature] .followup-question-error")
    await expect(refused).to_have_text("今天最高体温是多少？：请填写 35 到 42 之间的数字（单位：°C）")
    async with site.runtime.db.sessions() as session:  # nothing was saved
        assert (
            await session.scalars(
                select(FollowupAnswer).where(FollowupAnswer.checkin_id == missed.checkin_id)
            )
        ).all() == []

    await form.locator("input[name=temperature]").fill("37.2")
    await form.get_by_role("button", name="保存通话记录").click()
    await expect(page.locator("#followup-advice")).to_contain_text("疼痛较重，请按医嘱服止痛药并联系护士。")
    await expect(page.locator("#followup-advice")).to_have_attribute("data-flag", "red")
    await expect(detail).to_contain_text("患者本人接听")
    await expect(row).to_have_count(0)  # called and answered: off the phone list

    async with page.expect_download() as downloading:  # the answers as a FHIR QuestionnaireResponse
        await page.locator("#followup-fhir").click()
    saved = await (await downloading.value).path()
    exported = json.loads(await asyncio.to_thread(saved.read_text, encoding="utf-8"))
    assert exported["resourceType"] == "QuestionnaireResponse" and exported["status"] == "completed"
    assert {item["linkId"]: item.get("answer") for item in exported["item"]}["pain"] == [{"valueInteger": 8}]

    async with site.runtime.db.sessions() as session:
        checkin = await session.get(FollowupCheckin, missed.checkin_id)
        assert checkin is not None
        assert (checkin.status, checkin.channel, checkin.worst_flag) == ("answered", "phone", "red")
        assert checkin.first_contact_at is not None
    assert page_problems.errors == [] and await page_problems.csp_violations(page) == []
