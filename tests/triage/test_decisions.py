"""Triage decisions are stored with the rule and data versions and reviewed by clinical staff:
nurses, supervisors and admins read them (each read audited); agents may not; bad filters are 400."""

from __future__ import annotations

import httpx
import sqlalchemy as sa
from fastapi import FastAPI

from crm_backend.audit.models import AuditEntry
from crm_backend.conversations.models import Conversation, DeliveryStatus, Direction, Message, SenderType
from crm_backend.database.core import utcnow
from crm_backend.escalations.models import Escalation
from crm_backend.patients.models import Patient, WeChatIdentity
from crm_backend.runtime import Runtime
from crm_backend.staff.models import Team
from crm_backend.triage.decisions import BOT_API, CHAT, record_decision
from crm_backend.triage.red_flag_rules import rule_book
from crm_backend.triage.service import assess
from crm_backend.triage.store import hospital_departments
from tests.support.api import new_client, staff_client

FATHER = "我爸胸口疼得厉害还出冷汗"


async def _conversation(runtime: Runtime, team_id: int) -> tuple[int, int, int]:
    """A patient's conversation with one message, escalated to `team_id`: (patient, conversation,
    message) ids."""
    async with runtime.db.sessions() as session:
        patient = Patient()
        session.add(patient)
        await session.flush()
        identity = WeChatIdentity(app_id="wx-test", openid=f"o-{patient.id}", patient_id=patient.id)
        session.add(identity)
        await session.flush()
        conversation = Conversation(patient_id=patient.id, identity_id=identity.id)
        session.add(conversation)
        await session.flush()
        message = Message(
            conversation_id=conversation.id,
            direction=Direction.IN,
            sender_type=SenderType.PATIENT,
            msg_type="text",
            content=FATHER,
            delivery_status=DeliveryStatus.RECEIVED,
        )
        session.add(message)
        session.add(
            Escalation(
                conversation_id=conversation.id, team_id=team_id, reason="emergency", sla_due_at=utcnow()
            )
        )
        await session.commit()
        return patient.id, conversation.id, message.id


async def _team(runtime: Runtime, name: str) -> int:
    async with runtime.db.sessions() as session:
        team = Team(name=name)
        session.add(team)
        await session.commit()
        return team.id


async def test_decisions_keep_their_versions_and_clinical_staff_review_them(
    app: FastAPI, runtime: Runtime, admin_client: httpx.AsyncClient
):
    nursing, other = await _team(runtime, "护理一组"), await _team(runtime, "护理二组")
    patient_id, conversation_id, message_id = await _conversation(runtime, nursing)
    async with runtime.db.sessions() as session:
        departments = await hospital_departments(session)
        emergency = assess(FATHER)
        routine = assess("肚子疼还拉肚子两天了", departments=departments)
        ids = dict(conversation_id=conversation_id, patient_id=patient_id)
        record_decision(session, emergency, message_id=message_id, source=CHAT, **ids)
        record_decision(session, routine, message_id=None, source=BOT_API, **ids)
        await session.commit()

    async with staff_client(app, admin_client, "nurse", [other]) as (_, elsewhere):
        # A nurse of another team reads nothing of this patient, however she asks.
        assert (await elsewhere.get("/api/console/triage-decisions")).json() == []
        answer = await elsewhere.get(
            "/api/console/triage-decisions", params={"conversation_id": conversation_id}
        )
        assert answer.json() == []

    async with staff_client(app, admin_client, "nurse", [nursing]) as (nurse_staff, nurse):
        response = await nurse.get(
            "/api/console/triage-decisions", params={"conversation_id": conversation_id}
        )
        assert response.status_code == 200
        newest, first = response.json()
        assert (first["level"], first["red_flags"], first["departments"]) == (
            "emergency",
            ["cardiac_chest_pain"],
            ["EMER"],
        )
        assert first["rule_version"] == rule_book().version and first["data_version"] is None
        assert first["message_id"] == message_id and first["source"] == "chat"
        assert first["screen"]["flags"][0]["rule_id"] == "cardiac_chest_pain" and "120" in first["answer"]
        assert first["recommendation"] is None
        assert newest["level"] != "emergency" and newest["red_flags"] == []
        assert newest["departments"][0] == "GAST" and newest["data_version"] == routine.recommendation.version
        assert newest["recommendation"]["reason"] and newest["source"] == "bot_api"

        only = await nurse.get(
            "/api/console/triage-decisions", params={"conversation_id": conversation_id, "level": "emergency"}
        )
        assert [d["id"] for d in only.json()] == [first["id"]]
        async with runtime.db.sessions() as session:
            entry = await session.scalar(
                sa.select(AuditEntry)
                .where(AuditEntry.staff_id == nurse_staff["id"], AuditEntry.action == "triage_decision.list")
                .order_by(AuditEntry.id.desc())
                .limit(1)
            )
        assert entry is not None and entry.patient_id == patient_id
        assert entry.object_type == "conversation" and entry.object_id == str(conversation_id)
        assert entry.detail["returned"] == [first["id"]] and entry.detail["level"] == "emergency"
        assert entry.detail["patients"] == [patient_id]

        for bad in ({"level": "dire"}, {"conversation_id": "x"}, {"conversation_id": 0}, {"limit": 500}):
            assert (await nurse.get("/api/console/triage-decisions", params=bad)).status_code == 400, bad

    async with staff_client(app, admin_client, "supervisor", []) as (_, supervisor):
        assert (await supervisor.get("/api/console/triage-decisions")).status_code == 200
    async with staff_client(app, admin_client, "agent", []) as (_, agent):
        assert (await agent.get("/api/console/triage-decisions")).status_code == 403
    async with new_client(app) as anonymous:
        assert (await anonymous.get("/api/console/triage-decisions")).status_code == 401
