# ruff: noqa: F811 (pytest fixtures imported from page_support are parameters here)
"""The nurses' follow-up work lists and phone calls through the console API: each list holds its
teams' check-ins only (another team's nurse is refused, and the refusal is audited), every view is
audited, a call records answers on the phone channel and completes a missed check-in, a reached call
is the first contact of a flagged one, and bad answers are refused with nothing written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse
from sqlalchemy import func, select

from crm_backend.audit.models import AuditEntry
from crm_backend.followups import links
from crm_backend.followups.enrolment import settle_enrolment
from crm_backend.followups.models import (
    FollowupAnswer,
    FollowupCall,
    FollowupCheckin,
    FollowupEnrolment,
    FollowupSend,
)
from crm_backend.runtime import Runtime
from tests.followups.page_support import (  # noqa: F401 (fixtures)
    admin_client,
    app,
    client,
    database_url,
    enrol,
    make_team,
    runtime,
)
from tests.support.api import staff_client

LIST = "/api/console/followups/worklists/"
CHECKIN = "/api/console/followups/checkins/"


async def _ids(client: httpx.AsyncClient, kind: str) -> list[int]:
    response = await client.get(LIST + kind)
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()]


async def _audited(runtime: Runtime, staff_id: int, action: str, object_id: str | int | None = None) -> int:
    async with runtime.db.sessions() as session:
        query = select(func.count(AuditEntry.id)).where(
            AuditEntry.staff_id == staff_id, AuditEntry.action == action
        )
        if object_id is not None:
            query = query.where(AuditEntry.object_id == str(object_id))
        return await session.scalar(query) or 0


async def _answers(runtime: Runtime, checkin_id: int) -> dict[str, FollowupAnswer]:
    async with runtime.db.sessions() as session:
        rows = await session.scalars(select(FollowupAnswer).where(FollowupAnswer.checkin_id == checkin_id))
        return {row.question: row for row in rows}


async def _row(runtime: Runtime, checkin_id: int) -> FollowupCheckin:
    async with runtime.db.sessions() as session:
        row = await session.get(FollowupCheckin, checkin_id)
        assert row is not None
        return row


async def _calls(runtime: Runtime, checkin_id: int) -> list[FollowupCall]:
    async with runtime.db.sessions() as session:
        return list(await session.scalars(select(FollowupCall).where(FollowupCall.checkin_id == checkin_id)))


async def _answer_on_page(
    client: httpx.AsyncClient, runtime: Runtime, checkin_id: int, answers: list[tuple[str, Any]]
) -> None:
    path = links.PAGE_PATH + links.checkin_token(runtime.settings, checkin_id)
    for code, value in answers:
        response = await client.post(f"{path}/answers", json={"question": code, "value": value})
        assert response.status_code == 200, response.text


RED_ANSWERS = [("pain", 8), ("temperature", 37.0), ("wound_red", False), ("symptoms", [])]


async def test_each_list_holds_the_teams_check_ins_and_another_team_is_refused(
    app: FastAPI, runtime: Runtime, admin_client: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    team_a, team_b = await make_team(runtime), await make_team(runtime)
    now = datetime.now(UTC)
    due = await enrol(runtime, team_a, status="scheduled", due_at=now + timedelta(minutes=5))
    overdue = await enrol(runtime, team_a, due_at=now - timedelta(hours=30))
    fresh = await enrol(runtime, team_a, due_at=now - timedelta(hours=1))  # started an hour ago: not overdue
    missed = await enrol(runtime, team_a, status="missed", due_at=now - timedelta(days=4))
    flagged = await enrol(runtime, team_a)
    await _answer_on_page(client, runtime, flagged.checkin_id, RED_ANSWERS)
    contacted = await enrol(
        runtime, team_a, status="answered", worst_flag="amber", answered_at=now, first_contact_at=now
    )
    other = await enrol(runtime, team_b, status="missed", due_at=now - timedelta(days=4))

    async with staff_client(app, admin_client, "nurse", [team_a]) as (nurse, nurse_a):
        assert due.checkin_id in await _ids(nurse_a, "due_today")
        overdue_ids = await _ids(nurse_a, "overdue")
        assert overdue.checkin_id in overdue_ids and fresh.checkin_id not in overdue_ids
        missed_ids = await _ids(nurse_a, "missed")
        assert missed.checkin_id in missed_ids and other.checkin_id not in missed_ids
        flagged_list = (await nurse_a.get(LIST + "flagged")).json()
        assert [i["id"] for i in flagged_list if i["id"] in (flagged.checkin_id, contacted.checkin_id)] == [
            flagged.checkin_id
        ]
        red = next(i for i in flagged_list if i["id"] == flagged.checkin_id)
        assert red["worst_flag"] == "red" and red["reply_by"] == red["answered_at"]  # red: contact now
        assert red["patient_name"] == "张三" and red["plan_name"] == "腹腔镜胆囊切除术后随访"
        phone = await _ids(nurse_a, "phone")
        assert phone.index(flagged.checkin_id) < phone.index(missed.checkin_id)
        assert other.checkin_id not in phone
        assert await _audited(runtime, nurse["id"], "followup_worklist.view") == 5

        refused = await nurse_a.get(f"{CHECKIN}{other.checkin_id}")
        assert refused.status_code == 403
        assert await _audited(runtime, nurse["id"], "followup_checkin.view.denied", other.checkin_id) == 1
        call = await nurse_a.post(
            f"{CHECKIN}{other.checkin_id}/calls", json={"reached": True, "answers": {"pain": 1}}
        )
        assert call.status_code == 403
        assert (
            await _calls(runtime, other.checkin_id) == [] and await _answers(runtime, other.checkin_id) == {}
        )
        assert (await nurse_a.get(f"{CHECKIN}2000000")).status_code == 404

    async with staff_client(app, admin_client, "supervisor", []) as (_, supervisor):
        both = await _ids(supervisor, "missed")
        assert missed.checkin_id in both and other.checkin_id in both
    async with staff_client(app, admin_client, "agent", [team_a]) as (agent, agent_client):
        assert (await agent_client.get(LIST + "missed")).status_code == 403
        assert await _audited(runtime, agent["id"], "role.check.denied") == 1
    assert (await client.get(LIST + "missed")).status_code == 401


async def test_a_check_in_s_detail_shows_answers_with_labels_flags_sends_and_conditions(
    app: FastAPI, runtime: Runtime, admin_client: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    team = await make_team(runtime)
    enrolled = await enrol(runtime, team)
    async with runtime.db.sessions() as session:
        session.add(FollowupSend(checkin_id=enrolled.checkin_id, kind="template", status="sent"))
        await session.commit()
    await _answer_on_page(
        client,
        runtime,
        enrolled.checkin_id,
        [
            ("pain", 5),
            ("temperature", 37.0),
            ("wound_red", True),
            ("wound_discharge", False),
            ("symptoms", ["nausea"]),
        ],
    )
    async with staff_client(app, admin_client, "nurse", [team]) as (nurse, nurse_client):
        response = await nurse_client.get(f"{CHECKIN}{enrolled.checkin_id}")
        assert response.status_code == 200
        detail = response.json()
        assert detail["checkin"]["worst_flag"] == "amber" and detail["checkin"]["channel"] == "page"
        questions = {q["code"]: q for q in detail["questions"]}
        assert questions["pain"]["answer"]["label"] == "今天伤口疼痛打几分：5分"
        assert (
            questions["pain"]["answer"]["shown"] == "5分" and questions["pain"]["answer"]["flag"] == "amber"
        )
        assert questions["symptoms"]["answer"]["label"] == "有没有下面这些情况：恶心呕吐"
        assert questions["wound_discharge"]["condition"] == "仅当「伤口周围有没有发红」答“是”时询问"
        assert questions["wound_discharge"]["enabled"] is True
        assert [s["kind"] for s in detail["sends"]] == ["template"]
        assert detail["answerable_by_phone"] is False
        assert await _audited(runtime, nurse["id"], "followup_checkin.view", enrolled.checkin_id) == 1


async def test_a_call_answers_a_missed_check_in_by_phone_and_is_its_first_contact(
    app: FastAPI, runtime: Runtime, admin_client: httpx.AsyncClient
) -> None:
    team = await make_team(runtime)
    missed = await enrol(runtime, team, status="missed", phone="13900002222")
    url = f"{CHECKIN}{missed.checkin_id}/calls"
    async with staff_client(app, admin_client, "nurse", [team]) as (nurse, nurse_client):
        not_reached = await nurse_client.post(url, json={"reached": False, "note": "无人接听"})
        assert not_reached.status_code == 200
        assert missed.checkin_id in await _ids(nurse_client, "phone")  # still to call

        call = await nurse_client.post(
            url,
            json={
                "reached": True,
                "note": "患者家属接听",
                "answers": {"pain": 8, "temperature": 37.1, "wound_red": False, "symptoms": []},
            },
        )
        assert call.status_code == 200, call.text
        result = call.json()
        assert result["flag"] == "red" and "疼痛较重" in result["advice"]
        row = await _row(runtime, missed.checkin_id)
        assert (row.status, row.channel, row.worst_flag) == ("answered", "phone", "red")
        assert row.first_contact_at is not None
        answers = await _answers(runtime, missed.checkin_id)
        assert {a.channel for a in answers.values()} == {"phone"}
        assert {a.answered_by_staff_id for a in answers.values()} == {nurse["id"]}
        assert [c.reached for c in await _calls(runtime, missed.checkin_id)] == [False, True]
        assert missed.checkin_id not in await _ids(nurse_client, "phone")
        assert missed.checkin_id not in await _ids(
            nurse_client, "flagged"
        )  # the nurse on the phone was the contact
        assert await _audited(runtime, nurse["id"], "followup_call.create", missed.checkin_id) == 2

        # The patient's phone number for the call: the full value, audited as a reveal.
        revealed = await nurse_client.post(
            f"/api/console/patients/{missed.patient_id}/reveal", json={"field": "phone"}
        )
        assert revealed.json() == {"field": "phone", "value": "13900002222"}
        assert await _audited(runtime, nurse["id"], "patient.reveal", missed.patient_id) == 1
        listed = (await nurse_client.get(LIST + "missed")).json()
        assert all(item["phone"] != "13900002222" for item in listed)

        again = await nurse_client.post(url, json={"reached": True, "answers": {"pain": 2}})
        assert again.status_code == 409  # answered: a call may be noted, not re-answered
        assert (await _answers(runtime, missed.checkin_id))["pain"].value == 8


async def test_a_reached_call_is_the_first_contact_of_a_flagged_check_in(
    app: FastAPI, runtime: Runtime, admin_client: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    team = await make_team(runtime)
    flagged = await enrol(runtime, team)
    await _answer_on_page(client, runtime, flagged.checkin_id, RED_ANSWERS)
    url = f"{CHECKIN}{flagged.checkin_id}/calls"
    async with staff_client(app, admin_client, "nurse", [team]) as (_, nurse_client):
        assert (await nurse_client.post(url, json={"reached": False})).status_code == 200
        assert (await _row(runtime, flagged.checkin_id)).first_contact_at is None
        assert flagged.checkin_id in await _ids(nurse_client, "flagged")
        assert (await nurse_client.post(url, json={"reached": True, "note": "已指导服药"})).status_code == 200
        first = (await _row(runtime, flagged.checkin_id)).first_contact_at
        assert first is not None
        assert flagged.checkin_id not in await _ids(nurse_client, "flagged")
        assert (await nurse_client.post(url, json={"reached": True})).status_code == 200
        assert (await _row(runtime, flagged.checkin_id)).first_contact_at == first  # the first stays


async def test_bad_call_answers_are_refused_and_nothing_is_written(
    app: FastAPI, runtime: Runtime, admin_client: httpx.AsyncClient
) -> None:
    team = await make_team(runtime)
    missed = await enrol(runtime, team, status="missed")
    url = f"{CHECKIN}{missed.checkin_id}/calls"
    async with staff_client(app, admin_client, "nurse", [team]) as (_, nurse_client):
        cases: list[tuple[dict[str, Any], int, str | None]] = [
            ({"reached": True, "answers": {"pain": 3, "temperature": 45}}, 422, "temperature"),
            (
                {"reached": True, "answers": {"pain": 3, "wound_red": False, "wound_discharge": True}},
                422,
                "wound_discharge",
            ),
            ({"reached": True, "answers": {"pain": 3, "no_such": 1}}, 422, "no_such"),
            ({"reached": False, "answers": {"pain": 3}}, 422, None),
            ({"reached": True, "answers": {"pain": "很疼"}}, 422, "pain"),
            ({"reached": "yes"}, 400, None),
            ({"reached": True, "note": "x" * 1001}, 400, None),
            ({"reached": True, "answers": {"pain": {"$gt": 1}}}, 400, None),
            ({"reached": True, "extra": 1}, 400, None),
        ]
        for body, status, question in cases:
            response = await nurse_client.post(url, json=body)
            assert response.status_code == status, (body, response.text)
            if question is not None:
                assert question in [error["loc"][-1] for error in response.json()["errors"]]
        refused = await nurse_client.post(
            url, json={"reached": True, "answers": {"pain": 3, "temperature": 45}}
        )
        assert refused.json()["errors"] == [
            {
                "loc": ["body", "answers", "temperature"],
                "msg": "今天最高体温是多少？：请填写 35 到 42 之间的数字（单位：°C）",
            }
        ]
        assert await _answers(runtime, missed.checkin_id) == {}
        assert await _calls(runtime, missed.checkin_id) == []
        row = await _row(runtime, missed.checkin_id)
        assert (row.status, row.worst_flag) == ("missed", None)


async def test_a_patient_reached_by_phone_is_no_longer_lost_to_follow_up(
    app: FastAPI, runtime: Runtime, admin_client: httpx.AsyncClient
) -> None:
    """Two missed check-ins made the patient lost (失访); the nurse then reaches them and enters the
    answers: the report must not count them as followed up and lost at once."""
    team = await make_team(runtime)
    missed = await enrol(runtime, team, status="missed")
    async with runtime.db.sessions() as session:
        enrolment = await session.get(FollowupEnrolment, missed.enrolment_id)
        assert enrolment is not None
        for checkin in await session.scalars(
            select(FollowupCheckin).where(FollowupCheckin.enrolment_id == enrolment.id)
        ):
            checkin.status = "missed"
        await settle_enrolment(session, enrolment, runtime.settings)
        assert enrolment.lost_to_followup and enrolment.status == "completed"
        await session.commit()
    url = f"{CHECKIN}{missed.checkin_id}/calls"
    answers = {"pain": 2, "temperature": 36.8, "wound_red": False, "symptoms": []}
    async with staff_client(app, admin_client, "nurse", [team]) as (_, nurse_client):
        call = await nurse_client.post(url, json={"reached": True, "answers": answers})
        assert call.status_code == 200, call.text
    async with runtime.db.sessions() as session:
        enrolment = await session.get(FollowupEnrolment, missed.enrolment_id)
        assert enrolment is not None and not enrolment.lost_to_followup


async def test_a_check_in_s_answers_export_as_a_fhir_questionnaire_response_to_its_team_only(
    app: FastAPI, runtime: Runtime, admin_client: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    team_a, team_b = await make_team(runtime), await make_team(runtime)
    answered = await enrol(runtime, team_a)
    await _answer_on_page(client, runtime, answered.checkin_id, RED_ANSWERS)
    silent = await enrol(runtime, team_a)
    partial = await enrol(runtime, team_a)
    await _answer_on_page(client, runtime, partial.checkin_id, [("pain", 3)])
    other = await enrol(runtime, team_b)
    await _answer_on_page(client, runtime, other.checkin_id, RED_ANSWERS)
    stored = await _answers(runtime, answered.checkin_id)

    async with staff_client(app, admin_client, "nurse", [team_a]) as (nurse, nurse_a):
        response = await nurse_a.get(f"{CHECKIN}{answered.checkin_id}/fhir")
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/fhir+json")
        data = response.json()
        resource = QuestionnaireResponse.model_validate(data)
        assert resource.status == "completed"
        assert resource.subject.reference == f"Patient/{answered.patient_id}"
        assert data["questionnaire"].split("|")[0].endswith("-day1")
        exported: dict[str, Any] = {}
        for item in data["item"]:
            values = [next(iter(answer.values())) for answer in item.get("answer", [])]
            exported[item["linkId"]] = values
        assert set(exported) == set(stored)
        assert exported["pain"] == [stored["pain"].value] == [8]
        assert exported["temperature"] == [37.0] and exported["wound_red"] == [False]
        assert exported["symptoms"] == []  # "none of them": an item without answers
        assert await _audited(runtime, nurse["id"], "followup_checkin.export", answered.checkin_id) == 1

        begun = (await nurse_a.get(f"{CHECKIN}{partial.checkin_id}/fhir")).json()
        assert begun["status"] == "in-progress"
        assert [(item["linkId"], item["answer"]) for item in begun["item"]] == [
            ("pain", [{"valueInteger": 3}])
        ]
        nothing = await nurse_a.get(f"{CHECKIN}{silent.checkin_id}/fhir")
        assert nothing.status_code == 409
        refused = await nurse_a.get(f"{CHECKIN}{other.checkin_id}/fhir")
        assert refused.status_code == 403 and "item" not in refused.text
        assert await _audited(runtime, nurse["id"], "followup_checkin.export.denied", other.checkin_id) == 1
        assert (await nurse_a.get(f"{CHECKIN}2000000/fhir")).status_code == 404
    async with staff_client(app, admin_client, "agent", [team_b]) as (_, agent):
        assert (await agent.get(f"{CHECKIN}{other.checkin_id}/fhir")).status_code == 403
