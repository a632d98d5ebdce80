"""The 随访计划 view: a clinician sees the shipped plans, a version's questions with their thresholds
and advice, the version history, writes a plan in the form editor (or JSON) and saves a change as a
new version, and sees the server's refusals in Chinese at the field; an agent never sees the tab.
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
from crm_backend.followups.plan_views import (
    InvalidPlan,
    PlanRead,
    PlanSummary,
    PlanWritten,
    VersionRead,
    _definition,
)
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
        elif path == "/followup-plans" and request.method == "POST":
            await self._store(route, None, body)
        elif path.startswith("/followup-plans/") and request.method == "PUT":
            await self._store(route, self.plans[int(path.rsplit("/", 1)[1])], body)
        else:
            await route.fulfill(status=404, json={"detail": "not found"})

    async def _store(self, route: Route, plan: PlanRead | None, body: Any) -> None:
        """As the server does: the view's own check (a 422 in Chinese), then a new plan or version."""
        try:
            definition = _definition(body)
        except InvalidPlan as invalid:
            refusal = invalid.refusal()
            await route.fulfill(status=refusal.status_code, json=json.loads(bytes(refusal.body)))
            return
        now = datetime.now(UTC)
        version = VersionRead(
            version=plan.versions[0].version + 1 if plan else 1,
            created_at=now,
            created_by_staff_id=self.me["id"],
            definition=definition,
        )
        if plan is None:
            plan = PlanRead(
                id=max(self.plans) + 1,
                code=definition.code,
                name=definition.name,
                active=True,
                created_at=now,
                versions=[],
            )
            self.plans[plan.id] = plan
        plan.versions.insert(0, version)
        status = 201 if version.version == 1 else 200
        await route.fulfill(status=status, json=PlanWritten(plan=plan, changed=True).model_dump(mode="json"))

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
    # Written in the JSON editor (高级：JSON), which the page remembers for the next edit.
    await detail.locator("#plan-edit").click()
    await page.locator("#plan-mode-json").click()
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


