"""The console API for follow-up plans: who may read and write, versions, FHIR export and import."""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from crm_backend.audit.models import AuditEntry
from crm_backend.followups.plan_service import ensure_shipped_plans
from crm_backend.followups.plan_views import router as plans_router
from crm_backend.runtime import Runtime
from crm_backend.staff.views import router as staff_router
from tests.followups.test_plans import small_plan
from tests.support.api import ADMIN_PASSWORD, ADMIN_USERNAME, build_api_app, login, new_client, staff_client

URL = "/api/console/followup-plans"
_serial = itertools.count(1)


@pytest.fixture(scope="session")
async def app(runtime: Runtime) -> FastAPI:
    async with runtime.db.sessions() as session:
        await ensure_shipped_plans(session)
        await session.commit()
    return await build_api_app(runtime, staff_router, plans_router)


@pytest.fixture
async def admin_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with new_client(app) as client:
        await login(client, ADMIN_USERNAME, ADMIN_PASSWORD)
        yield client


@pytest.fixture
async def clinician(app: FastAPI, admin_client: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    async with staff_client(app, admin_client, "clinician", []) as (_, client):
        yield client


def _code() -> str:
    return f"views_plan_{next(_serial)}"


async def _audit(runtime: Runtime, action: str, object_id: str) -> list[AuditEntry]:
    async with runtime.db.sessions() as session:
        rows = await session.scalars(
            select(AuditEntry).where(AuditEntry.action == action, AuditEntry.object_id == object_id)
        )
        return list(rows)


async def test_a_nurse_reads_the_shipped_plans_and_their_thresholds(
    app: FastAPI, admin_client: httpx.AsyncClient
) -> None:
    async with staff_client(app, admin_client, "nurse", []) as (_, nurse):
        listed = await nurse.get(URL)
        assert listed.status_code == 200, listed.text
        plans = {plan["code"]: plan for plan in listed.json()}
        lc = plans["lap_cholecystectomy"]
        assert "腹腔镜胆囊切除术" in lc["procedures"] and lc["days"] == [1, 3, 7, 30]
        assert plans["joint_arthroplasty"]["days"] == [1, 3, 7, 30, 90]
        detail = (await nurse.get(f"{URL}/{lc['id']}")).json()
    day1 = detail["versions"][0]["definition"]["time_points"][0]["questionnaire"]["questions"]
    pain = next(q for q in day1 if q["code"] == "pain")
    assert [(rule["flag"], rule["at_least"]) for rule in pain["flags"]] == [("amber", 4), ("red", 7)]
    assert detail["versions"][0]["definition"]["procedures"][0]["codes"] == ["51.23"]
    # A nurse may not change a plan.
    async with staff_client(app, admin_client, "nurse", []) as (_, nurse):
        refused = await nurse.post(URL, json=small_plan(_code()))
    assert refused.status_code == 403


async def test_an_agent_is_refused_and_the_refusal_is_audited(
    app: FastAPI, runtime: Runtime, admin_client: httpx.AsyncClient
) -> None:
    async with staff_client(app, admin_client, "agent", []) as (agent, client):
        assert (await client.get(URL)).status_code == 403
        assert (await client.post(URL, json=small_plan(_code()))).status_code == 403
    denied = await _audit(runtime, "role.check.denied", URL)
    assert {row.staff_id for row in denied} >= {agent["id"]}
    assert len([row for row in denied if row.staff_id == agent["id"]]) == 2


async def test_a_clinician_creates_and_changes_a_plan_audited(
    runtime: Runtime, clinician: httpx.AsyncClient
) -> None:
    code = _code()
    created = await clinician.post(URL, json=small_plan(code))
    assert created.status_code == 201, created.text
    plan = created.json()["plan"]
    assert [v["version"] for v in plan["versions"]] == [1]
    changed_body = small_plan(code, name="疝修补术后随访（第二版）")
    changed_body["time_points"][0]["hour"] = 15
    changed = await clinician.put(f"{URL}/{plan['id']}", json=changed_body)
    assert changed.status_code == 200, changed.text
    versions = changed.json()["plan"]["versions"]
    assert [v["version"] for v in versions] == [2, 1]
    assert versions[1]["definition"]["time_points"][0]["hour"] == 10  # version 1 as it was
    assert versions[0]["definition"]["time_points"][0]["hour"] == 15
    me = (await clinician.get("/api/console/me")).json()
    assert (versions[0]["created_by_staff_id"], versions[0]["created_by_name"]) == (
        me["id"],
        me["display_name"],
    )
    assert versions[1]["created_by_name"] == me["display_name"]
    assert changed.json()["plan"]["name"] == "疝修补术后随访（第二版）"
    same = await clinician.put(f"{URL}/{plan['id']}", json=changed_body)
    assert same.json()["changed"] is False and len(same.json()["plan"]["versions"]) == 2
    assert len(await _audit(runtime, "followup_plan.create", str(plan["id"]))) == 1
    [change] = await _audit(runtime, "followup_plan.change", str(plan["id"]))
    assert change.detail == {"code": code, "version": 2, "how": "console"}

    off = await clinician.post(f"{URL}/{plan['id']}/deactivate")
    assert off.status_code == 200 and off.json()["active"] is False
    assert len(await _audit(runtime, "followup_plan.deactivate", str(plan["id"]))) == 1
    duplicate = await clinician.post(URL, json=small_plan(code))
    assert duplicate.status_code == 409


async def test_an_invalid_plan_is_a_422_naming_the_problem(
    runtime: Runtime, clinician: httpx.AsyncClient
) -> None:
    code = _code()
    body = small_plan(code)
    body["time_points"][0]["questionnaire"]["questions"][0]["type"] = "number"
    answer = await clinician.post(URL, json=body)
    assert answer.status_code == 422
    # In Chinese, at the field the plan editor shows it next to.
    assert answer.json()["errors"] == [
        {
            "loc": ["time_points", 0, "questionnaire", "questions", 0, "minimum"],
            "msg": "数值题需要填写最小值和最大值",
            "type": "plan_range_missing",
        }
    ]
    assert "数值题需要填写最小值和最大值" in answer.json()["detail"]
    listed = (await clinician.get(URL)).json()
    assert code not in {plan["code"] for plan in listed}
    assert (
        await clinician.post(URL, content=b"[1, 2", headers={"content-type": "application/json"})
    ).status_code == 400
    assert (await clinician.get(f"{URL}/999999")).status_code == 404
    assert (await clinician.put(f"{URL}/999999", json=small_plan(code))).status_code == 404


async def test_fhir_export_then_import_makes_the_next_version(
    runtime: Runtime, clinician: httpx.AsyncClient
) -> None:
    plans = {plan["code"]: plan for plan in (await clinician.get(URL)).json()}
    lc = plans["lap_cholecystectomy"]
    exported = await clinician.get(f"{URL}/{lc['id']}/versions/{lc['current_version']}/fhir")
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("application/fhir+json")
    assert (
        f'filename="lap_cholecystectomy-v{lc["current_version"]}.json"'
        in exported.headers["content-disposition"]
    )
    bundle = exported.json()
    assert bundle["resourceType"] == "Bundle" and len(bundle["entry"]) == 4

    # A plan code nobody has: a new plan at version 1 (a day-surgery copy of the shipped plan).
    code = _code()
    for resource in (entry["resource"] for entry in bundle["entry"]):
        resource["identifier"][0]["value"] = code
        resource["title"] = "日间腹腔镜胆囊切除术后随访"
    new = await clinician.post(
        f"{URL}/import-fhir", content=json.dumps(bundle), headers={"content-type": "application/fhir+json"}
    )
    assert new.status_code == 201, new.text
    plan = new.json()["plan"]
    assert plan["code"] == code and [v["version"] for v in plan["versions"]] == [1]
    assert (
        plan["versions"][0]["definition"]["time_points"]
        == ((await clinician.get(f"{URL}/{lc['id']}")).json()["versions"][0]["definition"]["time_points"])
    )

    # The same again: nothing new is stored.
    same = await clinician.post(f"{URL}/import-fhir", json=bundle)
    assert same.status_code == 200, same.text
    assert same.json()["changed"] is False

    # A stricter fever threshold, edited in another FHIR tool, comes back as the next version.
    temperature = next(i for i in bundle["entry"][0]["resource"]["item"] if i["linkId"] == "temperature")
    for extension in temperature["extension"]:
        for part in extension.get("extension", []):
            if part == {"url": "atLeast", "valueDecimal": 38.5}:
                part["valueDecimal"] = 38.3
    imported = await clinician.post(f"{URL}/import-fhir", json=bundle)
    assert imported.status_code == 200, imported.text
    versions = imported.json()["plan"]["versions"]
    assert [v["version"] for v in versions] == [2, 1]
    questions = versions[0]["definition"]["time_points"][0]["questionnaire"]["questions"]
    rules = next(q for q in questions if q["code"] == "temperature")["flags"]
    assert ("red", 38.3) in [(rule["flag"], rule["at_least"]) for rule in rules]
    [entry] = await _audit(runtime, "followup_plan.change", str(plan["id"]))
    assert entry.detail == {"code": code, "version": 2, "how": "fhir"}


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (b"{not json", 400, "not JSON"),
        (json.dumps({"resourceType": "Patient"}).encode(), 400, "not 'Patient'"),
        (
            json.dumps({"resourceType": "Questionnaire", "status": "active", "evil": 1}).encode(),
            400,
            "not valid FHIR",
        ),
        (("[" * 100_000).encode(), 400, ""),
    ],
    ids=["not_json", "a_patient", "unknown_field", "deeply_nested"],
)
async def test_malformed_fhir_is_a_400_and_changes_nothing(
    clinician: httpx.AsyncClient, body: bytes, status: int, words: str
) -> None:
    before = (await clinician.get(URL)).json()
    answer = await clinician.post(
        f"{URL}/import-fhir", content=body, headers={"content-type": "application/fhir+json"}
    )
    assert answer.status_code == status, answer.text
    assert words in answer.json()["detail"]
    assert (await clinician.get(URL)).json() == before


async def test_import_of_fhir_that_makes_an_invalid_plan_is_a_422(clinician: httpx.AsyncClient) -> None:
    plans = {plan["code"]: plan for plan in (await clinician.get(URL)).json()}
    appendectomy = plans["appendectomy"]
    bundle = (await clinician.get(f"{URL}/{appendectomy['id']}/versions/1/fhir")).json()
    bundle["entry"][1]["resource"]["extension"][1]["extension"][0]["valueInteger"] = 0  # day 3 → day 0
    answer = await clinician.post(f"{URL}/import-fhir", json=bundle)
    assert answer.status_code == 422
    assert answer.json()["errors"] == [
        {
            "loc": ["time_points", 1, "day"],
            "msg": "各时间点须在不同的天，并按天数从小到大排列",
            "type": "plan_days_order",
        }
    ]
    assert (await clinician.get(f"{URL}/{appendectomy['id']}/versions/99/fhir")).status_code == 404
