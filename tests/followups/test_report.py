"""The follow-up report over hand-made rows whose right figures are known, on SQLite and PostgreSQL.

Range 1-10 November 2026 (hospital days); the report is read on 20 November at noon. Team A, plan
LC: 甲 (discharged 1 Nov; answered in chat, on the page and by phone: one admission, three contacts),
乙 (discharged 10 Nov, the range's last day; missed, then a call reached them), 丙 (discharged 31 Oct,
outside the range, yet its day-1 check-in on 1 Nov is due inside it: red, contacted 20 minutes
later), 丁 (discharged 9 Nov; red on the page, nobody has called yet). Team B, plan TKA: 戊 (missed
twice, a call that did not reach them, lost to follow-up), 己 (stopped: deceased; check-in skipped),
庚 (emergency in chat, a call reached them an hour later), 辛 (a check-in due at 23:30 on the last
day, still inside its answer window).
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import httpx
import pytest
import redis
import sqlalchemy as sa
from fastapi import FastAPI

from crm_backend.audit.models import AuditEntry
from crm_backend.followups.report import nearest_rank
from crm_backend.followups.report_views import router as followup_report_router
from crm_backend.patients.models import Patient
from crm_backend.runtime import Runtime
from crm_backend.staff.audit_views import router as audit_router
from crm_backend.staff.models import Staff, Team
from crm_backend.staff.views import router as staff_router
from tests.followups.report_seed import answer, call, checkin, enrol, make_plan, shanghai
from tests.support.api import (
    ADMIN_PASSWORD,
    ADMIN_USERNAME,
    api_settings,
    build_api_app,
    login,
    new_client,
    staff_client,
)
from tests.support.postgres import database_at_head

REDIS_URL = os.environ.get("TEST_REDIS_BASE", "redis://127.0.0.1:6379") + "/8"
DB_NAME = os.environ.get("TEST_POSTGRES_DB", "carebridge_test") + "_followup_report"
RANGE = {"from": "2026-11-01", "to": "2026-11-10"}
NOW = shanghai(date(2026, 11, 20), 12)
TEAM_A = "普外科护理组"
TEAM_B = "=骨科护理组"  # a formula-looking name: the CSV must keep it as text


def nov(day: int) -> date:
    return date(2026, 11, day)


@dataclass
class Seeded:
    team_a: int
    team_b: int
    plan_lc: int
    plan_tka: int


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path_factory) -> AsyncIterator[str]:
    async with database_at_head(request.param, DB_NAME, tmp_path_factory.mktemp("followup_report")) as url:
        yield url


@pytest.fixture(scope="module")
async def runtime(database_url: str) -> AsyncIterator[Runtime]:
    redis.Redis.from_url(REDIS_URL).flushdb()
    runtime = Runtime.create(api_settings(database_url, REDIS_URL))
    runtime.clock = lambda: NOW
    yield runtime
    await runtime.close()


@pytest.fixture(scope="module")
async def app(runtime: Runtime) -> FastAPI:
    return await build_api_app(runtime, staff_router, audit_router, followup_report_router)


@pytest.fixture
async def admin_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with new_client(app) as client:
        await login(client, ADMIN_USERNAME, ADMIN_PASSWORD)
        yield client


@pytest.fixture(scope="module")
async def seeded(app: FastAPI, runtime: Runtime) -> Seeded:
    async with runtime.db.sessions() as s:
        nurse = await s.scalar(sa.select(Staff.id).where(Staff.username == ADMIN_USERNAME))
        assert nurse is not None
        a, b = Team(name=TEAM_A), Team(name=TEAM_B)
        s.add_all([a, b])
        await s.flush()
        lc = await make_plan(s, "lc", "腹腔镜胆囊切除术后随访")
        tka = await make_plan(s, "tka", "膝关节置换术后随访")

        async def patient() -> int:
            row = Patient()
            s.add(row)
            await s.flush()
            return row.id

        # 甲: three contacts, one admission.
        jia = await enrol(s, lc, patient_id=await patient(), team_id=a.id, discharged_on=nov(1))
        c = await checkin(s, jia, 0, due_at=shanghai(nov(2), 10), status="answered", started_via="chat",
                          channel="chat", answered_at=shanghai(nov(2), 10, 20),
                          worst_flag="green")  # fmt: skip
        await answer(s, c, "pain", 3, "green", channel="chat")
        c = await checkin(s, jia, 1, due_at=shanghai(nov(4), 10), status="answered", started_via="template",
                          channel="page", answered_at=shanghai(nov(4), 18), worst_flag="amber")  # fmt: skip
        await answer(s, c, "pain", 5, "amber", channel="page")
        c = await checkin(s, jia, 2, due_at=shanghai(nov(8), 10), status="answered", started_via="chat",
                          channel="phone", answered_at=shanghai(nov(9), 15), worst_flag="green")  # fmt: skip
        await call(s, c, nurse, reached=True, at=shanghai(nov(9), 15))
        # 乙: discharged on the range's last day; reached by phone after missing day 1 (due outside).
        yi = await enrol(s, lc, patient_id=await patient(), team_id=a.id, discharged_on=nov(10))
        c = await checkin(s, yi, 0, due_at=shanghai(nov(11), 0, 30), status="missed", started_via="chat")
        await call(s, c, nurse, reached=True, at=shanghai(nov(14), 9))
        # 丙: discharged the day before the range; its red check-in is due inside it.
        bing = await enrol(s, lc, patient_id=await patient(), team_id=a.id, discharged_on=date(2026, 10, 31))
        await checkin(s, bing, 0, due_at=shanghai(nov(1), 10), status="answered", started_via="chat",
                      channel="chat", answered_at=shanghai(nov(1), 10, 30), worst_flag="red",
                      first_contact_at=shanghai(nov(1), 10, 50))  # fmt: skip
        # 丁: red on the page, no contact yet.
        ding = await enrol(s, lc, patient_id=await patient(), team_id=a.id, discharged_on=nov(9))
        await checkin(s, ding, 0, due_at=shanghai(nov(10), 10), status="answered", started_via="template",
                      channel="page", answered_at=shanghai(nov(10), 10, 10), worst_flag="red")  # fmt: skip
        # 戊: never reached; lost to follow-up.
        wu = await enrol(s, tka, patient_id=await patient(), team_id=b.id, discharged_on=nov(5), lost=True)
        c = await checkin(s, wu, 0, due_at=shanghai(nov(6), 10), status="missed", started_via="template")
        await call(s, c, nurse, reached=False, at=shanghai(nov(9), 9))
        await checkin(s, wu, 1, due_at=shanghai(nov(8), 10), status="missed", started_via="chat")
        # 己: stopped (deceased) before the first check-in.
        ji = await enrol(s, tka, patient_id=await patient(), team_id=b.id, discharged_on=nov(6),
                         status="stopped", stop_reason="deceased")  # fmt: skip
        await checkin(s, ji, 0, due_at=shanghai(nov(7), 10), status="skipped")
        # 庚: emergency in chat; a call reached them an hour later.
        geng = await enrol(s, tka, patient_id=await patient(), team_id=b.id, discharged_on=nov(8))
        c = await checkin(s, geng, 0, due_at=shanghai(nov(9), 10), status="answered", started_via="chat",
                          channel="chat", answered_at=shanghai(nov(9), 10, 5),
                          worst_flag="emergency")  # fmt: skip
        await call(s, c, nurse, reached=False, at=shanghai(nov(9), 10, 35))
        await call(s, c, nurse, reached=True, at=shanghai(nov(9), 11, 5))
        # 辛: due at 23:30 on the range's last day, still inside its window at the report's time.
        xin = await enrol(s, tka, patient_id=await patient(), team_id=b.id, discharged_on=nov(9))
        await checkin(s, xin, 0, due_at=shanghai(nov(10), 23, 30), status="started", started_via="template",
                      window_days=11)  # fmt: skip
        await s.commit()
        return Seeded(a.id, b.id, lc.plan_id, tka.plan_id)


def _channels(figures: dict[str, Any]) -> dict[str, tuple[int, int, float | None]]:
    return {
        row["channel"]: (row["offered"], row["responded"], row["rate"])
        for row in figures["response"]["channels"]
    }


async def test_every_figure_of_the_range(seeded: Seeded, admin_client: httpx.AsyncClient) -> None:
    response = await admin_client.get("/api/console/reports/followup", params=RANGE)
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["date_from"], report["date_to"], report["time_zone"]) == (
        "2026-11-01",
        "2026-11-10",
        "Asia/Shanghai",
    )
    assert "Discharges that were never enrolled are unknown to CareBridge" in report["coverage_basis"]
    total = report["total"]
    # 甲 乙 丁 戊 己 庚 辛 were discharged in the range (丙 was not); 甲's three contacts count once,
    # 乙's reached call counts, 戊's unreached call does not.
    assert total["coverage"] == {"discharged": 7, "followed_up": 4, "rate": 0.571}
    response_figures = {k: v for k, v in total["response"].items() if k != "channels"}
    assert response_figures == {
        "due": 10,
        "skipped": 1,
        "awaiting": 1,
        "responded": 6,
        "unanswered": 2,
        "rate": 0.75,
    }
    assert _channels(total) == {"chat": (5, 3, 0.375), "page": (4, 2, 0.25), "phone": (3, 1, 0.125)}
    # 丙 20 minutes, 庚 60 minutes (the first call that reached them), 丁 not yet.
    assert total["flag_contact"] == {
        "flagged": 3,
        "red": 2,
        "emergency": 1,
        "contacted": 2,
        "without_contact": 1,
        "median_seconds": 2400,
        "p90_seconds": 3600,
    }
    assert total["flags"] == {
        "answered": 6,
        "green": 2,
        "amber": 1,
        "red": 2,
        "emergency": 1,
        "green_share": 0.333,
        "amber_share": 0.167,
        "red_share": 0.333,
        "emergency_share": 0.167,
    }
    lost = total["lost_to_followup"]
    assert (lost["lost"], lost["rate"], lost["stopped"]) == (1, 0.143, 1)
    assert {row["reason"]: row["count"] for row in lost["stopped_by_reason"]} == {
        "readmitted": 0,
        "deceased": 1,
        "opted_out": 0,
        "other": 0,
    }
    teams = {row["team"]["name"]: row for row in report["teams"]}
    assert teams[TEAM_A]["coverage"] == {"discharged": 3, "followed_up": 3, "rate": 1.0}
    assert teams[TEAM_B]["coverage"] == {"discharged": 4, "followed_up": 1, "rate": 0.25}
    plans = {row["plan"]["code"]: row["flags"] for row in report["plans"]}
    assert (plans["lc"]["answered"], plans["lc"]["green_share"], plans["lc"]["red_share"]) == (5, 0.4, 0.4)
    assert (plans["tka"]["answered"], plans["tka"]["emergency_share"]) == (1, 1.0)


async def test_a_red_answer_then_silence_counts_from_the_red_answer(
    seeded: Seeded, runtime: Runtime, admin_client: httpx.AsyncClient
) -> None:
    """Answered only in part and then missed: the red answer was escalated when it was given, so the
    nurse's time runs from it (October: none of the other tests' ranges)."""
    october = date(2026, 10, 2)
    async with runtime.db.sessions() as s:
        team = Team(name="肝胆外科护理组（部分回答）")
        s.add(team)
        await s.flush()
        plan = await make_plan(s, "lc_partial", "腹腔镜胆囊切除术后随访（部分回答）")
        patient = Patient()
        s.add(patient)
        await s.flush()
        discharged = date(2026, 10, 1)
        enrolment = await enrol(s, plan, patient_id=patient.id, team_id=team.id, discharged_on=discharged)
        row = await checkin(
            s, enrolment, 0, due_at=shanghai(october, 10), status="missed", started_via="chat",
            worst_flag="red", first_contact_at=shanghai(october, 10, 45),
        )  # fmt: skip
        await answer(s, row, "pain", 8, "red", channel="chat")  # at 10:00, then nothing more
        await s.commit()
    response = await admin_client.get(
        "/api/console/reports/followup", params={"from": "2026-10-01", "to": "2026-10-05"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["total"]["flag_contact"] == {
        "flagged": 1,
        "red": 1,
        "emergency": 0,
        "contacted": 1,
        "without_contact": 0,
        "median_seconds": 45 * 60,
        "p90_seconds": 45 * 60,
    }


async def test_one_day_counts_by_hospital_midnight(seeded: Seeded, admin_client: httpx.AsyncClient) -> None:
    """On 10 November: 乙 (discharged that day) is counted; 乙's check-in due at 00:30 on the 11th
    (still the 10th in UTC) is not, 辛's at 23:30 on the 10th (the 10th in UTC too) is."""
    response = await admin_client.get(
        "/api/console/reports/followup", params={"from": "2026-11-10", "to": "2026-11-10"}
    )
    total = response.json()["total"]
    assert total["coverage"] == {"discharged": 1, "followed_up": 1, "rate": 1.0}
    assert (total["response"]["due"], total["response"]["awaiting"], total["response"]["responded"]) == (
        2,
        1,
        1,
    )


