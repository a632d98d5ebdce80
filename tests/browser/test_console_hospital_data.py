"""The 医院资料 view: supervisors and admins edit a department's triage description and terms and the
hospital information answers in the console; an agent never sees the tab. The API is routed in the
page (its shapes as in docs/CONSOLE_API.md), so what is checked here is what the page sends and shows."""

from __future__ import annotations

import json
from typing import Any

from playwright.async_api import Page, Request, Route, expect

from tests.browser.conftest import PageProblems

DEPARTMENTS = [
    {
        "id": 3,
        "code": "GI",
        "name": "消化内科",
        "patient_name": "消化内科",
        "aliases": ["肠胃科"],
        "description": "胃、肠、肝胆不舒服看这里。",
        "symptom_terms": [{"term": "腹痛/肚子…疼", "weight": 2.0}, {"term": "拉肚子", "weight": 1.0}],
        "min_age_years": None,
        "max_age_years": None,
        "sex": None,
    },
    {
        "id": 4,
        "code": "DERM",
        "name": "皮肤科",
        "patient_name": "皮肤科",
        "aliases": [],
        "description": "皮疹、瘙痒看这里。",
        "symptom_terms": [{"term": "皮疹", "weight": 1.0}],
        "min_age_years": None,
        "max_age_years": None,
        "sex": None,
    },
]
INFO = [
    {"key": "parking", "title": "停车", "keywords": ["停车", "车位"], "answer": "地下车库可停车。"},
    {"key": "hours", "title": "门诊时间", "keywords": ["几点"], "answer": "门诊 8:00 开始。"},
]


def _me(role: str) -> dict[str, Any]:
    return {
        "id": 1,
        "username": role,
        "display_name": {"admin": "李管理", "agent": "张客服"}[role],
        "role": role,
        "teams": [{"id": 1, "name": "护理咨询"}],
        "presence": "online",
        "capacity": 5,
        "csrf_token": "csrf-1",
    }


class FakeApi:
    """The console API as the page sees it; keeps what was saved and every request body sent."""

    def __init__(self, role: str) -> None:
        self.me = _me(role)
        self.departments = json.loads(json.dumps(DEPARTMENTS))
        self.info = json.loads(json.dumps(INFO))
        self.sent: list[tuple[str, str, Any]] = []

    async def __call__(self, route: Route, request: Request) -> None:
        path = request.url.split("/api/console", 1)[1].split("?")[0]
        body = request.post_data_json if request.post_data else None
        self.sent.append((request.method, path, body))
        if path == "/me":
            await route.fulfill(json=self.me)
        elif path == "/queues":
            await route.fulfill(json=[])
        elif path in ("/canned-replies", "/labels"):
            await route.fulfill(json=[])
        elif path == "/directory":
            await route.fulfill(json={"teams": self.me["teams"], "staff": []})
        elif path == "/departments" and request.method == "GET":
            await route.fulfill(json=self.departments)
        elif path.startswith("/departments/") and request.method == "PATCH":
            await self._patch_department(route, int(path.rsplit("/", 1)[1]), body)
        elif path == "/departments/triage-preview":
            await route.fulfill(
                json={
                    "departments": [{"code": "GI", "name": "消化内科", "score": 2.0, "matched": ["肚子疼"]}],
                    "reason": "您说的肚子疼多由消化内科诊治",
                    "level": "routine",
                    "advice": "",
                    "close": "",
                    "question": None,
                    "understood": True,
                    "version": "t1",
                    "age_years": None,
                    "sex": None,
                    "pregnant": None,
                }
            )
        elif path == "/hospital-info" and request.method == "GET":
            await route.fulfill(json=self.info)
        elif path.startswith("/hospital-info/") and request.method == "PUT":
            entry = next(e for e in self.info if e["key"] == path.rsplit("/", 1)[1])
            entry.update(body)
            await route.fulfill(json=entry)
        else:
            await route.fulfill(status=404, json={"detail": "not found"})

    async def _patch_department(self, route: Route, department_id: int, body: dict[str, Any]) -> None:
        terms = [t["term"] for t in body["symptom_terms"]]
        twice = sorted({t for t in terms if terms.count(t) > 1})
        if twice:  # the server's answer for a term listed twice (crm_backend/app.py _bad_request)
            await route.fulfill(
                status=400,
                json={
                    "detail": "invalid request",
                    "errors": [
                        {
                            "loc": ["body", "symptom_terms"],
                            "msg": f"Value error, terms listed twice: {twice[0]}",
                        }
                    ],
                },
            )
            return
        department = next(d for d in self.departments if d["id"] == department_id)
        department.update(body)
        await route.fulfill(json=department)


