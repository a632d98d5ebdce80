"""Store one triage decision (models.TriageDecision) in the caller's transaction.

The chat's route stores an emergency with the patient's message; the bot API stores every request.
Adding a row costs no extra round trip: it is flushed with the caller's commit.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_backend.triage.models import TriageDecision
from crm_backend.triage.service import Assessment

#: Where a decision came from (`TriageDecision.source`).
CHAT = "chat"
BOT_API = "bot_api"


def record_decision(
    session: AsyncSession,
    assessment: Assessment,
    *,
    conversation_id: int | None,
    message_id: int | None,
    patient_id: int | None,
    source: str,
) -> TriageDecision:
    """Add the decision to `session`; the caller commits it with whatever else the turn stores."""
    answer = assessment.answer
    recommendation = assessment.recommendation
    decision = TriageDecision(
        message_id=message_id,
        conversation_id=conversation_id,
        patient_id=patient_id,
        source=source[:32],
        level=answer.level.value,
        red_flags=list(answer.red_flags),
        departments=[department.code for department in answer.departments],
        rule_version=assessment.screen.version,
        data_version=recommendation.version if recommendation is not None else None,
        screen=assessment.screen.model_dump(mode="json"),
        recommendation=recommendation.model_dump(mode="json") if recommendation is not None else None,
        answer=answer.answer[:4000],
    )
    session.add(decision)
    return decision


async def decided_on(session: AsyncSession, message_id: int) -> bool:
    """Is a decision on this message stored already? (A turn retried after a crash asks.)"""
    found = await session.scalar(
        select(TriageDecision.id).where(TriageDecision.message_id == message_id).limit(1)
    )
    return found is not None