async def test_a_clinician_writes_a_plan_in_the_form_and_sees_a_mistake_in_chinese_at_its_field(
    page: Page, page_problems: PageProblems, console_only_server: str
) -> None:
    fake = await _open_as(page, console_only_server, "clinician")
    await page.locator("#tab-plans").click()
    await expect(page.locator("#plans-table tbody tr")).to_have_count(3)
    await page.locator("#plans-new").click()
    form = page.locator("#plan-form")
    await expect(form).to_be_visible()
    await form.get_by_label("计划名称").fill("疝修补术后随访")
    await form.get_by_label("计划代码").fill("hernia_repair")
    await form.get_by_label("名称", exact=True).fill("腹股沟疝修补术")
    await form.get_by_label("编码（ICD-9-CM-3，用、分隔）").fill("53.0、53.1")
    await form.get_by_label("审核说明（谁编写、谁确认了阈值和建议）").fill("王医生编写，待科室确认")

    day1 = form.locator(".pf-point").nth(0)
    await day1.get_by_label("第几天").fill("1")
    # A pain scale: ≥ 4 amber, ≥ 7 red.
    await day1.get_by_role("button", name="＋ 添加问题").click()
    pain = day1.locator(".pf-question").nth(0)
    await pain.get_by_label("问题", exact=True).fill("今天伤口疼几分？0 分不痛，10 分最痛。")
    await pain.get_by_label("代码", exact=True).fill("pain")
    await pain.get_by_role("button", name="＋ 添加规则").click()
    await pain.get_by_role("button", name="＋ 添加规则").click()
    amber, red = pain.locator(".pf-rule").nth(0), pain.locator(".pf-rule").nth(1)
    await amber.get_by_label("≥", exact=True).fill("4")
    await amber.get_by_label("告诉患者（建议）").fill("请按医嘱服止痛药，护士 24 小时内联系您。")
    await red.get_by_label("级别").select_option("red")
    await red.get_by_label("≥", exact=True).fill("7")
    await red.get_by_label("告诉患者（建议）").fill("疼得厉害，护士马上联系您；越来越痛请去急诊。")
    # A yes/no, and a single choice asked only when it is answered 是.
    await day1.get_by_role("button", name="＋ 添加问题").click()
    oozing = day1.locator(".pf-question").nth(1)
    await oozing.get_by_label("问题", exact=True).fill("伤口有渗液吗？")
    await oozing.get_by_label("代码", exact=True).fill("oozing")
    await oozing.get_by_label("类型").select_option("yes_no")
    await day1.get_by_role("button", name="＋ 添加问题").click()
    fluid = day1.locator(".pf-question").nth(2)
    await fluid.get_by_label("问题", exact=True).fill("渗出来的是什么样的？")
    await fluid.get_by_label("代码", exact=True).fill("fluid")
    await fluid.get_by_label("类型").select_option("single_choice")
    choices = fluid.locator(".pf-choice")
    await expect(choices).to_have_count(2)
    await choices.nth(0).get_by_label("选项文字").fill("清亮的水")
    await choices.nth(1).get_by_label("选项文字").fill("像脓一样")
    await fluid.get_by_role("button", name="＋ 添加规则").click()
    pus_rule = fluid.locator(".pf-rule").nth(0)
    await pus_rule.get_by_label("级别").select_option("red")
    await pus_rule.get_by_label("像脓一样").check()
    # A choice's code renamed after a rule chose it: the rule follows.
    await expect(choices.nth(1).get_by_label("代码")).to_have_value("c2")
    await choices.nth(1).get_by_label("代码").fill("pus")
    await pus_rule.get_by_label("告诉患者（建议）").fill("可能感染了，请今天到医院换药。")
    await fluid.get_by_label("仅在前面某题的回答符合时才问").check()
    await expect(fluid.get_by_label("当问题")).to_have_value("1")
    await expect(fluid.get_by_label("当问题").locator("option:checked")).to_have_text("伤口有渗液吗？")
    await expect(fluid.locator("select[data-loc$='enable_when.equals']")).to_have_value("true")
    # The same three questions on day 3: the whole time point copied, then its day set.
    await day1.get_by_role("button", name="复制整个时间点到下一个").click()
    day3 = form.locator(".pf-point").nth(1)
    await expect(day3.locator(".pf-question")).to_have_count(3)
    await day3.get_by_label("第几天").fill("3")

    await page.locator("#plan-editor").get_by_role("button", name="保存").click()
    await expect(page.locator(".toast.ok")).to_contain_text("已保存为 v1")
    created = [body for method, path, body in fake.sent if (method, path) == ("POST", "/followup-plans")]
    assert len(created) == 1
    plan = PlanDefinition.model_validate(created[0])
    assert (plan.code, plan.name, plan.anchor) == ("hernia_repair", "疝修补术后随访", "discharge")
    assert plan.procedures[0].codes == ["53.0", "53.1"]
    assert [point.day for point in plan.time_points] == [1, 3]
    for point in plan.time_points:
        asked = point.questionnaire
        assert [q.code for q in asked.questions] == ["pain", "oozing", "fluid"]
        assert [(r.flag, r.at_least) for r in asked.question("pain").flags] == [("amber", 4), ("red", 7)]
        assert asked.question("fluid").enable_when is not None
        assert asked.question("fluid").enable_when.model_dump(exclude_defaults=True) == {
            "question": "oozing",
            "equals": True,
        }
        assert [c.code for c in asked.question("fluid").choices] == ["c1", "pus"]
        assert asked.question("fluid").flags[0].any_of == ["pus"]
    await expect(page.locator("#plan-title")).to_have_text("疝修补术后随访")
    await expect(page.locator("#plan-version")).to_have_value("1")
    shown_day1 = page.locator("#plan-points .plan-point").first
    await expect(shown_day1.locator("tr[data-question=pain] .plan-rule").nth(1)).to_contain_text(
        "≥ 7 分 → 红色"
    )
    await expect(shown_day1.locator("tr[data-question=fluid]")).to_contain_text(
        "仅当 “伤口有渗液吗？” 答“是”时问"
    )

    # The red pain threshold raised to 8 on day 1: version 2.
    await page.locator("#plan-edit").click()
    pain = form.locator(".pf-point").nth(0).locator(".pf-question[data-question=pain]")
    await expect(pain.locator(".pf-rule").nth(1).get_by_label("≥", exact=True)).to_have_value("7")
    await pain.locator(".pf-rule").nth(1).get_by_label("≥", exact=True).fill("8")
    # And one new question on day 1, copied to day 3 rather than typed again.
    day1 = form.locator(".pf-point").nth(0)
    await day1.get_by_role("button", name="＋ 添加问题").click()
    stool = day1.locator(".pf-question").nth(3)
    await stool.get_by_label("问题", exact=True).fill("今天排便了吗？")
    await stool.get_by_label("代码", exact=True).fill("stool")
    await stool.get_by_label("类型").select_option("yes_no")
    await stool.get_by_role("button", name="复制到下一个时间点").click()
    await expect(
        form.locator(".pf-point").nth(1).locator(".pf-question").nth(3).get_by_label("问题", exact=True)
    ).to_have_value("今天排便了吗？")
    await page.locator("#plan-editor").get_by_role("button", name="保存").click()
    await expect(page.locator(".toast.ok").last).to_contain_text("已保存为 v2")
    puts = [body for method, _, body in fake.sent if method == "PUT"]
    assert len(puts) == 1
    changed = PlanDefinition.model_validate(puts[0])
    assert [[q.code for q in p.questionnaire.questions] for p in changed.time_points] == [
        ["pain", "oozing", "fluid", "stool"]
    ] * 2
    assert [r.at_least for r in changed.time_points[0].questionnaire.question("pain").flags] == [4, 8]
    assert [r.at_least for r in changed.time_points[1].questionnaire.question("pain").flags] == [4, 7]
    await expect(page.locator("#plan-version")).to_have_value("2")
    await expect(shown_day1.locator("tr[data-question=pain] .plan-rule").nth(1)).to_contain_text(
        "≥ 8 分 → 红色"
    )
    await expect(page.locator(".plan-row[data-code=hernia_repair]")).to_contain_text("v2")

    # A temperature whose minimum is above its maximum: refused by the server, said in Chinese at the field.
    await page.locator("#plan-edit").click()
    day3 = form.locator(".pf-point").nth(1)
    await day3.get_by_role("button", name="＋ 添加问题").click()
    temperature = day3.locator(".pf-question").nth(4)
    await temperature.get_by_label("问题", exact=True).fill("今天最高体温多少度？")
    await temperature.get_by_label("类型").select_option("number")
    await temperature.get_by_label("单位").fill("°C")
    await temperature.get_by_label("最小值").fill("42")
    await temperature.get_by_label("最大值").fill("35")
    await page.locator("#plan-editor").get_by_role("button", name="保存").click()
    minimum = temperature.get_by_label("最小值")
    await expect(minimum).to_have_accessible_description("最小值必须小于最大值")
    await expect(minimum).to_have_attribute("aria-invalid", "true")
    await expect(temperature.locator(".pf-problem")).to_have_text(["最小值必须小于最大值"])
    await expect(page.locator("#plan-editor-msg")).to_contain_text("有 1 处需要修改")
    assert len([sent for sent in fake.sent if sent[0] == "PUT"]) == 2
    await expect(page.locator("#plan-version")).to_have_value("2")
    # Put right, it saves as version 3.
    await temperature.get_by_label("最小值").fill("35")
    await temperature.get_by_label("最大值").fill("42")
    await page.locator("#plan-editor").get_by_role("button", name="保存").click()
    await expect(page.locator(".toast.ok").last).to_contain_text("已保存为 v3")

    # In 高级：JSON the problems are listed with where they are; switching back carries the JSON over.
    await page.locator("#plan-edit").click()
    await page.locator("#plan-mode-json").click()
    definition = json.loads(await page.locator("#plan-json").input_value())
    assert [q["code"] for q in definition["time_points"][1]["questionnaire"]["questions"]][-1] == "q1"
    definition["time_points"][0]["day"] = -1
    await page.locator("#plan-json").fill(json.dumps(definition, ensure_ascii=False))
    await page.locator("#plan-editor").get_by_role("button", name="保存").click()
    await expect(page.locator("#plan-editor-msg")).to_contain_text("time_points.0.day：不能小于 0")
    await page.locator("#plan-mode-form").click()
    await expect(form.locator(".pf-point").nth(0).get_by_label("第几天")).to_have_value("-1")
    await page.locator("#plan-editor-cancel").click()
    assert len([sent for sent in fake.sent if sent[0] == "PUT"]) == 4
    assert page_problems.errors == []
    assert await page_problems.csp_violations(page) == []