async def test_team_and_plan_filters(seeded: Seeded, admin_client: httpx.AsyncClient) -> None:
    by_team = (
        await admin_client.get("/api/console/reports/followup", params={**RANGE, "team_id": seeded.team_b})
    ).json()
    assert by_team["team_id"] == seeded.team_b
    assert by_team["total"]["coverage"] == {"discharged": 4, "followed_up": 1, "rate": 0.25}
    assert [row["team"]["id"] for row in by_team["teams"]] == [seeded.team_b]
    by_plan = (
        await admin_client.get("/api/console/reports/followup", params={**RANGE, "plan_id": seeded.plan_lc})
    ).json()
    assert by_plan["total"]["coverage"] == {"discharged": 3, "followed_up": 3, "rate": 1.0}
    assert by_plan["total"]["flags"]["answered"] == 5
    assert [row["plan"]["code"] for row in by_plan["plans"]] == ["lc"]
    missing = await admin_client.get("/api/console/reports/followup", params={**RANGE, "plan_id": 999_999})
    assert missing.status_code == 404


async def test_nurses_see_their_teams_agents_nothing(
    seeded: Seeded, app: FastAPI, admin_client: httpx.AsyncClient, runtime: Runtime
) -> None:
    async with staff_client(app, admin_client, "nurse", [seeded.team_a]) as (nurse, client):
        own = (await client.get("/api/console/reports/followup", params=RANGE)).json()
        assert own["total"]["coverage"] == {"discharged": 3, "followed_up": 3, "rate": 1.0}
        assert [row["team"]["name"] for row in own["teams"]] == [TEAM_A]
        refused = await client.get(
            "/api/console/reports/followup", params={**RANGE, "team_id": seeded.team_b}
        )
        assert refused.status_code == 403
        csv_refused = await client.get(
            "/api/console/reports/followup.csv", params={**RANGE, "team_id": seeded.team_b}
        )
        assert csv_refused.status_code == 403
    async with staff_client(app, admin_client, "clinician", [seeded.team_b]) as (_, client):
        own = (await client.get("/api/console/reports/followup", params=RANGE)).json()
        assert own["total"]["coverage"] == {"discharged": 4, "followed_up": 1, "rate": 0.25}
    async with staff_client(app, admin_client, "agent", [seeded.team_a]) as (_, client):
        assert (await client.get("/api/console/reports/followup", params=RANGE)).status_code == 403
        assert (await client.get("/api/console/reports/followup.csv", params=RANGE)).status_code == 403
    async with runtime.db.sessions() as session:
        entries = (
            await session.execute(
                sa.select(AuditEntry.action, AuditEntry.object_type, AuditEntry.detail)
                .where(AuditEntry.staff_id == nurse["id"], AuditEntry.action.like("followup.%"))
                .order_by(AuditEntry.id)
            )
        ).all()
    assert [(action, kind) for action, kind, _ in entries] == [
        ("followup.report", "report"),
        ("followup.report.denied", "team"),
        ("followup.report.denied", "team"),
    ]
    assert entries[0][2]["from"] == "2026-11-01" and entries[0][2]["format"] == "json"


