"""The 随访计划 view: a clinician sees the shipped plans, a version's questions with their thresholds
and advice, the version history, and saves a change as a new version; an agent never sees the tab.
The API is routed in the page with answers built from the shipped plans in the API's own models
(crm_backend/followups/plan_views.py), so what is checked is what the page sends and shows."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from playwright.async_api import Page, Request, Route, expect

from crm_backend.followups.fhir import plan_bundle, plan_from_fhir
from crm_backend.followups.plan_service import shipped_plans
from crm_backend.followups.plan_views import PlanRead, PlanSummary, PlanWritten, VersionRead
from crm_backend.followups.plans import PlanDefinition
from tests.browser.conftest import PageProblems

SHIPPED_AT = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


def _me(role: str) -> dict[str, Any]:
    return {
        "id": 7,
        "username": role,
        "display_name": {"clinician": "王医生", "agent": "张客服", "nurse": "刘护士"}[role],
        "role": role,
        "teams": [{"id": 1, "name": "普外科护理"}],
        "presence": "online",
        "capacity": 5,
        "csrf_token": "csrf-1",
    }


class FakePlansApi:
    """The console API as the page sees it: the three shipped plans at version 1."""

    def __init__(self, role: str) -> None:
        self.me = _me(role)
        self.plans = {
            index: PlanRead(
                id=index,
                code=definition.code,
                name=definition.name,
                active=True,
                created_at=SHIPPED_AT,
                versions=[
                    VersionRead(
                        version=1, created_at=SHIPPED_AT, created_by_staff_id=None, definition=definition
                    )
                ],
            )
            for index, definition in enumerate(shipped_plans(), start=1)
        }
        self.sent: list[tuple[str, str, Any]] = []

    def _summary(self, plan: PlanRead) -> dict[str, Any]:
        newest = plan.versions[0]
        return PlanSummary(
            id=plan.id,
            code=plan.code,
            name=plan.name,
            active=plan.active,
            current_version=newest.version,
            procedures=[p.text for p in newest.definition.procedures],
            days=[point.day for point in newest.definition.time_points],
            review_note=newest.definition.review_note,
            updated_at=newest.created_at,
        ).model_dump(mode="json")

    async def __call__(self, route: Route, request: Request) -> None:
        path = request.url.split("/api/console", 1)[1].split("?")[0]
        body = request.post_data_json if request.post_data else None
        self.sent.append((request.method, path, body))
        if path == "/me":
            await route.fulfill(json=self.me)
        elif path in ("/queues", "/canned-replies", "/labels"):
            await route.fulfill(json=[])
        elif path == "/directory":
            await route.fulfill(json={"teams": self.me["teams"], "staff": []})
        elif path == "/followup-plans" and request.method == "GET":
            await route.fulfill(json=[self._summary(plan) for plan in self.plans.values()])
        elif path == "/followup-plans/import-fhir" and request.method == "POST":
            await self._import(route, body)
        elif path.startswith("/followup-plans/") and request.method == "GET":
            await route.fulfill(json=self.plans[int(path.rsplit("/", 1)[1])].model_dump(mode="json"))
        elif path.startswith("/followup-plans/") and request.method == "PUT":
            plan = self.plans[int(path.rsplit("/", 1)[1])]
            version = VersionRead(
                version=plan.versions[0].version + 1,
                created_at=datetime.now(UTC),
                created_by_staff_id=self.me["id"],
                definition=PlanDefinition.model_validate(body),
            )
            plan.versions.insert(0, version)
            await route.fulfill(json=PlanWritten(plan=plan, changed=True).model_dump(mode="json"))
        else:
            await route.fulfill(status=404, json={"detail": "not found"})

    async def _import(self, route: Route, body: Any) -> None:
        """As the server does: read the FHIR with crm_backend.followups.fhir, store version 1."""
        definition = plan_from_fhir(body)
        plan = PlanRead(
            id=max(self.plans) + 1,
            code=definition.code,
            name=definition.name,
            active=True,
            created_at=datetime.now(UTC),
            versions=[
                VersionRead(
                    version=1,
                    created_at=datetime.now(UTC),
                    created_by_staff_id=self.me["id"],
                    definition=definition,
                )
            ],
        )
        self.plans[plan.id] = plan
        await route.fulfill(status=201, json=PlanWritten(plan=plan, changed=True).model_dump(mode="json"))


async def _open_as(page: Page, server: str, role: str) -> FakePlansApi:
    fake = FakePlansApi(role)
    await page.route("**/api/console/**", fake)
    await page.route_web_socket("**/api/console/ws*", lambda ws: None)
    await page.goto(f"{server}/console")
    await expect(page.locator("#me-name")).to_have_text(fake.me["display_name"])
    return fake


async def test_a_clinician_reads_a_plans_thresholds_and_saves_a_new_version(
    page: Page, page_problems: PageProblems, console_only_server: str, tmp_path: Path
) -> None:
    fake = await _open_as(page, console_only_server, "clinician")
    await expect(page.locator("#me-role")).to_contain_text("临床医生")
    await page.locator("#tab-plans").click()
    rows = page.locator("#plans-table tbody tr")
    await expect(rows).to_have_count(3)
    await expect(rows.nth(0)).to_contain_text("腹腔镜胆囊切除术后随访")
    await expect(rows.nth(1)).to_contain_text("全膝关节置换术、全髋关节置换术")
    await expect(rows.nth(1)).to_contain_text("D1 D3 D7 D30 D90")
    await expect(rows.nth(2)).to_contain_text("阑尾切除术后随访")

    await page.locator(".plan-row[data-code=lap_cholecystectomy]").click()
    detail = page.locator("#plan-detail")
    await expect(detail.locator("#plan-procedures")).to_contain_text("腹腔镜胆囊切除术")
    await expect(detail.locator("#plan-procedures")).to_contain_text("ICD-9-CM-3 51.23")
    await expect(detail.locator("#plan-note")).to_contain_text("须由临床医生确认")
    day1 = detail.locator(".plan-point").first
    await expect(day1.locator("h4")).to_have_text("第 1 天（出院日后） · 10:00")
    pain = day1.locator("tr[data-question=pain] .plan-rule")
    await expect(pain).to_have_count(2)
    await expect(pain.nth(0)).to_contain_text("≥ 4 分 → 黄色 · 24 小时内护士联系")
    await expect(pain.nth(1)).to_contain_text("≥ 7 分 → 红色 · 护士马上联系")
    fever = day1.locator("tr[data-question=temperature] .plan-rule[data-flag=red]")
    await expect(fever).to_contain_text("≥ 38.5 °C")
    await expect(fever.locator(".plan-advice")).to_contain_text("今天内到医院门诊或急诊就诊")
    await expect(day1.locator("tr[data-question=wound_discharge]")).to_contain_text("仅当")
    await expect(day1.locator("tr[data-question=wound_discharge]")).to_contain_text("发红”或“伤口肿起来了")
    calf = day1.locator("tr[data-question=danger_signs] .plan-rule[data-flag=emergency]").nth(1)
    await expect(calf).to_contain_text("选“一侧小腿肿胀或疼痛” → 急症 · 120 / 急诊")
    await expect(detail.locator("#plan-export")).to_have_attribute(
        "href", "/api/console/followup-plans/1/versions/1/fhir"
    )

    # A stricter fever threshold, saved as version 2; version 1 stays in the history as it was.
    await detail.locator("#plan-edit").click()
    definition = json.loads(await page.locator("#plan-json").input_value())
    rules = definition["time_points"][0]["questionnaire"]["questions"][1]["flags"]
    rules[1]["at_least"] = 38.3
    await page.locator("#plan-json").fill(json.dumps(definition, ensure_ascii=False))
    await page.locator("#plan-editor").get_by_role("button", name="保存").click()
    await expect(page.locator(".toast.ok")).to_contain_text("已保存为 v2")
    assert ("PUT", "/followup-plans/1", definition) in fake.sent
    await expect(page.locator("#plan-version")).to_have_value("2")
    await expect(day1.locator("tr[data-question=temperature] .plan-rule[data-flag=red]")).to_contain_text(
        "≥ 38.3 °C"
    )
    await expect(page.locator(".plan-row[data-code=lap_cholecystectomy]")).to_contain_text("v2")
    await page.locator("#plan-version").select_option("1")
    await expect(day1.locator("tr[data-question=temperature] .plan-rule[data-flag=red]")).to_contain_text(
        "≥ 38.5 °C"
    )
    await expect(detail.locator("#plan-export")).to_have_attribute(
        "href", "/api/console/followup-plans/1/versions/1/fhir"
    )

    # JSON that does not parse is refused on the page, before anything is sent.
    await detail.locator("#plan-edit").click()
    await page.locator("#plan-json").fill('{"code": ')
    await page.locator("#plan-editor").get_by_role("button", name="保存").click()
    await expect(page.locator("#plan-editor-msg")).to_contain_text("不是有效的 JSON")
    assert len([sent for sent in fake.sent if sent[0] == "PUT"]) == 1
    await page.locator("#plan-editor-cancel").click()

    # A plan exported as FHIR elsewhere is imported from a file and becomes a new plan.
    joint = next(plan for plan in shipped_plans() if plan.code == "joint_arthroplasty")
    day_case = joint.model_copy(update={"code": "knee_day_case", "name": "日间膝关节置换术后随访"})
    exported = tmp_path / "knee_day_case.json"
    exported.write_text(json.dumps(plan_bundle(day_case, version=1), ensure_ascii=False), encoding="utf-8")
    await page.locator("#plans-import").set_input_files(exported)
    await expect(page.locator(".toast.ok").last).to_contain_text("已导入：日间膝关节置换术后随访 v1")
    await expect(rows).to_have_count(4)
    await expect(page.locator("#plan-title")).to_have_text("日间膝关节置换术后随访")
    await expect(page.locator("#plan-points .plan-point")).to_have_count(5)
    assert page_problems.errors == []
    assert await page_problems.csp_violations(page) == []


async def test_a_nurse_reads_plans_without_editing_and_an_agent_sees_no_tab(
    page: Page, page_problems: PageProblems, console_only_server: str
) -> None:
    await _open_as(page, console_only_server, "nurse")
    await page.locator("#tab-plans").click()
    await page.locator(".plan-row[data-code=appendectomy]").click()
    await expect(page.locator("#plan-procedures")).to_contain_text("47.01")
    await expect(page.locator("#plan-edit")).to_be_hidden()
    await expect(page.locator("#plans-new")).to_be_hidden()
    await expect(page.locator("#plan-export")).to_be_visible()

    fake = await _open_as(page, console_only_server, "agent")
    await expect(page.locator("#tab-plans")).to_be_hidden()
    assert not [sent for sent in fake.sent if sent[1].startswith("/followup-plans")]
    assert page_problems.errors == []
