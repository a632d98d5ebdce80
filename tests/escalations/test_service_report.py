"""The supervisors' service report: CSAT, response and resolution times per agent and team over a
range of hospital days, as JSON and as a CSV file Excel opens; agents are refused.

Seeded through the console API with a fixed clock (staffed 08:00-20:00 every day, normal SLA 15
minutes), in October 2026, away from the other tests' days. 12 October 2026 is a Monday.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi import FastAPI

from crm_backend.escalations.service import Escalations
from crm_backend.runtime import Runtime
from tests.escalations.conftest import Clock
from tests.support.api import ADMIN_PASSWORD, ADMIN_USERNAME, login, make_staff, new_client

RANGE = {"from": "2026-10-12", "to": "2026-10-18"}
TEAM_A = '门诊,"一组"'  # a comma and quotes: the CSV must quote and escape them
TEAM_B = "护理二组"
EVIL_NAME = '=HYPERLINK("http://evil.example","点我")'


def shanghai(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 10, day, hour, minute, tzinfo=ZoneInfo("Asia/Shanghai")).astimezone(UTC)


@pytest.fixture(scope="module")
async def seeded(app: FastAPI, runtime: Runtime, clock: Clock, new_conversation) -> dict[str, int]:
    async with new_client(app) as admin:
        await login(admin, ADMIN_USERNAME, ADMIN_PASSWORD)
        team_ids = {}
        for name in (TEAM_A, TEAM_B):
            response = await admin.post("/api/console/admin/teams", json={"name": name})
            assert response.status_code in (200, 201), response.text
            team_ids[name] = response.json()["id"]
        jia, jia_password = await make_staff(admin, "agent", [team_ids[TEAM_A]])
        yi, yi_password = await make_staff(admin, "agent", [team_ids[TEAM_B]])
        response = await admin.patch(f"/api/console/admin/staff/{yi['id']}", json={"display_name": EVIL_NAME})
        assert response.status_code == 200, response.text

    escalations = Escalations(runtime)

    async def handle(
        password: str,
        username: str,
        team: str,
        created: datetime,
        answered: datetime | None,
        resolved: datetime | None,
        rating: int | None,
    ) -> int:
        clock.now = created
        conversation_id = await new_conversation()
        escalation = await escalations.escalate(conversation_id, reason="咨询", team=team)
        async with new_client(app) as agent:
            await login(agent, username, password)
            if answered is not None:
                clock.now = answered
                reply = await agent.post(
                    f"/api/console/conversations/{conversation_id}/messages", json={"text": "您好"}
                )
                assert reply.status_code == 201, reply.text
            if resolved is not None:
                clock.now = resolved
                done = await agent.post(f"/api/console/conversations/{conversation_id}/resolve")
                assert done.status_code == 200, done.text
        if rating is not None:
            async with runtime.db.sessions() as session:
                await Escalations.record_rating(session, escalation.id, rating, resolved or created)
                await session.commit()
        return escalation.id

    a, b = (jia_password, jia["username"]), (yi_password, yi["username"])
    # Before the range by ten minutes of hospital time (but the same UTC day as the next one).
    await handle(*a, TEAM_A, shanghai(11, 23, 50), shanghai(12, 8), shanghai(12, 8, 30), 1)
    # 甲: answered in 2 min, resolved in 20 min, rated 5.
    await handle(*a, TEAM_A, shanghai(12, 10), shanghai(12, 10, 2), shanghai(12, 10, 20), 5)
    # 甲: 5 staffed minutes before closing and 5 after the opening (12 h on the wall clock); rated 3.
    await handle(*a, TEAM_A, shanghai(12, 19, 55), shanghai(13, 8, 5), shanghai(13, 8, 15), 3)
    # 乙: at night; answered 20 staffed minutes after the opening (SLA breached), resolved at 09:00; 4.
    await handle(*b, TEAM_B, shanghai(13, 3, 25), shanghai(13, 8, 20), shanghai(13, 9), 4)
    # Nobody answered this one, from ten minutes into the range (breached by now).
    await handle(*b, TEAM_B, shanghai(12, 0, 10), None, None, None)
    # After the range.
    await handle(*b, TEAM_B, shanghai(19, 9), shanghai(19, 9, 1), shanghai(19, 9, 2), 1)
    clock.now = shanghai(20, 12)
    return {"jia": jia["id"], "yi": yi["id"], "team_a": team_ids[TEAM_A], "team_b": team_ids[TEAM_B]}


def _figures(row: dict) -> dict:
    keys = (
        "escalations",
        "responded",
        "resolved",
        "sla_breached",
        "rated",
        "csat_average",
        "csat_satisfied_share",
        "response_seconds_average",
        "resolution_seconds_average",
    )
    return {key: row[key] for key in keys}


async def test_report_figures_per_team_and_agent_in_staffed_time(
    seeded: dict[str, int], admin_client: httpx.AsyncClient
) -> None:
    response = await admin_client.get("/api/console/reports/service", params=RANGE)
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["date_from"] == "2026-10-12" and report["date_to"] == "2026-10-18"
    assert report["time_basis"] == "staffed" and report["time_zone"] == "Asia/Shanghai"
    assert _figures(report["total"]) == {
        "escalations": 4,
        "responded": 3,
        "resolved": 3,
        "sla_breached": 2,
        "rated": 3,
        "csat_average": 4.0,
        "csat_satisfied_share": 0.667,
        "response_seconds_average": 640,
        "resolution_seconds_average": 2000,
    }
    teams = {row["team"]["name"]: _figures(row) for row in report["teams"]}
    assert teams == {
        TEAM_A: {
            "escalations": 2,
            "responded": 2,
            "resolved": 2,
            "sla_breached": 0,
            "rated": 2,
            "csat_average": 4.0,
            "csat_satisfied_share": 0.5,
            "response_seconds_average": 360,
            "resolution_seconds_average": 1200,
        },
        TEAM_B: {
            "escalations": 2,
            "responded": 1,
            "resolved": 1,
            "sla_breached": 2,
            "rated": 1,
            "csat_average": 4.0,
            "csat_satisfied_share": 1.0,
            "response_seconds_average": 1200,
            "resolution_seconds_average": 3600,
        },
    }
    agents = {row["agent"]["id"]: row for row in report["agents"]}
    assert set(agents) == {seeded["jia"], seeded["yi"]}  # the unanswered chat has no agent
    assert _figures(agents[seeded["jia"]]) == teams[TEAM_A]
    assert [t["name"] for t in agents[seeded["jia"]]["teams"]] == [TEAM_A]
    assert agents[seeded["yi"]]["agent"]["display_name"] == EVIL_NAME
    assert _figures(agents[seeded["yi"]]) == {**teams[TEAM_B], "escalations": 1, "sla_breached": 1}


async def test_csv_opens_in_excel_with_chinese_quoting_and_no_formulas(
    seeded: dict[str, int], admin_client: httpx.AsyncClient
) -> None:
    response = await admin_client.get("/api/console/reports/service.csv", params=RANGE)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == (
        'attachment; filename="service-report_2026-10-12_2026-10-18.csv"'
    )
    assert response.content.startswith(b"\xef\xbb\xbf")  # the BOM that tells Excel it is UTF-8
    text = response.content.decode("utf-8")[1:]
    assert '"门诊,""一组"""' in text  # quoted, inner quotes doubled
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:4] == ["范围", "团队", "坐席", "会话数"]
    assert rows[1] == ["合计", "", "", "4", "3", "3", "2", "3", "4.00", "66.7%", "10.7", "33.3"]
    assert ["团队", TEAM_A, "", "2", "2", "2", "0", "2", "4.00", "50.0%", "6.0", "20.0"] in rows
    agent_rows = [row for row in rows if row[0] == "坐席"]
    assert ["坐席", TEAM_B, "'" + EVIL_NAME, "1", "1", "1", "1", "1", "4.00", "100.0%", "20.0", "60.0"] in (
        agent_rows
    )
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)


async def test_agents_are_refused_the_report(
    seeded: dict[str, int], app: FastAPI, admin_client: httpx.AsyncClient
) -> None:
    staff, password = await make_staff(admin_client, "agent", [seeded["team_a"]])
    async with new_client(app) as agent:
        await login(agent, staff["username"], password)
        assert (await agent.get("/api/console/reports/service", params=RANGE)).status_code == 403
        assert (await agent.get("/api/console/reports/service.csv", params=RANGE)).status_code == 403


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"from": "2026-10-18", "to": "2026-10-12"}, 400),
        ({"from": "2025-01-01", "to": "2026-10-12"}, 400),
        ({"from": "yesterday", "to": "2026-10-12"}, 400),
        ({"from": "2026-10-01", "to": "9999-12-31"}, 400),
        ({"from": "0001-01-01", "to": "0001-01-01"}, 400),
    ],
)
async def test_a_bad_range_is_refused_clearly(
    admin_client: httpx.AsyncClient, params: dict[str, str], status: int
) -> None:
    response = await admin_client.get("/api/console/reports/service", params=params)
    assert response.status_code == status, response.text
    assert response.json()["detail"]