async def test_csv_opens_in_excel_with_the_same_figures(
    seeded: Seeded, admin_client: httpx.AsyncClient
) -> None:
    response = await admin_client.get("/api/console/reports/followup.csv", params=RANGE)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert (
        response.headers["content-disposition"]
        == 'attachment; filename="followup-report_2026-11-01_2026-11-10.csv"'
    )
    assert response.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8")[1:])))
    header = rows[0]
    total = dict(zip(header, rows[1], strict=True))
    assert total["范围"] == "合计"
    assert (total["出院人数(已登记随访)"], total["已随访人数"], total["出院患者随访比例"]) == (
        "7",
        "4",
        "57.1%",
    )
    assert (total["应答率"], total["微信对话应答率"], total["问卷页面应答率"], total["电话应答率"]) == (
        "75.0%",
        "37.5%",
        "25.0%",
        "12.5%",
    )
    assert (total["首次联系中位数(分钟)"], total["首次联系P90(分钟)"], total["尚未联系"]) == (
        "40.0",
        "60.0",
        "1",
    )
    assert (total["失访人数"], total["失访率"], total["停止:死亡"]) == ("1", "14.3%", "1")
    team_b = next(
        dict(zip(header, row, strict=True)) for row in rows if row[:1] == ["团队"] and "骨科" in row[1]
    )
    assert team_b["名称"] == "'" + TEAM_B
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)
    assert rows[-1][0].startswith("说明：出院人数为")


