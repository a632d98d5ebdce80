"""Refused accesses to patient data leave an audit row, although the request itself fails."""

from __future__ import annotations

from typing import Any

import httpx
import sqlalchemy as sa
from fastapi import FastAPI

from crm_backend.escalations.models import Escalation
from crm_backend.runtime import Runtime
from tests.patients.conftest import make_family, make_team
from tests.support.api import staff_client


async def _denials_seen_by_a_supervisor(
    app: FastAPI, admin_client: httpx.AsyncClient, staff_id: int
) -> list[dict[str, Any]]:
    """The audit log as the supervisors' API shows it, for one staff member."""
    async with staff_client(app, admin_client, "supervisor", []) as (_, supervisor):
        response = await supervisor.get("/api/console/audit", params={"staff_id": staff_id})
    assert response.status_code == 200, response.text
    return [row for row in response.json() if row["action"].endswith(".denied")]


async def test_another_teams_conversation_refused_and_audited(
    app: FastAPI, runtime: Runtime, admin_client: httpx.AsyncClient
):
    theirs = await make_family(runtime, await make_team(runtime))
    async with runtime.db.sessions() as session:
        escalation_id = await session.scalar(
            sa.select(Escalation.id).where(Escalation.conversation_id == theirs.conversation_id)
        )
    conversation = f"/api/console/conversations/{theirs.conversation_id}"
    async with staff_client(app, admin_client, "agent", [await make_team(runtime)]) as (agent, client):
        viewed = await client.get(conversation)
        replied = await client.post(f"{conversation}/messages", json={"text": "您好"})
        claimed = await client.post(f"/api/console/escalations/{escalation_id}/claim")
    assert [viewed.status_code, replied.status_code, claimed.status_code] == [403, 403, 403]
    assert viewed.json() == {"detail": "this conversation belongs to another team"}

    rows = await _denials_seen_by_a_supervisor(app, admin_client, agent["id"])
    by_action = {row["action"]: row for row in rows}
    assert set(by_action) == {
        "conversation.view.denied",
        "conversation.reply.denied",
        "escalation.claim.denied",
    }
    view = by_action["conversation.view.denied"]
    assert (view["staff_id"], view["object_type"], view["object_id"], view["patient_id"]) == (
        agent["id"],
        "conversation",
        str(theirs.conversation_id),
        theirs.patient_id,
    )
    assert view["ip"] and view["ip"].startswith("10.0.")
    claim = by_action["escalation.claim.denied"]
    assert (claim["object_id"], claim["patient_id"]) == (str(escalation_id), theirs.patient_id)


async def test_a_patient_out_of_reach_refused_and_audited(
    app: FastAPI, runtime: Runtime, admin_client: httpx.AsyncClient
):
    theirs = await make_family(runtime, await make_team(runtime))
    ours = await make_family(runtime, await make_team(runtime))
    patient = f"/api/console/patients/{theirs.patient_id}"
    async with staff_client(app, admin_client, "agent", [ours.team_id]) as (agent, client):
        panel = await client.get(patient)
        full = await client.get(f"{patient}/360")
        reveal = await client.get(f"/api/console/patients/{ours.patient_id}/360", params={"reveal": "true"})
        allowed = await client.get(f"/api/console/patients/{ours.patient_id}")
    assert [panel.status_code, full.status_code, reveal.status_code, allowed.status_code] == [
        403,
        403,
        403,
        200,
    ]

    rows = await _denials_seen_by_a_supervisor(app, admin_client, agent["id"])
    seen = sorted((row["action"], row["object_type"], row["object_id"], row["patient_id"]) for row in rows)
    assert seen == sorted(
        [
            ("patient.view.denied", "patient", str(theirs.patient_id), theirs.patient_id),
            ("patient.view.denied", "patient", str(theirs.patient_id), theirs.patient_id),
            ("patient.reveal.denied", "patient", str(ours.patient_id), ours.patient_id),
        ]
    )
    assert all(row["staff_id"] == agent["id"] and row["ip"] for row in rows)


async def test_an_agent_asking_for_the_audit_log_is_refused_and_audited(
    app: FastAPI, runtime: Runtime, admin_client: httpx.AsyncClient
):
    """The log names who looked at which patient: asking for it without the role is recorded too."""
    ours = await make_family(runtime, await make_team(runtime))
    async with staff_client(app, admin_client, "agent", [ours.team_id]) as (agent, client):
        answer = await client.get("/api/console/audit", params={"patient_id": ours.patient_id})
    assert answer.status_code == 403

    [row] = await _denials_seen_by_a_supervisor(app, admin_client, agent["id"])
    assert (row["action"], row["object_type"], row["object_id"]) == (
        "role.check.denied",
        "endpoint",
        "/api/console/audit",
    )
