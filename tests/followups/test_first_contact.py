# ruff: noqa: F811 (pytest fixtures imported from page_support are parameters here)
"""A nurse's first message to a patient whose check-in raised a flag is the first contact the
report measures (red flag → first contact), however she writes: a reply in the escalated chat."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from crm_backend.conversations.models import Conversation
from crm_backend.escalations.models import Escalation
from crm_backend.followups import links
from crm_backend.followups.models import FollowupCheckin
from crm_backend.patients.models import Patient, PatientLink, WeChatIdentity
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


async def _checkin(runtime: Runtime, checkin_id: int) -> FollowupCheckin:
    async with runtime.db.sessions() as session:
        row = await session.get(FollowupCheckin, checkin_id)
        assert row is not None
        return row


@pytest.mark.parametrize(
    "answers",
    [
        [("pain", 8), ("temperature", 37.0), ("wound_red", False), ("symptoms", [])],
        [("pain", 2), ("temperature", 39.0)],  # a red answer, then the patient left the page
    ],
    ids=["answered", "red-then-silence"],
)
async def test_the_nurses_reply_to_the_escalation_is_the_first_contact(
    runtime: Runtime,
    app: FastAPI,
    client: httpx.AsyncClient,
    admin_client: httpx.AsyncClient,
    answers: list[tuple[str, Any]],
) -> None:
    team_id = await make_team(runtime)
    enrolled = await enrol(runtime, team_id)
    async with runtime.db.sessions() as session:
        # The patient wrote in the last hour: a customer-service message may reach them.
        await session.execute(
            update(WeChatIdentity)
            .where(WeChatIdentity.id == enrolled.identity_id)
            .values(last_inbound_at=datetime.now(UTC) - timedelta(hours=1))
        )
        await session.commit()
    path = f"/followup/q/{links.checkin_token(runtime.settings, enrolled.checkin_id)}/answers"
    for code, value in answers:
        assert (await client.post(path, json={"question": code, "value": value})).status_code == 200
    red = await _checkin(runtime, enrolled.checkin_id)
    assert (red.worst_flag, red.first_contact_at) == ("red", None)
    flagged_at = datetime.now(UTC)

    async with runtime.db.sessions() as session:
        conversation_id = await session.scalar(
            select(Escalation.conversation_id)
            .join(Conversation, Conversation.id == Escalation.conversation_id)
            .where(Conversation.identity_id == enrolled.identity_id)
        )
    async with staff_client(app, admin_client, "nurse", [team_id]) as (_, nurse):
        reply = await nurse.post(
            f"/api/console/conversations/{conversation_id}/messages",
            json={"text": "您好，我是护士，您现在方便接电话吗？"},
        )
        assert reply.status_code == 201, reply.text
        first = (await _checkin(runtime, enrolled.checkin_id)).first_contact_at
        assert first is not None and first >= flagged_at

        again = await nurse.post(
            f"/api/console/conversations/{conversation_id}/messages", json={"text": "好的"}
        )
        assert again.status_code == 201
    assert (await _checkin(runtime, enrolled.checkin_id)).first_contact_at == first  # the first one stays


async def _escalated_chat(runtime: Runtime, identity_id: int, team_id: int) -> int:
    """The account's conversation, escalated to the team and inside WeChat's reply window."""
    now = datetime.now(UTC)
    async with runtime.db.sessions() as session:
        identity = await session.get(WeChatIdentity, identity_id)
        assert identity is not None
        identity.last_inbound_at = now - timedelta(minutes=30)
        conversation = Conversation(
            patient_id=identity.patient_id, identity_id=identity_id, status="escalated"
        )
        session.add(conversation)
        await session.flush()
        session.add(
            Escalation(conversation_id=conversation.id, team_id=team_id, reason="test", sla_due_at=now)
        )
        await session.commit()
        return conversation.id


def _flagged(flag: str) -> dict[str, object]:
    answered = datetime.now(UTC) - timedelta(minutes=10)
    return {"status": "answered", "worst_flag": flag, "answered_at": answered, "channel": "page"}


async def test_a_customer_service_agents_reply_is_not_a_first_contact(
    runtime: Runtime, app: FastAPI, admin_client: httpx.AsyncClient
) -> None:
    """An agent answering the account's booking question has not looked at the worrying answer:
    the check-in stays on the nurses' flagged list (StaffWrote is handled before the reply is
    answered, so the check-in read after it shows what the listener did)."""
    team_id = await make_team(runtime)
    enrolled = await enrol(runtime, team_id, **_flagged("red"))
    assert enrolled.identity_id is not None
    conversation_id = await _escalated_chat(runtime, enrolled.identity_id, team_id)
    url = f"/api/console/conversations/{conversation_id}/messages"
    async with staff_client(app, admin_client, "agent", [team_id]) as (_, agent):
        reply = await agent.post(url, json={"text": "您好，预约的事情已经为您改到周三上午。"})
        assert reply.status_code == 201, reply.text
    assert (await _checkin(runtime, enrolled.checkin_id)).first_contact_at is None


async def test_a_message_to_a_family_managing_two_flagged_patients_marks_neither(
    runtime: Runtime, app: FastAPI, admin_client: httpx.AsyncClient
) -> None:
    """A daughter answers for both parents: a nurse's message to her cannot say which parent it is
    about, so both stay flagged; once one is contacted otherwise, a message is about the other."""
    team_id = await make_team(runtime)
    father = await enrol(runtime, team_id, name="张建国", **_flagged("red"))
    mother = await enrol(runtime, team_id, name="李秀英", **_flagged("amber"))
    async with runtime.db.sessions() as session:
        daughter = Patient(display_name="张小红")
        session.add(daughter)
        await session.flush()
        account = WeChatIdentity(
            app_id="wx_test", openid=f"openid-daughter-{daughter.id}", patient_id=daughter.id
        )
        session.add(account)
        await session.flush()
        for parent in (father, mother):
            session.add(
                PatientLink(identity_id=account.id, patient_id=parent.patient_id, relationship="parent")
            )
            await session.execute(
                update(FollowupCheckin)
                .where(FollowupCheckin.id == parent.checkin_id)
                .values(identity_id=account.id)
            )
        await session.commit()
        account_id = account.id
    url = f"/api/console/conversations/{await _escalated_chat(runtime, account_id, team_id)}/messages"
    async with staff_client(app, admin_client, "nurse", [team_id]) as (_, nurse):
        assert (await nurse.post(url, json={"text": "您好，我是护士。"})).status_code == 201
        for parent in (father, mother):
            assert (await _checkin(runtime, parent.checkin_id)).first_contact_at is None
        async with runtime.db.sessions() as session:  # the mother was reached by phone meanwhile
            await session.execute(
                update(FollowupCheckin)
                .where(FollowupCheckin.id == mother.checkin_id)
                .values(first_contact_at=datetime.now(UTC))
            )
            await session.commit()
        assert (await nurse.post(url, json={"text": "您父亲的伤口现在怎么样？"})).status_code == 201
    assert (await _checkin(runtime, father.checkin_id)).first_contact_at is not None
