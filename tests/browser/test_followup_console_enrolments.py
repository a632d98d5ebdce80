# ruff: noqa: F811 (the `site` fixture imported from test_followup_page is a parameter here)
"""入组 in the 随访工作台, in Chromium against the real web app: a nurse finds a patient with the
patient search, enrols them in a plan from a date for her team and doctor, sees the enrolment listed,
pauses and resumes it, stops it as readmitted (the reason is shown), then uploads a CSV with one bad
row naming a patient she may not open: the refusal names its line in Chinese and nobody in the file
is enrolled."""

from __future__ import annotations

from datetime import date, timedelta

from playwright.async_api import Page, expect
from sqlalchemy import func, select

from crm_backend.followups.models import FollowupEnrolment
from tests.browser.conftest import PageProblems
from tests.browser.test_followup_page import Site, site  # noqa: F401 (fixture)
from tests.browser.test_followup_page_worklists import NURSE_PASSWORD, _nurse
from tests.followups.page_support import PLAN, enrol, make_team


async def _enrolments(site: Site, patient_id: int) -> list[FollowupEnrolment]:
    async with site.runtime.db.sessions() as session:
        rows = await session.scalars(
            select(FollowupEnrolment)
            .where(FollowupEnrolment.patient_id == patient_id)
            .order_by(FollowupEnrolment.id)
        )
        return list(rows)


async def test_a_nurse_enrols_stops_and_uploads_a_csv_with_a_bad_row(
    site: Site, page: Page, page_problems: PageProblems
) -> None:
    team_id = await make_team(site.runtime)
    # Enrolled once already (from today), so her team may find her with the patient search.
    known = await enrol(site.runtime, team_id, name="周美华")
    patient_id = known.patient_id
    await _nurse(site, "nurse_enrol", team_id)

    await page.goto(f"{site.url}/console")
    await page.locator("#login-form").get_by_label("用户名").fill("nurse_enrol")
    await page.locator("#login-form").get_by_label("密码").fill(NURSE_PASSWORD)
    await page.locator("#login-submit").click()
    await page.locator("#tab-followups").click()

    anchor = (date.today() - timedelta(days=2)).isoformat()
    await page.locator("#enrol-open").click()
    await page.locator("#enrol-patient-query").fill("周美")
    await page.locator("#enrol-patient-find").click()
    await page.locator(f"#enrol-patient-results li[data-patient-id='{patient_id}']").click()
    await expect(page.locator("#enrol-patient-chosen")).to_contain_text("周")
    await page.locator("#enrol-plan").select_option(PLAN["code"])
    await page.locator("#enrol-anchor").fill(anchor)
    await page.locator("#enrol-doctor").fill("王医生")
    await page.locator("#enrol-form").get_by_role("button", name="入组").click()
    await expect(page.locator("#enrol-msg")).to_contain_text("已入组")

    enrolments = await _enrolments(site, patient_id)
    assert len(enrolments) == 2
    new = enrolments[-1]
    assert (new.anchor_date.isoformat(), new.team_id, new.attending_doctor) == (anchor, team_id, "王医生")
    row = page.locator(f"#enrolment-table tr[data-enrolment-id='{new.id}']")
    await expect(row.locator("td").first).to_have_text("周**")  # the masked name
    await expect(row).to_contain_text(PLAN["name"])
    await expect(row).to_contain_text(anchor)
    await expect(row).to_contain_text("王医生")
    await expect(row).to_contain_text("进行中")

    await row.locator("button[data-action=pause]").click()
    await expect(row.locator(".enrolment-status")).to_have_text("已暂停")
    await row.locator("button[data-action=resume]").click()
    await expect(row.locator(".enrolment-status")).to_have_text("进行中")
    await row.locator("button[data-action=stop]").click()
    await page.locator("#enrolment-stop-reason").select_option("readmitted")
    await page.locator("#enrolment-stop-note").fill("因胆漏再次入院")
    await page.get_by_role("button", name="确认停止").click()
    await expect(row.locator(".enrolment-status")).to_have_text("已停止")
    await expect(row.locator(".enrolment-stop-reason")).to_have_text("再次入院")
    stopped = (await _enrolments(site, patient_id))[-1]
    assert (stopped.status, stopped.stop_reason) == ("stopped", "readmitted")

    await page.locator("#enrolment-status").select_option("stopped")
    await expect(row).to_be_visible()
    await expect(
        page.locator(f"#enrolment-table tr[data-enrolment-id='{known.enrolment_id}']")
    ).to_have_count(0)

    later = (date.today() - timedelta(days=1)).isoformat()
    csv = (
        "patient_id,plan_code,anchor_date,team_id\n"
        f"{patient_id},{PLAN['code']},{later},{team_id}\n"
        f"2000000,{PLAN['code']},{later},{team_id}\n"
    )
    await page.locator("#enrol-csv-open").click()
    await page.locator("#enrol-csv-file").set_input_files(
        files=[{"name": "enrol.csv", "mimeType": "text/csv", "buffer": csv.encode()}]
    )
    await page.locator("#enrol-csv-form").get_by_role("button", name="上传").click()
    # A patient she may not open, or one that does not exist: the same refusal, naming the line.
    await expect(page.locator("#enrol-csv-result")).to_have_text(
        "上传失败（403）：第 3 行的患者不在您可查看的范围内（或不存在），不能入组；没有入组任何患者"
    )
    assert len(await _enrolments(site, patient_id)) == 2  # the good row was not enrolled either
    async with site.runtime.db.sessions() as session:
        assert await session.scalar(select(func.count(FollowupEnrolment.id))) == 2
    assert page_problems.errors == [] and await page_problems.csp_violations(page) == []
