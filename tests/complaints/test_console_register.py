"""Registering a case in the console (首诉负责制): the chat intake's key is not the console's, so a
guessed key opens no other case; several departments give the longer deadline at once; the console
learns the caller's scope and the departments to choose from."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from crm_backend.runtime import Runtime
from tests.complaints.support import complainant, registered
from tests.complaints.support_console import department, make_liaison
from tests.support.api import staff_client


async def test_a_chat_intakes_key_sent_from_the_console_registers_a_new_case(
    app: FastAPI, admin_client: httpx.AsyncClient, runtime: Runtime
):
    who = await complainant(runtime)
    key = f"rasa-sender-{who.identity_id}:intake-1"
    chat_case = await registered(runtime, who, what="病房夜里太吵", intake_key=key)
    async with staff_client(app, admin_client, "agent", []) as (_, agent):
        created = await agent.post(
            "/api/console/complaints",
            json={
                "patient_id": who.patient_id,
                "conversation_id": who.conversation_id,
                "intake": {"what": "电话投诉：药房发错了药", "intake_key": key},
            },
        )
        assert created.status_code == 201, created.text
        case = created.json()
        # A case of its own, with the agent's words; the chat's case is neither answered nor changed.
        assert case["case_number"] != chat_case.case_number
        assert case["what"] == "电话投诉：药房发错了药"
        assert "病房夜里太吵" not in created.text
        assert (await agent.get(f"/api/console/complaints/{chat_case.case_number}")).status_code == 403
    detail = (await admin_client.get(f"/api/console/complaints/{chat_case.case_number}")).json()
    assert detail["what"] == "病房夜里太吵"
    assert [entry["kind"] for entry in detail["timeline"]] == ["registered"]


async def test_several_departments_registered_at_once_count_ten_working_days(
    app: FastAPI, admin_client: httpx.AsyncClient, runtime: Runtime
):
    who = await complainant(runtime)
    bodies = [
        {"patient_id": who.patient_id, "intake": {"what": "检查和收费两处都被推诿"}, "several_departments": s}
        for s in (False, True)
    ]
    one, several = [(await admin_client.post("/api/console/complaints", json=b)).json() for b in bodies]
    assert (one["several_departments"], several["several_departments"]) == (False, True)
    assert several["due_on"] > one["due_on"]
    assert several["timeline"][0]["data"]["working_days"] == 10
    assert one["timeline"][0]["data"]["working_days"] == 5


async def test_the_console_reads_the_callers_scope_and_the_departments(
    app: FastAPI, admin_client: httpx.AsyncClient, runtime: Runtime
):
    cardiology = await department(runtime, "心血管内科（登记）")
    async with (
        staff_client(app, admin_client, "nurse", []) as (liaison_staff, liaison),
        staff_client(app, admin_client, "agent", []) as (_, agent),
    ):
        await make_liaison(admin_client, cardiology, liaison_staff["id"])
        assert (await liaison.get("/api/console/complaints/scope")).json() == {
            "office": False,
            "liaison_of": [{"id": cardiology, "name": "心血管内科（登记）"}],
        }
        nobody = {"office": False, "liaison_of": []}
        assert (await agent.get("/api/console/complaints/scope")).json() == nobody
        assert (await admin_client.get("/api/console/complaints/scope")).json()["office"] is True
        # What the scope promises, the report answers.
        assert (await liaison.get("/api/console/reports/complaints")).status_code == 200
        assert (await agent.get("/api/console/reports/complaints")).status_code == 403
        names = [d["name"] for d in (await agent.get("/api/console/complaints/departments")).json()]
        assert "心血管内科（登记）" in names
