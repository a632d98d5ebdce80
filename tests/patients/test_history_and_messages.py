"""Console: find a patient, open any of their chats (never escalated ones too), reveal one value,
and start a message inside WeChat's customer-service window; each step audited."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import sqlalchemy as sa
from fastapi import FastAPI

from crm_backend.audit.models import AuditEntry
from crm_backend.consent.models import ConsentRecord
from crm_backend.conversations.models import (
    Conversation,
    ConversationStatus,
    DeliveryStatus,
    Direction,
    Message,
    SenderType,
)
from crm_backend.escalations.models import Escalation, EscalationStatus
from crm_backend.patients.models import WeChatIdentity
from crm_backend.patients.records import add_managed_patient
from crm_backend.runtime import Runtime
from tests.patients.conftest import Family, make_family, make_team
from tests.support.api import staff_client


async def _audit(runtime: Runtime, staff_id: int, action: str) -> list[AuditEntry]:
    async with runtime.db.sessions() as session:
        return list(
            (
                await session.scalars(
                    sa.select(AuditEntry)
                    .where(AuditEntry.staff_id == staff_id, AuditEntry.action == action)
                    .order_by(AuditEntry.id)
                )
            ).all()
        )


async def _patient_wrote(runtime: Runtime, family: Family, text: str, ago: timedelta) -> int:
    """A chat of the family that was never escalated, where the patient wrote `ago` before now."""
    at = datetime.now(UTC) - ago
    async with runtime.db.sessions() as session:
        conversation = Conversation(
            patient_id=family.patient_id, identity_id=family.identity.id, started_at=at, last_message_at=at
        )
        session.add(conversation)
        await session.flush()
        session.add(
            Message(
                conversation_id=conversation.id,
                direction=Direction.IN,
                sender_type=SenderType.PATIENT,
                content=text,
                delivery_status=DeliveryStatus.RECEIVED,
                created_at=at,
            )
        )
        identity = await session.get(WeChatIdentity, family.identity.id)
        assert identity is not None
        identity.last_inbound_at = at
        await session.commit()
        return conversation.id


async def _messages_out(runtime: Runtime, family: Family) -> list[Message]:
    async with runtime.db.sessions() as session:
        return list(
            (
                await session.scalars(
                    sa.select(Message)
                    .join(Conversation, Conversation.id == Message.conversation_id)
                    .where(Conversation.identity_id == family.identity.id, Message.direction == Direction.OUT)
                    .order_by(Message.id)
                )
            ).all()
        )


async def _registered(runtime: Runtime, family: Family, phone: str, id_number: str) -> None:
    async with runtime.db.sessions() as session:
        await add_managed_patient(
            session, runtime.protector, family.identity, "self", name="周海燕", sex=None,
            birth_date=None, phone=phone, id_number=id_number, card_number="MZ20261205",
        )  # fmt: skip
        session.add(
            ConsentRecord(
                identity_id=family.identity.id,
                patient_id=family.patient_id,
                granted=True,
                notice_version="v1",
            )
        )
        await session.commit()


async def test_a_nurse_finds_a_patient_sees_the_360_masked_and_reveals_the_phone_audited(
    app: FastAPI, runtime: Runtime, admin_client: httpx.AsyncClient
):
    family = await make_family(runtime, await make_team(runtime))
    await _registered(runtime, family, "13900001111", "110105198001010024")
    async with staff_client(app, admin_client, "nurse", [family.team_id]) as (nurse, client):
        for query in ("周海", "13900001111", "110105198001010024", "mz2026-1205", "139****1111"):
            found = (await client.get("/api/console/patients", params={"query": query})).json()
            assert [(p["id"], p["phone"], p["sex"]) for p in found] == [
                (family.patient_id, "139****1111", "F")
            ], query
        view = (await client.get(f"/api/console/patients/{family.patient_id}/360")).json()
        shown = (view["patient"]["phone"], view["patient"]["id_number"], view["patient"]["card_number"])
        assert shown == ("139****1111", "1101**********0024", "****1205")
        assert view["patient"]["birth_date"] == "1980-01-01"
        [own] = view["identities"]
        assert own["relationship"] == "self" and own["consent"]["status"] == "granted"

        revealed = await client.post(
            f"/api/console/patients/{family.patient_id}/reveal", json={"field": "phone"}
        )
        assert revealed.json() == {"field": "phone", "value": "13900001111"}
        refused = await client.post(
            f"/api/console/patients/{family.patient_id}/reveal", json={"field": "id_number"}
        )
        assert refused.status_code == 403
        bad = await client.post(f"/api/console/patients/{family.patient_id}/reveal", json={"field": "name"})
        assert bad.status_code == 400
    reveals = await _audit(runtime, nurse["id"], "patient.reveal")
    assert [(e.patient_id, e.detail) for e in reveals] == [(family.patient_id, {"fields": ["phone"]})]
    [denied] = await _audit(runtime, nurse["id"], "patient.reveal.denied")
    assert denied.detail["fields"] == ["id_number"]
    searches = await _audit(runtime, nurse["id"], "patient.search")
    assert [e.detail["kinds"] for e in searches if e.detail] == [
        ["name"],
        ["phone", "card_number"],
        ["id_number", "card_number"],
        ["card_number"],
        ["masked_phone"],
    ]

    async with staff_client(app, admin_client, "agent", [family.team_id]) as (agent, client):
        answer = await client.post(
            f"/api/console/patients/{family.patient_id}/reveal", json={"field": "phone"}
        )
        assert answer.status_code == 403
    assert await _audit(runtime, agent["id"], "patient.reveal") == []
    [denied] = await _audit(runtime, agent["id"], "patient.reveal.denied")
    assert (denied.patient_id, denied.detail["fields"]) == (family.patient_id, ["phone"])
    answer = await admin_client.post(
        f"/api/console/patients/{family.patient_id}/reveal", json={"field": "id_number"}
    )
    assert answer.json()["value"] == "110105198001010024"


async def test_a_chat_never_escalated_opens_for_who_may_open_the_patient_and_is_audited(
    app: FastAPI, runtime: Runtime, admin_client: httpx.AsyncClient
):
    family = await make_family(runtime, await make_team(runtime))
    quiet = await _patient_wrote(runtime, family, "请问周末门诊开吗", timedelta(days=3))
    async with staff_client(app, admin_client, "agent", [family.team_id]) as (agent, client):
        view = (await client.get(f"/api/console/patients/{family.patient_id}/360")).json()
        assert quiet in [c["id"] for c in view["conversations"]]
        opened = await client.get(f"/api/console/conversations/{quiet}")
        assert opened.status_code == 200, opened.text
        body = opened.json()
        assert body["escalation"] is None
        assert [m["content"] for m in body["messages"]] == ["请问周末门诊开吗"]
    async with staff_client(app, admin_client, "nurse", [await make_team(runtime)]) as (outsider, client):
        assert (await client.get(f"/api/console/conversations/{quiet}")).status_code == 403
        assert (await client.get(f"/api/console/conversations/{quiet}/window")).status_code == 403
    views = await _audit(runtime, agent["id"], "conversation.view")
    assert [(e.object_id, e.patient_id, e.detail) for e in views] == [
        (str(quiet), family.patient_id, {"escalated": False})
    ]
    assert await _audit(runtime, outsider["id"], "conversation.view") == []


async def _start(client: httpx.AsyncClient, conversation_id: int, text: str) -> httpx.Response:
    return await client.post(
        f"/api/console/conversations/{conversation_id}/start-message", json={"text": text}
    )


async def _window(client: httpx.AsyncClient, conversation_id: int) -> dict[str, Any]:
    answer = await client.get(f"/api/console/conversations/{conversation_id}/window")
    assert answer.status_code == 200, answer.text
    return answer.json()


async def test_staff_start_a_message_inside_the_window_at_most_five_times(
    app: FastAPI, runtime: Runtime, admin_client: httpx.AsyncClient
):
    family = await make_family(runtime, await make_team(runtime))
    quiet = await _patient_wrote(runtime, family, "我想咨询一下复查时间", timedelta(hours=2))
    async with staff_client(app, admin_client, "nurse", [family.team_id]) as (nurse, client):
        window = await _window(client, quiet)
        opened_at = datetime.fromisoformat(window["opened_at"])
        assert window["state"] == "open" and (window["sent"], window["remaining"], window["limit"]) == (
            0,
            5,
            5,
        )
        assert datetime.fromisoformat(window["closes_at"]) == opened_at + timedelta(hours=47, minutes=50)

        first = await _start(client, quiet, "您好，我是护士小王，您的复查安排在下周三上午。")
        assert first.status_code == 201, first.text
        started = first.json()
        assert started["conversation_id"] == quiet  # the chat was still current: the message goes there
        assert started["message"]["sender_type"] == "agent"
        assert started["message"]["agent"]["id"] == nurse["id"]
        # Staff hold the chat now: the patient's answer is routed to them, not to the bot.
        async with runtime.db.sessions() as session:
            conversation = await session.get(Conversation, quiet)
            assert conversation is not None and conversation.status == ConversationStatus.ESCALATED
            escalation = await session.scalar(
                sa.select(Escalation).where(Escalation.conversation_id == quiet)
            )
            assert escalation is not None
            assert (escalation.status, escalation.assigned_to_id, escalation.reason) == (
                "assigned",
                nurse["id"],
                "staff_message",
            )
        assert (await _window(client, quiet))["remaining"] == 4

        for n in range(4):  # the ordinary reply path counts against the same window
            answer = await client.post(
                f"/api/console/conversations/{quiet}/messages", json={"text": f"补充{n}"}
            )
            assert answer.status_code == 201, answer.text
        window = await _window(client, quiet)
        assert (window["state"], window["sent"], window["remaining"]) == ("used_up", 5, 0)

        sixth = await _start(client, quiet, "第六条")
        assert sixth.status_code == 409 and "5 messages" in sixth.json()["detail"]
        reply = await client.post(f"/api/console/conversations/{quiet}/messages", json={"text": "第六条"})
        assert reply.status_code == 409
    assert [m.content for m in await _messages_out(runtime, family)][-1] == "补充3"
    assert len(await _messages_out(runtime, family)) == 5
    started_rows = await _audit(runtime, nurse["id"], "conversation.message_start")
    assert [(e.object_id, e.patient_id) for e in started_rows] == [(str(quiet), family.patient_id)]
    refused = await _audit(runtime, nurse["id"], "conversation.message_refused")
    assert [e.detail for e in refused] == [{"window": "used_up", "sent": 5}]


async def test_outside_the_window_a_message_is_refused_and_nothing_is_stored(
    app: FastAPI, runtime: Runtime, admin_client: httpx.AsyncClient
):
    family = await make_family(runtime, await make_team(runtime))
    old = await _patient_wrote(runtime, family, "谢谢医生", timedelta(hours=49))
    async with staff_client(app, admin_client, "agent", [family.team_id]) as (agent, client):
        window = await _window(client, old)
        assert (window["state"], window["remaining"]) == ("expired", 0)
        answer = await _start(client, old, "您好，请问您最近恢复得怎么样？")
        assert answer.status_code == 409 and "48-hour" in answer.json()["detail"]
        assert (await _start(client, old, "   ")).status_code == 400
        never = await _start(client, family.conversation_id, "x")  # same identity, same window
        assert never.status_code == 409
    assert await _messages_out(runtime, family) == []
    async with runtime.db.sessions() as session:
        assert await session.scalar(sa.select(sa.func.count()).where(Escalation.conversation_id == old)) == 0
    refused = await _audit(runtime, agent["id"], "conversation.message_refused")
    assert [(e.object_id, e.detail) for e in refused] == [
        (str(old), {"window": "expired", "sent": 0}),
        (str(family.conversation_id), {"window": "expired", "sent": 0}),
    ]
    assert await _audit(runtime, agent["id"], "conversation.message_start") == []


async def test_a_message_after_a_quiet_day_opens_a_new_chat_that_staff_hold(
    app: FastAPI, runtime: Runtime, admin_client: httpx.AsyncClient
):
    """The patient wrote 30 hours ago: the chat went idle, so the message opens the identity's next
    conversation (as the patient's next turn would), and the answer tells the console which."""
    family = await make_family(runtime, await make_team(runtime))
    idle = await _patient_wrote(runtime, family, "好的", timedelta(hours=30))
    async with staff_client(app, admin_client, "nurse", [family.team_id]) as (_nurse, client):
        answer = await _start(client, idle, "您好，检查结果已经出来了，请来门诊取。")
        assert answer.status_code == 201, answer.text
        fresh = answer.json()["conversation_id"]
        assert fresh != idle
        view = (await client.get(f"/api/console/conversations/{fresh}")).json()
        assert (
            view["escalation"]["status"] == "assigned" and view["escalation"]["team"]["id"] == family.team_id
        )
        assert [m["content"] for m in view["messages"]] == ["您好，检查结果已经出来了，请来门诊取。"]


async def test_a_masked_phone_finds_only_patients_whose_phone_shows_so(
    app: FastAPI, runtime: Runtime, admin_client: httpx.AsyncClient
):
    family = await make_family(runtime, await make_team(runtime))
    await _registered(runtime, family, "13911112345", "110105197511200042")
    async with staff_client(app, admin_client, "agent", [family.team_id]) as (_agent, client):
        for query in ("139****2345", "139 **** 2345", "139*2345"):
            found = (await client.get("/api/console/patients", params={"query": query})).json()
            assert [p["id"] for p in found] == [family.patient_id], query
        for query in ("139****2346", "138****2345", "****2345"):
            assert (await client.get("/api/console/patients", params={"query": query})).json() == [], query


async def test_replying_in_a_chat_now_with_another_team_does_not_take_it_over(
    app: FastAPI, runtime: Runtime, admin_client: httpx.AsyncClient
):
    """The chat was ours, then went to nursing (an emergency, say): a reply from us does not take
    it out of nursing's queue."""
    ours, nursing = await make_team(runtime), await make_team(runtime)
    family = await make_family(runtime, ours)
    await _patient_wrote(runtime, family, "刚才又疼得厉害了", timedelta(minutes=5))  # the window is open
    async with runtime.db.sessions() as session:
        escalation = await session.scalar(
            sa.select(Escalation).where(Escalation.conversation_id == family.conversation_id)
        )
        assert escalation is not None
        escalation.status = EscalationStatus.RESOLVED  # ours once; now the patient waits for nursing
        session.add(
            Escalation(
                conversation_id=family.conversation_id,
                team_id=nursing,
                reason="emergency",
                sla_due_at=datetime.now(UTC),
            )
        )
        await session.commit()
    async with staff_client(app, admin_client, "agent", [ours]) as (agent, client):
        reply = await client.post(
            f"/api/console/conversations/{family.conversation_id}/messages", json={"text": "您好"}
        )
    assert reply.status_code == 403
    async with runtime.db.sessions() as session:
        waiting = await session.scalar(
            sa.select(Escalation).where(
                Escalation.conversation_id == family.conversation_id, Escalation.team_id == nursing
            )
        )
        assert waiting is not None and (waiting.status, waiting.assigned_to_id) == (
            EscalationStatus.QUEUED,
            None,
        )
    assert len(await _audit(runtime, agent["id"], "escalation.claim.denied")) == 1