async def test_the_default_range_is_the_last_thirty_days(
    seeded: Seeded, admin_client: httpx.AsyncClient
) -> None:
    report = (await admin_client.get("/api/console/reports/followup")).json()
    assert (report["date_from"], report["date_to"]) == ("2026-10-22", "2026-11-20")
    assert report["total"]["coverage"]["discharged"] == 8  # every enrolment, 丙 included


@pytest.mark.parametrize(
    "params",
    [
        {"from": "2026-11-10", "to": "2026-11-01"},
        {"from": "2025-01-01", "to": "2026-11-10"},
        {"from": "yesterday", "to": "2026-11-10"},
        {"from": "2026-11-01", "to": "9999-12-31"},
        {"from": "0001-01-01", "to": "0001-01-01"},
        {**RANGE, "team_id": "0"},
        {**RANGE, "plan_id": "many"},
    ],
)
async def test_a_bad_range_or_filter_is_refused_clearly(
    seeded: Seeded, admin_client: httpx.AsyncClient, params: dict[str, str]
) -> None:
    response = await admin_client.get("/api/console/reports/followup", params=params)
    assert response.status_code == 400, response.text
    assert response.json()["detail"]


def test_nearest_rank_percentile() -> None:
    values = [float(v) for v in range(1, 11)]
    assert nearest_rank(values, 0.9) == 9.0
    assert nearest_rank([5.0], 0.9) == 5.0
    assert nearest_rank([30.0, 10.0, 20.0], 0.5) == 20.0
