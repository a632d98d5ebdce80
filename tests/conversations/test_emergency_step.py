"""Step 1 of an emergency, on both databases: the message, its red-flag mark and the decision are
stored together, and a turn retried after a crash (its message already stored) keeps one decision."""

from __future__ import annotations

from sqlalchemy import func, select

from crm_backend.conversations.models import Message
from crm_backend.conversations.processing import InboundProcessor
from crm_backend.conversations.route import Route
from crm_backend.database.core import Database
from crm_backend.runtime import Runtime
from crm_backend.triage.models import TriageDecision
from tests.conversations.conftest import new_push

FATHER = "我爸胸口疼得厉害还出冷汗"


async def test_an_emergency_is_recorded_once_with_its_mark_even_when_step_one_runs_again(
    db: Database, runtime: Runtime
) -> None:
    inbound_id, conversation_id = await new_push(db, text=FATHER)
    processor = InboundProcessor(runtime)
    first = await processor._record(inbound_id)
    again = await processor._record(inbound_id)  # as after a crash before the answer was stored
    for plan in (first, again):
        assert plan is not None and plan.route is Route.EMERGENCY
        assert plan.system_replies[0].startswith("这可能是急症，请立即拨打120")
        assert (plan.escalate, plan.escalate_priority, plan.escalate_team) == (
            "emergency",
            "urgent",
            "nursing",
        )
        assert plan.bot_texts == []
    async with db.sessions() as session:
        message = await session.scalar(select(Message).where(Message.inbound_id == inbound_id))
        decisions = (
            await session.scalars(
                select(TriageDecision).where(TriageDecision.conversation_id == conversation_id)
            )
        ).all()
        count = await session.scalar(
            select(func.count()).select_from(Message).where(Message.inbound_id == inbound_id)
        )
    assert count == 1 and message is not None
    assert message.extra["red_flags"]["rules"] == ["cardiac_chest_pain"]
    [decision] = decisions
    assert (decision.message_id, decision.level, decision.source) == (message.id, "emergency", "chat")
    assert decision.red_flags == ["cardiac_chest_pain"] and decision.rule_version