async def _open_as(page: Page, server: str, role: str) -> FakeApi:
    fake = FakeApi(role)
    await page.route("**/api/console/**", fake)
    await page.route_web_socket("**/api/console/ws*", lambda ws: None)
    await page.goto(f"{server}/console")
    await expect(page.locator("#me-name")).to_have_text(fake.me["display_name"])
    return fake


async def test_an_admin_edits_a_department_and_a_hospital_answer(
    page: Page, page_problems: PageProblems, console_only_server: str
) -> None:
    fake = await _open_as(page, console_only_server, "admin")
    await page.locator("#tab-hospital").click()
    form = page.locator("#dept-form")
    await expect(page.locator("#dept-select")).to_have_value("3")
    await expect(form.locator("textarea[name=symptom_terms]")).to_have_value("腹痛/肚子…疼 2\n拉肚子")

    # A term listed twice: the server refuses, and the page says why in Chinese.
    await form.locator("textarea[name=symptom_terms]").fill("腹痛/肚子…疼 2\n拉肚子\n拉肚子 3")
    await form.get_by_role("button", name="保存科室").click()
    await expect(page.locator("#dept-msg")).to_have_text("保存失败：症状词：症状词重复：拉肚子")
    assert fake.departments[0]["symptom_terms"] == DEPARTMENTS[0]["symptom_terms"]

    # Another department, then back: the new description and terms are saved and shown.
    await page.locator("#dept-select").select_option("4")
    await expect(form.locator("textarea[name=description]")).to_have_value("皮疹、瘙痒看这里。")
    await page.locator("#dept-select").select_option("3")
    await form.locator("textarea[name=description]").fill("肚子疼、拉肚子、反酸烧心看消化内科。")
    await form.locator("textarea[name=symptom_terms]").fill("腹痛/肚子…疼 2\n拉肚子\n反酸 1.5")
    await form.get_by_role("button", name="保存科室").click()
    await expect(page.locator("#dept-msg")).to_have_text("已保存：消化内科")
    assert (
        "PATCH",
        "/departments/3",
        {
            "description": "肚子疼、拉肚子、反酸烧心看消化内科。",
            "symptom_terms": [
                {"term": "腹痛/肚子…疼", "weight": 2},
                {"term": "拉肚子", "weight": 1},
                {"term": "反酸", "weight": 1.5},
            ],
        },
    ) in fake.sent
    await page.locator(".view-tab[data-view=workspace]").click()
    await page.locator("#tab-hospital").click()
    await expect(form.locator("textarea[name=description]")).to_have_value(
        "肚子疼、拉肚子、反酸烧心看消化内科。"
    )
    await expect(form.locator("textarea[name=symptom_terms]")).to_have_value(
        "腹痛/肚子…疼 2\n拉肚子\n反酸 1.5"
    )

    # 试一试: the recommended department is shown.
    await page.locator("#triage-try input[name=text]").fill("肚子疼两天了")
    await page.locator("#triage-try").get_by_role("button", name="看推荐科室").click()
    await expect(page.locator("#triage-try-result")).to_contain_text("消化内科")
    await expect(page.locator("#triage-try-result")).to_contain_text("命中：肚子疼")
    assert ("POST", "/departments/triage-preview", {"text": "肚子疼两天了"}) in fake.sent

    # A hospital information answer.
    parking = page.locator(".info-entry[data-key=parking]")
    await parking.locator("textarea[name=answer]").fill("地下车库 B1、B2 层可停车，前两小时免费。")
    await parking.locator("input[name=keywords]").fill("停车、车位，停车场")
    await parking.get_by_role("button", name="保存").click()
    await expect(page.locator(".toast.ok")).to_contain_text("已保存：停车")
    assert (
        "PUT",
        "/hospital-info/parking",
        {
            "title": "停车",
            "keywords": ["停车", "车位", "停车场"],
            "answer": "地下车库 B1、B2 层可停车，前两小时免费。",
        },
    ) in fake.sent
    await page.locator(".view-tab[data-view=workspace]").click()
    await page.locator("#tab-hospital").click()
    await expect(page.locator(".info-entry[data-key=parking] textarea[name=answer]")).to_have_value(
        "地下车库 B1、B2 层可停车，前两小时免费。"
    )
    await expect(page.locator(".info-entry[data-key=parking] input[name=keywords]")).to_have_value(
        "停车、车位、停车场"
    )
    assert page_problems.errors == []
    assert await page_problems.csp_violations(page) == []


async def test_an_agent_sees_no_hospital_data_tab(
    page: Page, page_problems: PageProblems, console_only_server: str
) -> None:
    fake = await _open_as(page, console_only_server, "agent")
    await expect(page.locator("#tab-hospital")).to_be_hidden()
    await expect(page.locator("#hospital-view")).to_be_hidden()
    assert not [sent for sent in fake.sent if sent[1].startswith(("/departments", "/hospital-info"))]
    assert page_problems.errors == []
