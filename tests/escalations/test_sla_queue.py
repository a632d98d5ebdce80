"""The queue keeps SLA time in staffed hours: a chat escalated at 03:25, when the patient was told
staff reply after 08:00, is not late at 03:45 but is due at 08:00 plus its SLA."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import httpx

from crm_backend.escalations.models import Priority
from crm_backend.escalations.service import Escalations
from crm_backend.runtime import Runtime
from tests.escalations.conftest import Clock


def shanghai(day: int, hour: int, minute: int = 0) -> datetime:
    """A November 2026 Shanghai wall-clock time as UTC (24 November 2026 is a Tuesday)."""
    return datetime(2026, 11, day, hour, minute, tzinfo=ZoneInfo("Asia/Shanghai")).astimezone(UTC)


async def _queue_item(client: httpx.AsyncClient, escalation_id: int) -> dict:
    response = await client.get("/api/console/queues")
    assert response.status_code == 200, response.text
    items = [item for team in response.json() for item in team["items"]]
    return next(item for item in items if item["escalation_id"] == escalation_id)


async def test_a_night_escalation_is_due_after_the_opening_not_fifteen_minutes_later(
    runtime: Runtime, clock: Clock, admin_client: httpx.AsyncClient, new_conversation
) -> None:
    clock.now = shanghai(24, 3, 25)
    escalation = await Escalations(runtime).escalate(await new_conversation(), reason="患者要求转人工")

    clock.now = shanghai(24, 3, 45)
    item = await _queue_item(admin_client, escalation.id)
    assert item["sla_breached"] is False
    assert datetime.fromisoformat(item["sla_due_at"]) == shanghai(24, 8, 15)

    clock.now = shanghai(24, 8, 16)
    assert (await _queue_item(admin_client, escalation.id))["sla_breached"] is True


async def test_a_chat_escalated_before_closing_carries_its_sla_into_the_morning(
    runtime: Runtime, clock: Clock, admin_client: httpx.AsyncClient, new_conversation
) -> None:
    clock.now = shanghai(25, 19, 59)
    escalation = await Escalations(runtime).escalate(
        await new_conversation(), reason="用药咨询", priority=Priority.URGENT
    )
    clock.now = shanghai(25, 23)
    item = await _queue_item(admin_client, escalation.id)
    assert item["sla_breached"] is False
    assert datetime.fromisoformat(item["sla_due_at"]) == shanghai(26, 8, 1)  # 1 min tonight, 1 tomorrow


async def test_raising_the_priority_moves_the_due_time_by_the_same_staffed_clock(
    runtime: Runtime, clock: Clock, admin_client: httpx.AsyncClient, new_conversation
) -> None:
    conversation_id = await new_conversation()
    clock.now = shanghai(26, 2)
    escalation = await Escalations(runtime).escalate(conversation_id, reason="咨询")
    await Escalations(runtime).escalate(conversation_id, reason="咨询", priority=Priority.URGENT)
    clock.now = shanghai(26, 3)
    item = await _queue_item(admin_client, escalation.id)
    assert item["priority"] == "urgent"
    assert datetime.fromisoformat(item["sla_due_at"]) == shanghai(26, 8, 2)
