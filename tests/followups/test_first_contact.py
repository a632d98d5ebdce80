# ruff: noqa: F811 (pytest fixtures imported from page_support are parameters here)
"""A nurse's first message to a patient whose check-in raised a flag is the first contact the
report measures (red flag → first contact), however she writes: a reply in the escalated chat."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from fastapi import FastAPI
from sqlalchemy import select, update

from crm_backend.conversations.models import Conversation
from crm_backend.escalations.models import Escalation
from crm_backend.followups import links
from crm_backend.followups.models import FollowupCheckin
from crm_backend.patients.models import WeChatIdentity
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


async def test_the_nurses_reply_to_the_escalation_is_the_first_contact(
    runtime: Runtime, app: FastAPI, client: httpx.AsyncClient, admin_client: httpx.AsyncClient
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
    for code, value in [("pain", 8), ("temperature", 37.0), ("wound_red", False), ("symptoms", [])]:
        assert (await client.post(path, json={"question": code, "value": value})).status_code == 200
    red = await _checkin(runtime, enrolled.checkin_id)
    assert (red.worst_flag, red.first_contact_at) == ("red", None)

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
        assert first is not None and first >= red.answered_at

        again = await nurse.post(
            f"/api/console/conversations/{conversation_id}/messages", json={"text": "好的"}
        )
        assert again.status_code == 201
    assert (await _checkin(runtime, enrolled.checkin_id)).first_contact_at == first  # the first one stays
