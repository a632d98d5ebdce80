"""The complaints workspace through its console API: who sees which case (a liaison's refused read
is a 403 and an audit row), masked lists, audited detail views, assignment, the answer sent to the
patient in the chat or by template, and the patient's reply reopening the case."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import sqlalchemy as sa
from fastapi import FastAPI

from crm_backend.complaints.replies import OUTCOME_INTENT
from crm_backend.complaints.service import record_outcome_reply
from crm_backend.conversations.models import InboundMessage
from crm_backend.patients.models import WeChatIdentity
from crm_backend.runtime import Runtime
from tests.appointments.test_reminders import worker_outbox, worker_turns
from tests.complaints.conftest import TEMPLATE_ID
from tests.complaints.support import complainant, registered
from tests.complaints.support_console import audit_actions, department, make_liaison
from tests.support.api import staff_client
from tests.support.stack import FakeWeChat


async def test_a_liaison_reads_only_their_departments_cases(
    app: FastAPI, admin_client: httpx.AsyncClient, runtime: Runtime
):
    cardiology = await department(runtime, "心血管内科")
    orthopaedics = await department(runtime, "骨科")
    async with (
        staff_client(app, admin_client, "complaints_office", []) as (office_staff, office),
        staff_client(app, admin_client, "nurse", []) as (liaison_staff, liaison),
    ):
        await make_liaison(office, cardiology, liaison_staff["id"])
        who = await complainant(runtime)
        ours = await registered(runtime, who, what="心内科护士态度差")
        theirs = await registered(runtime, who, what="骨科病房晚上太吵")
        for case, dept in ((ours, cardiology), (theirs, orthopaedics)):
            answer = await office.post(
                f"/api/console/complaints/{case.case_number}/assign", json={"department_id": dept}
            )
            assert answer.status_code == 200, answer.text

        listed = (await liaison.get("/api/console/complaints")).json()
        assert [item["case_number"] for item in listed] == [ours.case_number]
        assert "what" not in listed[0] and "心内科护士" not in str(listed)

        mine = await liaison.get(f"/api/console/complaints/{ours.case_number}")
        assert mine.status_code == 200 and mine.json()["what"] == "心内科护士态度差"
        refused = await liaison.get(f"/api/console/complaints/{theirs.case_number}")
        assert refused.status_code == 403
        assert "骨科病房" not in refused.text

        assert await audit_actions(runtime, liaison_staff["id"], ours.case_number) == ["complaint.view"]
        assert await audit_actions(runtime, liaison_staff["id"], theirs.case_number) == [
            "complaint.view.denied"
        ]
        # The office sees both; each view is audited again.
        for _ in range(2):
            assert (await office.get(f"/api/console/complaints/{theirs.case_number}")).status_code == 200
        assert (await audit_actions(runtime, office_staff["id"], theirs.case_number)).count(
            "complaint.view"
        ) == 2

        # A liaison may mark their case under investigation, but not answer or assign it.
        moved = await liaison.post(
            f"/api/console/complaints/{ours.case_number}/transition", json={"to": "investigating"}
        )
        assert moved.status_code == 200 and moved.json()["status"] == "investigating"
        answered = await liaison.post(
            f"/api/console/complaints/{ours.case_number}/answer", json={"text": "已处理"}
        )
        assert answered.status_code == 403
        # Refusals of a change are audited too, not only refused reads.
        assert "complaint.answer.denied" in await audit_actions(
            runtime, liaison_staff["id"], ours.case_number
        )


async def test_an_agent_sees_what_they_registered_only(
    app: FastAPI, admin_client: httpx.AsyncClient, runtime: Runtime
):
    async with staff_client(app, admin_client, "agent", []) as (agent_staff, agent):
        who = await complainant(runtime)
        created = await agent.post(
            "/api/console/complaints",
            json={
                "patient_id": who.patient_id,
                "intake": {"what": "电话投诉：收费处多收了挂号费", "when_text": "今天"},
            },
        )
        assert created.status_code == 201, created.text
        number = created.json()["case_number"]
        assert created.json()["registered_by"] == agent_staff["username"]
        other = await registered(runtime, who)
        assert [item["case_number"] for item in (await agent.get("/api/console/complaints")).json()] == [
            number
        ]
        assert (await agent.get(f"/api/console/complaints/{other.case_number}")).status_code == 403


async def test_an_invalid_transition_answers_409_and_changes_nothing(
    app: FastAPI, admin_client: httpx.AsyncClient, runtime: Runtime
):
    async with staff_client(app, admin_client, "complaints_office", []) as (_, office):
        who = await complainant(runtime)
        case = await registered(runtime, who)
        before = (await office.get(f"/api/console/complaints/{case.case_number}")).json()
        refused = await office.post(
            f"/api/console/complaints/{case.case_number}/transition", json={"to": "closed"}
        )
        assert refused.status_code == 409
        referred = await office.post(
            f"/api/console/complaints/{case.case_number}/referral", json={"to": "mediation"}
        )
        assert referred.status_code == 200
        again = await office.post(
            f"/api/console/complaints/{case.case_number}/answer", json={"text": "迟到的答复"}
        )
        assert again.status_code == 409
        after = (await office.get(f"/api/console/complaints/{case.case_number}")).json()
        assert after["status"] == "referred" and after["answer"] is None
        assert len(after["timeline"]) == len(before["timeline"]) + 1


async def test_the_answer_goes_out_in_the_chat_then_the_bot_asks_and_a_no_reopens(
    app: FastAPI,
    admin_client: httpx.AsyncClient,
    runtime: Runtime,
    database_url: str,
    fake_wechat: FakeWeChat,
):
    async with (
        staff_client(app, admin_client, "complaints_office", []) as (_, office),
        worker_outbox(database_url, fake_wechat) as outbox,
    ):
        who = await complainant(runtime, last_inbound_at=datetime.now(UTC) - timedelta(hours=1))
        case = await registered(runtime, who)
        sent = await office.post(
            f"/api/console/complaints/{case.case_number}/answer",
            json={"text": "经核实，当日叫号系统故障，已修复并向您致歉。"},
        )
        assert sent.status_code == 200, sent.text
        assert sent.json()["delivery"] == "chat"
        assert sent.json()["case"]["first_response_at"] is not None
        await outbox.deliver_conversation(who.conversation_id)
        openid = await _openid(runtime, who.identity_id)
        texts = fake_wechat.texts(openid)
        assert any(case.case_number in t and "叫号系统故障" in t for t in texts)
        [turn] = await _outcome_turns(runtime, case.case_number)
        assert turn.payload["intent"] == OUTCOME_INTENT

        # What the bot's view calls with the patient's "不接受，2分".
        async with runtime.db.sessions() as session:
            reply = await record_outcome_reply(session, case.case_number, who.patient_id, False, 2)
            await session.commit()
        assert reply.outcome == "reopened"
        detail = (await office.get(f"/api/console/complaints/{case.case_number}")).json()
        assert detail["status"] == "reopened" and detail["satisfaction"] == 2 and detail["reopen_count"] == 1
        assert [e["to_status"] for e in detail["timeline"] if e["kind"] == "status"] == [
            "answered",
            "reopened",
        ]

        # Answered again after the reopening: a second question, its own dialogue.
        again = await office.post(
            f"/api/console/complaints/{case.case_number}/answer", json={"text": "补充说明"}
        )
        assert again.status_code == 200
        assert len(await _outcome_turns(runtime, case.case_number)) == 2


async def test_outside_the_window_the_answer_travels_as_the_template(
    app: FastAPI,
    admin_client: httpx.AsyncClient,
    runtime: Runtime,
    database_url: str,
    fake_wechat: FakeWeChat,
):
    async with (
        staff_client(app, admin_client, "complaints_office", []) as (_, office),
        worker_outbox(database_url, fake_wechat, COMPLAINT_TEMPLATE_ID=TEMPLATE_ID) as outbox,
    ):
        who = await complainant(runtime, last_inbound_at=datetime.now(UTC) - timedelta(days=3))
        case = await registered(runtime, who)
        sent = await office.post(
            f"/api/console/complaints/{case.case_number}/answer", json={"text": "已对相关人员进行批评教育。"}
        )
        assert sent.json()["delivery"] == "template"
        async with runtime.db.sessions() as session:
            identity = await session.get(WeChatIdentity, who.identity_id)
        assert identity is not None
        await worker_turns(outbox, identity, datetime.now(UTC))
        [template] = [s for s in fake_wechat.sent(identity.openid) if s["api"] == "template_send"]
        assert template["template_id"] == TEMPLATE_ID
        assert template["data"]["keyword1"]["value"] == case.case_number
        assert template["data"]["keyword2"]["value"] == "已对相关人员进行批评教育。"

        # Praise has no outcome dialogue to carry a template: outside the window it is not sent,
        # and the office is told to phone rather than told it went out.
        praise = await registered(runtime, who, kind="praise", what="感谢心内科王医生")
        thanked = await office.post(
            f"/api/console/complaints/{praise.case_number}/answer", json={"text": "已转达表扬。"}
        )
        assert thanked.json()["delivery"] == "not_sent", thanked.text


async def _openid(runtime: Runtime, identity_id: int) -> str:
    async with runtime.db.sessions() as session:
        identity = await session.get(WeChatIdentity, identity_id)
        assert identity is not None
        return identity.openid


async def _outcome_turns(runtime: Runtime, case_number: str) -> list[InboundMessage]:
    async with runtime.db.sessions() as session:
        turns = await session.scalars(
            sa.select(InboundMessage).where(InboundMessage.msg_type == "dialogue").order_by(InboundMessage.id)
        )
        return [t for t in turns if t.payload["entities"].get("case_number") == case_number]
